/**
 * The op contract. Every op validates its inputs (`deviceOf`, shape checks), allocates its output
 * (`empty`), runs the kernel on the GPU or its float64 twin on the CPU (`launch`), then reports
 * itself to autograd with `record` — once, with the attrs its gradient rule reads. Tensors a
 * backward needs besides the inputs and the output go in `saved`: `record` keeps them out of
 * `tidy` scopes when autograd takes the op (the graph node then owns and disposes them) and
 * disposes them at once otherwise.
 *
 * `CoreOps` is the one list of the ops this package records, op name → attrs. @rnagrad/autograd
 * types its rule table against it (`{ [K in CoreOp]: GradRule<CoreOps[K]> }`), so a recorded op
 * without a rule, or a rule reading an attr the op does not record, is a compile error. An op
 * defined outside this package declares its entry in `ExtensionOps` by module augmentation, then
 * calls `record` and autograd's `registerRule` with the same type checks (see @rnagrad/models'
 * hierarchical cross-entropy for a worked example).
 */
import {
  type CpuOperand,
  type DType,
  type ElementwiseOpName,
  type GpuOperand,
  type KernelQueue,
  contiguousStrides,
  numel,
} from '@rnagrad/kernels-wgsl';
import type { AttentionAttrs, RopeOpts } from './attention.js';
import type { ConvAttrs } from './conv.js';
import type { InstanceNormAttrs } from './instance-norm.js';
import type { MatmulAttrs } from './linalg.js';
import { runtime } from './runtime.js';
import { type Device, Storage, Tensor, keep } from './tensor.js';

export type TensorLike = Tensor | number;
/** The part of a tensor a kernel operand describes: a view of its storage. */
type ViewSpec = { shape: readonly number[]; strides: readonly number[]; offset: number };

// ---------------------------------------------------------------------------------------------
// Devices, allocation, operands

let defaultDevice: Device = 'gpu';
/** Device used when an op creates a tensor without being told where (default 'gpu'). */
export function setDefaultDevice(device: Device): void {
  defaultDevice = device;
}
export function getDefaultDevice(): Device {
  return defaultDevice;
}

// ---------------------------------------------------------------------------------------------
// Storage and operands

export const BYTES_PER_ELEMENT = 4;

/** A new, uninitialised contiguous tensor. */
export function empty(
  shape: readonly number[],
  dtype: DType = 'f32',
  device: Device = defaultDevice,
  forUpload = false,
): Tensor {
  checkShape('empty', shape);
  const n = numel(shape);
  let storage: Storage;
  if (device === 'gpu') {
    const rt = runtime();
    rt.check('empty');
    storage = new Storage('gpu', n, rt.pool.acquire(n * BYTES_PER_ELEMENT, forUpload), null, rt.pool);
  } else {
    storage = new Storage('cpu', n, null, new Float64Array(n), null);
  }
  return new Tensor(storage, shape, contiguousStrides(shape), 0, dtype);
}

/** The GPU kernel operand for a tensor (or a view of it); refuses tensors over the binding limit. */
export function gpuOperand(op: string, t: Tensor, view: ViewSpec = t): GpuOperand {
  t.assertAlive(op);
  const buffer = t.storage.buffer!;
  const rt = runtime();
  if (buffer.size > rt.bindingLimit) {
    throw new RangeError(
      `${op}: tensor [${t.shape.join(', ')}] occupies ${buffer.size} bytes, more than this device's ` +
        `maxStorageBufferBindingSize (${rt.bindingLimit} bytes); split it into smaller tensors`,
    );
  }
  return { buffer, dtype: t.dtype, shape: view.shape, strides: view.strides, offset: view.offset };
}

/** The CPU-reference operand for a tensor (or a view of it). */
export function cpuOperand(op: string, t: Tensor, view: ViewSpec = t): CpuOperand {
  t.assertAlive(op);
  return { data: t.storage.data!, dtype: t.dtype, shape: view.shape, strides: view.strides, offset: view.offset };
}

