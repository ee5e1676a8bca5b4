/**
 * RiNALMo checkpoints in and out, in the two layouts that exist in the wild (models.md B5, E):
 * - official: the `RiNALMo` state dict, with the flash module names (`mh_attn.Wqkv`) or the
 *   non-flash ones (`mh_attn.mh_attn.to_q/to_k/to_v/out_proj`), bare or under a fine-tuning
 *   wrapper's prefix (`lm.`, `rinalmo.`), possibly with a task head (`pred_head.*`), `threshold`
 *   and target scalers (`scaler.*`), which are returned aside;
 * - multimolecule: its renamed keys under `model.` (or the older `rinalmo.`), q/k/v split, β stored
 *   as `intermediate.bias` [1], the decoder bias twice (`lm_head.bias`), and embedding/decoder rows
 *   in its own 26- or 28-token vocabulary, re-ordered to the official 22 here.
 * Loading is strict and all-or-nothing: every problem is collected into one error naming the file,
 * and nothing is written to the model (nor any GPU buffer made) before the whole file checks out.
 */
import * as T from '@rnagrad/tensor';
import { RINALMO_VOCAB } from '@rnagrad/tokenizers';
import type { RinalmoModel } from './rinalmo.js';
import {
  type ByteSource,
  FLOAT_DTYPES,
  type SafetensorsEntry,
  type SafetensorsIndex,
  type TensorToWrite,
  readSafetensorsIndex,
  readSafetensorsTensor,
} from './safetensors-stream.js';

export type RinalmoLayout = 'official' | 'multimolecule';

/** multimolecule's RnaTokenizer vocabulary since 2026-05 (28 tokens). */
// prettier-ignore
export const MULTIMOLECULE_VOCAB = Object.freeze([
  '<pad>', '<cls>', '<eos>', '<unk>', '<mask>', '<null>',
  'A', 'C', 'G', 'U', 'N', 'R', 'Y', 'S', 'W', 'K', 'M', 'B', 'D', 'H', 'V', 'I', 'X', '|', '.', '*', '-', '?',
]);
/** Its older 26-token vocabulary (2024-09 → 2026-05, the `vocab.txt` of files from that time). */
// prettier-ignore
export const MULTIMOLECULE_VOCAB_26 = Object.freeze([
  '<pad>', '<cls>', '<eos>', '<unk>', '<mask>', '<null>',
  'A', 'C', 'G', 'U', 'N', 'R', 'Y', 'S', 'W', 'K', 'M', 'B', 'D', 'H', 'V', '.', 'X', '*', '-', 'I',
]);

/** How a file names the weights. */
export interface RinalmoKeyLayout {
  layout: RinalmoLayout;
  /** '' | 'lm.' | 'rinalmo.' (official); 'model.' | 'rinalmo.' (multimolecule). */
  prefix: string;
  /** Official non-flash names `mh_attn.mh_attn.to_q/to_k/to_v` (multimolecule always splits q/k/v). */
  splitAttention: boolean;
}

const OFFICIAL_KEY =
  /^(.*?)(?:transformer\.blocks\.\d+\.|transformer\.final_layer_norm\.|embedding\.weight$|lm_mask_head\.)/;
const MM_KEY = /^(.*?)(?:encoder\.layer\.\d+\.|encoder\.layer_norm\.|embeddings\.word_embeddings\.)/;
/** Keys of fine-tuning wrappers that are not part of the encoder: returned aside, never dropped. */
const ASIDE_KEY = /^(?:pred_head\.|ss_head\.|scaler\.|threshold$)/;

