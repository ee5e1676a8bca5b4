/** LayerNorm and RMSNorm over the last dim (kernels-wgsl norm.ts), forward and backward. */
import {
  layerNormBackwardCpu,
  layerNormBackwardGpu,
  layerNormCpu,
  layerNormGpu,
  normBackwardScratchBytes,
  numel,
} from '@rnagrad/kernels-wgsl';
import { deviceOf, empty, launch, record } from './ops.js';
import { requireF32, sameShape } from './op.js';
import { withContiguousFallback } from './rows.js';
import type { Tensor } from './tensor.js';

function checkAffine(op: string, x: Tensor, p: Tensor | null | undefined, what: string): void {
  if (!p) return;
  requireF32(op, p);
  const C = x.shape[x.rank - 1];
  if (p.rank !== 1 || p.shape[0] !== C)
    throw new RangeError(`${op}: ${what} must have shape [${C}], got [${p.shape.join(', ')}]`);
}

function normForward(
  op: 'layerNorm' | 'rmsNorm' | 'addLayerNorm',
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  residual: Tensor | null = null,
): { y: Tensor; mean: Tensor | null; rstd: Tensor; sum: Tensor | null } {
  const rms = op === 'rmsNorm';
  const inputs = [x, ...(residual ? [residual] : [])];
  const device = deviceOf(op, [...inputs, ...(weight ? [weight] : []), ...(bias ? [bias] : [])]);
  requireF32(op, ...inputs);
  if (x.rank < 1) throw new RangeError(`${op}: needs at least one dim, got a scalar`);
  if (residual) sameShape(op, x, residual);
  checkAffine(op, x, weight, 'weight');
  checkAffine(op, x, bias, 'bias');
  const lead = x.shape.slice(0, -1);
  const y = empty(x.shape, 'f32', device);
  const mean = rms ? null : empty(lead, 'f32', device);
  const rstd = empty(lead, 'f32', device);
  const sum = residual ? empty(x.shape, 'f32', device) : null;
  withContiguousFallback(inputs, ([xx, rr]) => {
    launch(op, device, {
      gpu: (at, queue) =>
        layerNormGpu(
          queue,
          { y: at(y), mean: mean && at(mean), rstd: at(rstd), sum: sum && at(sum) },
          at(xx!),
          weight && at(weight),
          bias && at(bias),
          { rms, eps },
          rr ? at(rr) : null,
        ),
      cpu: (at) =>
        layerNormCpu(
          { y: at(y), mean: mean && at(mean), rstd: at(rstd), sum: sum && at(sum) },
          at(xx!),
          weight && at(weight),
          bias && at(bias),
          { rms, eps },
          rr ? at(rr) : null,
        ),
    });
  });
  return { y, mean, rstd, sum };
}

/**
 * LayerNorm over the last axis: (x − mean)/√(var + eps)·weight + bias (weight, bias optional, [C]).
 * Records 'layerNorm' on [x, weight?, bias?] (only those given, in that order) with attrs
 * { eps, hasWeight, hasBias, saved: { mean, rstd } } (each of shape x.shape[:-1]).
 */
export function layerNorm(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const { y, mean, rstd } = normForward('layerNorm', x, weight, bias, eps);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return record('layerNorm', inputs, y, { eps, hasWeight: !!weight, hasBias: !!bias }, { mean: mean!, rstd });
}

/**
 * A pre-LN block's residual step in one kernel: sum = x + residual and y = LayerNorm(sum)·weight +
 * bias. Records 'add' (sum, on [x, residual]) and 'layerNorm' (y, on [sum, weight?, bias?]), so the
 * gradients are those of the two ops; the values equal `add` then `layerNorm` to f32 rounding.
 */
export function addLayerNorm(
  x: Tensor,
  residual: Tensor,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  eps = 1e-5,
): { sum: Tensor; y: Tensor } {
  const { y, mean, rstd, sum } = normForward('addLayerNorm', x, weight, bias, eps, residual);
  const s = record('add', [x, residual], sum!, { scalars: [null, null] });
  const inputs = [s, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return {
    sum: s,
    y: record('layerNorm', inputs, y, { eps, hasWeight: !!weight, hasBias: !!bias }, { mean: mean!, rstd }),
  };
}

/**
 * RMSNorm over the last axis: x/√(mean(x²) + eps)·weight. Records 'rmsNorm' on [x, weight?] with
 * attrs { eps, hasWeight, saved: { rstd } }.
 */
export function rmsNorm(x: Tensor, weight: Tensor | null = null, eps = 1e-6): Tensor {
  const { y, rstd } = normForward('rmsNorm', x, weight, null, eps);
  return record('rmsNorm', [x, ...(weight ? [weight] : [])], y, { eps, hasWeight: !!weight }, { rstd });
}

function normBackward(
  op: string,
  rms: boolean,
  dy: Tensor,
  x: Tensor,
  mean: Tensor | null,
  rstd: Tensor,
  weight: Tensor | null,
  withBias: boolean,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  const device = deviceOf(op, [dy, x, rstd, ...(mean ? [mean] : []), ...(weight ? [weight] : [])]);
  requireF32(op, dy, x, mean, rstd);
  sameShape(op, dy, x);
  checkAffine(op, x, weight, 'weight');
  const C = x.shape[x.rank - 1]!;
  const dx = empty(x.shape, 'f32', device);
  const dweight = weight ? empty([C], 'f32', device) : null;
  const dbias = withBias && !rms ? empty([C], 'f32', device) : null;
  withContiguousFallback([x, dy], ([xx, gg]) => {
    launch(op, device, {
      gpu: (at, queue) => {
        const rows = numel(x.shape.slice(0, -1));
        const scratch = dweight || dbias ? empty([normBackwardScratchBytes(rows, C) / 4], 'f32', 'gpu') : null;
        layerNormBackwardGpu(
          queue,
          { dx: at(dx), dweight: dweight && at(dweight), dbias: dbias && at(dbias) },
          { x: at(xx!), weight: weight && at(weight), mean: mean && at(mean), rstd: at(rstd), dy: at(gg!) },
          { rms, scratch: scratch?.storage.buffer ?? undefined },
        );
        scratch?.dispose();
      },
      cpu: (at) =>
        layerNormBackwardCpu(
          { dx: at(dx), dweight: dweight && at(dweight), dbias: dbias && at(dbias) },
          { x: at(xx!), weight: weight && at(weight), mean: mean && at(mean), rstd: at(rstd), dy: at(gg!) },
          { rms },
        ),
    });
  });
  return { dx, dweight, dbias };
}

/** Gradients of `layerNorm` from the saved mean and rstd: dweight if `weight` is given, dbias if `withBias`. */
export function layerNormBackward(
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  weight: Tensor | null = null,
  withBias = false,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  return normBackward('layerNormBackward', false, dy, x, mean, rstd, weight, withBias);
}

/** Gradients of `rmsNorm` from the saved rstd: dweight if `weight` is given. */
export function rmsNormBackward(
  dy: Tensor,
  x: Tensor,
  rstd: Tensor,
  weight: Tensor | null = null,
): { dx: Tensor; dweight: Tensor | null } {
  const { dx, dweight } = normBackward('rmsNormBackward', true, dy, x, null, rstd, weight, false);
  return { dx, dweight };
}
