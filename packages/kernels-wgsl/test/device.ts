/**
 * One plain GPUDevice + KernelQueue shared by every kernel test file (no tensor package): proves
 * the kernels run on a bare device. One Dawn instance per process: several crash the process.
 */
import * as assert from 'uvu/assert';
import { requestNodeAdapter } from '../src/node.js';
import { KernelQueue } from '../src/queue.js';
import type { CpuOperand, DType, GpuOperand } from '../src/layout.js';

export interface TestDevice {
  device: GPUDevice;
  queue: KernelQueue;
  /** Dawn's GPU object: it must stay reachable while the device is used. */
  gpu: GPU;
}

let shared: Promise<TestDevice> | null = null;

export function plainDevice(): Promise<TestDevice> {
  shared ??= (async () => {
    const { adapter, gpu } = await requestNodeAdapter({ quiet: true });
    // 'subgroups' where the adapter has it (SwiftShader does), so the subgroup matmul schedule is tested.
    const requiredFeatures: GPUFeatureName[] = adapter.features.has('subgroups') ? ['subgroups'] : [];
    const device = await adapter.requestDevice({
      requiredLimits: { maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage },
      requiredFeatures,
    });
    device.addEventListener('uncapturederror', (e) =>
      console.error('WebGPU error:', (e as GPUUncapturedErrorEvent).error.message),
    );
    return { device, queue: new KernelQueue(device), gpu };
  })();
  return shared;
}

// Buffer and operand helpers for kernel tests on the shared device.
const { device, queue } = await plainDevice();
const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
export function upload(values: ArrayLike<number>, dtype: 'f32' | 'i32' = 'f32'): GPUBuffer {
  const words = dtype === 'f32' ? Float32Array.from(values) : Int32Array.from(values);
  const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(words.byteLength / 16) * 16), usage: USAGE });
  device.queue.writeBuffer(buffer, 0, words);
  return buffer;
}
export async function readBack(buffer: GPUBuffer, count: number, dtype: 'f32' | 'i32' = 'f32'): Promise<Float64Array> {
  const bytes = Math.max(4, count * 4);
  const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  queue.copy(buffer, 0, staging, 0, bytes);
  queue.flush();
  await staging.mapAsync(GPUMapMode.READ);
  const raw = staging.getMappedRange().slice(0);
  staging.unmap();
  staging.destroy();
  return Float64Array.from(dtype === 'f32' ? new Float32Array(raw) : new Int32Array(raw)).subarray(0, count);
}
const contiguous = (shape: readonly number[]) => {
  const s: number[] = [];
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
};
export function gop(
  buffer: GPUBuffer,
  shape: readonly number[],
  dtype: DType = 'f32',
  strides = contiguous(shape),
  offset = 0,
): GpuOperand {
  return { buffer, dtype, shape, strides, offset };
}
export function cop(
  data: Float64Array,
  shape: readonly number[],
  dtype: DType = 'f32',
  strides = contiguous(shape),
  offset = 0,
): CpuOperand {
  return { data, dtype, shape, strides, offset };
}
/** Deterministic pseudo-random values in [lo, hi), rounded to f32 so both sides start equal. */
export function values(n: number, seed: number, lo = -4, hi = 4): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround(lo + (s / 2 ** 32) * (hi - lo));
  });
}
export function close(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  rtol = 1e-5,
  atol = 1e-6,
): void {
  assert.is(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)))
      assert.unreachable(`${what}: element ${i} is ${a}, expected ${e}`);
  }
}
