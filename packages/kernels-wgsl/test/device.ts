/**
 * One plain GPUDevice + KernelQueue shared by every kernel test file (no tensor package): proves
 * the kernels run on a bare device. One Dawn instance per process: several crash the process.
 */
import { create, globals } from 'webgpu';
import { KernelQueue } from '../src/queue.js';

export interface TestDevice {
  device: GPUDevice;
  queue: KernelQueue;
  /** Dawn's GPU object: it must stay reachable while the device is used. */
  gpu: GPU;
}

let shared: Promise<TestDevice> | null = null;

export function plainDevice(): Promise<TestDevice> {
  shared ??= (async () => {
    Object.assign(globalThis, globals);
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    let dawn = create([]);
    let adapter = await dawn.requestAdapter();
    if (!adapter) {
      process.env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';
      dawn = create([]);
      adapter = await dawn.requestAdapter();
    }
    if (!adapter) throw new Error('no WebGPU adapter (install chromium and libvulkan1 for SwiftShader)');
    const device = await adapter.requestDevice({ requiredLimits: { maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage } });
    device.addEventListener('uncapturederror', (e) => console.error('WebGPU error:', (e as GPUUncapturedErrorEvent).error.message));
    return { device, queue: new KernelQueue(device), gpu: dawn };
  })();
  return shared;
}
