/**
 * Instance norm without affine, channels-last: for x [B, ...spatial, C] (e.g. [B, L, C] or
 * [B, H, W, C]), each (b, c) is normalised over its spatial positions with the biased variance:
 * y = (x − mean)/√(var + eps). These are LayerNorm's row kernels (norm.ts) run on the strided view
 * [B, C, N] (N = spatial size, column stride C), so no transpose is copied: one thread (or lane
 * group) per (b, c) row, adjacent channels in adjacent threads. mean and rstd are [B, C].
 */
import type { KernelQueue } from './queue.js';
import { type CpuOperand, type GpuOperand, type View, isContiguous, numel } from './layout.js';
import { layerNormBackwardCpu, layerNormBackwardGpu, layerNormCpu, layerNormGpu } from './norm.js';

const dims = (s: readonly number[]) => `[${s.join(', ')}]`;

/** [B, C] of x [B, ...spatial, C], after checking the rank, the spatial size and contiguity. */
function statsShape(op: string, x: View): [number, number] {
  if (x.shape.length < 3)
    throw new RangeError(`${op}: input must be [batch, ...spatial, channels] (rank ≥ 3), got ${dims(x.shape)}`);
  if (numel(x.shape.slice(1, -1)) === 0)
    throw new RangeError(`${op}: needs at least one spatial element, got ${dims(x.shape)}`);
  if (!isContiguous(x)) throw new RangeError(`${op}: operands must be contiguous, got a view of ${dims(x.shape)}`);
  return [x.shape[0]!, x.shape[x.shape.length - 1]!];
}

function checkSame(op: string, what: string, t: View, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((s, d) => s !== shape[d])) {
    throw new RangeError(`${op}: ${what} must be ${dims(shape)}, got ${dims(t.shape)}`);
  }
  if (!isContiguous(t)) throw new RangeError(`${op}: operands must be contiguous, got a view of ${dims(t.shape)}`);
}

function checkForward(out: { y: View; mean: View; rstd: View }, x: View): void {
  const op = 'instanceNorm';
  const stats = statsShape(op, x);
  checkSame(op, 'output', out.y, x.shape);
  checkSame(op, 'mean', out.mean, stats);
  checkSame(op, 'rstd', out.rstd, stats);
}

function checkBackward(dx: View, saved: { x: View; mean: View; rstd: View; dy: View }): void {
  const op = 'instanceNormBackward';
  const stats = statsShape(op, saved.x);
  for (const [what, t] of [
    ['dx', dx],
    ['dy', saved.dy],
  ] as const)
    checkSame(op, what, t, saved.x.shape);
  checkSame(op, 'mean', saved.mean, stats);
  checkSame(op, 'rstd', saved.rstd, stats);
}

/** The contiguous channels-last operand as rows [B, C, N]: row (b, c) strides over the spatial positions. */
function channelRows<T extends View>(t: T): T {
  const [B, C] = [t.shape[0]!, t.shape[t.shape.length - 1]!];
  const N = numel(t.shape.slice(1, -1));
  return { ...t, shape: [B, C, N], strides: [N * C, 1, C] };
}

/** y = instanceNorm(x) with per-(b, c) `mean` and `rstd` [B, C] written for the backward. */
export function instanceNormGpu(
  queue: KernelQueue,
  out: { y: GpuOperand; mean: GpuOperand; rstd: GpuOperand },
  x: GpuOperand,
  eps = 1e-5,
): void {
  checkForward(out, x);
  layerNormGpu(queue, { y: channelRows(out.y), mean: out.mean, rstd: out.rstd }, channelRows(x), null, null, { eps });
}

/** dx of instanceNorm from the saved mean and rstd: rstd·(dy − mean(dy) − x̂·mean(dy·x̂)) per (b, c). */
export function instanceNormBackwardGpu(
  queue: KernelQueue,
  dx: GpuOperand,
  saved: { x: GpuOperand; mean: GpuOperand; rstd: GpuOperand; dy: GpuOperand },
): void {
  checkBackward(dx, saved);
  const { x, mean, rstd, dy } = saved;
  layerNormBackwardGpu(
    queue,
    { dx: channelRows(dx) },
    { x: channelRows(x), weight: null, mean, rstd, dy: channelRows(dy) },
  );
}

/** Float64 reference of `instanceNormGpu`. */
export function instanceNormCpu(
  out: { y: CpuOperand; mean: CpuOperand; rstd: CpuOperand },
  x: CpuOperand,
  eps = 1e-5,
): void {
  checkForward(out, x);
  layerNormCpu({ y: channelRows(out.y), mean: out.mean, rstd: out.rstd }, channelRows(x), null, null, { eps });
}

/** Float64 reference of `instanceNormBackwardGpu`. */
export function instanceNormBackwardCpu(
  dx: CpuOperand,
  saved: { x: CpuOperand; mean: CpuOperand; rstd: CpuOperand; dy: CpuOperand },
): void {
  checkBackward(dx, saved);
  const { x, mean, rstd, dy } = saved;
  layerNormBackwardCpu({ dx: channelRows(dx) }, { x: channelRows(x), weight: null, mean, rstd, dy: channelRows(dy) });
}
