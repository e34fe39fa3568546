// The adapters' weight gradients of a model, grouped as its family says (FamilyShape.gradientGroups): one
// dispatch per group and layer (kernels/lora-grads.ts) instead of a split-K matmul pair per gradient.
//
// The work lists are built once per activations. One list per group serves every layer: the trainer's flat
// LoRA buffer holds each layer's adapters at one stride, and their dropout streams follow at one stride too, so a
// layer's dispatch is the first adapted layer's list plus a gradient base and a stream base (uniforms that never
// change from step to step). Those lists live in the step's `gradTables` buffer. Adapters that do not line up
// that way (built by hand, in separate buffers) get a list of their own, uploaded into the arena.

import type { BufferArena, CommandRecorder, TensorRef } from '../gpu/index.ts';
import {
  loraGrads,
  loraGradsPlan,
  type LoraGradProblem,
  type LoraGradsTable,
} from '../kernels/lora-grads.ts';
import type { GradientGroup, LinearShape } from './family.ts';
import type { LinearContext, LoraAdapter, RankColumns } from './linear.ts';

/** One recorded dispatch: a work list and where this layer's gradients and streams sit relative to it. */
export interface GradientDispatch {
  kind: 'dA' | 'dB';
  table: LoraGradsTable;
  /** The tensors the list reads, by the names the family gave them, in the list's input order. */
  roles: readonly string[];
  grads: GPUBuffer;
  gradBase: number;
  streamBase: number;
  /** The step's gradWorkspace: the token split's partial sums (when the list's plan splits). */
  workspace: GPUBuffer;
}

export interface GradientPlanning<L extends string> {
  groups: readonly GradientGroup<L>[];
  layers: number;
  tokens: number;
  adapter(layer: number, name: L): LoraAdapter | undefined;
  linearShape(name: L): LinearShape;
  uColumns: Partial<Record<L, number>>;
  uWidth: number;
  /** The step's gradTables buffer and each group's first word in it (−1: the group has no adapter). */
  tables: GPUBuffer;
  tableOffsets: readonly number[];
  /** The step's gradWorkspace, sized by trainingTable for the same tokens and `chunkTokens`. */
  workspace: GPUBuffer;
  /** Tokens per chunk of the token split; default: kernels/lora-grads.ts's rule. */
  chunkTokens?: number;
  queue: GPUQueue;
  arena: BufferArena;
}

/** A byte range of a binding. */
function rangeOf(binding: LoraAdapter['a']): { buffer: GPUBuffer; offset: number } {
  return 'buffer' in binding
    ? { buffer: binding.buffer, offset: binding.offset ?? 0 }
    : { buffer: binding, offset: 0 };
}

interface LayerProblems {
  problems: LoraGradProblem[];
  roles: string[];
  grads: GPUBuffer[];
}

function layerProblems<L extends string>(
  p: GradientPlanning<L>,
  group: GradientGroup<L>,
  l: number,
): LayerProblems {
  const roles: string[] = [];
  const grads: GPUBuffer[] = [];
  const problems: LoraGradProblem[] = [];
  for (const [name, role] of group.members) {
    const lora = p.adapter(l, name);
    if (!lora) continue;
    if (!roles.includes(role)) roles.push(role);
    const g = rangeOf(group.kind === 'dA' ? lora.dA : lora.dB);
    grads.push(g.buffer);
    const { inFeatures, outFeatures } = p.linearShape(name);
    const dropout = group.kind === 'dA' && lora.dropout && lora.dropout.p > 0 ? lora.dropout : undefined;
    problems.push({
      kind: group.kind,
      input: roles.indexOf(role),
      cols: group.kind === 'dA' ? inFeatures : outFeatures,
      r: lora.r,
      rankCol: p.uColumns[name]!,
      gradOffset: g.offset / 4,
      scale: lora.scaling,
      dropout,
    });
  }
  return { problems, roles, grads };
}

/** Layer l's problems as the template's, shifted by one gradient offset and one dropout stream; else null. */
function shiftOf(template: LayerProblems, layer: LayerProblems): { grad: number; stream: number } | null {
  const [t0, l0] = [template.problems[0], layer.problems[0]];
  if (layer.problems.length !== template.problems.length || !l0) return null;
  const grad = l0.gradOffset - t0.gradOffset;
  const stream = (l0.dropout?.stream ?? 0) - (t0.dropout?.stream ?? 0);
  const same = layer.problems.every((q, i) => {
    const t = template.problems[i];
    return (
      q.input === t.input &&
      q.cols === t.cols &&
      q.r === t.r &&
      q.rankCol === t.rankCol &&
      q.scale === t.scale &&
      q.gradOffset - t.gradOffset === grad &&
      (q.dropout?.p ?? 0) === (t.dropout?.p ?? 0) &&
      (q.dropout?.seed ?? 0) === (t.dropout?.seed ?? 0) &&
      (q.dropout?.stream ?? 0) - (t.dropout?.stream ?? 0) === stream &&
      layer.grads[i] === template.grads[0]
    );
  });
  return same && grad >= 0 && stream >= 0 && layer.roles.join() === template.roles.join()
    ? { grad, stream }
    : null;
}