/** Works out the layout, prefix and attention naming from the key names (or checks a forced layout). */
export function detectRinalmoLayout(
  names: Iterable<string>,
  layout: RinalmoLayout | 'auto' = 'auto',
  source = 'checkpoint',
): RinalmoKeyLayout {
  const keys = [...names].filter((k) => !ASIDE_KEY.test(k));
  const prefixes = (pattern: RegExp) => new Set(keys.flatMap((k) => pattern.exec(k)?.[1] ?? []));
  const official = prefixes(OFFICIAL_KEY);
  const mm = prefixes(MM_KEY);
  let chosen: RinalmoLayout;
  if (layout !== 'auto') chosen = layout;
  else if (official.size && !mm.size) chosen = 'official';
  else if (mm.size && !official.size) chosen = 'multimolecule';
  else if (!official.size)
    throw new Error(
      `${source}: no RiNALMo weights found (neither official "transformer.blocks.*" nor multimolecule ` +
        `"encoder.layer.*" keys)`,
    );
  else throw new Error(`${source}: holds both official and multimolecule RiNALMo keys; pass the layout explicitly`);
  const found = chosen === 'official' ? official : mm;
  if (found.size === 0) throw new Error(`${source}: no ${chosen} RiNALMo keys found (is it the other layout?)`);
  if (found.size > 1)
    throw new Error(
      `${source}: RiNALMo keys under several prefixes: ${[...found].map((p) => JSON.stringify(p)).join(', ')}`,
    );
  const prefix = [...found][0]!;
  return {
    layout: chosen,
    prefix,
    splitAttention: chosen === 'multimolecule' || keys.some((k) => k.includes('.mh_attn.mh_attn.')),
  };
}

/** The official → multimolecule key renames of its converter, in order (models.md B5). */
const MM_RENAMES: [string, string][] = [
  ['embedding', 'model.embeddings.word_embeddings'],
  ['transformer', 'model'],
  ['blocks', 'encoder.layer'],
  ['mh_attn', 'attention'],
  ['attn_layer_norm', 'attention.layer_norm'],
  ['out_proj', 'output.dense'],
  ['out_layer_norm', 'layer_norm'],
  ['transition.0', 'intermediate'],
  ['transition.2', 'output.dense'],
  ['final_layer_norm', 'encoder.layer_norm'],
  ['lm_mask_head.linear1', 'lm_head.transform.dense'],
  ['lm_mask_head.layer_norm', 'lm_head.transform.layer_norm'],
  ['lm_mask_head.linear2', 'lm_head.decoder'],
  ['beta', 'bias'],
];

/** A model parameter's file key(s) under a layout. Wqkv becomes three keys (q, k, v rows) when split. */
function fileKeys(param: string, kl: RinalmoKeyLayout): string[] {
  const wqkv = /^(transformer\.blocks\.\d+\.mh_attn\.)Wqkv\.weight$/.exec(param);
  if (kl.layout === 'official') {
    if (!kl.splitAttention) return [kl.prefix + param];
    if (wqkv) return ['q', 'k', 'v'].map((p) => `${kl.prefix}${wqkv[1]}mh_attn.to_${p}.weight`);
    return [kl.prefix + param.replace('.mh_attn.out_proj.', '.mh_attn.mh_attn.out_proj.')];
  }
  let key = param;
  for (const [from, to] of MM_RENAMES) key = key.replace(from, to);
  if (key.startsWith('model.')) key = kl.prefix + key.slice('model.'.length);
  if (wqkv) return ['query', 'key', 'value'].map((p) => key.replace('Wqkv', `self.${p}`));
  return [key];
}

/** Parameters whose rows follow the vocabulary. */
const VOCAB_ROWS = new Set(['embedding.weight', 'lm_mask_head.linear2.weight', 'lm_mask_head.linear2.bias']);

/** For each official token id, its row in `vocab` (multimolecule writes U where the official alphabet has T). */
function officialRows(vocab: readonly string[], source: string): number[] {
  return RINALMO_VOCAB.map((token) => {
    const row = vocab.indexOf(token === 'T' ? 'U' : token);
    if (row < 0)
      throw new Error(
        `${source}: the checkpoint's vocabulary has no "${token === 'T' ? 'U' : token}" (needed for official token ` +
          `"${token}")`,
      );
    return row;
  });
}

