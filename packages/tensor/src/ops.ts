/**
 * The op layer: every tensor op, defined once over both devices. Each op validates its inputs
 * (errors name the op and the shapes), builds operand views, and calls the kernel from
 * @rnagrad/kernels-wgsl on the GPU or its float64 reference on the CPU. Differentiable ops report
 * themselves to `hooks.record`, which @rnagrad/autograd installs.
 */
import {
  type DType,
  type ElementwiseOpName,
  type ReduceOpName,
  type IndexCheck,
  type ScalarOperand,
  ELEMENTWISE_OPS,
  INDEX_ERROR_BYTES,
  checkIndicesCpu,
  checkIndicesGpu,
  contiguousStrides,
  elementwiseCpu,
  elementwiseGpu,
  elementwiseTypes,
  encodeIndexErrorRead,
  gatherBackwardCpu,
  gatherBackwardGpu,
  gatherCpu,
  gatherGpu,
  indexErrorFrom,
  numel,
  reduceCpu,
  reduceGpu,
  reduceOutType,
  seedKey,
} from '@rnagrad/kernels-wgsl';
import { type Device, Tensor } from './tensor.js';
import { hasRuntime, runtime } from './runtime.js';
import {
  BYTES_PER_ELEMENT,
  DIFFERENTIABLE_ELEMENTWISE,
  type DifferentiableElementwise,
  type TensorLike,
  checkShape,
  deviceOf,
  empty,
  getDefaultDevice,
  isRecording,
  launch,
  record,
} from './op.js';

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
}

export {
  type TensorLike,
  cpuOperand,
  deviceOf,
  empty,
  getDefaultDevice,
  gpuOperand,
  launch,
  setDefaultDevice,
} from './op.js';
export {
  hooks,
  isRecording,
  record,
  type CoreOp,
  type CoreOps,
  type DimAttrs,
  type ElementwiseAttrs,
  type ExtensionOps,
  type NormAttrs,
  type RecordedOp,
  type RecordedOps,
  type ReduceAttrs,
} from './op.js';

// ---------------------------------------------------------------------------------------------
// Shapes

export function normalizeDim(op: string, dim: number, rank: number): number {
  const d = dim < 0 ? dim + rank : dim;
  if (!Number.isInteger(d) || d < 0 || d >= rank)
    throw new RangeError(`${op}: dim ${dim} is out of range for a tensor of rank ${rank}`);
  return d;
}

export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (let i = 1; i <= rank; i++) {
    for (const s of shapes) {
      const size = s[s.length - i];
      if (size === undefined || size === 1) continue;
      const cur = out[rank - i]!;
      if (cur !== 1 && cur !== size) {
        throw new RangeError(
          `${op}: shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(' and ')} cannot be broadcast (dim ${-i}: ` +
            `${cur} vs ${size})`,
        );
      }
      out[rank - i] = size;
    }
  }
  return out;
}

/** Strides that view `t` as `shape` (which `t.shape` broadcasts to): broadcast dims get stride 0. */
function broadcastStrides(t: Tensor, shape: readonly number[]): number[] {
  const lead = shape.length - t.rank;
  return shape.map((size, d) => {
    if (d < lead) return 0;
    return t.shape[d - lead] === 1 && size !== 1 ? 0 : t.strides[d - lead]!;
  });
}

// ---------------------------------------------------------------------------------------------
// Elementwise

function scalarOperand(value: number, tensorTypes: DType[]): ScalarOperand {
  const integral = Number.isInteger(value) && tensorTypes.length > 0 && tensorTypes.every((t) => t !== 'f32');
  return { value, dtype: integral ? 'i32' : 'f32' };
}

/** Runs an elementwise op into `out` (any view), broadcasting inputs to out's shape. */
function mapInto(name: ElementwiseOpName, out: Tensor, inputs: readonly (Tensor | ScalarOperand)[]): void {
  const op = ELEMENTWISE_OPS[name];
  const broadcast = (x: Tensor) => ({ shape: out.shape, strides: broadcastStrides(x, out.shape), offset: x.offset });
  launch(name, out.device, {
    gpu: (at, queue) =>
      elementwiseGpu(
        queue,
        op,
        at(out),
        inputs.map((x) => (x instanceof Tensor ? at(x, broadcast(x)) : x)),
      ),
    cpu: (at) =>
      elementwiseCpu(
        op,
        at(out),
        inputs.map((x) => (x instanceof Tensor ? at(x, broadcast(x)) : x)),
      ),
  });
}

