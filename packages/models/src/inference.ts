/**
 * Inference with HELM codon models: sampling from a causal model (temperature, top-k, top-p, a
 * codon prompt, stop at <eos>), per-sequence scores (log-likelihood for causal models,
 * pseudo-log-likelihood for masked ones) and hidden states pooled or per token. Browser-safe;
 * inputs are token ids as `CodonTokenizer.encode` gives them (<cls> codons <eos>).
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { noGrad } from '@rnagrad/autograd';
import { CODON_VOCAB, type SeededRandom, seededRandom, translateCds } from '@rnagrad/tokenizers';
import { CODON_TOKENS } from './data.js';
import type { HelmModel } from './helm.js';

export interface SamplingOptions {
  /** Divides the logits; 0 means greedy (always the most likely token). */
  temperature: number;
  /** Keep only the k most likely tokens (0: all). */
  topK: number;
  /** Keep the smallest set of most likely tokens whose mass reaches p (1: all). */
  topP: number;
}

export const SAMPLING_DEFAULTS: SamplingOptions = { temperature: 1, topK: 0, topP: 1 };

/**
 * The distribution a sampler draws from: softmax(logits / temperature) over `allowed` ids (all by
 * default), cut to the top k and then to the top-p nucleus, renormalised. Ties at the cut keep the
 * lower id, so the result is deterministic.
 */
export function samplingDistribution(
  logits: ArrayLike<number>,
  opts: Partial<SamplingOptions> = {},
  allowed?: readonly number[],
): Float64Array {
  const { temperature, topK, topP } = { ...SAMPLING_DEFAULTS, ...opts };
  if (!(temperature >= 0) || !Number.isFinite(temperature))
    throw new RangeError(`sampling: temperature must be ≥ 0, got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`sampling: topK must be an integer ≥ 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`sampling: topP must be in (0, 1], got ${topP}`);
  const ids = allowed ?? Array.from({ length: logits.length }, (_, i) => i);
  const ranked = [...ids].sort((a, b) => logits[b]! - logits[a]! || a - b);
  const probs = new Float64Array(logits.length);
  if (temperature === 0) {
    probs[ranked[0]!] = 1;
    return probs;
  }
  const kept = topK > 0 ? ranked.slice(0, topK) : ranked;
  const top = logits[kept[0]!]! / temperature;
  let total = 0;
  for (const id of kept) total += probs[id] = Math.exp(logits[id]! / temperature - top);
  let mass = 0;
  let cut = kept.length;
  for (let i = 0; i < kept.length; i++) {
    mass += probs[kept[i]!]! / total;
    if (mass >= topP - 1e-12) {
      cut = i + 1;
      break;
    }
  }
  for (const id of kept.slice(cut)) probs[id] = 0;
  const kept2 = kept.slice(0, cut).reduce((s, id) => s + probs[id]!, 0);
  for (const id of kept.slice(0, cut)) probs[id]! /= kept2;
  return probs;
}

/** Draws an index from a distribution (inverse CDF). */
export function sampleIndex(probs: ArrayLike<number>, rng: SeededRandom): number {
  const u = rng.next();
  let acc = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! <= 0) continue;
    acc += probs[i]!;
    last = i;
    if (u < acc) return i;
  }
  return last;
}

/** The tokens a generated coding sequence may contain: the 64 codons and <eos>. */
export const GENERATION_TOKENS: readonly number[] = [
  CODON_TOKENS.eos,
  ...Array.from({ length: 64 }, (_, i) => CODON_TOKENS.firstCodon + i),
];

export interface GenerateOptions extends SamplingOptions {
  /** Codon ids each sequence starts with (no <cls>); one prompt per sequence, or one for all. */
  prompts: Int32Array[];
  /** Sequences to generate. */
  count: number;
  /** Codons per sequence at most, prompt included. */
  maxCodons: number;
  seed: number;
  /** Called after each generation step with the number of sequences still running. */
  onStep?: (step: number, running: number) => void;
}

export interface GeneratedSequence {
  /** Codon ids, prompt included (no <cls>/<eos>). */
  ids: Int32Array;
  codons: string[];
  nucleotides: string;
  /** Translation up to (not including) the first in-frame stop codon. */
  protein: string;
  /** 'eos': the model ended it; 'length': it reached maxCodons or the model's position limit. */
  finished: 'eos' | 'length';
  /** Whether it ends with a stop codon (a complete CDS). */
  endsWithStop: boolean;
}

