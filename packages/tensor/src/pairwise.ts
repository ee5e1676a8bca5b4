/**
 * Pair representations from a sequence [B, L, d], as RiNALMo's secondary-structure head builds
 * them: pair(i, j) = [x_i ; x_j], then Linear(2d → h).
 *
 * `outerConcat` materialises the [B, L, L, 2d] map; `pairwiseLinear` gives Linear(outerConcat(x))
 * without it: with weight = [W1 | W2] (each [h, d]), W·[x_i ; x_j] + b = (x W1ᵀ)_i + (x W2ᵀ + b)_j,
 * two [B, L, h] matmuls and one broadcast add — L× fewer multiply-adds, and no 2d-wide L×L
 * intermediate (at L = 512, d = 480 that is 1 GB in f32, over WebGPU's binding limit).
 * Both are composed of recorded ops, so autograd differentiates them with the existing rules.
 */
import * as ops from './ops.js';
import { linear } from './linalg.js';
import { tidy, type Tensor } from './tensor.js';

const dims = (s: readonly number[]) => `[${s.join(', ')}]`;

function checkSequence(op: string, x: Tensor): [number, number, number] {
  if (x.rank !== 3) throw new RangeError(`${op}: input must be [batch, length, features], got ${dims(x.shape)}`);
  return x.shape as [number, number, number];
}

/** [B, L, d] → [B, L, L, 2d] with out[b, i, j] = [x[b, i] ; x[b, j]]. */
export function outerConcat(x: Tensor): Tensor {
  const [B, L, d] = checkSequence('outerConcat', x);
  return tidy(() => {
    const rows = ops.expand(ops.unsqueeze(x, 2), [B, L, L, d]);
    const cols = ops.expand(ops.unsqueeze(x, 1), [B, L, L, d]);
    return ops.concat([rows, cols], 3);
  });
}

/**
 * Linear(2d → h) applied to `outerConcat(x)` without building it: x [B, L, d], weight [h, 2d]
 * (PyTorch's layout, so a checkpoint's `linear_in` loads as is), bias [h] or null → [B, L, L, h].
 */
export function pairwiseLinear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const op = 'pairwiseLinear';
  const [, , d] = checkSequence(op, x);
  if (weight.rank !== 2 || weight.shape[1] !== 2 * d) {
    throw new RangeError(
      `${op}: weight must be [out, ${2 * d}] (twice the ${d} features of input ${dims(x.shape)}), ` +
        `got ${dims(weight.shape)}`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new RangeError(
      `${op}: bias must be [${weight.shape[0]}] to match weight ${dims(weight.shape)}, got ${dims(bias.shape)}`,
    );
  }
  return tidy(() => {
    const first = linear(x, ops.narrow(weight, 1, 0, d)); // W1·x_i: [B, L, h]
    const second = linear(x, ops.narrow(weight, 1, d, d), bias); // W2·x_j + b: [B, L, h]
    return ops.add(ops.unsqueeze(first, 2), ops.unsqueeze(second, 1));
  });
}
