/**
 * 1-D and 2-D convolution, channels-last, stride 1 (kernels-wgsl conv.ts), forward and backward.
 * conv1d over [B, L, Cin] runs the 2-D kernels on the view [B, 1, L, Cin] with the weight
 * [Cout, Cin, K] viewed as [Cout, Cin, 1, K] (no copies).
 */
import {
  type ConvPadding,
  conv2dCpu,
  conv2dGpu,
  conv2dInputGradCpu,
  conv2dInputGradGpu,
  conv2dWeightGradCpu,
  conv2dWeightGradGpu,
  conv2dWeightGradScratchBytes,
  contiguousStrides,
  convGeometry,
} from '@rnagrad/kernels-wgsl';
import * as ops from './ops.js';
import { deviceOf, empty, launch, record } from './ops.js';
import { withContiguous } from './rows.js';
import { requireF32, untracked } from './op.js';
import type { Tensor } from './tensor.js';

/**
 * 'same' keeps the length (K − 1 zeros split as PyTorch does: the extra one after, for even K),
 * 'valid' pads nothing, a number pads both sides by it, a pair gives [before, after].
 */
export type Conv1dPadding = 'same' | 'valid' | number | readonly [number, number];
/** As Conv1dPadding per spatial axis; a number or a [padH, padW] pair pads both sides of each axis. */
export type Conv2dPadding = 'same' | 'valid' | number | readonly [number, number];

export interface ConvAttrs {
  padding: ConvPadding;
  hasBias: boolean;
}

const dims = (s: readonly number[]) => `[${s.join(', ')}]`;

function axisPadding(op: string, padding: 'same' | 'valid' | number, kernel: number): [number, number] {
  if (padding === 'same') return [Math.floor((kernel - 1) / 2), kernel - 1 - Math.floor((kernel - 1) / 2)];
  if (padding === 'valid') return [0, 0];
  if (!Number.isInteger(padding) || padding < 0)
    throw new RangeError(`${op}: padding must be 'same', 'valid' or a non-negative integer, got ${padding}`);
  return [padding, padding];
}

/** The per-side padding conv1d applies for `padding` and kernel size K (what its backward takes). */
export function conv1dPadding(padding: Conv1dPadding, kernel: number): ConvPadding {
  const [left, right] = typeof padding === 'object' ? [padding[0], padding[1]] : axisPadding('conv1d', padding, kernel);
  return { top: 0, bottom: 0, left, right };
}

/** The per-side padding conv2d applies for `padding` and a kh×kw kernel (what its backward takes). */
export function conv2dPadding(padding: Conv2dPadding, kh: number, kw: number): ConvPadding {
  const [ph, pw] = typeof padding === 'object' ? [padding[0], padding[1]] : [padding, padding];
  const [top, bottom] = axisPadding('conv2d', ph, kh);
  const [left, right] = axisPadding('conv2d', pw, kw);
  return { top, bottom, left, right };
}

/** A contiguous tensor's storage seen with another shape. */
const as = (t: Tensor, shape: readonly number[]) => ({ shape, strides: contiguousStrides(shape), offset: t.offset });