/** Elementwise op over tensors and numbers, with broadcasting and dtype promotion. */
export function map(name: ElementwiseOpName, inputs: readonly TensorLike[]): Tensor {
  const device = deviceOf(name, inputs);
  const tensors = inputs.filter((x): x is Tensor => x instanceof Tensor);
  const tensorTypes = tensors.map((t) => t.dtype);
  const operands = inputs.map((x) => (x instanceof Tensor ? x : scalarOperand(x, tensorTypes)));
  const shape = broadcastShapes(name, ...tensors.map((t) => t.shape));
  const { out: dtype } = elementwiseTypes(
    ELEMENTWISE_OPS[name],
    operands.map((x) => x.dtype),
  );
  const out = empty(shape, dtype, device);
  mapInto(name, out, operands);
  if (!isDifferentiable(name)) {
    if (dtype === 'f32' && isRecording(tensors)) {
      out.dispose();
      throw new Error(
        `${name}: has no gradient (an input requires grad); wrap the call in noGrad() or detach the input`,
      );
    }
    return out;
  }
  // `scalars[k]` is operand k's number, or null where operand k is a tensor (autograd needs the positions).
  return record(name, tensors, out, { scalars: inputs.map((x) => (typeof x === 'number' ? x : null)) });
}

function isDifferentiable(name: ElementwiseOpName): name is DifferentiableElementwise {
  return (DIFFERENTIABLE_ELEMENTWISE as readonly string[]).includes(name);
}

const unary = (name: ElementwiseOpName) => (x: Tensor) => map(name, [x]);
const binary = (name: ElementwiseOpName) => (a: TensorLike, b: TensorLike) => map(name, [a, b]);

export const neg = unary('neg');
export const abs = unary('abs');
export const square = unary('square');
export const sign = unary('sign');
export const relu = unary('relu');
export const exp = unary('exp');
export const log = unary('log');
export const sqrt = unary('sqrt');
export const rsqrt = unary('rsqrt');
export const reciprocal = unary('reciprocal');
export const sin = unary('sin');
export const cos = unary('cos');
export const tanh = unary('tanh');
export const sigmoid = unary('sigmoid');
export const floor = unary('floor');
export const ceil = unary('ceil');
export const erf = unary('erf');
export const gelu = unary('gelu');
export const geluTanh = unary('geluTanh');
export const silu = unary('silu');
/** ELU: x for x > 0, alpha·(eˣ − 1) otherwise (PyTorch's default alpha 1). Records 'elu' (an elementwise op). */
export const elu = (x: Tensor, alpha = 1): Tensor => map('elu', [x, alpha]);
export const logicalNot = unary('logicalNot');
/** 1 (bool) where x is NaN. */
export const isnan = unary('isnan');
export const add = binary('add');
export const sub = binary('sub');
export const mul = binary('mul');
export const div = binary('div');
export const pow = binary('pow');
export const maximum = binary('maximum');
export const minimum = binary('minimum');
export const eq = binary('eq');
export const ne = binary('ne');
export const lt = binary('lt');
export const le = binary('le');
export const gt = binary('gt');
export const ge = binary('ge');
export const logicalAnd = binary('logicalAnd');
export const logicalOr = binary('logicalOr');

/** where(cond, a, b): a where cond is true (non-zero), else b; all three broadcast. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  return map('where', [cond, a, b]);
}

export function cast(x: Tensor, dtype: DType): Tensor {
  const name = dtype === 'f32' ? 'castF32' : dtype === 'i32' ? 'castI32' : 'castBool';
  return map(name, [x]);
}

/** Copies `x` into a new contiguous tensor. */
export function clone(x: Tensor): Tensor {
  return map('copy', [x]);
}

