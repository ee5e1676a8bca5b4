/**
 * The runtime: one call, `init()`, returns a ready GPU context in Node (npm `webgpu`, Dawn) or in a
 * browser (`navigator.gpu`); everything above it is the same code.
 *
 * In Node on Linux with no hardware adapter it falls back to the SwiftShader Vulkan driver that
 * Debian's `chromium` package ships, and says so once. With no adapter at all it throws an error
 * that names the fix. Device loss and WebGPU validation errors surface as exceptions on the next
 * op or readback instead of hangs or silently wrong numbers.
 */
import { KernelQueue, setAdapterName } from '@rnagrad/kernels-wgsl';
import { BufferPool } from './pool.js';

export interface InitOptions {
  /** 'auto' (default): hardware first, SwiftShader if none; 'software': SwiftShader only. */
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

/** Known locations of the SwiftShader Vulkan ICD that Debian/Ubuntu Chromium packages ship. */
const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/usr/lib64/chromium-browser/vk_swiftshader_icd.json',
];

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

const NO_ADAPTER_HELP = `rnagrad: no WebGPU adapter was found.
  - With a GPU: install its Vulkan driver (Linux), or use a browser with WebGPU enabled.
  - Without a GPU on Debian/Ubuntu: install the software driver and the Vulkan loader:
        sudo apt-get install -y chromium libvulkan1
    rnagrad then finds SwiftShader at /usr/lib/chromium/vk_swiftshader_icd.json by itself
    (or point VK_ICD_FILENAMES at a vk_swiftshader_icd.json file).`;

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
      throw new Error(`${what}: the GPU device was lost (${this.lostReason}). Its tensors are gone; call init() again to get a new device.`);
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
let softwareNoticeShown = false;

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
  if (!current) throw new Error('rnagrad: no GPU runtime yet — call `await init()` before creating GPU tensors (or use device: "cpu").');
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
  const { gpu, host, handle } = await findGpu(opts);
  const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  if (!adapter) throw new Error(NO_ADAPTER_HELP);
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  Object.assign(requiredLimits, opts.requiredLimits);
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const description: AdapterDescription = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isSoftware: /swiftshader|llvmpipe|lavapipe|warp|software/.test(text) || (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true,
    host,
  };
  return new Runtime(device, description, handle, opts);
}

interface FoundGpu {
  gpu: GPU;
  host: 'browser' | 'node';
  handle: unknown;
}

async function findGpu(opts: InitOptions): Promise<FoundGpu> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, host: 'browser', handle: nav.gpu };
  const proc = (globalThis as { process?: { versions?: { node?: string }; env: Record<string, string | undefined>; platform: string } }).process;
  if (!proc?.versions?.node) throw new Error(`${NO_ADAPTER_HELP}\n  (This JavaScript environment has neither navigator.gpu nor Node.js.)`);

  // The module name is a variable so browser bundlers leave this Node-only import alone.
  const moduleName = 'webgpu';
  let webgpu: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    webgpu = (await import(moduleName)) as typeof webgpu;
  } catch (err) {
    throw new Error(`rnagrad: could not load the npm package "webgpu" (Dawn for Node): ${(err as Error).message}`);
  }
  // Dawn's GPUBufferUsage, GPUMapMode, ... constants, as a browser would define them.
  for (const [name, value] of Object.entries(webgpu.globals)) {
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  }
  const mode = opts.adapter ?? (proc.env.RNAGRAD_ADAPTER as InitOptions['adapter']) ?? 'auto';
  if (mode !== 'software') {
    const gpu = webgpu.create([]);
    if ((await gpu.requestAdapter()) || mode === 'hardware') return { gpu, host: 'node', handle: gpu };
  }
  // No hardware adapter: use the SwiftShader ICD. The Vulkan loader reads VK_ICD_FILENAMES when
  // Dawn creates its instance, so setting it before the next `create` is enough.
  const { existsSync } = (await import('node:fs')) as typeof import('node:fs');
  const icd = proc.env.VK_ICD_FILENAMES && existsSync(proc.env.VK_ICD_FILENAMES) ? proc.env.VK_ICD_FILENAMES : SWIFTSHADER_ICDS.find((p) => existsSync(p));
  if (!icd || proc.platform !== 'linux') throw new Error(NO_ADAPTER_HELP);
  proc.env.VK_ICD_FILENAMES = icd;
  proc.env.XDG_RUNTIME_DIR ??= (await import('node:os')).tmpdir();
  if (!opts.quiet && !softwareNoticeShown) {
    softwareNoticeShown = true;
    console.error(`rnagrad: no hardware GPU adapter; using SwiftShader (software Vulkan) from ${icd} — correct but slow.`);
  }
  const gpu = webgpu.create([]);
  return { gpu, host: 'node', handle: gpu };
}