/** Every layer's gradient dispatches, per group: [layer][group] → the dispatches to record. */
export function planGradients<L extends string>(p: GradientPlanning<L>): GradientDispatch[][][] {
  const options = { rankStride: p.uWidth, chunkTokens: p.chunkTokens };
  const perGroup = p.groups.map((group, g) => {
    const layers = Array.from({ length: p.layers }, (_, l) => layerProblems(p, group, l));
    const first = layers.findIndex((x) => x.problems.length > 0);
    if (first < 0) return layers.map((): GradientDispatch[] => []);
    const template = layers[first];
    const oneBuffer = template.grads.every((b) => b === template.grads[0]);
    const shifts = layers.map((layer) => (layer.problems.length > 0 ? shiftOf(template, layer) : null));
    const linedUp =
      oneBuffer && p.tableOffsets[g] >= 0 && layers.every((x, l) => !x.problems.length || shifts[l]);
    if (linedUp) {
      const plan = loraGradsPlan(template.problems, p.tokens, options);
      const offset = 4 * p.tableOffsets[g];
      p.queue.writeBuffer(p.tables, offset, plan.table);
      const table = { plan, buffer: { buffer: p.tables, offset, size: plan.table.byteLength } };
      return layers.map((layer, l): GradientDispatch[] => {
        if (layer.problems.length === 0) return [];
        const { grad, stream } = shifts[l]!;
        const { roles, grads } = template;
        const { workspace } = p;
        return [
          { kind: group.kind, table, roles, grads: grads[0], gradBase: grad, streamBase: stream, workspace },
        ];
      });
    }
    // Not lined up (adapters in buffers of their own): one list per member, shared by the layers.
    const members = template.problems.map((q, i) => {
      const plan = loraGradsPlan([{ ...q, input: 0 }], p.tokens, options);
      return {
        table: { plan, buffer: p.arena.upload(`grad-list.${g}.${i}`, plan.table) },
        role: template.roles[q.input],
      };
    });
    return layers.map((layer, l): GradientDispatch[] =>
      layer.problems.map((q, i) => {
        const t = template.problems[i];
        const grad = q.gradOffset - t.gradOffset;
        const stream = (q.dropout?.stream ?? 0) - (t.dropout?.stream ?? 0);
        if (
          layer.problems.length !== template.problems.length ||
          q.cols !== t.cols ||
          q.r !== t.r ||
          grad < 0 ||
          stream < 0
        ) {
          throw new Error(
            `loraGradients: layer ${l}'s adapters differ from layer ${first}'s (every layer must adapt the same linears)`,
          );
        }
        const { table, role } = members[i];
        return {
          kind: group.kind,
          table,
          roles: [role],
          grads: layer.grads[i],
          gradBase: grad,
          streamBase: stream,
          workspace: p.workspace,
        };
      }),
    );
  });
  return Array.from({ length: p.layers }, (_, l) => perGroup.map((layers) => layers[l]));
}

/**
 * Records one group's gradient dispatches for a layer: `tensors` names what its members read (dy or x), `u` is
 * the layer's u (dB) and `v` the layer's v (dA).
 */
export function recordGradients(
  rec: CommandRecorder,
  dispatches: readonly GradientDispatch[],
  tensors: Readonly<Record<string, TensorRef>>,
  ranks: { u: RankColumns | undefined; v: GPUBuffer },
  ctx: LinearContext,
): void {
  for (const d of dispatches) {
    const inputs = d.roles.map((role) => {
      const t = tensors[role];
      if (!t) throw new Error(`loraGradients: the backward did not bind '${role}'`);
      return t;
    });
    const R = d.kind === 'dB' ? ranks.u?.buffer : ranks.v;
    if (!R) throw new Error('loraGradients: the layer has no u');
    loraGrads(rec, d.table, {
      inputs,
      ranks: R,
      grads: d.grads,
      rng: ctx.rng ? { buffer: ctx.rng, stepOffset: ctx.stepOffset } : undefined,
      gradBase: d.gradBase,
      streamBase: d.streamBase,
      workspace: d.workspace,
    });
  }
}
