/**
 * `rnagrad embed`: hidden states per sequence as safetensors, from a HELM or RiNALMo checkpoint
 * folder (`--model DIR`) or from RiNALMo weights in the official or multimolecule layout
 * (`--model rinalmo --weights FILE.safetensors`).
 */
import { readFileSync } from 'node:fs';
import * as T from '@rnagrad/tensor';
import {
  HelmModel,
  RINALMO_CONFIGS,
  type RinalmoConfig,
  type RinalmoLayout,
  RinalmoModel,
  type TensorToWrite,
  embed,
  embedRinalmo,
  inferRinalmoConfig,
  readSafetensorsIndex,
  saveCheckpoint,
} from '@rnagrad/models';
import {
  type CheckpointConfig,
  fileSource,
  loadModel,
  loadRinalmoFile,
  writeSafetensorsFile,
} from '@rnagrad/models/node';
import type { Tensor } from '@rnagrad/tensor';
import { type CommandSpec, type Parsed, UsageError } from '../args.js';
import { encodeCodons, readNucleotides, readSequences } from '../input.js';
import { Progress } from '../progress.js';
import { initRuntime, warnUntrainedPositions } from '../runtime.js';

const RINALMO_SIZES = ['nano', 'micro', 'mega', 'giga'] as const;

const flags = {
  model: {
    type: 'string',
    meta: 'DIR|rinalmo',
    help: 'a checkpoint or run folder (HELM or RiNALMo), or "rinalmo" with --weights (required)',
  },
  weights: {
    type: 'file',
    meta: 'FILE',
    help: 'rinalmo: RiNALMo weights (.safetensors, official or multimolecule names)',
  },
  layout: {
    type: 'choice',
    choices: ['auto', 'official', 'multimolecule'],
    default: 'auto',
    help: 'rinalmo: the naming of --weights (auto: from the key names)',
  },
  config: {
    type: 'string',
    meta: 'NAME|FILE',
    help:
      `rinalmo: ${RINALMO_SIZES.join('|')} or a JSON file ({"dim", "layers", "heads", …}); default: inferred ` +
      `from --weights`,
  },
  heads: {
    type: 'int',
    min: 1,
    meta: 'N',
    help: 'rinalmo: attention heads (default: from inv_freq buffers when the file has them, else 20)',
  },
  input: {
    type: 'file',
    meta: 'FILE',
    help: 'sequences: FASTA, CSV (see --column) or one per line (required, or --fasta)',
  },
  fasta: { type: 'file', meta: 'FILE', help: 'the same as --input' },
  output: { type: 'string', meta: 'FILE', help: 'the .safetensors file to write (required, or --out)' },
  out: { type: 'string', meta: 'FILE', help: 'the same as --output' },
  column: { type: 'string', meta: 'NAME', default: 'sequence', help: 'CSV column with the sequences' },
  layer: {
    type: 'int',
    default: -1,
    help: 'HELM: 0: embeddings, 1..layers: after that block, -1: final (after the last LayerNorm)',
  },
  'per-token': {
    type: 'bool',
    help:
      'also store per-token states: HELM "tokens.<i>" [length, d]; RiNALMo "representation" [N, Lmax, d] (pad ' +
      'rows zero)',
  },
  batch: { type: 'int', min: 1, max: 4096, default: 16, help: 'sequences per forward pass' },
} as const;

export const EMBED: CommandSpec<typeof flags> = {
  name: 'embed',
  summary:
    'Writes hidden states as safetensors. HELM: "mean" [N, d] (over codons) and "cls" [N, d], names in the ' +
    'metadata. RiNALMo: "mean" [N, d] over each sequence\'s tokens (<cls> and <eos> included, pads not) from the ' +
    'final LayerNorm, the ids in order in the metadata ("ids", a JSON array).',
  usage:
    'rnagrad embed --model DIR|rinalmo [--weights FILE.safetensors] --input|--fasta FILE --output|--out ' +
    'FILE.safetensors [options]',
  flags,
  notes: [
    'RiNALMo weights: the width, depth and SwiGLU width come from the file; heads cannot, so pass --heads',
    'when the file has no inv_freq buffers and the model does not have the official 20.',
  ],
  examples: [
    'rnagrad embed --model runs/helm --input genes.fasta --layer -1 --per-token --output genes.safetensors',
    'rnagrad embed --model rinalmo --weights rinalmo_micro.safetensors --fasta rna.fasta --out rna.safetensors ' +
      '--per-token',
  ],
};

type Args = Parsed<typeof flags>;

