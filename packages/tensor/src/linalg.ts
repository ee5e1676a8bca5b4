/**
 * Linear algebra ops: `matmul` with PyTorch semantics (1-D operands promoted then squeezed, batch
 * dims broadcast) plus a fused bias and activation epilogue, and `linear` (x @ weightᵀ + bias with
 * PyTorch's [out, in] weight layout). Transposed or otherwise strided operands go to the kernels as
 * views: nothing is copied. f32 only.
 *
 * Autograd: `matmul` records 'matmul' with inputs [a, b] or [a, b, bias] and attrs
 * `{ activation, hasBias, saved }`. `saved` is `{ preActivation }` (the value before the
 * activation, with the result's shape) when the activation is not 'none' and autograd takes the op;
 * the node owns it (autograd disposes attrs.saved tensors on release); otherwise `saved` is null.
 * `matmulBackward(g, a, b, bias, attrs)` returns [da, db, dbias] for the rule. `linear` records
 * 'permute' (weightᵀ as a view) and then 'matmul'.
 */
import { type MatmulActivation, matmulCpu, matmulGpu } from '@rnagrad/kernels-wgsl';
import * as ops from './ops.js';
import { deviceOf, empty, isRecording, launch, record } from './ops.js';
import type { Tensor } from './tensor.js';

export type { MatmulActivation };

export interface MatmulOpts {
  /** Added to a @ b before the activation; must broadcast to the result's shape (e.g. [N]). */
  bias?: Tensor;
  activation?: MatmulActivation;
}

export interface MatmulAttrs {
  activation: MatmulActivation;
  hasBias: boolean;
  saved: { preActivation: Tensor } | null;
}

interface ViewSpec {
  shape: number[];
  strides: number[];
  offset: number;
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;
const ACTIVATIONS: readonly MatmulActivation[] = ['none', 'relu', 'gelu', 'geluTanh'];

interface Prepared {
  device: 'gpu' | 'cpu';
  a: ViewSpec;
  b: ViewSpec;
  bias: ViewSpec | null;
  /** [...batch, M, N]: what the kernel writes. */
  full: number[];
  /** full with the promoted dims of 1-D operands removed: what the op returns. */
  result: number[];
  aVector: boolean;
  bVector: boolean;
}

/** Validates operands (errors name the op and both shapes) and builds the kernel views. */
function prepare(op: string, a: Tensor, b: Tensor, opts: MatmulOpts): Prepared {
  const tensors = opts.bias ? [a, b, opts.bias] : [a, b];
  const device = deviceOf(op, tensors);
  const shapes = `${fmt(a.shape)} @ ${fmt(b.shape)}`;
  for (const t of tensors) {
    if (t.dtype !== 'f32') {
      throw new TypeError(
        `${op}: only f32 tensors are supported, got ${a.dtype} ` +
          `@ ${b.dtype}${opts.bias ? ` with a ${opts.bias.dtype} bias` : ''}; cast first`,
      );
    }
  }
  const activation = opts.activation ?? 'none';
  if (!ACTIVATIONS.includes(activation))
    throw new RangeError(`${op}: unknown activation "${activation}" (expected one of ${ACTIVATIONS.join(', ')})`);
  if (a.rank === 0 || b.rank === 0)
    throw new RangeError(`${op}: ${shapes}: both operands need at least 1 dim (use mul for scalars)`);
  const aVector = a.rank === 1;
  const bVector = b.rank === 1;
  // 1-D operands: a [K] is a row [1, K], b [K] a column [K, 1] (stride 0 on the new dim).
  const av: ViewSpec = aVector
    ? { shape: [1, a.shape[0]!], strides: [0, a.strides[0]!], offset: a.offset }
    : { shape: [...a.shape], strides: [...a.strides], offset: a.offset };
  const bv: ViewSpec = bVector
    ? { shape: [b.shape[0]!, 1], strides: [b.strides[0]!, 0], offset: b.offset }
    : { shape: [...b.shape], strides: [...b.strides], offset: b.offset };
  const ka = av.shape[av.shape.length - 1]!;
  const kb = bv.shape[bv.shape.length - 2]!;
  if (ka !== kb) throw new RangeError(`${op}: ${shapes}: inner dims ${ka} and ${kb} differ`);
  const batchA = av.shape.slice(0, -2);
  const batchB = bv.shape.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = batchA[batchA.length - rank + i] ?? 1;
    const y = batchB[batchB.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1)
      throw new RangeError(`${op}: ${shapes}: batch dims ${fmt(batchA)} and ${fmt(batchB)} cannot be broadcast`);
    batch.push(x === 1 ? y : x);
  }
  const M = av.shape[av.shape.length - 2]!;
  const N = bv.shape[bv.shape.length - 1]!;
  const full = [...batch, M, N];
  const result = [...batch, ...(aVector ? [] : [M]), ...(bVector ? [] : [N])];
  let bias: ViewSpec | null = null;
  if (opts.bias) {
    const x = opts.bias;
    const lead = result.length - x.rank;
    const bad = () =>
      new RangeError(`${op}: ${shapes}: bias ${fmt(x.shape)} does not broadcast to the result ${fmt(result)}`);
    if (lead < 0) throw bad();
    const rs = result.map((size, d) => {
      if (d < lead) return 0;
      const s = x.shape[d - lead]!;
      if (s === size) return size === 1 ? 0 : x.strides[d - lead]!;
      if (s === 1) return 0;
      throw bad();
    });
    const strides = [...rs.slice(0, batch.length), aVector ? 0 : rs[batch.length]!, bVector ? 0 : rs[rs.length - 1]!];
    bias = { shape: full, strides, offset: x.offset };
  }
  return { device, a: av, b: bv, bias, full, result, aVector, bVector };
}