/** Checks dtypes and ranks; returns the 4-D shapes the kernels see. */
function shapes4(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  oneD: boolean,
  padding: ConvPadding,
): { x4: number[]; w4: number[] } {
  requireF32(op, x, weight, bias);
  const rank = oneD ? 3 : 4;
  const xWhat = oneD ? '[batch, length, channels]' : '[batch, height, width, channels]';
  const wWhat = oneD ? '[outChannels, inChannels, kernel]' : '[outChannels, inChannels, kernelH, kernelW]';
  if (x.rank !== rank) throw new RangeError(`${op}: input must be ${xWhat}, got ${dims(x.shape)}`);
  if (weight.rank !== rank) throw new RangeError(`${op}: weight must be ${wWhat}, got ${dims(weight.shape)}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new RangeError(
      `${op}: bias must be [${weight.shape[0]}] (one per output channel of weight ${dims(weight.shape)}), ` +
        `got ${dims(bias.shape)}`,
    );
  }
  if (weight.shape[1] !== x.shape[rank - 1]) {
    throw new RangeError(
      `${op}: weight ${dims(weight.shape)} expects ${weight.shape[1]} input channels, the input ${dims(x.shape)} ` +
        `has ${x.shape[rank - 1]}`,
    );
  }
  const padded = x.shape[rank - 2]! + padding.left + padding.right;
  if (oneD && padded < weight.shape[2]!) {
    throw new RangeError(
      `${op}: kernel ${weight.shape[2]} is longer than the padded length ${padded} (input ${dims(x.shape)}, ` +
        `padding ${padding.left} + ${padding.right})`,
    );
  }
  const x4 = oneD ? [x.shape[0]!, 1, x.shape[1]!, x.shape[2]!] : [...x.shape];
  const w4 = oneD ? [weight.shape[0]!, weight.shape[1]!, 1, weight.shape[2]!] : [...weight.shape];
  return { x4, w4 };
}

function convForward(
  op: 'conv1d' | 'conv2d',
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  padding: ConvPadding,
): Tensor {
  const device = deviceOf(op, [x, weight, ...(bias ? [bias] : [])]);
  const oneD = op === 'conv1d';
  const { x4, w4 } = shapes4(op, x, weight, bias, oneD, padding);
  const g = convGeometry(op, x4, w4, padding);
  const out4 = [g.batch, g.outHeight, g.outWidth, g.outChannels];
  const out = empty(oneD ? [g.batch, g.outWidth, g.outChannels] : out4, 'f32', device);
  withContiguous([x, weight, ...(bias ? [bias] : [])], ([xc, wc, bc]) => {
    launch(op, device, {
      gpu: (at, queue) =>
        conv2dGpu(
          queue,
          at(out, as(out, out4)),
          at(xc!, as(xc!, x4)),
          at(wc!, as(wc!, w4)),
          bc ? at(bc) : null,
          padding,
        ),
      cpu: (at) =>
        conv2dCpu(at(out, as(out, out4)), at(xc!, as(xc!, x4)), at(wc!, as(wc!, w4)), bc ? at(bc) : null, padding),
    });
  });
  return out;
}

/** Which gradients a backward computes (autograd passes the inputs' requiresGrad). */
export interface ConvNeeds {
  input?: boolean;
  weight?: boolean;
  bias?: boolean;
}

export interface ConvGrads {
  dx: Tensor | null;
  dweight: Tensor | null;
  dbias: Tensor | null;
}

function convBackward(
  op: string,
  dy: Tensor,
  x: Tensor,
  weight: Tensor,
  padding: ConvPadding,
  needs: ConvNeeds,
  oneD: boolean,
): ConvGrads {
  const device = deviceOf(op, [dy, x, weight]);
  requireF32(op, dy);
  const { x4, w4 } = shapes4(op, x, weight, null, oneD, padding);
  const g = convGeometry(op, x4, w4, padding);
  const dy4 = [g.batch, g.outHeight, g.outWidth, g.outChannels];
  const dyShape = oneD ? [g.batch, g.outWidth, g.outChannels] : dy4;
  if (dy.rank !== dyShape.length || dy.shape.some((s, d) => s !== dyShape[d])) {
    throw new RangeError(
      `${op}: dy must be the output's shape ${dims(dyShape)} for input ${dims(x.shape)} and ` +
        `weight ${dims(weight.shape)}, got ${dims(dy.shape)}`,
    );
  }
  const dx = (needs.input ?? true) ? empty(x.shape, 'f32', device) : null;
  const dweight = (needs.weight ?? true) ? empty(weight.shape, 'f32', device) : null;
  withContiguous([dy, x, weight], ([dyc, xc, wc]) => {
    launch(op, device, {
      gpu: (at, queue) => {
        if (dx) conv2dInputGradGpu(queue, at(dx, as(dx, x4)), at(dyc!, as(dyc!, dy4)), at(wc!, as(wc!, w4)), padding);
        if (!dweight) return;
        const bytes = conv2dWeightGradScratchBytes(g);
        const scratch = bytes > 0 ? empty([bytes / 4], 'f32', 'gpu') : null;
        conv2dWeightGradGpu(
          queue,
          at(dweight, as(dweight, w4)),
          at(dyc!, as(dyc!, dy4)),
          at(xc!, as(xc!, x4)),
          padding,
          scratch?.storage.buffer ?? undefined,
        );
        scratch?.dispose();
      },
      cpu: (at) => {
        if (dx) conv2dInputGradCpu(at(dx, as(dx, x4)), at(dyc!, as(dyc!, dy4)), at(wc!, as(wc!, w4)), padding);
        if (dweight)
          conv2dWeightGradCpu(at(dweight, as(dweight, w4)), at(dyc!, as(dyc!, dy4)), at(xc!, as(xc!, x4)), padding);
      },
    });
  });
  const dbias = needs.bias ? untracked(() => ops.sum(dy, oneD ? [0, 1] : [0, 1, 2])) : null;
  return { dx, dweight, dbias };
}