/** Describes codon ids as codons, nucleotides and protein. */
export function describeCodons(ids: Int32Array, finished: 'eos' | 'length'): GeneratedSequence {
  const codons = Array.from(ids, (id) => CODON_VOCAB[id]!);
  const nucleotides = codons.join('');
  const translated = translateCds(nucleotides);
  const stop = translated.indexOf('*');
  return {
    ids,
    codons,
    nucleotides,
    protein: stop < 0 ? translated : translated.slice(0, stop),
    finished,
    endsWithStop: translated.endsWith('*'),
  };
}

function assertCausal(model: HelmModel, what: string): void {
  if (model.cfg.objective !== 'clm')
    throw new Error(`${what} needs a causal (clm) model; this one is a masked LM (mlm)`);
}

/**
 * Samples `count` coding sequences from a causal model, token by token (the whole prefix is run
 * each step: no key/value cache yet). Only codons and <eos> are sampled.
 */
export async function generate(
  model: HelmModel,
  options: Partial<GenerateOptions> & { count: number },
): Promise<GeneratedSequence[]> {
  assertCausal(model, 'generate');
  const opts = { ...SAMPLING_DEFAULTS, prompts: [new Int32Array(0)], maxCodons: 256, seed: 0, ...options };
  if (!Number.isInteger(opts.count) || opts.count < 1)
    throw new RangeError(`generate: count must be an integer ≥ 1, got ${opts.count}`);
  if (opts.prompts.length !== 1 && opts.prompts.length !== opts.count)
    throw new RangeError(`generate: ${opts.prompts.length} prompts for ${opts.count} sequences`);
  const limit = Math.min(opts.maxCodons, model.cfg.maxPositions - 1);
  const rng = seededRandom(opts.seed);
  const rows = Array.from({ length: opts.count }, (_, i) => {
    const prompt = opts.prompts.length === 1 ? opts.prompts[0]! : opts.prompts[i]!;
    if (prompt.some((id) => id < CODON_TOKENS.firstCodon || id >= CODON_TOKENS.firstCodon + 64))
      throw new RangeError(`generate: prompt ${i + 1} holds a token that is not a codon`);
    if (prompt.length > limit)
      throw new RangeError(
        `generate: prompt ${i + 1} has ${prompt.length} codons, more than the ${limit} allowed (maxCodons / the ` +
          `model's maxPositions − 1)`,
      );
    return { tokens: [CODON_TOKENS.cls, ...prompt], done: null as GeneratedSequence['finished'] | null };
  });
  const V = model.cfg.vocabSize;
  let step = 0;
  model.eval();
  for (;;) {
    for (const r of rows) if (!r.done && r.tokens.length - 1 >= limit) r.done = 'length';
    const running = rows.filter((r) => !r.done);
    if (running.length === 0) break;
    const L = Math.max(...running.map((r) => r.tokens.length));
    const ids = new Int32Array(running.length * L).fill(CODON_TOKENS.pad);
    const mask = new Int32Array(running.length * L);
    const last = new Int32Array(running.length * V);
    running.forEach((r, b) => {
      ids.set(r.tokens, b * L);
      mask.fill(1, b * L, b * L + r.tokens.length);
      last.fill(r.tokens.length - 1, b * V, (b + 1) * V);
    });
    const logits = noGrad(() =>
      T.tidy(() => {
        const shape = [running.length, L];
        const all = model.forward(T.tensor(ids, { shape, dtype: 'i32' }), T.tensor(mask, { shape, dtype: 'i32' }));
        return T.gather(all, 1, T.tensor(last, { shape: [running.length, 1, V], dtype: 'i32' }));
      }),
    );
    const values = (await logits.data()) as Float32Array;
    logits.dispose();
    running.forEach((r, b) => {
      const probs = samplingDistribution(values.subarray(b * V, (b + 1) * V), opts, GENERATION_TOKENS);
      const next = sampleIndex(probs, rng);
      if (next === CODON_TOKENS.eos) r.done = 'eos';
      else r.tokens.push(next);
    });
    opts.onStep?.(++step, rows.filter((r) => !r.done).length);
  }
  return rows.map((r) => describeCodons(Int32Array.from(r.tokens.slice(1)), r.done!));
}

