/**
 * Tensor-side helpers of the row kernels (kernels-wgsl rows.ts): a dim moved last as a view, and
 * the contiguous fallback for views whose leading dims do not coalesce into the kernels' budget.
 */
import type { View } from '@rnagrad/kernels-wgsl';
import { clone } from './ops.js';
import { untracked } from './op.js';
import type { Tensor } from './tensor.js';

/** `t` viewed with `dim` moved last (rank-0 tensors become [1]). */
export function lastDimView(t: Tensor, dim: number): View {
  if (t.rank === 0) return { shape: [1], strides: [1], offset: t.offset };
  const order = [...t.shape.keys()].filter((d) => d !== dim).concat(dim);
  return { shape: order.map((d) => t.shape[d]!), strides: order.map((d) => t.strides[d]!), offset: t.offset };
}

export function viewOf(t: Tensor): View {
  return { shape: t.shape, strides: t.strides, offset: t.offset };
}

/**
 * Runs a row kernel on `views`; if the leading dims do not coalesce into the kernel's rank budget
 * the strided inputs are made contiguous first (rare: rank > 5 views).
 */
export function withContiguousFallback<T>(inputs: Tensor[], run: (xs: Tensor[]) => T): T {
  try {
    return run(inputs);
  } catch (err) {
    if (!(err instanceof RangeError) || !/contiguous first/.test(err.message)) throw err;
    const copies = untracked(() => inputs.map((x) => (x.isContiguous ? x : clone(x))));
    try {
      return run(copies);
    } finally {
      copies.forEach((x, k) => x !== inputs[k] && x.dispose());
    }
  }
}

/** Runs `fn` on contiguous versions of `ts` (untracked copies where needed, disposed after). */
export function withContiguous<R>(ts: Tensor[], fn: (cs: Tensor[]) => R): R {
  const cs = untracked(() => ts.map((t) => (t.isContiguous ? t : clone(t))));
  try {
    return fn(cs);
  } finally {
    cs.forEach((c, k) => c !== ts[k] && c.dispose());
  }
}
