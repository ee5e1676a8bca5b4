/**
 * RiNALMo embeddings: the final representation of each sequence, mean-pooled over its tokens
 * (<cls> and <eos> included, pads not) and optionally kept per token. Sequences are batched by
 * length, so little is padded; the result is in input order and does not depend on the batching
 * (padded keys are masked, pad rows are zero).
 */
import * as T from '@rnagrad/tensor';
import { noGrad } from '@rnagrad/autograd';
import { RINALMO_TOKENS, type RinalmoModel } from './rinalmo.js';

export interface RinalmoEmbedOptions {
  /** Sequences per forward pass (default 16). */
  batchSize?: number;
  /** Also return every token's representation, [N, maxLength, d] with zero rows past each sequence. */
  perToken?: boolean;
  onProgress?(done: number, total: number): void;
}

export interface RinalmoEmbeddings {
  dim: number;
  /** Tokens of the longest sequence (<cls> and <eos> included). */
  maxLength: number;
  /** [N, d]: mean over each sequence's tokens. */
  mean: Float32Array;
  /** [N, maxLength, d] with `perToken`. */
  representation?: Float32Array;
}

/** Per-token output is refused beyond this many floats (4 GiB): embed fewer sequences per call. */
const MAX_PER_TOKEN_FLOATS = 2 ** 30;

/** Embeds token sequences (official alphabet, each <cls> … <eos>) with `model` in eval mode; its mode is restored. */
export async function embedRinalmo(
  model: RinalmoModel,
  seqs: readonly Int32Array[],
  opts: RinalmoEmbedOptions = {},
): Promise<RinalmoEmbeddings> {
  const batchSize = opts.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`embedRinalmo: batchSize must be a positive integer, got ${batchSize}`);
  const d = model.cfg.dim;
  const N = seqs.length;
  const maxLength = Math.max(0, ...seqs.map((s) => s.length));
  if (opts.perToken && N * maxLength * d > MAX_PER_TOKEN_FLOATS) {
    throw new RangeError(
      `embedRinalmo: per-token output would hold ${N} × ${maxLength} × ${d} floats (over 4 GiB); embed fewer or ` +
        `shorter sequences per call`,
    );
  }
  const mean = new Float32Array(N * d);
  const representation = opts.perToken ? new Float32Array(N * maxLength * d) : undefined;
  const order = [...seqs.keys()].sort((a, b) => seqs[a]!.length - seqs[b]!.length);
  const wasTraining = model.training;
  model.eval();
  try {
    for (let start = 0; start < N; start += batchSize) {
      const rows = order.slice(start, start + batchSize);
      const L = Math.max(...rows.map((i) => seqs[i]!.length));
      const ids = new Int32Array(rows.length * L).fill(RINALMO_TOKENS.pad);
      rows.forEach((i, r) => ids.set(seqs[i]!, r * L));
      const h = noGrad(() =>
        T.tidy(() => model.forward(T.tensor(ids, { shape: [rows.length, L], dtype: 'i32' })).representation),
      );
      const values = (await h.data()) as Float32Array;
      h.dispose();
      rows.forEach((i, r) => {
        const n = seqs[i]!.length;
        const sums = new Float64Array(d);
        for (let t = 0; t < n; t++) for (let k = 0; k < d; k++) sums[k]! += values[(r * L + t) * d + k]!;
        for (let k = 0; k < d; k++) mean[i * d + k] = sums[k]! / n;
        representation?.set(values.subarray(r * L * d, (r * L + n) * d), i * maxLength * d);
      });
      opts.onProgress?.(Math.min(N, start + batchSize), N);
    }
  } finally {
    model.train(wasTraining);
  }
  return { dim: d, maxLength, mean, representation };
}