function multimoleculeVocab(
  rows: number,
  metadata: Record<string, string>,
  given: readonly string[] | undefined,
  source: string,
): readonly string[] {
  let vocab = given;
  if (!vocab && metadata.vocab) {
    try {
      vocab = JSON.parse(metadata.vocab) as string[];
    } catch {
      throw new Error(`${source}: metadata "vocab" is not a JSON list of tokens`);
    }
  }
  vocab ??=
    rows === MULTIMOLECULE_VOCAB.length
      ? MULTIMOLECULE_VOCAB
      : rows === MULTIMOLECULE_VOCAB_26.length
        ? MULTIMOLECULE_VOCAB_26
        : undefined;
  if (!vocab)
    throw new Error(
      `${source}: a ${rows}-row multimolecule vocabulary is neither the 26- nor the 28-token one; pass its ` +
        `vocab.txt as \`vocab\``,
    );
  if (vocab.length !== rows)
    throw new Error(`${source}: the vocabulary has ${vocab.length} tokens but the embedding has ${rows} rows`);
  return vocab;
}

export interface RinalmoLoadOptions {
  /** Default 'auto' (from the key names). */
  layout?: RinalmoLayout | 'auto';
  /** Read every tensor once more before loading and refuse NaN/±inf values. */
  checkFinite?: boolean;
  /** multimolecule vocabulary (its vocab.txt) when it is neither of the two known ones. */
  vocab?: readonly string[];
}

export interface RinalmoLoadReport {
  source: string;
  keys: RinalmoKeyLayout;
  /** File dtypes and how many tensors had each. */
  dtypes: Record<string, number>;
  /** Checked and not loaded: RoPE `inv_freq` buffers (equal to the recomputed ones), the duplicate `lm_head.bias`. */
  verified: string[];
  /** Task heads, `threshold`, scalers: not part of the encoder, returned as values. */
  aside: Map<string, Float32Array | Int32Array>;
  /** multimolecule vocabulary rows that have no official token (dropped). */
  droppedVocabRows: string[];
}

interface ParamPlan {
  param: T.Tensor;
  keys: string[];
  assemble(parts: Float32Array[]): Float32Array;
}

const LIST_LIMIT = 12;
const listed = (items: string[]) =>
  items.slice(0, LIST_LIMIT).join(', ') + (items.length > LIST_LIMIT ? ` … and ${items.length - LIST_LIMIT} more` : '');

/**
 * Loads a RiNALMo checkpoint into `model` from `source`, all or nothing. The file is read twice at
 * most, one tensor at a time: a validation pass (names, shapes, dtypes, buffers; all values too
 * with `checkFinite`), then the upload pass.
 */