/** One of two synonymous flags (--input/--fasta, --output/--out). */
function either(a: Args, first: 'input' | 'output', second: 'fasta' | 'out', what: string): string {
  if (a[first] !== undefined && a[second] !== undefined)
    throw new UsageError(`--${first} and --${second} name the same thing; give one`);
  const value = a[first] ?? a[second];
  if (value === undefined) throw new UsageError(`--${first} (or --${second}) ${what} is required`);
  return value;
}

export async function runEmbed(a: Args): Promise<void> {
  if (a.model === undefined)
    throw new UsageError('--model DIR (a checkpoint or run folder) or --model rinalmo --weights FILE is required');
  const input = either(a, 'input', 'fasta', 'FILE');
  const output = either(a, 'output', 'out', 'FILE.safetensors');
  if (!output.endsWith('.safetensors')) throw new UsageError(`--output should end in .safetensors, got ${output}`);
  const fromWeights = a.model === 'rinalmo';
  const rinalmoOnly = ['weights', 'layout', 'config', 'heads'].filter((f) => a._given.has(f));
  if (!fromWeights && rinalmoOnly.length)
    throw new UsageError(
      `--${rinalmoOnly[0]} goes with --model rinalmo (a checkpoint folder carries its own weights and config)`,
    );
  if (fromWeights && a.weights === undefined) throw new UsageError('--model rinalmo needs --weights FILE.safetensors');

  if (fromWeights) {
    const { tokens, records } = readNucleotides(input, { column: a.column });
    if (a._given.has('layer'))
      throw new UsageError('--layer is for HELM models; RiNALMo embeddings are the final representation');
    await initRuntime();
    const model = await rinalmoFromWeights(a);
    await writeRinalmo(
      a,
      model,
      tokens,
      records.map((r) => r.name),
      output,
      { weights: a.weights!, layout: a.layout },
    );
    return;
  }
  await initRuntime();
  const loaded = await loadModel(a.model).catch((err: Error) => {
    throw new UsageError(`--model: ${err.message}`);
  });
  if (loaded.model instanceof RinalmoModel) {
    const model = loaded.model;
    if (a._given.has('layer')) {
      model.dispose();
      throw new UsageError('--layer is for HELM models; RiNALMo embeddings are the final representation');
    }
    const read = (() => {
      try {
        return readNucleotides(input, { column: a.column });
      } catch (err) {
        model.dispose();
        throw err;
      }
    })();
    await writeRinalmo(
      a,
      model,
      read.tokens,
      read.records.map((r) => r.name),
      output,
      { model: loaded.dir },
    );
    return;
  }
  if (!(loaded.model instanceof HelmModel)) {
    loaded.model.dispose();
    throw new UsageError(`--model: ${loaded.dir} holds a ${loaded.config.model.kind} model, which embed does not know`);
  }
  await embedHelm(a, input, output, loaded as { model: HelmModel; config: CheckpointConfig; dir: string });
}

/** A RiNALMo encoder shaped like --weights (or --config), with its weights loaded strictly. */
async function rinalmoFromWeights(a: Args): Promise<RinalmoModel> {
  const path = a.weights!;
  const layout = a.layout as RinalmoLayout | 'auto';
  const source = await fileSource(path);
  let inferred;
  try {
    inferred = inferRinalmoConfig(await readSafetensorsIndex(source), layout);
  } catch (err) {
    throw new UsageError(`--weights: ${(err as Error).message}`);
  } finally {
    await source.close();
  }
  const base =
    a.config === undefined
      ? { dim: inferred.dim, layers: inferred.layers, ffnDim: inferred.ffnDim, heads: inferred.heads ?? 20 }
      : namedConfig(a.config);
  const config = { ...base, mlmHead: inferred.mlmHead, ...(a.heads !== undefined ? { heads: a.heads } : {}) };
  if (config.dim % config.heads !== 0 || (config.dim / config.heads) % 2 !== 0) {
    throw new UsageError(
      `${config.heads} heads do not fit width ${config.dim} (the head width must be whole and even for RoPE); pass ` +
        `--heads`,
    );
  }
  let model: RinalmoModel;
  try {
    model = new RinalmoModel(config);
  } catch (err) {
    throw new UsageError(`--config: ${(err as Error).message}`);
  }
  try {
    await loadRinalmoFile(model, path, { layout });
  } catch (err) {
    model.dispose();
    throw new UsageError((err as Error).message);
  }
  return model;
}