export interface ScoreResult {
  /** Σ log p (nats): causal — every token after <cls> given its prefix (codons and <eos>);
   *  masked — each codon with only itself masked (pseudo-log-likelihood). */
  logLikelihood: number;
  /** Tokens scored. */
  tokens: number;
  /** log p of each scored token, in order. */
  perToken: Float64Array;
}

function checkLengths(model: HelmModel, seqs: readonly Int32Array[], what: string): void {
  seqs.forEach((s, i) => {
    if (s.length > model.cfg.maxPositions)
      throw new RangeError(
        `${what}: sequence ${i + 1} has ${s.length} tokens, more than the model's maxPositions ` +
          `${model.cfg.maxPositions}`,
      );
    if (s.length < 2) throw new RangeError(`${what}: sequence ${i + 1} is empty`);
  });
}

/** Rows (sequences, or masked copies for a pseudo-log-likelihood) done of all, after each batch. */
export type ProgressCallback = (done: number, total: number) => void;

/** Runs `fn` on groups of at most `size` items of similar length; results come back in input order. */
async function inBatches<I extends { length: number }, R>(
  items: readonly I[],
  size: number,
  onProgress: ProgressCallback | undefined,
  fn: (group: I[]) => Promise<R[]>,
): Promise<R[]> {
  const order = items.map((_, i) => i).sort((a, b) => items[a]!.length - items[b]!.length);
  const out = new Array<R>(items.length);
  for (let s = 0; s < order.length; s += size) {
    const idx = order.slice(s, s + size);
    const results = await fn(idx.map((i) => items[i]!));
    idx.forEach((i, k) => (out[i] = results[k]!));
    onProgress?.(Math.min(s + size, order.length), order.length);
  }
  return out;
}

/** Pads rows of token ids into ids/mask tensors' host arrays. */
function padRows(rows: readonly ArrayLike<number>[]): { ids: Int32Array; mask: Int32Array; shape: [number, number] } {
  const L = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * L).fill(CODON_TOKENS.pad);
  const mask = new Int32Array(rows.length * L);
  rows.forEach((r, b) => {
    ids.set(r, b * L);
    mask.fill(1, b * L, b * L + r.length);
  });
  return { ids, mask, shape: [rows.length, L] };
}

/** log p(target) at each position: logits [B, L, V], targets i32 [B, L] → [B, L]. */
function targetLogProbs(logits: Tensor, targets: Int32Array, shape: [number, number]): Tensor {
  const index = T.tensor(targets, { shape: [...shape, 1], dtype: 'i32' });
  return T.gather(T.logSoftmax(logits, -1), 2, index).reshape(shape);
}

/**
 * Scores sequences (token ids with <cls>/<eos>): log-likelihood for a causal model, the
 * pseudo-log-likelihood (each codon masked alone, one row per codon) for a masked one.
 */
export async function score(
  model: HelmModel,
  seqs: readonly Int32Array[],
  opts: { batchSize?: number; onProgress?: ProgressCallback } = {},
): Promise<ScoreResult[]> {
  checkLengths(model, seqs, 'score');
  const batchSize = opts.batchSize ?? 16;
  model.eval();
  if (model.cfg.objective === 'clm') {
    return inBatches(seqs, batchSize, opts.onProgress, async (group) => {
      const { ids, mask, shape } = padRows(group);
      const targets = new Int32Array(ids.length);
      for (let i = 0; i + 1 < ids.length; i++) targets[i] = ids[i + 1]!;
      const lp = noGrad(() =>
        T.tidy(() =>
          targetLogProbs(
            model.forward(T.tensor(ids, { shape, dtype: 'i32' }), T.tensor(mask, { shape, dtype: 'i32' })),
            targets,
            shape,
          ),
        ),
      );
      const values = (await lp.data()) as Float32Array;
      lp.dispose();
      return group.map((s, b) => scoreOf(values.subarray(b * shape[1], b * shape[1] + s.length - 1)));
    });
  }
  // Masked LM: one row per codon position with that codon replaced by <mask>.
  const results: ScoreResult[] = [];
  const rowsPerSequence = seqs.map((s) => s.filter((id) => id >= CODON_TOKENS.firstCodon).length);
  const totalRows = rowsPerSequence.reduce((a, b) => a + b, 0);
  let rowsDone = 0;
  for (const s of seqs) {
    const positions = Array.from(s.keys()).filter((i) => s[i]! >= CODON_TOKENS.firstCodon);
    const perToken = new Float64Array(positions.length);
    for (let start = 0; start < positions.length; start += batchSize) {
      const chunk = positions.slice(start, start + batchSize);
      const rows = chunk.map((p) => Int32Array.from(s, (id, i) => (i === p ? CODON_TOKENS.mask : id)));
      const { ids, mask, shape } = padRows(rows);
      const targets = new Int32Array(ids.length);
      chunk.forEach((p, b) => (targets[b * shape[1] + p] = s[p]!));
      const lp = noGrad(() =>
        T.tidy(() =>
          targetLogProbs(
            model.forward(T.tensor(ids, { shape, dtype: 'i32' }), T.tensor(mask, { shape, dtype: 'i32' })),
            targets,
            shape,
          ),
        ),
      );
      const values = (await lp.data()) as Float32Array;
      lp.dispose();
      chunk.forEach((p, b) => (perToken[start + b] = values[b * shape[1] + p]!));
      rowsDone += chunk.length;
      opts.onProgress?.(rowsDone, totalRows);
    }
    results.push(scoreOf(perToken));
  }
  return results;
}

