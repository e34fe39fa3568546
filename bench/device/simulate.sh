#!/usr/bin/env bash
# A local proof of run.sh before spending device time: copies only what a device call carries (tracked and
# untracked-not-ignored files, plus .carry) into a temporary folder with no node_modules, hides this machine's
# `node` behind a stub that fails, and runs run.sh there on lavapipe at tiny shapes. torch is absent here, so
# the Python steps are only syntax-checked.
#
#   npm run device:pack && npm run device:simulate      (under a minute on two cores)
# TUNELAB_KEEP_SIM=1 keeps the temporary folder (out/ holds the files a call would bring back).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ICD=${TUNELAB_DEVICE_ICD:-$ROOT/.cache/lavapipe/icd.json}
[ -f "$ROOT/.carry/manifest.txt" ] || { echo "simulate.sh: run 'npm run device:pack' first" >&2; exit 1; }
[ -f "$ICD" ] || { echo "simulate.sh: no lavapipe ICD at $ICD (npm run setup:gpu fetches it)" >&2; exit 1; }

SIM=$(mktemp -d /tmp/tunelab-device-sim.XXXXXX)
echo "simulating the device call in $SIM"
(cd "$ROOT" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -C "$SIM/" -xf -
cp -r "$ROOT/.carry" "$SIM/.carry"
[ ! -e "$SIM/node_modules" ] || { echo "simulate.sh: node_modules travelled" >&2; exit 1; }
mkdir -p "$SIM/.nonode"
printf '#!/bin/sh\necho "simulate.sh: run.sh called the machine'"'"'s node ($0 $*)" >&2; exit 127\n' >"$SIM/.nonode/node"
chmod +x "$SIM/.nonode/node"

cd "$SIM"
env PATH="$SIM/.nonode:$PATH" OUT="$SIM/out" TUNELAB_DEVICE_WORK="$SIM/work" TUNELAB_DEVICE_LOCAL=1 \
  TUNELAB_DEVICE_ICD="$ICD" TUNELAB_KERNELS_ARGS="--filter matmul --runs 1" \
  TUNELAB_TRAIN_ARGS="--model tiny --batch 2 --seq 32 --steps 2 --profile" \
  TUNELAB_TRAIN2_ARGS="--model tiny --batch 2 --seq 32 --steps 2 --precision f32" \
  TUNELAB_LARGE_TRAIN_ARGS="--model tiny --batch 2 --seq 64 --steps 2" TUNELAB_LARGE_ANCHOR_ARGS="--batch 2 --seq 64" \
  bash bench/device/run.sh
echo "simulate.sh: passed; files that would come back: $(cd "$SIM/out" && ls | tr '\n' ' ')"
# The GPU run's guard, on the adapter it must refuse: lavapipe is software, so --require-hardware exits 2.
set +e
env VK_DRIVER_FILES="$ICD" VK_ICD_FILENAMES="$ICD" "$SIM/work/node" "$SIM/work/bench/adapter-info.mjs" \
  --require-hardware >/dev/null 2>"$SIM/guard.txt"
guard=$?
set -e
[ "$guard" = 2 ] || { echo "simulate.sh: --require-hardware accepted lavapipe (exit $guard)" >&2; exit 1; }
echo "simulate.sh: the hardware guard refuses lavapipe: $(grep "^adapter-info:" "$SIM/guard.txt" | cut -c1-110)…"

# The verdict's plumbing, without PEFT: the bundled compare on tunelab's own loss file must pass against an
# equal loss and fail against one 1e-3 off (PEFT's side is what only the GPU machine can give).
check=$SIM/work/check-f32
node_=$SIM/work/node
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(json.dumps({"loss": r["loss"], "tokens": r["tokens"]}))' \
  "$check/tunelab-loss.json" >"$SIM/same.json"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(json.dumps({"loss": r["loss"] * 1.001, "tokens": r["tokens"]}))' \
  "$check/tunelab-loss.json" >"$SIM/off.json"
echo "simulate.sh: compare passes an equal loss (plumbing only, no PEFT here):"
"$node_" "$SIM/work/bench/report.mjs" compare "$check/tunelab-loss.json" "$SIM/same.json" | tail -1
if "$node_" "$SIM/work/bench/report.mjs" compare "$check/tunelab-loss.json" "$SIM/off.json" >"$SIM/off.txt"; then
  echo "simulate.sh: compare passed a loss 1e-3 off" >&2
  exit 1
fi
echo "simulate.sh: compare refuses a loss 1e-3 off: $(tail -1 "$SIM/off.txt")"

# Node and Dawn unpacked weigh ~150 MB: keep the folder only when asked.
if [ "${TUNELAB_KEEP_SIM:-0}" = 1 ]; then echo "simulate.sh: kept $SIM"; else rm -rf "$SIM"; fi
