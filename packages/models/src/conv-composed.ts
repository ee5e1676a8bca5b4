/**
 * The secondary-structure head's pairwise Linear composed from existing tensor ops (two
 * half-Linears broadcast-added; the [L, L, 2d] concatenation is never built). A stop-gap until
 * the dedicated kernel (branch `conv`) is merged; checked against PyTorch by rinalmo-heads.test.ts.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';

/** Linear(2d → C) of [x_i ; x_j] for every pair: W[:, :d]·x_i + W[:, d:]·x_j + b, broadcast to [B, L, L, C]. */
export function pairwiseLinear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const d = x.shape[2]!;
  const a = T.linear(x, T.contiguous(T.narrow(w, 1, 0, d)));
  const c = T.linear(x, T.contiguous(T.narrow(w, 1, d, d)), b);
  return T.add(a.unsqueeze(2), c.unsqueeze(1));
}
