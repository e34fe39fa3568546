#!/usr/bin/env bash
# tunelab on a lent NVIDIA GPU machine, in one device call (bench/device/README.md):
#   command "bash bench/device/run.sh", carry [".carry"] (built by `npm run device:pack`), timeout_s 600.
# Unpacks Node, Dawn and the Vulkan loader from .carry, points Vulkan at the NVIDIA driver, checks that Dawn
# sees the GPU (not a software rasteriser), then runs, each with its own time limit and its output in $OUT:
#   setup.txt          manifest, nvidia-smi, Dawn's adapter (with and without unsafe APIs)
#   kernels.txt        bench:kernels at SmolLM2-135M shapes
#   train.txt          bench:train at the SmolLM2-135M shape (30 layers, 4 × 256, LoRA r 16 on every linear)
#   anchor.txt         peft_anchor.py: PyTorch + PEFT eager on the same shape and card
#   adapter-check.txt  a tunelab-trained adapter of a tiny Llama, its loss in tunelab and in PEFT (peft_loss.py),
#                      trained and evaluated by tunelab in f32 (|Δ|/loss < 1e-4) and, where the adapter has
#                      shader-f16, in f16 (< 2e-3)
#   summary.md         the block for BENCHMARKS.md (also printed last)
# Exits 0 only when every step succeeded.
#
# Environment (defaults are the GPU run; simulate.sh sets them for a small local proof on lavapipe):
#   TUNELAB_DEVICE_ICD      Vulkan ICD json (default: the NVIDIA one where the machine has it)
#   TUNELAB_DEVICE_LOCAL=1  a local proof: a software adapter is allowed, nothing is unpacked into /, and the
#                           Python steps are only syntax-checked when torch/transformers/peft are missing
#   TUNELAB_KERNELS_ARGS, TUNELAB_TRAIN_ARGS, TUNELAB_ANCHOR_ARGS, TUNELAB_CHECK_ARGS   the steps' flags
#   TUNELAB_TRAIN2_ARGS     optional second bench:train run appended to train.txt (e.g. the same shape in f32)
#   TUNELAB_LARGE_TRAIN_ARGS, TUNELAB_LARGE_ANCHOR_ARGS   optional last steps: a second shape (train-large.txt,
#                           anchor-large.txt), e.g. '--model smol --batch 8 --seq 512 …' and '--batch 8 --seq 512'
#   TUNELAB_DEVICE_BUDGET   seconds for the whole script (default 560: inside the call's 600)
#   TUNELAB_DEVICE_WORK     scratch folder (default /tmp/tunelab-device)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
CARRY=$ROOT/.carry
OUT=${OUT:-/tmp/tunelab-device-out}
WORK=${TUNELAB_DEVICE_WORK:-/tmp/tunelab-device}
LOCAL=${TUNELAB_DEVICE_LOCAL:-0}
BUDGET=${TUNELAB_DEVICE_BUDGET:-560}
KERNELS_ARGS=${TUNELAB_KERNELS_ARGS:---runs 5 --tune --variants}
TRAIN_ARGS=${TUNELAB_TRAIN_ARGS:---model smol --layers 30 --batch 4 --seq 256 --steps 20 --targets all-linear --r 16 --tune --profile}
ANCHOR_ARGS=${TUNELAB_ANCHOR_ARGS:---batch 4 --seq 256 --steps 30 --layers 30}
CHECK_ARGS=${TUNELAB_CHECK_ARGS:-}
TRAIN2_ARGS=${TUNELAB_TRAIN2_ARGS:-}
LARGE_TRAIN_ARGS=${TUNELAB_LARGE_TRAIN_ARGS:-}
LARGE_ANCHOR_ARGS=${TUNELAB_LARGE_ANCHOR_ARGS:-}
STEPS=$WORK/steps.txt
export PYTHONUNBUFFERED=1
# Unrounded GPU timestamps for the benches' per-kernel figures (Dawn rounds them by default; src/node/dawn.ts).
export TUNELAB_DAWN_FLAGS=${TUNELAB_DAWN_FLAGS-disable-dawn-features=timestamp_quantization}

die() {
  echo "run.sh: $*" >&2
  exit 1
}

# Outside the GPU machine the loader packages must not go into /: simulate.sh is the local way.
[ "$LOCAL" = 1 ] || command -v nvidia-smi >/dev/null ||
  die "no nvidia-smi: this is not the GPU machine (for a local proof: npm run device:simulate)"
[ -f "$CARRY/manifest.txt" ] || die "no .carry/manifest.txt: run 'npm run device:pack' in this checkout and call with carry [\".carry\"]"
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT" || die "cannot create $WORK and $OUT"
# $OUT is empty on the device; elsewhere an earlier run's files would be appended to.
rm -f "$OUT"/{setup,kernels,train,anchor,adapter-check,train-large,anchor-large}.txt "$OUT/summary.md"
: >"$STEPS"