/** Strides of `full`'s contiguous layout with the squeezed vector dims dropped. */
function squeezeView(p: Prepared, t: Tensor): Tensor {
  if (!p.aVector && !p.bVector) return t;
  const r = p.full.length;
  const keepDim = (d: number) => !((d === r - 2 && p.aVector) || (d === r - 1 && p.bVector));
  const strides = t.strides.filter((_, d) => keepDim(d));
  const v = t.view(p.result, strides, t.offset);
  t.dispose();
  return v;
}

/**
 * Matrix product with PyTorch semantics: 1-D operands are promoted ([K] → [1, K] on the left,
 * [K, 1] on the right) and the added dim is removed from the result; leading (batch) dims
 * broadcast. `bias` (broadcast to the result) and `activation` are fused into the kernel's epilogue.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOpts = {}): Tensor {
  const op = 'matmul';
  const p = prepare(op, a, b, opts);
  const activation = opts.activation ?? 'none';
  const inputs = opts.bias ? [a, b, opts.bias] : [a, b];
  // The pre-activation is only for a backward: not under noGrad, not without an input requiring grad.
  const recording = isRecording(inputs);
  const out = empty(p.full, 'f32', p.device);
  const pre = recording && activation !== 'none' ? empty(p.full, 'f32', p.device) : null;
  launch(op, p.device, {
    gpu: (at, queue) =>
      matmulGpu(queue, at(out), at(a, p.a), at(b, p.b), {
        bias: opts.bias && p.bias ? at(opts.bias, p.bias) : undefined,
        activation,
        preActivation: pre ? at(pre) : undefined,
      }),
    cpu: (at) =>
      matmulCpu(at(out), at(a, p.a), at(b, p.b), {
        bias: opts.bias && p.bias ? at(opts.bias, p.bias) : undefined,
        activation,
        preActivation: pre ? at(pre) : undefined,
      }),
  });
  const result = squeezeView(p, out);
  return record(
    op,
    inputs,
    result,
    { activation, hasBias: !!opts.bias },
    pre ? { preActivation: squeezeView(p, pre) } : null,
  );
}

/**
 * x @ weightᵀ + bias with PyTorch's layout: weight [out, in], bias [out], x [..., in] → [..., out].
 * The transpose is a strided view of weight, not a copy.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, activation: MatmulActivation = 'none'): Tensor {
  const op = 'linear';
  if (weight.rank !== 2) throw new RangeError(`${op}: weight must be 2-D [out, in], got ${fmt(weight.shape)}`);
  const [outF, inF] = weight.shape as [number, number];
  if (x.rank === 0 || x.shape[x.rank - 1] !== inF) {
    throw new RangeError(
      `${op}: input ${fmt(x.shape)} must end in ${inF} features to match weight [out, in] = ${fmt(weight.shape)}`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF))
    throw new RangeError(`${op}: bias must be [${outF}] to match weight ${fmt(weight.shape)}, got ${fmt(bias.shape)}`);
  const wT = ops.transpose(weight, 0, 1);
  try {
    return matmul(x, wT, { bias: bias ?? undefined, activation });
  } finally {
    wT.dispose();
  }
}

/**
 * Gradients of `matmul` for its autograd rule: given the result's gradient `g`, the inputs and the
 * recorded attrs, returns [da, db, dbias] (shapes of a, b and bias; dbias null without a bias).
 * Uses transposed views of the operands (no copies) and sums over broadcast batch dims.
 */
