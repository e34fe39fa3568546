// One call from a model's files to everything a GPU load needs, checked before a byte of weights moves:
// the spec, the checkpoint's tensors matched to the parameters, and the tokenizer.

import type { ModelFiles } from '../checkpoint/byte-source.ts';
import { readJson } from '../checkpoint/byte-source.ts';
import type { ModelSpec } from './config.ts';
import { parseModelConfig } from './config.ts';
import type { Checkpoint } from '../checkpoint/safetensors.ts';
import { openCheckpoint } from '../checkpoint/safetensors.ts';
import type { ModelTokenizer } from './tokenizer.ts';
import { loadTokenizer } from './tokenizer.ts';
import type { ResolvedWeights } from './weights.ts';
import { resolveWeights } from './weights.ts';

export interface OpenedModel {
  files: ModelFiles;
  spec: ModelSpec;
  checkpoint: Checkpoint;
  weights: ResolvedWeights;
  tokenizer: ModelTokenizer;
}

export async function openModel(files: ModelFiles): Promise<OpenedModel> {
  if (!files.has('config.json')) throw new Error(`${files.label}: config.json is missing`);
  const config = await readJson(files, 'config.json');
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Error('config.json: expected a JSON object');
  }
  const spec = parseModelConfig(config as Record<string, unknown>);
  const checkpoint = await openCheckpoint(files);
  const weights = resolveWeights(spec, checkpoint.tensors, files.label);
  const tokenizer = await loadTokenizer(files, {
    bosTokenId: spec.bosTokenId,
    eosTokenIds: spec.eosTokenIds,
  });
  if (tokenizer.vocabSize > spec.vocab) {
    throw new Error(
      `tokenizer.json: ${tokenizer.vocabSize} tokens but config.json vocab_size is ${spec.vocab}`,
    );
  }
  return { files, spec, checkpoint, weights, tokenizer };
}
