/** Options of the attention kernels and the operand checks the GPU launchers and references share. */
import type { GpuOperand } from '../layout.js';
import { uniformFromCounter } from '../random.js';

export interface AttentionOptions {
  /** Multiplies q·k before the softmax; default 1/√headDim. */
  scale?: number;
  /** Key j of sequence b can only be attended by queries i ≥ j. */
  causal?: boolean;
  /** Dropout on the attention probabilities: rate p in [0, 1) and the counter-RNG stream (key, base). */
  dropout?: AttentionDropout | null;
}

/** Pair (bh, i, j) is dropped iff uniformFromCounter(key, base + (bh·L + i)·L + j) < p. */
export interface AttentionDropout {
  p: number;
  key: number;
  base: number;
}

/** The keep factor of pair (bh, i, j): 0 if dropped, 1/(1 − p) if kept (the float64 references use it). */
export function attentionDropoutFactor(d: AttentionDropout, L: number, bh: number, i: number, j: number): number {
  const counter = (d.base + Math.imul(Math.imul(bh, L) + i, L) + j) >>> 0;
  return uniformFromCounter(d.key, counter) < d.p ? 0 : 1 / (1 - d.p);
}

export interface Dims {
  B: number;
  H: number;
  L: number;
  D: number;
}

export function dimsOf(op: string, q: { shape: readonly number[] }, others: { shape: readonly number[] }[]): Dims {
  if (q.shape.length !== 4)
    throw new RangeError(`${op}: q must be [batch, heads, length, headDim], got [${q.shape.join(', ')}]`);
  for (const t of others) {
    if (t.shape.length !== 4 || t.shape.some((s, d) => s !== q.shape[d])) {
      throw new RangeError(`${op}: q [${q.shape.join(', ')}] and [${t.shape.join(', ')}] must have the same shape`);
    }
  }
  const [B, H, L, D] = q.shape as [number, number, number, number];
  if (D < 1) throw new RangeError(`${op}: headDim must be at least 1, got [${q.shape.join(', ')}]`);
  return { B, H, L, D };
}

export function checkMask(
  op: string,
  mask: { shape: readonly number[]; dtype: string } | null | undefined,
  dims: Dims,
): void {
  if (!mask) return;
  if (mask.shape.length !== 2 || mask.shape[0] !== dims.B || mask.shape[1] !== dims.L) {
    throw new RangeError(
      `${op}: keyPaddingMask must be [batch, length] = [${dims.B}, ${dims.L}], got [${mask.shape.join(', ')}]`,
    );
  }
  if (mask.dtype === 'f32')
    throw new TypeError(`${op}: keyPaddingMask must be i32 or bool (1 = token, 0 = padding), got f32`);
}

export function checkGpuOperand(op: string, name: string, t: GpuOperand): void {
  if (t.dtype !== 'f32') throw new TypeError(`${op}: ${name} must be f32, got ${t.dtype}`);
  if (t.shape[3]! > 1 && t.strides[3] !== 1)
    throw new RangeError(`${op}: ${name} must have a unit-stride head dim (make it contiguous first)`);
}

/** The dropout to apply, or null (none, or p = 0); throws on a rate outside [0, 1). */
export function dropoutOf(op: string, d: AttentionDropout | null | undefined): AttentionDropout | null {
  if (!d) return null;
  if (!(d.p >= 0 && d.p < 1)) throw new RangeError(`${op}: dropout rate must be in [0, 1), got ${d.p}`);
  return d.p > 0 ? d : null;
}