export function matmulBackward(
  g: Tensor,
  a: Tensor,
  b: Tensor,
  bias: Tensor | null,
  attrs: MatmulAttrs,
  needs: readonly boolean[] = [true, true, true],
): [Tensor | null, Tensor | null, Tensor | null] {
  const act = attrs.activation;
  let dz = g;
  if (act !== 'none') {
    const pre = attrs.saved?.preActivation;
    if (!pre)
      throw new Error('matmulBackward: the pre-activation value was not saved (was the op recorded with autograd on?)');
    dz = ops.map(act === 'relu' ? 'reluBackward' : act === 'gelu' ? 'geluBackward' : 'geluTanhBackward', [pre, g]);
  }
  // Work on the promoted (≥ 2-D) forms.
  const a2 = a.rank === 1 ? ops.unsqueeze(a, 0) : a;
  const b2 = b.rank === 1 ? ops.unsqueeze(b, 1) : b;
  let dz2 = dz;
  if (a.rank === 1) dz2 = ops.unsqueeze(dz2, b.rank === 1 ? 0 : -2);
  if (b.rank === 1) {
    const prev = dz2;
    dz2 = ops.unsqueeze(dz2, -1);
    if (prev !== dz) prev.dispose();
  }
  const grads: [Tensor | null, Tensor | null, Tensor | null] = [null, null, null];
  if (needs[0]) {
    const bT = ops.transpose(b2, -2, -1);
    const full = matmul(dz2, bT);
    bT.dispose();
    grads[0] = reduceTo(full, a2.shape, a.shape);
  }
  if (needs[1]) {
    const aT = ops.transpose(a2, -2, -1);
    const full = matmul(aT, dz2);
    aT.dispose();
    grads[1] = reduceTo(full, b2.shape, b.shape);
  }
  if (bias && needs[2]) grads[2] = reduceTo(ops.contiguous(dz), bias.shape, bias.shape);
  if (a2 !== a) a2.dispose();
  if (b2 !== b) b2.dispose();
  if (dz2 !== dz) dz2.dispose();
  if (dz !== g) dz.dispose();
  return grads;
}

/**
 * Sums `t` (shape = broadcast of `promoted` with batch dims) down to `promoted`, then reshapes to `shape`; disposes t.
 */
function reduceTo(t: Tensor, promoted: readonly number[], shape: readonly number[]): Tensor {
  const summed = ops.sumTo(t, promoted);
  if (summed !== t) t.dispose();
  if (summed.shape.join() === shape.join()) return summed;
  const out = ops.reshape(summed, shape);
  summed.dispose();
  return out;
}