/** The device shared by the tensor inputs; throws if they differ or one was disposed. */
export function deviceOf(op: string, inputs: readonly TensorLike[]): Device {
  let device: Device | null = null;
  for (const x of inputs) {
    if (!(x instanceof Tensor)) continue;
    x.assertAlive(op);
    if (device && x.device !== device)
      throw new Error(`${op}: tensors are on different devices (${device} and ${x.device}); move one with .to()`);
    device = x.device;
  }
  return device ?? defaultDevice;
}

/** Sizes must be non-negative integers. */
export function checkShape(op: string, shape: readonly number[]): void {
  for (let d = 0; d < shape.length; d++) {
    const s = shape[d]!;
    if (!Number.isInteger(s) || s < 0)
      throw new RangeError(`${op}: invalid shape [${shape.join(', ')}] (sizes must be non-negative integers)`);
  }
}

/**
 * Runs an op's kernel on `device`: `gpu` gets GPU operands and the queue (after checking that the
 * device is alive and reported no error), `cpu` the float64 twin's operands. The operand makers
 * name `op` in their errors (disposed tensor, tensor over the binding limit).
 */
export function launch(
  op: string,
  device: Device,
  kernels: {
    gpu: (at: (t: Tensor, view?: ViewSpec) => GpuOperand, queue: KernelQueue) => void;
    cpu: (at: (t: Tensor, view?: ViewSpec) => CpuOperand) => void;
  },
): void {
  if (device === 'gpu') {
    const rt = runtime();
    rt.check(op);
    kernels.gpu((t, view) => gpuOperand(op, t, view), rt.queue);
  } else {
    kernels.cpu((t, view) => cpuOperand(op, t, view));
  }
}

/** Refuses non-f32 tensors (the float kernels' inputs). */
export function requireF32(op: string, ...ts: (Tensor | null | undefined)[]): void {
  for (const t of ts)
    if (t && t.dtype !== 'f32')
      throw new TypeError(`${op}: expected an f32 tensor, got ${t.dtype} [${t.shape.join(', ')}]`);
}

