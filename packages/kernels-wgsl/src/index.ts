/// <reference types="@webgpu/types" preserve="true" />
/**
 * @rnagrad/kernels-wgsl — WGSL compute kernels with their launch code on a plain GPUDevice and a
 * float64 CPU reference beside each one.
 */
export * from './queue.js';
export * from './layout.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './gather.js';
export * from './index-check.js';
export * from './random.js';
export * from './math.js';
export * from './rows.js';
export * from './softmax.js';
export * from './norm.js';
export * from './optim.js';
export * from './scatter.js';
export * from './hxe.js';
export * from './matmul.js';
export * from './attention.js';
export * from './rope.js';
export * from './conv.js';
export * from './instance-norm.js';