/** `x` itself (a new handle) if already contiguous, else a contiguous copy. */
export function contiguous(x: Tensor): Tensor {
  x.assertAlive('contiguous');
  if (x.isContiguous) return record('view', [x], x.view(x.shape, x.strides), { from: x.shape });
  return clone(x);
}

/** Writes `src` (broadcast) into the view `dst` in place. Not differentiable. */
export function assign(dst: Tensor, src: TensorLike): Tensor {
  deviceOf('assign', [dst, src]);
  if (src instanceof Tensor) broadcastShapes('assign', dst.shape, src.shape);
  mapInto('copy', dst, [src instanceof Tensor ? src : { value: src, dtype: dst.dtype === 'f32' ? 'f32' : 'i32' }]);
  return dst;
}

// ---------------------------------------------------------------------------------------------
// Creation

type Nested = number | boolean | readonly Nested[];

function flatten(values: Nested, shape: number[], depth: number, out: number[]): void {
  if (Array.isArray(values)) {
    if (shape.length <= depth) shape.push(values.length);
    else if (shape[depth] !== values.length)
      throw new RangeError(
        `tensor: ragged nested array (expected length ${shape[depth]} at depth ${depth}, got ${values.length})`,
      );
    for (const v of values) flatten(v as Nested, shape, depth + 1, out);
  } else {
    if (depth !== shape.length)
      throw new RangeError('tensor: ragged nested array (a number where an array was expected)');
    out.push(Number(values));
  }
}

/**
 * Creates a tensor from nested arrays or a flat typed array. Without `shape`, nested arrays give
 * it; a flat array becomes 1-D. dtype defaults to i32 for Int32Array, bool for Uint8Array, else f32.
 */
export function tensor(
  values: Nested | ArrayLike<number>,
  opts: CreateOptions & { shape?: readonly number[] } = {},
): Tensor {
  let flat: ArrayLike<number>;
  let shape: number[];
  if (typeof values === 'number' || typeof values === 'boolean' || Array.isArray(values)) {
    const out: number[] = [];
    shape = [];
    flatten(values as Nested, shape, 0, out);
    flat = out;
  } else {
    flat = values as ArrayLike<number>;
    shape = [flat.length];
  }
  if (opts.shape) {
    checkShape('tensor', opts.shape);
    if (numel(opts.shape) !== flat.length)
      throw new RangeError(`tensor: ${flat.length} values do not fill shape [${opts.shape.join(', ')}]`);
    shape = [...opts.shape];
  }
  const dtype = opts.dtype ?? (values instanceof Int32Array ? 'i32' : values instanceof Uint8Array ? 'bool' : 'f32');
  const out = empty(shape, dtype, opts.device ?? getDefaultDevice(), true);
  upload(out, flat);
  return out;
}

function upload(t: Tensor, values: ArrayLike<number>): void {
  if (t.device === 'cpu') {
    const data = t.storage.data!;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      data[i] = t.dtype === 'f32' ? Math.fround(v) : t.dtype === 'bool' ? (v ? 1 : 0) : v | 0;
    }
    return;
  }
  if (values.length === 0) return;
  const words =
    t.dtype === 'f32'
      ? Float32Array.from(values)
      : Int32Array.from(values, (v) => (t.dtype === 'bool' ? (v ? 1 : 0) : v | 0));
  // Safe without a flush: `empty(..., forUpload)` never hands out a buffer that unsubmitted commands use.
  runtime().device.queue.writeBuffer(t.storage.buffer!, 0, words.buffer, words.byteOffset, words.byteLength);
}

export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  const dtype = opts.dtype ?? 'f32';
  const out = empty(shape, dtype, opts.device ?? getDefaultDevice());
  mapInto('copy', out, [{ value, dtype: dtype === 'f32' ? 'f32' : 'i32' }]);
  return out;
}
export const zeros = (shape: readonly number[], opts: CreateOptions = {}) => full(shape, 0, opts);
export const ones = (shape: readonly number[], opts: CreateOptions = {}) => full(shape, 1, opts);
export const zerosLike = (x: Tensor) => full(x.shape, 0, { dtype: x.dtype, device: x.device });
export const onesLike = (x: Tensor) => full(x.shape, 1, { dtype: x.dtype, device: x.device });