export function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((s, d) => s !== b.shape[d])) {
    throw new RangeError(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] must be equal`);
  }
}

// ---------------------------------------------------------------------------------------------
// Recording

/**
 * The elementwise ops with a gradient; the others (comparisons, casts to integers, backward helpers) are not recorded.
 */
export const DIFFERENTIABLE_ELEMENTWISE = [
  'copy',
  'castF32',
  'add',
  'sub',
  'mul',
  'div',
  'pow',
  'maximum',
  'minimum',
  'neg',
  'abs',
  'square',
  'sign',
  'floor',
  'ceil',
  'relu',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'reciprocal',
  'sin',
  'cos',
  'tanh',
  'sigmoid',
  'erf',
  'gelu',
  'geluTanh',
  'silu',
  'elu',
  'where',
] as const satisfies readonly ElementwiseOpName[];
export type DifferentiableElementwise = (typeof DIFFERENTIABLE_ELEMENTWISE)[number];

/** Elementwise attrs: operand k's number, or null where operand k is a tensor. */
export interface ElementwiseAttrs {
  scalars: (number | null)[];
}
export interface ReduceAttrs {
  axes: number[];
  keepdim: boolean;
}
export interface DimAttrs {
  dim: number;
}
export interface NormAttrs {
  eps: number;
  hasWeight: boolean;
  hasBias?: boolean;
  saved?: { mean?: Tensor; rstd: Tensor };
}

/** Every op @rnagrad/tensor records, with the attrs it records. */
export type CoreOps = { [K in DifferentiableElementwise]: ElementwiseAttrs } & {
  sum: ReduceAttrs;
  mean: ReduceAttrs;
  prod: ReduceAttrs;
  max: ReduceAttrs;
  min: ReduceAttrs;
  view: { from: readonly number[]; shape?: readonly number[] };
  permute: { dims: number[] };
  expand: { from: readonly number[] };
  slice: { dim: number; start: number; step: number; inputShape: readonly number[] };
  concat: { dim: number; sizes: number[] };
  gather: DimAttrs;
  indexSelect: DimAttrs;
  softmax: DimAttrs;
  logSoftmax: DimAttrs;
  crossEntropy: {
    reduction: 'mean' | 'sum' | 'none';
    ignoreIndex: number;
    labelSmoothing: number;
    saved?: { targets: Tensor; lse: Tensor; count?: Tensor };
  };
  layerNorm: NormAttrs;
  rmsNorm: NormAttrs;
  embedding: { numEmbeddings: number; paddingIdx: number | null; saved?: { ids: Tensor } };
  indexAdd: { dim: number; saved?: { index: Tensor } };
  dropout: { p: number; saved?: { mask: Tensor } };
  swiglu: Record<string, never>;
  matmul: MatmulAttrs;
  attention: AttentionAttrs;
  attentionQkv: AttentionAttrs;
  rope: Required<RopeOpts>;
  conv1d: ConvAttrs;
  conv2d: ConvAttrs;
  instanceNorm: InstanceNormAttrs;
};
export type CoreOp = keyof CoreOps;

/**
 * Ops defined outside this package, op name → attrs; empty here. A package adds its op by module
 * augmentation, after which `record(name, …)` and autograd's `registerRule(name, …)` check the
 * attrs as they do for a core op:
 *
 *   declare module '@rnagrad/tensor' {
 *     interface ExtensionOps {
 *       myOp: { alpha: number; saved?: { stats: Tensor } };
 *     }
 *   }
 */
export interface ExtensionOps {}

/** Every recorded op: the core ones and those declared in `ExtensionOps`. */
export type RecordedOps = CoreOps & ExtensionOps;
export type RecordedOp = keyof RecordedOps;

type RecordHook = (op: string, inputs: readonly Tensor[], output: Tensor, attrs: Record<string, unknown>) => void;

/**
 * Autograd's tap on the op stream, installed by @rnagrad/autograd: `record` is called after each
 * differentiable op whose inputs require grad, while `gradEnabled` (autograd's `noGrad` clears it).
 */
export const hooks: { record: RecordHook | null; gradEnabled: boolean } = { record: null, gradEnabled: true };

/** Whether an op over `inputs` will be recorded: autograd installed, not under noGrad, an input requires grad. */
export function isRecording(inputs: readonly Tensor[]): boolean {
  return hooks.record !== null && hooks.gradEnabled && inputs.some((t) => t.requiresGrad);
}

type SavedOf<K extends RecordedOp> = RecordedOps[K] extends { saved?: infer S } ? NonNullable<S> : never;
type AttrsWithoutSaved<K extends RecordedOp> = Omit<RecordedOps[K], 'saved'>;

/**
 * Reports op `op` to autograd and returns `output`. `saved` (tensors only the backward needs) is
 * attached as `attrs.saved` and kept for the graph node when autograd takes the op, disposed otherwise.
 */
export function record<K extends RecordedOp>(
  op: K,
  inputs: readonly Tensor[],
  output: Tensor,
  attrs: AttrsWithoutSaved<K>,
  saved?: SavedOf<K> | null,
): Tensor {
  const savedTensors = saved
    ? (Object.values(saved) as (Tensor | null | undefined)[]).filter((t): t is Tensor => !!t)
    : [];
  if (output.dtype === 'f32' && isRecording(inputs)) {
    try {
      hooks.record!(op, inputs, output, (saved ? { ...attrs, saved } : attrs) as Record<string, unknown>);
    } catch (err) {
      for (const t of savedTensors) t.dispose();
      throw err;
    }
  }
  const taken = output.gradNode !== null && output.gradNode !== undefined;
  for (const t of savedTensors) {
    if (taken) keep(t);
    else t.dispose();
  }
  return output;
}

/** Runs `fn` with recording off: the helper ops a fused op is built from are not graph nodes. */
export function untracked<T>(fn: () => T): T {
  const prev = hooks.gradEnabled;
  hooks.gradEnabled = false;
  try {
    return fn();
  } finally {
    hooks.gradEnabled = prev;
  }
}
