// The Export step's files of a fabricated study with a real PEFT adapter: the same on the test page (in
// Chromium) and in the test (in Node), so the test knows byte for byte what the page pushes.
import { exportBundle, type ExportFile } from '../../../src/engine/export/bundle.ts';
import { resolveTargets, type LoraModelShape } from '../../../src/engine/lora/config.ts';
import { initLoraParams, loraLayout } from '../../../src/engine/lora/init.ts';
import { exportPeftAdapter } from '../../../src/engine/lora/peft.ts';
import { loraConfigOf } from '../../../src/engine/train/config.ts';
import { fabricatedContext } from '../../unit/export/fixture.ts';

const SHAPE: LoraModelShape = {
  family: 'llama',
  hidden: 16,
  ffn: 32,
  heads: 2,
  kvHeads: 2,
  headDim: 8,
  layers: 2,
};

export function hubPushExportFiles(): ExportFile[] {
  const ctx = fabricatedContext();
  const lora = loraConfigOf(ctx.config);
  const layout = loraLayout(resolveTargets(lora, SHAPE), lora.r);
  const adapter = exportPeftAdapter(lora, SHAPE, layout, initLoraParams(layout, 9), {
    baseModel: ctx.model.id,
  });
  return exportBundle(ctx, adapter); // the context's date is fixed, so both hosts build the same bytes
}