/** Values start, start+step, … below end (above, for negative step); i32 when all three are integers. */
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new RangeError('arange: step must not be 0');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dtype = opts.dtype ?? (Number.isInteger(start) && Number.isInteger(step) ? 'i32' : 'f32');
  const out = empty([n], dtype, opts.device ?? getDefaultDevice(), dtype !== 'f32');
  if (dtype === 'f32')
    mapInto('arange', out, [
      { value: start, dtype: 'f32' },
      { value: step, dtype: 'f32' },
    ]);
  else
    upload(
      out,
      Array.from({ length: n }, (_, i) => start + i * step),
    );
  return out;
}

/** The counter-based generator: a key from the seed and a running counter, shared by both devices. */
const generator = { key: seedKey(0), counter: 0 };

/** Resets the random stream: the same seed gives the same numbers on GPU, CPU and in browsers. */
export function manualSeed(seed: number): void {
  generator.key = seedKey(seed);
  generator.counter = 0;
}

/** Runs `fn` and puts the global random stream back where it was: tracing a step must not shift the run's numbers. */
export function keepRandomStream<R>(fn: () => R): R {
  const saved = { ...generator };
  try {
    return fn();
  } finally {
    Object.assign(generator, saved);
  }
}

/** Reserves `n` counters of the global stream (or of a fresh stream for an explicit seed). */
export function takeCounters(n: number, seed?: number): { key: number; base: number } {
  if (seed !== undefined) return { key: seedKey(seed), base: 0 };
  const base = generator.counter;
  generator.counter = (generator.counter + n) >>> 0;
  return { key: generator.key, base };
}

/**
 * Fills a new tensor of `shape` with a generator op whose operands are all scalars
 * (e.g. `generate('dropoutMask', [n], [key, base, p])`); the op sees the linear index.
 */
export function generate(
  name: ElementwiseOpName,
  shape: readonly number[],
  scalars: readonly ScalarOperand[],
  opts: CreateOptions = {},
): Tensor {
  const op = ELEMENTWISE_OPS[name];
  const out = empty(
    shape,
    opts.dtype ??
      elementwiseTypes(
        op,
        scalars.map((s) => s.dtype),
      ).out,
    opts.device ?? getDefaultDevice(),
  );
  mapInto(name, out, scalars);
  return out;
}

function random(
  name: 'randUniform' | 'randNormal',
  shape: readonly number[],
  opts: CreateOptions & { seed?: number },
): Tensor {
  const { key, base } = takeCounters(numel(shape), opts.seed);
  return generate(
    name,
    shape,
    [
      { value: key | 0, dtype: 'i32' },
      { value: base | 0, dtype: 'i32' },
    ],
    { device: opts.device },
  );
}
/** Uniform [0, 1) floats. */
export const rand = (shape: readonly number[], opts: CreateOptions & { seed?: number } = {}) =>
  random('randUniform', shape, opts);
/** Standard normal floats (Box–Muller). */
export const randn = (shape: readonly number[], opts: CreateOptions & { seed?: number } = {}) =>
  random('randNormal', shape, opts);

/** Copies a tensor to another device (a new contiguous tensor). */
export async function to(x: Tensor, device: Device): Promise<Tensor> {
  if (x.device === device) return clone(x);
  const values = await dataF64(x);
  return tensor(values, { shape: x.shape, dtype: x.dtype, device });
}

// ---------------------------------------------------------------------------------------------
// Views (no copies)

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x.assertAlive('reshape');
  const resolved = [...shape];
  const free = resolved.indexOf(-1);
  if (free !== resolved.lastIndexOf(-1)) throw new RangeError(`reshape: more than one -1 in [${shape.join(', ')}]`);
  if (free >= 0) {
    const known = numel(resolved.filter((_, i) => i !== free));
    resolved[free] = known === 0 ? 0 : x.size / known;
  }
  checkShape('reshape', resolved);
  if (numel(resolved) !== x.size)
    throw new RangeError(
      `reshape: cannot reshape [${x.shape.join(', ')}] (${x.size} elements) to [${shape.join(', ')}]`,
    );
  const base = x.isContiguous ? x : clone(x);
  const out = base.view(resolved, contiguousStrides(resolved), base.offset);
  if (base !== x) base.dispose();
  return record('view', [x], out, { from: x.shape });
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  x.assertAlive('permute');
  const norm = dims.map((d) => normalizeDim('permute', d, x.rank));
  if (norm.length !== x.rank || new Set(norm).size !== norm.length)
    throw new RangeError(`permute: [${dims.join(', ')}] is not a permutation of ${x.rank} dims`);
  return record(
    'permute',
    [x],
    x.view(
      norm.map((d) => x.shape[d]!),
      norm.map((d) => x.strides[d]!),
    ),
    { dims: norm },
  );
}

