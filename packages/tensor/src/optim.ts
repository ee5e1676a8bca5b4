/** Optimizer steps over lists of tensors (kernels-wgsl optim.ts): in place, never recorded. */
import {
  type AdamWOptions,
  adamwCpu,
  adamwGpu,
  clipGradNormCpu,
  clipGradNormGpu,
  gradNormCpu,
  gradNormGpu,
  gradNormScratchBytes,
} from '@rnagrad/kernels-wgsl';
import * as ops from './ops.js';
import { deviceOf, empty, launch } from './ops.js';
import { requireF32 } from './op.js';
import type { Tensor } from './tensor.js';

export interface AdamWStepOptions extends Omit<AdamWOptions, 'weightDecay'> {
  /** One value for all, or one per parameter (e.g. 0 for biases and norms). Default 0.01. */
  weightDecay?: number | readonly number[];
}

/**
 * One AdamW step (PyTorch semantics: decoupled decay, bias correction) over every parameter, in
 * place: param, m and v are updated; grads are read. All tensors must be contiguous and f32.
 */
export function adamwStep(
  params: readonly Tensor[],
  grads: readonly Tensor[],
  ms: readonly Tensor[],
  vs: readonly Tensor[],
  opts: AdamWStepOptions,
): void {
  const op = 'adamwStep';
  if (grads.length !== params.length || ms.length !== params.length || vs.length !== params.length) {
    throw new RangeError(
      `${op}: params, grads, ms and vs must have the same length (${params.length}, ${grads.length}, ${ms.length}, ` +
        `${vs.length})`,
    );
  }
  if (params.length === 0) return;
  const all = [...params, ...grads, ...ms, ...vs];
  const device = deviceOf(op, all);
  for (const t of all) {
    requireF32(op, t);
    if (!t.isContiguous)
      throw new RangeError(`${op}: tensors must be contiguous (got a view of shape [${t.shape.join(', ')}])`);
  }
  const wd = (k: number) =>
    typeof opts.weightDecay === 'number' || opts.weightDecay === undefined ? opts.weightDecay : opts.weightDecay[k];
  const kopts: AdamWOptions = { ...opts, weightDecay: undefined };
  launch(op, device, {
    gpu: (at, queue) =>
      adamwGpu(
        queue,
        params.map((p, k) => ({ param: at(p), grad: at(grads[k]!), m: at(ms[k]!), v: at(vs[k]!), weightDecay: wd(k) })),
        kopts,
      ),
    cpu: (at) =>
      adamwCpu(
        params.map((p, k) => ({ param: at(p), grad: at(grads[k]!), m: at(ms[k]!), v: at(vs[k]!), weightDecay: wd(k) })),
        kopts,
      ),
  });
}

function normInputs(op: string, grads: readonly Tensor[]): 'gpu' | 'cpu' {
  const device = grads.length ? deviceOf(op, grads) : ops.getDefaultDevice();
  for (const t of grads) {
    requireF32(op, t);
    if (!t.isContiguous) throw new RangeError(`${op}: gradients must be contiguous`);
  }
  return device;
}

/** The global L2 norm of all gradients as a shape-[] tensor (deterministic; no readback). */
export function gradNorm(grads: readonly Tensor[]): Tensor {
  return normOp('gradNorm', grads, null);
}

/**
 * Clips in place so the global norm is at most `maxNorm`: every grad *= min(1, maxNorm/(norm+1e-6)),
 * with the coefficient computed on the GPU. Returns the norm before clipping (shape []).
 */
export function clipGradNorm(grads: readonly Tensor[], maxNorm: number): Tensor {
  return normOp('clipGradNorm', grads, maxNorm);
}

/** The norm of `grads`, clipping them to `maxNorm` unless it is null. */
function normOp(op: string, grads: readonly Tensor[], maxNorm: number | null): Tensor {
  const device = normInputs(op, grads);
  const norm = empty([], 'f32', device);
  launch(op, device, {
    gpu: (at, queue) => {
      const operands = grads.map((t) => at(t));
      const scratch = empty([gradNormScratchBytes(operands) / 4], 'f32', 'gpu');
      const opts = { scratch: scratch.storage.buffer! };
      if (maxNorm === null) gradNormGpu(queue, at(norm), operands, opts);
      else clipGradNormGpu(queue, at(norm), operands, maxNorm, opts);
      scratch.dispose();
    },
    cpu: (at) => {
      const operands = grads.map((t) => at(t));
      if (maxNorm === null) gradNormCpu(at(norm), operands);
      else clipGradNormCpu(at(norm), operands, maxNorm);
    },
  });
  return norm;
}
