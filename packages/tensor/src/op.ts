/**
 * The op contract. Every op validates its inputs, allocates its output, runs the kernel on the GPU
 * or its float64 twin on the CPU, then reports itself to autograd with `record` — once, with the
 * attrs its gradient rule reads. Tensors a backward needs besides the inputs and the output go in
 * `saved`: `record` keeps them out of `tidy` scopes when autograd takes the op (the graph node
 * then owns and disposes them) and disposes them at once otherwise.
 *
 * `RecordedOps` is the one list of recorded ops, op name → attrs. @rnagrad/autograd types its rule
 * table against it (`{ [K in RecordedOp]: GradRule<K> }`), so a recorded op without a rule, or a
 * rule reading an attr the op does not record, is a compile error. Ops added outside this package
 * record under their own names and register their rule with autograd's `defineGradient`.
 */
import type { ElementwiseOpName } from '@rnagrad/kernels-wgsl';
import type { AttentionAttrs, RopeOpts } from './attention.js';
import type { HxeAttrs } from './hxe.js';
import type { MatmulAttrs } from './linalg.js';
import { type Tensor, keep } from './tensor.js';

/** The elementwise ops with a gradient; the others (comparisons, casts to integers, backward helpers) are not recorded. */
export const DIFFERENTIABLE_ELEMENTWISE = [
  'copy', 'castF32', 'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'neg', 'abs', 'square', 'sign', 'floor', 'ceil',
  'relu', 'exp', 'log', 'sqrt', 'rsqrt', 'reciprocal', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'gelu', 'geluTanh', 'silu', 'where',
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
export type RecordedOps = { [K in DifferentiableElementwise]: ElementwiseAttrs } & {
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
  rope: Required<RopeOpts>;
  hxe: HxeAttrs;
};
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
export function record<K extends RecordedOp>(op: K, inputs: readonly Tensor[], output: Tensor, attrs: AttrsWithoutSaved<K>, saved?: SavedOf<K> | null): Tensor {
  const savedTensors = saved ? (Object.values(saved) as (Tensor | null | undefined)[]).filter((t): t is Tensor => !!t) : [];
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

/** Reports an op defined outside this package (its rule registered with autograd's `defineGradient`). */
export function recordExtension(op: string, inputs: readonly Tensor[], output: Tensor, attrs: Record<string, unknown>): Tensor {
  if (output.dtype === 'f32' && isRecording(inputs)) hooks.record!(op, inputs, output, attrs);
  return output;
}
