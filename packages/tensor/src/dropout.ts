/** Inverted dropout with a counter-based mask (the same bits on the GPU and the CPU for a seed). */
import { ELEMENTWISE_OPS, elementwiseCpu, elementwiseGpu } from '@rnagrad/kernels-wgsl';
import * as ops from './ops.js';
import { deviceOf, empty, launch, record, takeCounters } from './ops.js';
import { requireF32, untracked } from './op.js';
import type { Tensor } from './tensor.js';

/** The inverted-dropout multiplier for `shape`: 0 with probability p, else 1/(1−p). */
export function dropoutMask(
  shape: readonly number[],
  p: number,
  device: 'gpu' | 'cpu' = ops.getDefaultDevice(),
  seed?: number,
): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  const mask = empty(shape, 'f32', device);
  const { key, base } = takeCounters(mask.size, seed);
  const scalars = [
    { value: key | 0, dtype: 'i32' as const },
    { value: base | 0, dtype: 'i32' as const },
    { value: p, dtype: 'f32' as const },
  ];
  launch('dropout', device, {
    gpu: (at, queue) => elementwiseGpu(queue, ELEMENTWISE_OPS.dropoutMask, at(mask), scalars),
    cpu: (at) => elementwiseCpu(ELEMENTWISE_OPS.dropoutMask, at(mask), scalars),
  });
  return mask;
}

/**
 * Inverted dropout. In training with p > 0: y = x ⊙ mask, recorded as 'dropout' on [x] with attrs
 * { p, saved: { mask } } (backward: dy ⊙ mask). Otherwise a new handle on x, recorded as 'view'
 * ({ from: x.shape }, like contiguous()).
 */
export function dropout(x: Tensor, p: number, training = true, opts: { seed?: number } = {}): Tensor {
  const device = deviceOf('dropout', [x]);
  requireF32('dropout', x);
  if (!training || p === 0) return record('view', [x], x.detach(), { from: x.shape });
  const mask = dropoutMask(x.shape, p, device, opts.seed);
  const y = untracked(() => ops.mul(x, mask));
  return record('dropout', [x], y, { p }, { mask });
}

/** dy ⊙ mask. */
export function dropoutBackward(dy: Tensor, mask: Tensor): Tensor {
  return untracked(() => ops.mul(dy, mask));
}
