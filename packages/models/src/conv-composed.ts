/**
 * The heads' convolution-family ops composed from existing tensor ops (shifted slices → Linear
 * → sum; mean/rsqrt instance norm; relu/exp ELU; broadcast-added halves for the pairwise Linear).
 * A stop-gap until the dedicated conv / instance-norm / ELU / pairwise kernels (branch `conv`)
 * are merged; correct (checked against PyTorch by rinalmo-heads.test.ts) but slower: a k×k conv
 * costs k² matmuls and copies.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
function padAxis(x: Tensor, axis: number, p: number): Tensor {
  if (p === 0) return x;
  const shape = [...x.shape]; shape[axis] = p;
  return T.concat([T.zeros(shape), x, T.zeros(shape)], axis);
}
/** 'same' convolution, stride 1, odd k: x [B, H, W, Cin], w [Cout, Cin, k, k] → [B, H, W, Cout]. */
export function conv2d(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const [, H, W] = x.shape as number[]; const k = w.shape[2]!; const p = (k - 1) / 2;
  const xp = padAxis(padAxis(x, 1, p), 2, p);
  let out: Tensor | null = null;
  for (let di = 0; di < k; di++) for (let dj = 0; dj < k; dj++) {
    const wk = T.contiguous(T.narrow(T.narrow(w, 2, di, 1), 3, dj, 1)).reshape([w.shape[0]!, w.shape[1]!]);
    const term = T.linear(T.contiguous(T.narrow(T.narrow(xp, 1, di, H!), 2, dj, W!)), wk);
    out = out ? T.add(out, term) : term;
  }
  return b ? T.add(out!, b) : out!;
}
/** 'same' convolution, stride 1, odd k, no bias: x [B, L, Cin], w [Cout, Cin, k] → [B, L, Cout]. */
export function conv1d(x: Tensor, w: Tensor): Tensor {
  const L = x.shape[1]!; const k = w.shape[2]!; const p = (k - 1) / 2;
  const xp = padAxis(x, 1, p);
  let out: Tensor | null = null;
  for (let d = 0; d < k; d++) {
    const wk = T.contiguous(T.narrow(w, 2, d, 1)).reshape([w.shape[0]!, w.shape[1]!]);
    const term = T.linear(T.contiguous(T.narrow(xp, 1, d, L)), wk);
    out = out ? T.add(out, term) : term;
  }
  return out!;
}
/** Normalises each channel over the spatial axes (biased variance, no affine). */
export function instanceNorm(x: Tensor, eps: number): Tensor {
  const axes = x.rank === 4 ? [1, 2] : [1];
  const c = T.sub(x, T.mean(x, axes, true));
  return T.mul(c, T.rsqrt(T.add(T.mean(T.square(c), axes, true), eps)));
}
/** ELU(x) = x for x > 0, e^x − 1 otherwise. */
export const elu = (x: Tensor) => T.add(T.relu(x), T.sub(T.exp(T.minimum(x, 0)), 1));
/** Linear(2d → C) of [x_i ; x_j] for every pair: W[:, :d]·x_i + W[:, d:]·x_j + b, broadcast to [B, L, L, C]. */
export function pairwiseLinear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const d = x.shape[2]!;
  const a = T.linear(x, T.contiguous(T.narrow(w, 1, 0, d)));
  const c = T.linear(x, T.contiguous(T.narrow(w, 1, d, d)), b);
  return T.add(a.unsqueeze(2), c.unsqueeze(1));
}