export async function loadRinalmoWeights(
  model: RinalmoModel,
  source: ByteSource,
  opts: RinalmoLoadOptions = {},
): Promise<RinalmoLoadReport> {
  const index = await readSafetensorsIndex(source);
  const keys = detectRinalmoLayout(index.entries.keys(), opts.layout ?? 'auto', source.name);
  const where =
    `${keys.layout} layout${keys.prefix ? `, prefix "${keys.prefix}"` : ''}` +
    `${keys.layout === 'official' && keys.splitAttention ? ', non-flash attention names' : ''}`;
  const problems = {
    missing: [] as string[],
    unexpected: [] as string[],
    shape: [] as string[],
    dtype: [] as string[],
    value: [] as string[],
  };
  const consumed = new Set<string>();
  const report: RinalmoLoadReport = {
    source: source.name,
    keys,
    dtypes: {},
    verified: [],
    aside: new Map(),
    droppedVocabRows: [],
  };
  for (const e of index.entries.values()) report.dtypes[e.dtype] = (report.dtypes[e.dtype] ?? 0) + 1;

  // Vocabulary rows: the official order directly, or picked out of multimolecule's table.
  let rows: number[] | null = null;
  if (keys.layout === 'multimolecule') {
    const embeddingKey = fileKeys('embedding.weight', keys)[0]!;
    const table = index.entries.get(embeddingKey);
    if (table && table.shape.length === 2) {
      const vocab = multimoleculeVocab(table.shape[0]!, index.metadata, opts.vocab, source.name);
      rows = officialRows(vocab, source.name);
      report.droppedVocabRows = vocab.filter((_, i) => !rows!.includes(i));
    }
  }

  const plans: ParamPlan[] = [];
  for (const [name, param] of model.namedParameters()) {
    const names = fileKeys(name, keys);
    const split = names.length > 1;
    const pick = rows && VOCAB_ROWS.has(name) ? rows : null;
    const width = param.shape.slice(1).reduce((a, b) => a * b, 1);
    const want = (e: SafetensorsEntry) =>
      split
        ? [param.shape[0]! / 3, ...param.shape.slice(1)]
        : pick
          ? [e.shape[0]!, ...param.shape.slice(1)]
          : [...param.shape];
    let ok = true;
    for (const key of names) {
      const e = index.entries.get(key);
      consumed.add(key);
      if (!e) {
        problems.missing.push(key);
        ok = false;
        continue;
      }
      const expected = want(e);
      if (e.shape.join() !== expected.join() || (pick && e.shape[0]! <= Math.max(...pick))) {
        problems.shape.push(
          `${key} is [${e.shape.join(', ')}], model needs ` +
            `[${pick ? 'vocab rows, ' + param.shape.slice(1).join(', ') : expected.join(', ')}]`,
        );
        ok = false;
      }
      if (!FLOAT_DTYPES.includes(e.dtype)) {
        problems.dtype.push(`${key} is ${e.dtype} (needs F64, F32, F16 or BF16)`);
        ok = false;
      }
    }
    if (!ok) continue;
    const assemble = split
      ? (parts: Float32Array[]) => {
          const out = new Float32Array(param.size);
          parts.forEach((p, i) => out.set(p, i * p.length));
          return out;
        }
      : pick
        ? ([table]: Float32Array[]) => {
            const out = new Float32Array(param.size);
            pick.forEach((row, id) => out.set(table!.subarray(row * width, (row + 1) * width), id * width));
            return out;
          }
        : ([values]: Float32Array[]) => values!;
    plans.push({ param, keys: names, assemble });
  }

  // Everything else is a known buffer (verified), a head kept aside, or unexpected.
  const headDim = model.cfg.dim / model.cfg.heads;
  const decoderBias = fileKeys('lm_mask_head.linear2.bias', keys)[0]!;
  for (const e of index.entries.values()) {
    if (consumed.has(e.name)) continue;
    const block = /(?:blocks|layer)\.(\d+)\./.exec(e.name);
    if (e.name.endsWith('inv_freq') && e.name.startsWith(keys.prefix) && block && Number(block[1]) < model.cfg.layers) {
      const problem = await checkInvFreq(source, e, headDim);
      if (problem) problems.value.push(problem);
      else report.verified.push(e.name);
    } else if (keys.layout === 'multimolecule' && e.name === 'lm_head.bias') {
      const dup = index.entries.get(decoderBias);
      const [a, b] =
        dup && FLOAT_DTYPES.includes(e.dtype)
          ? await Promise.all([readSafetensorsTensor(source, e), readSafetensorsTensor(source, dup)])
          : [null, null];
      if (!a || !b || a.length !== b.length || a.some((v, i) => !Object.is(v, b[i])))
        problems.value.push(`lm_head.bias differs from ${decoderBias} (they must be the same decoder bias)`);
      else report.verified.push(e.name);
    } else if (ASIDE_KEY.test(e.name) && (FLOAT_DTYPES.includes(e.dtype) || e.dtype === 'I32')) {
      report.aside.set(e.name, await readSafetensorsTensor(source, e));
    } else problems.unexpected.push(`${e.name} ${e.dtype} [${e.shape.join(', ')}]`);
  }

  if (opts.checkFinite) {
    for (const plan of plans) {
      for (const key of plan.keys) {
        const values = (await readSafetensorsTensor(source, index.entries.get(key)!)) as Float32Array;
        const bad = values.findIndex((v) => !Number.isFinite(v));
        if (bad >= 0)
          problems.value.push(
            `${key} has ${values.filter((v) => !Number.isFinite(v)).length} non-finite values (first ${values[bad]} ` +
              `at element ${bad})`,
          );
      }
    }
  }

  const lines = [
    problems.missing.length && `missing ${problems.missing.length}: ${listed(problems.missing)}`,
    problems.unexpected.length && `unexpected ${problems.unexpected.length}: ${listed(problems.unexpected)}`,
    problems.shape.length && `wrong shape: ${listed(problems.shape)}`,
    problems.dtype.length && `wrong dtype: ${listed(problems.dtype)}`,
    problems.value.length && `bad values: ${listed(problems.value)}`,
  ].filter(Boolean);
  if (lines.length) {
    throw new Error(
      `${source.name}: cannot load RiNALMo weights (${where}; model ${model.cfg.layers}×${model.cfg.dim}, ` +
        `${model.cfg.heads} heads); the model is unchanged:\n  ${lines.join('\n  ')}`,
    );
  }

  for (const plan of plans) {
    const parts: Float32Array[] = [];
    for (const key of plan.keys)
      parts.push((await readSafetensorsTensor(source, index.entries.get(key)!)) as Float32Array);
    const staged = T.tensor(plan.assemble(parts), { shape: plan.param.shape, device: plan.param.device });
    T.assign(plan.param, staged);
    staged.dispose();
  }
  return report;
}