# xz where the machine has it, else Python's lzma (always built into CPython).
unxz_to() {
  if command -v xz >/dev/null; then
    xz -dc "$1" >"$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

unpack() {
  unxz_to "$CARRY/node.xz" "$WORK/node" && chmod +x "$WORK/node" || die "cannot unpack Node"
  cp -r "$CARRY/bench" "$WORK/bench" || die "cannot copy the bundles"
  local f
  while IFS= read -r f; do unxz_to "$f" "${f%.xz}" && rm "$f" || die "cannot unpack $f"; done < <(find "$WORK/bench" -name '*.xz')
  NODE=$WORK/node
}

# The README's recipe: the loader packages into / unless the image has them (never over installed ones);
# locally only into $WORK, with LD_LIBRARY_PATH, so the machine's own libraries stay untouched.
vulkan_loader() {
  local deb pkg
  mkdir -p "$WORK/vkroot"
  for deb in "$CARRY"/debs/*.deb; do
    dpkg -x "$deb" "$WORK/vkroot" || { echo "dpkg -x $deb failed"; return 1; }
    pkg=$(dpkg-deb -f "$deb" Package)
    if [ "$LOCAL" != 1 ] && ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      dpkg -x "$deb" / && echo "unpacked $pkg into /"
    fi
  done
  if [ "$LOCAL" = 1 ]; then
    export LD_LIBRARY_PATH=$WORK/vkroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    ls "$WORK"/vkroot/usr/lib/x86_64-linux-gnu/libvulkan.so.1* || return 1
  else
    ldconfig
    # The Vulkan loader finds the driver (libGLX_nvidia.so.0, named in nvidia_icd.json) by the linker's paths.
    local d
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
      if ! ldconfig -p | grep -q libGLX_nvidia && [ -f "$d/libGLX_nvidia.so.0" ]; then
        export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        echo "libGLX_nvidia.so.0 is not in ldconfig's cache: LD_LIBRARY_PATH gets $d"
        break
      fi
    done
  fi
  ldconfig -p | grep -E 'libvulkan\.so\.1|libGLX_nvidia|libGLdispatch' || echo "(ldconfig lists no Vulkan/GLX libraries)"
}

choose_icd() {
  local icd=${TUNELAB_DEVICE_ICD:-} c
  if [ -z "$icd" ]; then
    for c in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
      /etc/vulkan/icd.d/nvidia_icd.json; do
      [ -f "$c" ] && icd=$c && break
    done
  fi
  if [ -z "$icd" ] || [ ! -f "$icd" ]; then
    echo "no Vulkan ICD json (looked for nvidia_icd.json; set TUNELAB_DEVICE_ICD)"
    return 1
  fi
  export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
  echo "Vulkan ICD: $icd"
  cat "$icd"
}

# step NAME LIMIT_S FILE COMMAND...: runs with a timeout clipped to what is left of the budget, output
# appended to $OUT/FILE (or FILE itself when absolute), and records "NAME: ok | FAILED (rc N) | not run (no
# time left)" in $STEPS.
step() {
  local name=$1 limit=$2 file=$3 left rc
  shift 3
  [[ $file == /* ]] || file=$OUT/$file
  left=$((BUDGET - SECONDS - 15))
  ((left < limit)) && limit=$left
  if ((limit < 10)); then
    echo "$name: not run (no time left)" | tee -a "$file" "$STEPS"
    return 1
  fi
  echo "== $name (limit ${limit}s): $*" | tee -a "$file"
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$file"
  rc=${PIPESTATUS[0]}
  if ((rc == 0)); then echo "$name: ok" >>"$STEPS"; else echo "$name: FAILED (rc $rc$( ((rc == 124)) && echo ', timed out'))" >>"$STEPS"; fi
  return "$rc"
}

# Python steps: on the GPU machine torch must be there; locally (no torch) they are syntax-checked only.
# HAVE_TORCH is decided once (importing torch takes seconds).
python_or_skip() {
  local name=$1 file=$OUT/$2
  ((HAVE_TORCH)) && return 0
  if [ "$LOCAL" != 1 ]; then
    echo "$name: FAILED (python3 cannot import torch, transformers and peft)" | tee -a "$file" "$STEPS"
  # compile() is py_compile's check without writing __pycache__ into the tree.
  elif python3 -c 'import sys; [compile(open(f).read(), f, "exec") for f in sys.argv[1:]]' \
    bench/device/peft_anchor.py bench/device/peft_loss.py; then
    echo "TUNELAB_SKIPPED no torch here (local proof); peft_anchor.py and peft_loss.py compile" | tee -a "$file"
    echo "$name: skipped (no torch; the Python scripts compile)" >>"$STEPS"
  else
    echo "$name: FAILED (peft_anchor.py or peft_loss.py does not compile)" | tee -a "$file" "$STEPS"
  fi
  return 1
}

# Runs in this shell (not a pipe's subshell): the Vulkan variables it exports are for every later step.
setup() {
  echo "== manifest"
  cat "$CARRY/manifest.txt"
  echo "== host: $(uname -srm), $(nproc) CPUs"
  echo "== nvidia-smi"
  nvidia-smi || echo "nvidia-smi: not available"
  echo "TUNELAB_GPU $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo "== Vulkan"
  vulkan_loader || return 1
  choose_icd || return 1
  echo "== Node $("$NODE" --version)"
  echo "== Dawn's adapter"
  local strict=--require-hardware
  [ "$LOCAL" = 1 ] && strict=
  "$NODE" "$WORK/bench/adapter-info.mjs" $strict || return 1
  # Informational: the experimental features (subgroup-matrix) Dawn offers with unsafe APIs allowed.
  "$NODE" "$WORK/bench/adapter-info.mjs" --dawn-flag enable-dawn-features=allow_unsafe_apis || true
}

# adapter_check PRECISION TOLERANCE: tunelab trains and evaluates in PRECISION, PEFT evaluates the exported
# adapter in f32; f16's own rounding is what the looser f16 tolerance allows. Exit 3 from the check: skipped.
adapter_check() {
  local precision=$1 tolerance=$2 check=$WORK/check-$1 file=adapter-check.txt rc
  # shellcheck disable=SC2086
  step "adapter-check-$precision" 60 $file "$NODE" "$WORK/bench/adapter-check.mjs" --out "$check" \
    --precision "$precision" $CHECK_ARGS
  rc=$?
  if ((rc == 3)); then
    sed -i "s/^adapter-check-$precision: FAILED (rc 3)$/adapter-check-$precision: skipped (no shader-f16)/" "$STEPS"
    return
  fi
  ((rc == 0)) || return
  python_or_skip "peft-loss-$precision" $file || return
  # Its own log first: the verdict reads the last JSON line PEFT printed, not tunelab's.
  step "peft-loss-$precision" 90 "$check/peft-loss.log" python3 bench/device/peft_loss.py "$check/base" \
    "$check/adapter" "$check/rows.jsonl"
  rc=$?
  cat "$check/peft-loss.log" >>"$OUT/$file"
  ((rc == 0)) || return
  step "loss-compare-$precision" 20 $file "$NODE" "$WORK/bench/report.mjs" compare "$check/tunelab-loss.json" \
    "$check/peft-loss.log" "$tolerance" "$precision"
}

unpack
setup >"$OUT/setup.txt" 2>&1
setup_rc=$?
cat "$OUT/setup.txt"
if ((setup_rc != 0)); then
  echo "setup: FAILED" >>"$STEPS"
  die "Dawn does not see a usable GPU adapter, so nothing was benchmarked (setup.txt above says why)"
fi
echo "setup: ok" >>"$STEPS"
HAVE_TORCH=0
timeout 120 python3 -c 'import torch, transformers, peft' >/dev/null 2>&1 && HAVE_TORCH=1

# shellcheck disable=SC2086
step kernels 150 kernels.txt "$NODE" "$WORK/bench/kernels.mjs" $KERNELS_ARGS
# shellcheck disable=SC2086
step train 180 train.txt "$NODE" "$WORK/bench/train.mjs" $TRAIN_ARGS
# shellcheck disable=SC2086
[ -z "$TRAIN2_ARGS" ] || step train-2 150 train.txt "$NODE" "$WORK/bench/train.mjs" $TRAIN2_ARGS
# shellcheck disable=SC2086
python_or_skip anchor anchor.txt && step anchor 150 anchor.txt python3 bench/device/peft_anchor.py $ANCHOR_ARGS
adapter_check f32 1e-4
adapter_check f16 2e-3
# Optional, last (dropped first when time runs short): a second, larger shape for tunelab and PEFT.
if [ -n "$LARGE_TRAIN_ARGS" ]; then
  # shellcheck disable=SC2086
  step train-large 120 train-large.txt "$NODE" "$WORK/bench/train.mjs" $LARGE_TRAIN_ARGS
  # shellcheck disable=SC2086
  python_or_skip anchor-large anchor-large.txt &&
    step anchor-large 100 anchor-large.txt python3 bench/device/peft_anchor.py $LARGE_ANCHOR_ARGS
fi

echo
echo "== steps (${SECONDS}s)"
cat "$STEPS"
echo
"$NODE" "$WORK/bench/report.mjs" summary "$OUT" "$STEPS" | tee "$OUT/summary.md"
! grep -qE ': (FAILED|not run)' "$STEPS"