export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const a = normalizeDim('transpose', dim0, x.rank);
  const b = normalizeDim('transpose', dim1, x.rank);
  const dims = x.shape.map((_, d) => (d === a ? b : d === b ? a : d));
  return permute(x, dims);
}

/** Elements start..end-1 (step apart) along `dim`; negative start/end count from the end. */
export function slice(x: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  x.assertAlive('slice');
  const d = normalizeDim('slice', dim, x.rank);
  const size = x.shape[d]!;
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`slice: step must be a positive integer, got ${step}`);
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
  const s = clamp(start);
  const e = Math.max(s, clamp(end ?? size));
  const len = Math.ceil((e - s) / step);
  const shape = x.shape.map((v, k) => (k === d ? len : v));
  const strides = x.strides.map((v, k) => (k === d ? v * step : v));
  return record('slice', [x], x.view(shape, strides, x.offset + s * x.strides[d]!), {
    dim: d,
    start: s,
    step,
    inputShape: x.shape,
  });
}

/** `length` elements from `start` along `dim` (start must be in range). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normalizeDim('narrow', dim, x.rank);
  if (start < 0 || length < 0 || start + length > x.shape[d]!) {
    throw new RangeError(
      `narrow: [${start}, ${start + length}) is outside dim ${dim} of size ${x.shape[d]} (shape ` +
        `[${x.shape.join(', ')}])`,
    );
  }
  return slice(x, d, start, start + length);
}

/** Broadcasts size-1 dims (and new leading dims) to `shape` without copying: stride 0. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  x.assertAlive('expand');
  const lead = shape.length - x.rank;
  const resolved = shape.map((s, d) => (s === -1 && d >= lead ? x.shape[d - lead]! : s));
  if (lead < 0 || resolved.some((s, d) => d >= lead && x.shape[d - lead] !== 1 && x.shape[d - lead] !== s)) {
    throw new RangeError(`expand: cannot expand [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  checkShape('expand', resolved);
  return record('expand', [x], x.view(resolved, broadcastStrides(x, resolved)), { from: x.shape });
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  x.assertAlive('squeeze');
  const drop =
    dim === undefined
      ? x.shape.map((s, d) => (s === 1 ? d : -1)).filter((d) => d >= 0)
      : [normalizeDim('squeeze', dim, x.rank)].filter((d) => x.shape[d] === 1);
  const keepDims = x.shape.map((_, d) => d).filter((d) => !drop.includes(d));
  return record(
    'view',
    [x],
    x.view(
      keepDims.map((d) => x.shape[d]!),
      keepDims.map((d) => x.strides[d]!),
    ),
    { from: x.shape },
  );
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  x.assertAlive('unsqueeze');
  const d = normalizeDim('unsqueeze', dim, x.rank + 1);
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < x.rank ? x.strides[d]! * x.shape[d]! : 1);
  return record('view', [x], x.view(shape, strides), { from: x.shape });
}

export function flattenDims(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.rank === 0) return reshape(x, [1]);
  const s = normalizeDim('flatten', startDim, x.rank);
  const e = normalizeDim('flatten', endDim, x.rank);
  return reshape(x, [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

// ---------------------------------------------------------------------------------------------
// Joining

export function concat(xs: readonly Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new RangeError('concat: needs at least one tensor');
  const device = deviceOf('concat', xs);
  const first = xs[0]!;
  const d = normalizeDim('concat', dim, first.rank);
  for (const t of xs) {
    if (t.rank !== first.rank || t.shape.some((s, k) => k !== d && s !== first.shape[k])) {
      throw new RangeError(
        `concat: shapes ${xs.map((x) => `[${x.shape.join(', ')}]`).join(', ')} differ outside dim ${dim}`,
      );
    }
    if (t.dtype !== first.dtype)
      throw new TypeError(`concat: dtypes differ (${first.dtype} and ${t.dtype}); cast first`);
  }
  const shape = first.shape.map((s, k) => (k === d ? xs.reduce((acc, t) => acc + t.shape[d]!, 0) : s));
  const out = empty(shape, first.dtype, device);
  let offset = 0;
  for (const t of xs) {
    const part = slice(out, d, offset, offset + t.shape[d]!);
    mapInto('copy', part, [t]);
    part.dispose();
    offset += t.shape[d]!;
  }
  return record('concat', xs, out, { dim: d, sizes: xs.map((t) => t.shape[d]!) });
}

export function stack(xs: readonly Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new RangeError('stack: needs at least one tensor');
  for (const t of xs) {
    if (t.shape.length !== xs[0]!.rank || t.shape.some((s, k) => s !== xs[0]!.shape[k])) {
      throw new RangeError(`stack: shapes ${xs.map((x) => `[${x.shape.join(', ')}]`).join(', ')} must all be equal`);
    }
  }
  const parts = xs.map((t) => unsqueeze(t, normalizeDim('stack', dim, t.rank + 1)));
  const out = concat(parts, dim);
  for (const p of parts) p.dispose();
  return out;
}

/** Splits `x` into views of `size` along `dim` (the last may be smaller). */
export function split(x: Tensor, size: number, dim = 0): Tensor[] {
  const d = normalizeDim('split', dim, x.rank);
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`split: size must be a positive integer, got ${size}`);
  const parts: Tensor[] = [];
  for (let s = 0; s < x.shape[d]!; s += size) parts.push(narrow(x, d, s, Math.min(size, x.shape[d]! - s)));
  return parts;
}