function scoreOf(values: ArrayLike<number>): ScoreResult {
  const perToken = Float64Array.from(values);
  return { logLikelihood: perToken.reduce((a, b) => a + b, 0), tokens: perToken.length, perToken };
}

export interface EmbedOptions {
  /** 0: embeddings, 1..layers: after that block, −1 (default): final, after ln_f. */
  layer?: number;
  batchSize?: number;
  /** Also return each sequence's per-token states [length, d] (all tokens, <cls>/<eos> included). */
  perToken?: boolean;
  onProgress?: ProgressCallback;
}

export interface Embeddings {
  /** [N, d]: mean over the codon positions (not <cls>, <eos> or padding). */
  mean: Float32Array;
  /** [N, d]: the state at <cls>. */
  cls: Float32Array;
  perToken?: Float32Array[];
  dim: number;
}

/** Hidden states of a layer for each sequence: pooled (mean, CLS) and optionally per token. */
export async function embed(
  model: HelmModel,
  seqs: readonly Int32Array[],
  opts: EmbedOptions = {},
): Promise<Embeddings> {
  checkLengths(model, seqs, 'embed');
  const D = model.cfg.dModel;
  model.eval();
  const rows = await inBatches(seqs, opts.batchSize ?? 16, opts.onProgress, async (group) => {
    const { ids, mask, shape } = padRows(group);
    const h = noGrad(() =>
      T.tidy(() =>
        model.hiddenStates(T.tensor(ids, { shape, dtype: 'i32' }), {
          attentionMask: T.tensor(mask, { shape, dtype: 'i32' }),
          layer: opts.layer,
        }),
      ),
    );
    const values = (await h.data()) as Float32Array;
    h.dispose();
    return group.map((s, b) => {
      const states = values.slice(b * shape[1] * D, (b * shape[1] + s.length) * D);
      const mean = new Float64Array(D);
      let n = 0;
      s.forEach((id, i) => {
        if (id < CODON_TOKENS.firstCodon && id !== CODON_TOKENS.unk) return; // codons and <unk> are sequence positions
        n++;
        for (let k = 0; k < D; k++) mean[k]! += states[i * D + k]!;
      });
      return { states, mean: Float32Array.from(mean, (v) => v / Math.max(1, n)), cls: states.slice(0, D) };
    });
  });
  const stack = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.length * D);
    parts.forEach((p, i) => out.set(p, i * D));
    return out;
  };
  return {
    mean: stack(rows.map((r) => r.mean)),
    cls: stack(rows.map((r) => r.cls)),
    perToken: opts.perToken ? rows.map((r) => r.states) : undefined,
    dim: D,
  };
}

/** A warning when sequences reach positions the model never trained (their embeddings are untrained). */
export function untrainedPositionsWarning(seqs: readonly Int32Array[], trainedPositions: number): string | null {
  const beyond = seqs.filter((s) => s.length > trainedPositions).length;
  if (!beyond) return null;
  const longest = Math.max(...seqs.map((s) => s.length));
  return (
    `${beyond} of ${seqs.length} sequences are longer than ${trainedPositions} tokens, the furthest position ` +
    `this model was trained on (the longest has ${longest}): past it, scores and embeddings use untrained position ` +
    `embeddings`
  );
}