/** --config: an official size or a JSON file of RinalmoConfig fields. */
function namedConfig(value: string): Partial<RinalmoConfig> & Pick<RinalmoConfig, 'dim' | 'layers' | 'heads'> {
  if ((RINALMO_SIZES as readonly string[]).includes(value))
    return RINALMO_CONFIGS[value as (typeof RINALMO_SIZES)[number]];
  if (!value.endsWith('.json'))
    throw new UsageError(`--config must be one of ${RINALMO_SIZES.join(', ')} or a .json file, got "${value}"`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(value, 'utf8'));
  } catch (err) {
    throw new UsageError(`--config: cannot read ${value}: ${(err as Error).message}`);
  }
  const c = parsed as Record<string, unknown>;
  if (typeof c !== 'object' || c === null || !['dim', 'layers', 'heads'].every((k) => Number.isInteger(c[k]))) {
    throw new UsageError(`--config: ${value} must be a JSON object with integer "dim", "layers" and "heads"`);
  }
  return c as unknown as RinalmoConfig;
}

/** Embeds with a RiNALMo model, writes "mean" (and "representation"), the ids in the metadata; disposes the model. */
async function writeRinalmo(
  a: Args,
  model: RinalmoModel,
  tokens: Int32Array[],
  ids: string[],
  output: string,
  origin: Record<string, string>,
): Promise<void> {
  try {
    const longest = Math.max(...tokens.map((t) => t.length));
    if (longest > 1024)
      process.stderr.write(
        `warning: the longest input has ${longest} tokens; RiNALMo was pre-trained on at most 1,024 (1,022 ` +
          `nucleotides)\n`,
      );
    const c = model.cfg;
    process.stderr.write(
      `model: RiNALMo ${c.layers} blocks, d ${c.dim}, ${c.heads} heads; embedding ${ids.length} sequences…\n`,
    );
    let progress: Progress | undefined;
    const e = await embedRinalmo(model, tokens, {
      batchSize: a.batch,
      perToken: a['per-token'],
      onProgress(done, total) {
        progress ??= new Progress({ total, unit: 'sequence', every: 64 });
        progress.update(done, 0, '');
      },
    });
    progress?.finish();
    const N = ids.length;
    const entries: [string, TensorToWrite][] = [['mean', { shape: [N, e.dim], values: async () => e.mean }]];
    if (e.representation)
      entries.push(['representation', { shape: [N, e.maxLength, e.dim], values: async () => e.representation! }]);
    const metadata = {
      ids: JSON.stringify(ids),
      ...origin,
      config: JSON.stringify({ dim: c.dim, layers: c.layers, heads: c.heads, ffnDim: c.ffnDim }),
      pooling: 'mean over each sequence’s tokens, <cls> and <eos> included, pads excluded; final LayerNorm output',
    };
    await writeSafetensorsFile(output, entries, { metadata });
    process.stderr.write(
      `wrote ${output}: mean [${N}, ${e.dim}]${
        e.representation ? `, representation [${N}, ${e.maxLength}, ${e.dim}]` : ''
      }\n`,
    );
  } finally {
    model.dispose();
  }
}

async function embedHelm(
  a: Args,
  input: string,
  output: string,
  loaded: { model: HelmModel; config: CheckpointConfig; dir: string },
): Promise<void> {
  const { model, config, dir } = loaded;
  const records = (() => {
    try {
      return readSequences(input, { column: a.column });
    } catch (err) {
      model.dispose();
      throw err;
    }
  })();
  const L = model.cfg.layers;
  if (a.layer < -1 || a.layer > L)
    throw new UsageError(`--layer must be in -1..${L} for this ${L}-layer model, got ${a.layer}`);
  const ids = encodeCodons(records);
  ids.forEach((s, i) => {
    if (s.length > model.cfg.maxPositions)
      throw new UsageError(
        `${input}: ${records[i]!.name} has ${s.length - 2} codons; the model takes at ` +
          `most ${model.cfg.maxPositions - 2}`,
      );
  });
  warnUntrainedPositions(ids, config);
  process.stderr.write(`model: ${dir}; embedding ${records.length} sequences at layer ${a.layer}…\n`);
  const e = await embed(model, ids, { layer: a.layer, batchSize: a.batch, perToken: a['per-token'] });
  const N = records.length;
  const D = e.dim;
  const tensors: [string, Tensor][] = [
    ['mean', T.tensor(e.mean, { shape: [N, D], device: 'cpu' })],
    ['cls', T.tensor(e.cls, { shape: [N, D], device: 'cpu' })],
    ...(e.perToken ?? []).map((t, i): [string, Tensor] => [
      `tokens.${i}`,
      T.tensor(t, { shape: [t.length / D, D], device: 'cpu' }),
    ]),
  ];
  await saveCheckpoint(output, tensors, {
    names: JSON.stringify(records.map((r) => r.name)),
    layer: String(a.layer),
    model: dir,
    pooling: 'mean over codon positions; cls at position 0',
  });
  for (const [, t] of tensors) t.dispose();
  process.stderr.write(`wrote ${output}: mean, cls [${N}, ${D}]${e.perToken ? `, tokens.0..${N - 1}` : ''}\n`);
  model.dispose();
}