// ---------------------------------------------------------------------------------------------
// Indexing

/** out[…, i, …] = x[…, index[…, i, …], …] along `dim`; index has x's rank (PyTorch's gather). */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const device = deviceOf('gather', [x, index]);
  const d = normalizeDim('gather', dim, x.rank);
  if (index.dtype !== 'i32') throw new TypeError(`gather: index must be i32, got ${index.dtype}`);
  if (index.rank !== x.rank || index.shape.some((s, k) => k !== d && s > x.shape[k]!)) {
    throw new RangeError(
      `gather: index [${index.shape.join(', ')}] does not fit input [${x.shape.join(', ')}] along dim ${dim}`,
    );
  }
  checkIndices(index, { op: 'gather', size: x.shape[d]! });
  const out = empty(index.shape, x.dtype, device);
  runGather(out, x, index, d);
  return record('gather', [x, index], out, { dim: d });
}

/** gather's gradient: dy (index's shape) scatter-added along `dim` into zeros of `inputShape`, deterministically. */
export function gatherBackward(dy: Tensor, dim: number, index: Tensor, inputShape: readonly number[]): Tensor {
  const device = deviceOf('gatherBackward', [dy, index]);
  const d = normalizeDim('gatherBackward', dim, inputShape.length);
  if (dy.shape.length !== index.rank || dy.shape.some((s, k) => s !== index.shape[k])) {
    throw new RangeError(
      `gatherBackward: dy [${dy.shape.join(', ')}] must have the index's shape [${index.shape.join(', ')}]`,
    );
  }
  const dx = empty(inputShape, 'f32', device);
  launch('gatherBackward', device, {
    gpu: (at, queue) => gatherBackwardGpu(queue, at(dx), at(dy), at(index), d),
    cpu: (at) => gatherBackwardCpu(at(dx), at(dy), at(index), d),
  });
  return dx;
}

