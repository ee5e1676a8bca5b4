/**
 * The runtime: one call, `init()`, returns a ready GPU context in Node (npm `webgpu`, Dawn) or in a
 * browser (`navigator.gpu`); everything above it is the same code.
 *
 * In Node (the package's Node entry, `./node.ts`) the adapter comes from
 * `@rnagrad/kernels-wgsl/node`: on Linux with no hardware adapter it falls back to the SwiftShader
 * Vulkan driver that Debian's `chromium` package ships, and says so once. With no adapter at all it
 * throws an error that names the fix. This module itself imports nothing from Node. Device loss and
 * WebGPU validation errors surface as exceptions on the next op or readback instead of hangs or
 * silently wrong numbers.
 */
import { KernelQueue, setAdapterName } from '@rnagrad/kernels-wgsl';
import { BufferPool } from './pool.js';

export interface InitOptions {
  /**
   * Node only. 'auto' (default, or the RNAGRAD_ADAPTER environment variable): hardware first,
   * SwiftShader if none; 'software': SwiftShader only; 'hardware': no fallback.
   */
  adapter?: 'auto' | 'software' | 'hardware';
  powerPreference?: GPUPowerPreference;
  /** Limits to request on top of the ones rnagrad raises to the adapter's maximum. */
  requiredLimits?: Record<string, number>;
  /** Suppress the one-line notice about the software adapter. */
  quiet?: boolean;
  /** Bytes the buffer pool may keep for reuse (default 512 MiB). */
  maxPooledBytes?: number;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations (SwiftShader, lavapipe, WARP). */
  isSoftware: boolean;
  /** Where the GPU came from: the browser's navigator.gpu or Dawn in Node. */
  host: 'browser' | 'node';
}

/** Limits raised to the adapter's maximum: large tensors and wide workgroups need them. */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
] as const;

const NO_BROWSER_ADAPTER_HELP = `rnagrad: this browser offers WebGPU (navigator.gpu) but gave no adapter:
  WebGPU may be disabled or blocklisted for this GPU (see chrome://gpu), or the page is not a secure context.`;

/** How the runtime gets an adapter outside a browser; the Node entry installs Dawn's. */
export type NodeAdapterProvider = (opts: InitOptions) => Promise<{ adapter: GPUAdapter; handle: unknown }>;
let nodeAdapterProvider: NodeAdapterProvider | null = null;

/** Called by `@rnagrad/tensor/node` (the Node entry) to make `init()` use Dawn. */
export function setNodeAdapterProvider(provider: NodeAdapterProvider): void {
  nodeAdapterProvider = provider;
}

export class Runtime {
  readonly device: GPUDevice;
  readonly adapter: AdapterDescription;
  readonly queue: KernelQueue;
  readonly pool: BufferPool;
  /** Largest byte size one storage binding may have; ops over bigger tensors are refused. */
  bindingLimit: number;
  private lostReason: string | null = null;
  private readonly errors: string[] = [];
  /** Keeps Dawn's GPU object alive for as long as the device is used (required by npm `webgpu`). */
  private readonly gpuHandle: unknown;

  constructor(device: GPUDevice, adapter: AdapterDescription, gpuHandle: unknown, opts: InitOptions) {
    this.device = device;
    this.adapter = adapter;
    this.gpuHandle = gpuHandle;
    this.queue = new KernelQueue(device);
    // Kernels choose CPU- or GPU-friendly schedules by it; matmul tunings are cached under it.
    setAdapterName(this.queue, adapter);
    this.pool = new BufferPool(device, this.queue, opts.maxPooledBytes ?? 512 * 2 ** 20);
    this.bindingLimit = device.limits.maxStorageBufferBindingSize;
    device.lost.then((info) => {
      this.lostReason = `${info.reason}${info.message ? `: ${info.message}` : ''}`;
    });
    device.addEventListener('uncapturederror', (event) => {
      this.errors.push((event as GPUUncapturedErrorEvent).error.message);
    });
  }