/**
 * 1-D convolution, channels-last: x [B, L, Cin], weight [Cout, Cin, K] (PyTorch's layout), bias
 * [Cout] or null → [B, Lout, Cout], Lout = L + padBefore + padAfter − K + 1. Stride 1, dilation 1.
 * Records 'conv1d' on [x, weight, bias?] with attrs { padding, hasBias }.
 */
export function conv1d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: { padding?: Conv1dPadding } = {},
): Tensor {
  if (weight.rank !== 3)
    throw new RangeError(`conv1d: weight must be [outChannels, inChannels, kernel], got ${dims(weight.shape)}`);
  const padding = conv1dPadding(opts.padding ?? 'valid', weight.shape[2]!);
  const out = convForward('conv1d', x, weight, bias, padding);
  return record('conv1d', [x, weight, ...(bias ? [bias] : [])], out, { padding, hasBias: !!bias });
}

/**
 * 2-D convolution, channels-last: x [B, H, W, Cin], weight [Cout, Cin, kH, kW] (PyTorch's layout),
 * bias [Cout] or null → [B, Hout, Wout, Cout]. Stride 1, dilation 1. Records 'conv2d' on
 * [x, weight, bias?] with attrs { padding, hasBias }.
 */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: { padding?: Conv2dPadding } = {},
): Tensor {
  if (weight.rank !== 4)
    throw new RangeError(
      `conv2d: weight must be [outChannels, inChannels, kernelH, kernelW], got ${dims(weight.shape)}`,
    );
  const padding = conv2dPadding(opts.padding ?? 'valid', weight.shape[2]!, weight.shape[3]!);
  const out = convForward('conv2d', x, weight, bias, padding);
  return record('conv2d', [x, weight, ...(bias ? [bias] : [])], out, { padding, hasBias: !!bias });
}

/** Gradients of `conv1d` (padding as resolved in its attrs); dbias only when `needs.bias`. */
export function conv1dBackward(
  dy: Tensor,
  x: Tensor,
  weight: Tensor,
  padding: ConvPadding,
  needs: ConvNeeds = {},
): ConvGrads {
  return convBackward('conv1dBackward', dy, x, weight, padding, needs, true);
}

/** Gradients of `conv2d` (padding as resolved in its attrs); dbias only when `needs.bias`. */
export function conv2dBackward(
  dy: Tensor,
  x: Tensor,
  weight: Tensor,
  padding: ConvPadding,
  needs: ConvNeeds = {},
): ConvGrads {
  return convBackward('conv2dBackward', dy, x, weight, padding, needs, false);
}
