/** Shared test helpers: GPU/CPU tensor pairs with identical values, and closeness checks. */
import * as fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as assert from 'uvu/assert';
// The Node entry: init() gets its device through Dawn.
import * as T from '../src/node.js';

export const rt = await T.init({ quiet: true });

export interface Pair {
  g: T.Tensor;
  c: T.Tensor;
}

/** The same values on both devices (f32-rounded, so both start from identical inputs). */
export function pair(shape: readonly number[], values: ArrayLike<number>, dtype: T.DType = 'f32'): Pair {
  return {
    g: T.tensor(values, { shape, dtype, device: 'gpu' }),
    c: T.tensor(values, { shape, dtype, device: 'cpu' }),
  };
}

export function disposePairs(...pairs: Pair[]): void {
  for (const p of pairs) {
    p.g.dispose();
    p.c.dispose();
  }
}

/** Applies the same op to both halves of pairs. */
export function both(fn: (...xs: T.Tensor[]) => T.Tensor, ...pairs: Pair[]): Pair {
  return { g: fn(...pairs.map((p) => p.g)), c: fn(...pairs.map((p) => p.c)) };
}

export async function assertPairClose(p: Pair, what: string, rtol = 1e-5, atol = 1e-6): Promise<void> {
  assert.equal(p.g.shape, p.c.shape, `${what}: shapes differ`);
  assert.is(p.g.dtype, p.c.dtype, `${what}: dtypes differ`);
  const [g, c] = await Promise.all([p.g.dataF64(), p.c.dataF64()]);
  assertClose(g, c, what, rtol, atol);
}

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  rtol = 1e-5,
  atol = 1e-6,
): void {
  assert.is(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.unreachable(`${what}: element ${i} is ${a}, expected ${e} (|diff| ${Math.abs(a - e)})`);
    }
  }
}

/** Shapes of rank 0–4 with sizes 1–7 (odd sizes and size-1 dims are common), optionally with zeros. */
export const shapeArb = (opts: { maxRank?: number; allowEmpty?: boolean } = {}) =>
  fc.array(fc.integer({ min: opts.allowEmpty ? 0 : 1, max: 7 }), { minLength: 0, maxLength: opts.maxRank ?? 4 });

/** Values for a shape: floats in [-4, 4] unless a range is given. */
export function valuesFor(shape: readonly number[], seed: number, lo = -4, hi = 4, integers = false): number[] {
  let s = seed >>> 0 || 1;
  const n = shape.reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    return integers ? Math.floor(lo + u * (hi - lo + 1)) : lo + u * (hi - lo);
  });
}

/** Shape pairs that broadcast: b takes a suffix of a's dims with some set to 1. */
export const broadcastPairArb = fc
  .tuple(
    shapeArb(),
    fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    fc.integer({ min: 0, max: 4 }),
    fc.boolean(),
  )
  .map(([a, ones, drop, swap]) => {
    const b = a.slice(Math.min(drop, a.length)).map((s, i) => (ones[i] ? 1 : s));
    return swap ? [b, a] : [a, b];
  });

/**
 * A non-contiguous view of a fresh pair: transposed, sliced with a step, or a broadcast expand,
 * chosen by `kind`. Returns the view pair and the base pair to dispose.
 */
export function viewOf(base: Pair, kind: number): Pair {
  const x = base.c;
  if (x.rank >= 2 && kind % 3 === 0) return both((t) => T.transpose(t, 0, -1), base);
  if (x.rank >= 1 && kind % 3 === 1 && x.shape[0]! > 1) return both((t) => T.slice(t, 0, 0, undefined, 2), base);
  if (kind % 3 === 2) return both((t) => T.expand(T.unsqueeze(t, 0), [2, ...t.shape]), base);
  return both((t) => t.view(t.shape, t.strides), base);
}

export const fcOptions = { numRuns: 30 };

/** Central differences of `loss` with respect to every element of the CPU tensor `x` (float64 storage). */
export async function numericGrad(x: T.Tensor, loss: () => Promise<number>, h = 1e-5): Promise<Float64Array> {
  assert.is(x.device, 'cpu');
  const data = x.storage.data!;
  const out = new Float64Array(x.size);
  const offsets: number[] = [];
  // element offsets in row-major order of x's view
  const idx = new Array(x.rank).fill(0);
  for (let i = 0; i < x.size; i++) {
    offsets.push(x.offset + idx.reduce((a: number, v: number, d: number) => a + v * x.strides[d]!, 0));
    for (let d = x.rank - 1; d >= 0; d--) {
      if (++idx[d] < x.shape[d]!) break;
      idx[d] = 0;
    }
  }
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i]!;
    const keep = data[o]!;
    data[o] = keep + h;
    const plus = await loss();
    data[o] = keep - h;
    const minus = await loss();
    data[o] = keep;
    out[i] = (plus - minus) / (2 * h);
  }
  return out;
}

/** Σ w ⊙ y as a number (CPU). */
export async function weighted(y: T.Tensor, w: T.Tensor): Promise<number> {
  const [a, b] = await Promise.all([y.dataF64(), w.dataF64()]);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  y.dispose();
  return s;
}

/**
 * Runs the garbage collector and the finalizers it queues: handles that earlier test files dropped
 * without dispose() are released by a FinalizationRegistry at GC time, which would otherwise lower
 * a count of live tensors, or return buffers to the free lists, in the middle of a test that counts them.
 */
export async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