  get isLost(): boolean {
    return this.lostReason !== null;
  }

  /** Throws if the device is gone or WebGPU reported an error since the last check. */
  check(what: string): void {
    if (this.lostReason !== null) {
      throw new Error(
        `${what}: the GPU device was lost (${this.lostReason}). Its tensors are gone; call init() again to get a ` +
          `new device.`,
      );
    }
    if (this.errors.length > 0) {
      const messages = this.errors.splice(0).join('\n');
      throw new Error(`${what}: WebGPU reported an error in earlier work:\n${messages}`);
    }
  }

  /** Submits pending work and waits for the GPU to finish it. */
  async sync(): Promise<void> {
    this.check('sync');
    this.queue.flush();
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.device.lost]);
    this.check('sync');
  }

  stats() {
    return { ...this.pool.stats(), ...this.queue.stats };
  }

  destroy(): void {
    this.queue.flush();
    this.pool.destroy();
    this.queue.destroy();
    this.device.destroy();
    void this.gpuHandle;
  }
}

let current: Runtime | null = null;
let starting: Promise<Runtime> | null = null;

/** Returns the shared runtime, creating it on first call. Safe to call many times. */
export function init(opts: InitOptions = {}): Promise<Runtime> {
  if (current && !current.isLost) return Promise.resolve(current);
  if (!starting) {
    starting = createRuntime(opts).then(
      (rt) => {
        current = rt;
        starting = null;
        return rt;
      },
      (err: unknown) => {
        starting = null;
        throw err;
      },
    );
  }
  return starting;
}

/** The initialised runtime; throws if `await init()` has not run yet. */
export function runtime(): Runtime {
  if (!current)
    throw new Error(
      'rnagrad: no GPU runtime yet — call `await init()` before creating GPU tensors (or use device: "cpu").',
    );
  return current;
}

export function hasRuntime(): boolean {
  return current !== null;
}

/** Destroys the shared device; the next `init()` creates a new one. */
export function destroyRuntime(): void {
  current?.destroy();
  current = null;
}

async function createRuntime(opts: InitOptions): Promise<Runtime> {
  const { adapter, host, handle } = await findAdapter(opts);
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  Object.assign(requiredLimits, opts.requiredLimits);
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  // The subgroup matmul schedule (kernels-wgsl) is planned only on devices created with this feature.
  if (adapter.features.has('subgroups')) requiredFeatures.push('subgroups');
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const description: AdapterDescription = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isSoftware:
      /swiftshader|llvmpipe|lavapipe|warp|software/.test(text) ||
      (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true,
    host,
  };
  return new Runtime(device, description, handle, opts);
}

interface FoundAdapter {
  adapter: GPUAdapter;
  host: 'browser' | 'node';
  /** What must stay referenced while the device lives (Dawn's GPU object in Node). */
  handle: unknown;
}

async function findAdapter(opts: InitOptions): Promise<FoundAdapter> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (gpu) {
    const adapter = await gpu.requestAdapter(
      opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined,
    );
    if (!adapter) throw new Error(NO_BROWSER_ADAPTER_HELP);
    return { adapter, host: 'browser', handle: gpu };
  }
  if (nodeAdapterProvider) return { ...(await nodeAdapterProvider(opts)), host: 'node' };
  const inNode =
    typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
  throw new Error(
    inNode
      ? 'rnagrad: this is the browser entry of @rnagrad/tensor, which has no Dawn adapter for Node. ' +
          'Plain Node picks the Node entry (\'@rnagrad/tensor\' under the "node" export condition) by itself; ' +
          'a bundle built for the browser platform does not: bundle for Node (esbuild --platform=node) instead.'
      : 'rnagrad: no WebGPU here (no navigator.gpu). Use a browser with WebGPU (Chrome/Edge 113+, Safari 26+, ' +
          'Firefox 141+ on Windows), or Node with \'@rnagrad/tensor\' and the npm package "webgpu".',
  );
}
