/** Instance norm over the spatial positions of channels-last [B, ...spatial, C] (kernels-wgsl instance-norm.ts). */
import {
  instanceNormBackwardCpu,
  instanceNormBackwardGpu,
  instanceNormCpu,
  instanceNormGpu,
} from '@rnagrad/kernels-wgsl';
import { deviceOf, empty, launch, record } from './ops.js';
import { withContiguous } from './rows.js';
import { requireF32, sameShape } from './op.js';
import type { Tensor } from './tensor.js';

export interface InstanceNormAttrs {
  eps: number;
  saved?: { mean: Tensor; rstd: Tensor };
}

function statsShape(op: string, x: Tensor): number[] {
  if (x.rank < 3)
    throw new RangeError(
      `${op}: input must be [batch, ...spatial, channels] ([B, L, C] or [B, H, W, C]), got [${x.shape.join(', ')}]`,
    );
  return [x.shape[0]!, x.shape[x.rank - 1]!];
}

/**
 * Instance norm without affine (PyTorch's InstanceNorm1d/2d defaults, channels-last): each (b, c)
 * of x [B, L, C] or [B, H, W, C] normalised over L or H·W with the biased variance and `eps`.
 * One spatial position gives 0 (PyTorch refuses it while training). Records 'instanceNorm' on [x]
 * with attrs { eps, saved: { mean, rstd } } (each [B, C]).
 */
export function instanceNorm(x: Tensor, eps = 1e-5): Tensor {
  const op = 'instanceNorm';
  const device = deviceOf(op, [x]);
  requireF32(op, x);
  const stats = statsShape(op, x);
  const y = empty(x.shape, 'f32', device);
  const mean = empty(stats, 'f32', device);
  const rstd = empty(stats, 'f32', device);
  try {
    withContiguous([x], ([xc]) => {
      launch(op, device, {
        gpu: (at, queue) => instanceNormGpu(queue, { y: at(y), mean: at(mean), rstd: at(rstd) }, at(xc!), eps),
        cpu: (at) => instanceNormCpu({ y: at(y), mean: at(mean), rstd: at(rstd) }, at(xc!), eps),
      });
    });
  } catch (err) {
    [y, mean, rstd].forEach((t) => t.dispose());
    throw err;
  }
  return record(op, [x], y, { eps }, { mean, rstd });
}

/** dx of `instanceNorm` from its saved mean and rstd ([B, C]). */
export function instanceNormBackward(dy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor): Tensor {
  const op = 'instanceNormBackward';
  const device = deviceOf(op, [dy, x, mean, rstd]);
  requireF32(op, dy, x, mean, rstd);
  sameShape(op, dy, x);
  statsShape(op, x);
  const dx = empty(x.shape, 'f32', device);
  try {
    withContiguous([x, dy, mean, rstd], ([xc, gc, mc, rc]) => {
      launch(op, device, {
        gpu: (at, queue) =>
          instanceNormBackwardGpu(queue, at(dx), { x: at(xc!), mean: at(mc!), rstd: at(rc!), dy: at(gc!) }),
        cpu: (at) => instanceNormBackwardCpu(at(dx), { x: at(xc!), mean: at(mc!), rstd: at(rc!), dy: at(gc!) }),
      });
    });
  } catch (err) {
    dx.dispose();
    throw err;
  }
  return dx;
}
