/**
 * Instance norm and the pairwise Linear of the heads, composed from existing tensor ops
 * (mean/rsqrt; two half-Linears broadcast-added). A stop-gap until their dedicated
 * kernels (branch `conv`) are merged; correct (checked against PyTorch by rinalmo-heads.test.ts)
 * but with more passes over memory.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';

/** Normalises each channel over the spatial axes (biased variance, no affine). */
export function instanceNorm(x: Tensor, eps: number): Tensor {
  const axes = x.rank === 4 ? [1, 2] : [1];
  const c = T.sub(x, T.mean(x, axes, true));
  return T.mul(c, T.rsqrt(T.add(T.mean(T.square(c), axes, true), eps)));
}
/** Linear(2d → C) of [x_i ; x_j] for every pair: W[:, :d]·x_i + W[:, d:]·x_j + b, broadcast to [B, L, L, C]. */
export function pairwiseLinear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const d = x.shape[2]!;
  const a = T.linear(x, T.contiguous(T.narrow(w, 1, 0, d)));
  const c = T.linear(x, T.contiguous(T.narrow(w, 1, d, d)), b);
  return T.add(a.unsqueeze(2), c.unsqueeze(1));
}