/** inv_freq must be 10000^(−2i/headDim), i < headDim/2 (to the precision of its dtype). */
async function checkInvFreq(source: ByteSource, e: SafetensorsEntry, headDim: number): Promise<string | null> {
  if (!FLOAT_DTYPES.includes(e.dtype)) return `${e.name} is ${e.dtype}, not a float`;
  if (e.shape.join() !== String(headDim / 2))
    return (
      `${e.name} is [${e.shape.join(', ')}] but the model's head dim ${headDim} needs [${headDim / 2}] (wrong ` +
      `number of heads?)`
    );
  const values = await readSafetensorsTensor(source, e);
  const tol = e.dtype === 'F16' || e.dtype === 'BF16' ? 1e-2 : 1e-6;
  const bad = [...values].findIndex(
    (v, i) => !(Math.abs(v - 10000 ** ((-2 * i) / headDim)) <= tol * 10000 ** ((-2 * i) / headDim)),
  );
  return bad < 0
    ? null
    : `${e.name}[${bad}] = ${values[bad]} is not the recomputed RoPE frequency ${10000 ** ((-2 * bad) / headDim)}`;
}

/** The config a checkpoint implies: widths and depth from shapes, heads from `inv_freq` when present. */
export function inferRinalmoConfig(
  index: SafetensorsIndex,
  layout: RinalmoLayout | 'auto' = 'auto',
): { dim: number; layers: number; ffnDim: number; mlmHead: boolean; heads: number | null } {
  const keys = detectRinalmoLayout(index.entries.keys(), layout, index.source);
  const entry = (param: string) => index.entries.get(fileKeys(param, keys)[0]!);
  const embedding = entry('embedding.weight');
  const linear = entry('transformer.blocks.0.transition.0.linear.weight');
  if (!embedding || !linear)
    throw new Error(`${index.source}: cannot infer the RiNALMo config (no embedding or no block 0 SwiGLU weight)`);
  const blockOf = keys.layout === 'official' ? /transformer\.blocks\.(\d+)\./ : /encoder\.layer\.(\d+)\./;
  const layers = 1 + Math.max(...[...index.entries.keys()].map((k) => Number(blockOf.exec(k)?.[1] ?? -1)));
  const invFreq = [...index.entries.values()].find((e) => e.name.endsWith('inv_freq'));
  const dim = embedding.shape[1]!;
  return {
    dim,
    layers,
    ffnDim: linear.shape[0]!,
    mlmHead: entry('lm_mask_head.linear1.weight') !== undefined,
    heads: invFreq ? dim / (2 * invFreq.shape[0]!) : null,
  };
}

