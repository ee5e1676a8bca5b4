/** The GPU runtime for the commands, and the model checkpoints they read. */
import * as T from '@rnagrad/tensor';
import '@rnagrad/autograd';
import { HelmModel, untrainedPositionsWarning } from '@rnagrad/models';
import { type CheckpointConfig, loadModel } from '@rnagrad/models/node';
import { UsageError } from './args.js';

export async function initRuntime(): Promise<T.Runtime> {
  return T.init({ quiet: true });
}

export function describeAdapter(rt: T.Runtime): string {
  const a = rt.adapter;
  const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ') || 'unknown adapter';
  return `${name} (${a.isSoftware ? 'software: SwiftShader on the CPU, slow' : 'hardware GPU'}, ${a.host})`;
}

/** Loads a HELM model from a checkpoint or run folder; `objective` refuses the other kind by name. */
export async function loadHelm(
  path: string,
  objective?: 'clm' | 'mlm',
  command = '',
): Promise<{ model: HelmModel; config: CheckpointConfig; dir: string }> {
  const loaded = await loadModel(path).catch((err: Error) => {
    throw new UsageError(`--model: ${err.message}`);
  });
  if (!(loaded.model instanceof HelmModel)) {
    loaded.model.dispose();
    throw new UsageError(`--model: ${loaded.dir} holds a ${loaded.config.model.kind} model, not a HELM codon model`);
  }
  if (objective && loaded.model.cfg.objective !== objective) {
    loaded.model.dispose();
    throw new UsageError(
      `--model: ${command} needs a causal model (helm-clm); ${loaded.dir} is a masked LM (helm-mlm)`,
    );
  }
  return loaded as { model: HelmModel; config: CheckpointConfig; dir: string };
}

/** Warns (stderr) when inputs reach positions the model never trained. */
export function warnUntrainedPositions(seqs: readonly Int32Array[], config: CheckpointConfig): void {
  const warning = untrainedPositionsWarning(seqs, config.trainedPositions);
  if (warning) process.stderr.write(`warning: ${warning}\n`);
}
