/** `rnagrad embed`: hidden states per sequence (mean and CLS pooled, optionally per token) as safetensors. */
import * as T from '@rnagrad/tensor';
import { embed, saveCheckpoint } from '@rnagrad/models';
import type { Tensor } from '@rnagrad/tensor';
import { type CommandSpec, type Parsed, UsageError } from '../args.js';
import { encodeCodons, readSequences } from '../input.js';
import { Progress } from '../progress.js';
import { initRuntime, loadHelm, warnUntrainedPositions } from '../runtime.js';

const flags = {
  model: { type: 'string', meta: 'DIR', help: 'a checkpoint or run folder (required)' },
  input: { type: 'file', meta: 'FILE', help: 'sequences: FASTA, CSV (see --column) or one per line (required)' },
  output: { type: 'string', meta: 'FILE', help: 'the .safetensors file to write (required)' },
  column: { type: 'string', meta: 'NAME', default: 'sequence', help: 'CSV column with the sequences' },
  layer: { type: 'int', default: -1, help: '0: embeddings, 1..layers: after that block, -1: final (after the last LayerNorm)' },
  'per-token': { type: 'bool', help: 'also store each sequence’s per-token states as tokens.<i> [length, d]' },
  batch: { type: 'int', min: 1, max: 4096, default: 16, help: 'sequences per forward pass' },
} as const;

export const EMBED: CommandSpec<typeof flags> = {
  name: 'embed',
  summary:
    'Writes hidden states as safetensors: "mean" [N, d] (over codons) and "cls" [N, d], with --per-token also "tokens.<i>" [length, d]; names in the metadata.',
  usage: 'rnagrad embed --model DIR --input FILE --output FILE.safetensors [options]',
  flags,
  examples: ['rnagrad embed --model runs/helm --input genes.fasta --layer -1 --per-token --output genes.safetensors'],
};

export async function runEmbed(a: Parsed<typeof flags>): Promise<void> {
  if (a.model === undefined) throw new UsageError('--model DIR is required');
  if (a.input === undefined) throw new UsageError('--input FILE is required');
  if (a.output === undefined) throw new UsageError('--output FILE.safetensors is required');
  if (!a.output.endsWith('.safetensors')) throw new UsageError(`--output should end in .safetensors, got ${a.output}`);
  const records = readSequences(a.input, { column: a.column });
  await initRuntime();
  const { model, config, dir } = await loadHelm(a.model);
  const L = model.cfg.layers;
  if (a.layer < -1 || a.layer > L) throw new UsageError(`--layer must be in -1..${L} for this ${L}-layer model, got ${a.layer}`);
  const ids = encodeCodons(records);
  ids.forEach((s, i) => {
    if (s.length > model.cfg.maxPositions) throw new UsageError(`${a.input}: ${records[i]!.name} has ${s.length - 2} codons; the model takes at most ${model.cfg.maxPositions - 2}`);
  });
  warnUntrainedPositions(ids, config);
  process.stderr.write(`model: ${dir}; embedding ${records.length} sequences at layer ${a.layer}…\n`);
  let progress: Progress | undefined;
  const onProgress = (done: number, total: number) => {
    progress ??= new Progress({ total, unit: 'sequence', every: 64 });
    progress.update(done, 0, '');
  };
  const e = await embed(model, ids, { layer: a.layer, batchSize: a.batch, perToken: a['per-token'] });
  progress?.finish();
  const N = records.length;
  const D = e.dim;
  const tensors: [string, Tensor][] = [
    ['mean', T.tensor(e.mean, { shape: [N, D], device: 'cpu' })],
    ['cls', T.tensor(e.cls, { shape: [N, D], device: 'cpu' })],
    ...(e.perToken ?? []).map((t, i): [string, Tensor] => [`tokens.${i}`, T.tensor(t, { shape: [t.length / D, D], device: 'cpu' })]),
  ];
  await saveCheckpoint(a.output, tensors, { names: JSON.stringify(records.map((r) => r.name)), layer: String(a.layer), model: dir, pooling: 'mean over codon positions; cls at position 0' });
  for (const [, t] of tensors) t.dispose();
  process.stderr.write(`wrote ${a.output}: mean, cls [${N}, ${D}]${e.perToken ? `, tokens.0..${N - 1}` : ''}\n`);
  model.dispose();
}
