/**
 * Inputs of the kernel cases, built from task parameters with the seeded generator: the parent
 * and each peer process build bit-identical arrays from the same parameters.
 */
import { normal, uniform } from './prng.js';
import type { AttentionShape, MatmulShape } from './ref.js';

export interface MatmulParams extends MatmulShape {
  seed: number;
  /** Flat output positions to report. */
  positions: number[];
}

export function matmulInputs(p: MatmulParams): { a: Float32Array; b: Float32Array } {
  return { a: uniform(p.batch * p.M * p.K, p.seed, -1, 1), b: uniform(p.batch * p.K * p.N, p.seed + 1, -1, 1) };
}

/** Stored shapes of A and B (what the engine is handed), and the output shape. */
export function matmulShapes(p: MatmulShape): { a: number[]; b: number[]; out: number[] } {
  const lead = p.batch > 1 ? [p.batch] : [];
  return {
    a: [...lead, ...(p.transA ? [p.K, p.M] : [p.M, p.K])],
    b: [...lead, ...(p.transB ? [p.N, p.K] : [p.K, p.N])],
    out: [...lead, p.M, p.N],
  };
}

export interface SoftmaxParams {
  R: number;
  C: number;
  seed: number;
  /** Whole rows to report. */
  rows: number[];
}

export function softmaxInput(p: SoftmaxParams): Float32Array {
  return uniform(p.R * p.C, p.seed, -6, 6);
}

export interface AttentionParams extends AttentionShape {
  seed: number;
  /** Also the gradients (dq, dk, dv) for the output gradient dOut. */
  grad: boolean;
  /** Flat rows (b·H + h)·L + i to report (sorted). */
  rows: number[];
}

export function attentionInputs(p: AttentionParams): {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  dOut: Float32Array;
} {
  const n = p.B * p.H * p.L * p.D;
  return { q: normal(n, p.seed), k: normal(n, p.seed + 1), v: normal(n, p.seed + 2), dOut: normal(n, p.seed + 3) };
}

/** Values of `data` at whole rows of width `width`. */
export function pickRows(data: ArrayLike<number>, rows: readonly number[], width: number): number[] {
  const out: number[] = [];
  for (const r of rows) for (let j = 0; j < width; j++) out.push(data[r * width + j]!);
  return out;
}

export function pick(data: ArrayLike<number>, positions: readonly number[]): number[] {
  return positions.map((p) => data[p]!);
}