/** Rows (slices along `dim`) of `x` picked by a 1-D i32 index: embedding lookup is indexSelect(table, 0, ids). */
export function indexSelect(x: Tensor, dim: number, index: Tensor, opts: { op?: string } = {}): Tensor {
  const device = deviceOf('indexSelect', [x, index]);
  const d = normalizeDim('indexSelect', dim, x.rank);
  if (index.dtype !== 'i32' || index.rank !== 1)
    throw new TypeError(`indexSelect: index must be a 1-D i32 tensor, got ${index.dtype} [${index.shape.join(', ')}]`);
  checkIndices(index, { op: opts.op ?? 'indexSelect', size: x.shape[d]! });
  const shape = x.shape.map((s, k) => (k === d ? index.shape[0]! : s));
  const out = empty(shape, x.dtype, device);
  const indexView = index.view(
    shape,
    shape.map((_, k) => (k === d ? index.strides[0]! : 0)),
    index.offset,
  );
  runGather(out, x, indexView, d);
  indexView.dispose();
  return record('indexSelect', [x, index], out, { dim: d });
}

/**
 * Checks that every element of the i32 tensor `index` is in [0, check.size) (or check.ignore). On
 * the CPU it throws now; on the GPU a kernel flags the first bad index and the next readback
 * throws (`data()`, `item()`), naming `check.op`, the value and the range.
 */
export function checkIndices(index: Tensor, check: IndexCheck): void {
  const flat = index.isContiguous ? index : clone(index);
  launch(check.op, flat.device, {
    gpu: (at, queue) => checkIndicesGpu(queue, at(flat), check),
    cpu: (at) => checkIndicesCpu(at(flat), check),
  });
  if (flat !== index) flat.dispose();
}

function runGather(out: Tensor, x: Tensor, index: Tensor, dim: number): void {
  launch('gather', out.device, {
    gpu: (at, queue) => gatherGpu(queue, at(out), at(x), at(index), dim),
    cpu: (at) => gatherCpu(at(out), at(x), at(index), dim),
  });
}

// ---------------------------------------------------------------------------------------------
// Reductions

function normalizeAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, d) => d);
  const list = (typeof axes === 'number' ? [axes] : [...axes]).map((a) => normalizeDim(op, a, rank));
  if (new Set(list).size !== list.length) throw new RangeError(`${op}: repeated axis in [${list.join(', ')}]`);
  return list.sort((a, b) => a - b);
}

function reduce(op: ReduceOpName, x: Tensor, axes: number | readonly number[] | undefined, keepdim: boolean): Tensor {
  const device = deviceOf(op, [x]);
  const list = normalizeAxes(op, axes, x.rank);
  const reducedCount = numel(list.map((d) => x.shape[d]!));
  if (reducedCount === 0 && op !== 'sum' && op !== 'prod') {
    throw new RangeError(
      `${op}: cannot reduce zero elements (shape [${x.shape.join(', ')}], axes [${list.join(', ')}])`,
    );
  }
  const keptShape = x.shape.filter((_, d) => !list.includes(d));
  const out = empty(keptShape, reduceOutType(op, x.dtype), device);
  launch(op, device, {
    gpu: (at, queue) => reduceGpu(queue, op, at(out), at(x), list),
    cpu: (at) => reduceCpu(op, at(out), at(x), list),
  });
  let result = out;
  if (keepdim) {
    result = out.view(x.shape.map((s, d) => (list.includes(d) ? 1 : s)));
    out.dispose();
  }
  // Indices (argmax, argmin) have no gradient.
  return op === 'argmax' || op === 'argmin' ? result : record(op, [x], result, { axes: list, keepdim });
}

export const sum = (x: Tensor, axes?: number | readonly number[], keepdim = false) => reduce('sum', x, axes, keepdim);
export const mean = (x: Tensor, axes?: number | readonly number[], keepdim = false) => reduce('mean', x, axes, keepdim);
export const prod = (x: Tensor, axes?: number | readonly number[], keepdim = false) => reduce('prod', x, axes, keepdim);
export const max = (x: Tensor, axes?: number | readonly number[], keepdim = false) => reduce('max', x, axes, keepdim);
export const min = (x: Tensor, axes?: number | readonly number[], keepdim = false) => reduce('min', x, axes, keepdim);
/** Index of the largest value along `axis` (first on ties); over all elements (flattened) when omitted. */
export function argmax(x: Tensor, axis?: number, keepdim = false): Tensor {
  return reduce('argmax', x, axis, keepdim);
}
export function argmin(x: Tensor, axis?: number, keepdim = false): Tensor {
  return reduce('argmin', x, axis, keepdim);
}

