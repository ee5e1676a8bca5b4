/// <reference types="@webgpu/types" preserve="true" />
/**
 * @rnagrad/tensor — tensors on WebGPU (Node via Dawn, or a browser) with a float64 CPU twin that
 * serves as the test oracle. `await init()` once, then build tensors and call ops; only readback
 * (`await t.data()`) is asynchronous.
 */
import './methods.js';
export { Tensor, Storage, tidy, keep, liveTensorCount, type Device } from './tensor.js';
export {
  init,
  runtime,
  destroyRuntime,
  hasRuntime,
  Runtime,
  type InitOptions,
  type AdapterDescription,
} from './runtime.js';
export { BufferPool, sizeClass, type PoolStats } from './pool.js';
export { compileAhead, type CompileAheadResult } from './compile-ahead.js';
export * from './ops.js';
export type { DType } from '@rnagrad/kernels-wgsl';
export { untracked } from './op.js';
export * from './softmax.js';
export * from './norm.js';
export * from './scatter.js';
export * from './dropout.js';
export * from './swiglu.js';
export * from './conv.js';
export * from './instance-norm.js';
export { outerConcat, pairwiseLinear } from './pairwise.js';
export * from './optim.js';
export { matmul, linear, matmulBackward, type MatmulOpts, type MatmulAttrs, type MatmulActivation } from './linalg.js';
export {
  attention,
  attentionForward,
  attentionBackward,
  attentionQkv,
  attentionQkvBackward,
  rope,
  ropeBackward,
  composedAttention,
  composedAttentionForward,
  composedAttentionBackward,
  releaseComposedAttentionCache,
  type AttentionOpts,
  type AttentionBackwardOpts,
  type AttentionAttrs,
  type RopeOpts,
} from './attention.js';