export interface RinalmoExportOptions {
  layout: RinalmoLayout;
  /** Default '' (official) or 'model.' (multimolecule). */
  prefix?: string;
  /** Official only: the non-flash names `mh_attn.mh_attn.to_q/to_k/to_v` (default false: `Wqkv`). */
  splitAttention?: boolean;
  /** multimolecule only: the vocabulary to expand the tables to (default the 28-token one). */
  vocab?: readonly string[];
}

/**
 * The model's weights named for a layout, each read from the GPU only when a writer asks for it
 * (`writeSafetensorsFile` in Node, `safetensorsBytes` anywhere). multimolecule tables get rows
 * for its extra tokens: `X` = mean of the A, C, G, U rows (as its converter does), the rest zero;
 * add `safetensorsMetadata(...)` so the vocabulary travels with the file.
 */
export function rinalmoExportEntries(model: RinalmoModel, opts: RinalmoExportOptions): [string, TensorToWrite][] {
  const kl: RinalmoKeyLayout = {
    layout: opts.layout,
    prefix: opts.prefix ?? (opts.layout === 'official' ? '' : 'model.'),
    splitAttention: opts.layout === 'multimolecule' || (opts.splitAttention ?? false),
  };
  const vocab = opts.vocab ?? MULTIMOLECULE_VOCAB;
  const out: [string, TensorToWrite][] = [];
  for (const [name, param] of model.namedParameters()) {
    const read = async () => (await param.data()) as Float32Array;
    const names = fileKeys(name, kl);
    if (names.length > 1) {
      const rowsEach = param.shape[0]! / names.length;
      const width = param.size / param.shape[0]!;
      names.forEach((key, j) =>
        out.push([
          key,
          {
            shape: [rowsEach, ...param.shape.slice(1)],
            values: async () => (await read()).slice(j * rowsEach * width, (j + 1) * rowsEach * width),
          },
        ]),
      );
    } else if (kl.layout === 'multimolecule' && VOCAB_ROWS.has(name)) {
      out.push([
        names[0]!,
        {
          shape: [vocab.length, ...param.shape.slice(1)],
          values: async () => expandRows(await read(), param.shape, vocab, name.endsWith('bias')),
        },
      ]);
    } else out.push([names[0]!, { shape: param.shape, values: read }]);
  }
  if (kl.layout === 'multimolecule' && model.lm_mask_head) {
    const bias = out.find(([k]) => k === 'lm_head.decoder.bias')![1];
    out.push(['lm_head.bias', bias]);
  }
  return out;
}

/** Metadata that lets a multimolecule export be read back without guessing its vocabulary. */
export function rinalmoExportMetadata(opts: RinalmoExportOptions): Record<string, string> {
  return opts.layout === 'multimolecule'
    ? { format: 'pt', vocab: JSON.stringify(opts.vocab ?? MULTIMOLECULE_VOCAB) }
    : { format: 'pt' };
}

function expandRows(
  table: Float32Array,
  shape: readonly number[],
  vocab: readonly string[],
  isBias: boolean,
): Float32Array {
  const width = shape.length > 1 ? shape[1]! : 1;
  const rows = officialRows(vocab, 'export');
  const out = new Float32Array(vocab.length * width);
  rows.forEach((row, id) => out.set(table.subarray(id * width, (id + 1) * width), row * width));
  const x = vocab.indexOf('X');
  if (x >= 0 && !isBias) {
    const nucleotides = ['A', 'C', 'G', 'T'].map((t) => RINALMO_VOCAB.indexOf(t as (typeof RINALMO_VOCAB)[number]));
    for (let c = 0; c < width; c++)
      out[x * width + c] = nucleotides.reduce((s, id) => s + table[id * width + c]!, 0) / 4;
  }
  return out;
}