/** Sums `x` down to `shape` (the inverse of broadcasting): used by gradients of broadcast ops. */
export function sumTo(x: Tensor, shape: readonly number[]): Tensor {
  const lead = x.rank - shape.length;
  const axes = x.shape.map((_, d) => d).filter((d) => d < lead || (shape[d - lead] === 1 && x.shape[d] !== 1));
  if (axes.length === 0) return reshape(x, shape);
  const s = sum(x, axes, true);
  const out = reshape(s, shape);
  s.dispose();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Readback

/** Reads the tensor's values (row-major) as float64, from either device. */
export async function dataF64(x: Tensor): Promise<Float64Array> {
  x.assertAlive('data');
  if (x.device === 'cpu') {
    const out = new Float64Array(x.size);
    let i = 0;
    const c = contiguousCpu(x);
    for (; i < out.length; i++) out[i] = c[i]!;
    return out;
  }
  const raw = await readGpu(x);
  return Float64Array.from(x.dtype === 'f32' ? new Float32Array(raw) : new Int32Array(raw));
}

/** Reads the values as the dtype's natural typed array: Float32Array, Int32Array or Uint8Array (bool). */
export async function data(x: Tensor): Promise<Float32Array | Int32Array | Uint8Array> {
  x.assertAlive('data');
  if (x.device === 'cpu') {
    const c = contiguousCpu(x);
    return x.dtype === 'f32' ? Float32Array.from(c) : x.dtype === 'i32' ? Int32Array.from(c) : Uint8Array.from(c);
  }
  const raw = await readGpu(x);
  return x.dtype === 'f32'
    ? new Float32Array(raw)
    : x.dtype === 'i32'
      ? new Int32Array(raw)
      : Uint8Array.from(new Int32Array(raw));
}

/** The single value of a one-element tensor. */
export async function item(x: Tensor): Promise<number> {
  if (x.size !== 1) throw new RangeError(`item: tensor has ${x.size} elements, not 1 (shape [${x.shape.join(', ')}])`);
  return (await dataF64(x))[0]!;
}

function contiguousCpu(x: Tensor): Float64Array {
  const out = empty(x.shape, x.dtype, 'cpu');
  mapInto('copy', out, [x]);
  const values = out.storage.data!;
  out.dispose();
  return values;
}

async function readGpu(x: Tensor): Promise<ArrayBuffer> {
  const rt = runtime();
  rt.check('data');
  const src = x.isContiguous ? x : clone(x);
  const bytes = x.size * BYTES_PER_ELEMENT;
  if (bytes === 0) {
    if (src !== x) src.dispose();
    return new ArrayBuffer(0);
  }
  // The index-check flag rides along: an out-of-range index found by earlier GPU work throws here.
  const staging = rt.device.createBuffer({
    size: bytes + INDEX_ERROR_BYTES,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  rt.queue.copy(src.storage.buffer!, src.offset * BYTES_PER_ELEMENT, staging, 0, bytes);
  const flagged = encodeIndexErrorRead(rt.queue, staging, bytes);
  if (src !== x) src.dispose();
  rt.queue.flush();
  try {
    await staging.mapAsync(GPUMapMode.READ);
  } catch (err) {
    staging.destroy();
    rt.check('data');
    throw new Error(`data: reading the tensor back from the GPU failed: ${(err as Error).message}`);
  }
  const mapped = staging.getMappedRange();
  const result = mapped.slice(0, bytes);
  const indexError = flagged ? indexErrorFrom(rt.queue, new Int32Array(mapped, bytes, INDEX_ERROR_BYTES / 4)) : null;
  staging.unmap();
  staging.destroy();
  rt.check('data');
  if (indexError) throw indexError;
  return result;
}

/** Whether GPU ops can run now (init() done and the device alive). */
export function gpuReady(): boolean {
  return hasRuntime() && !runtime().isLost;
}
