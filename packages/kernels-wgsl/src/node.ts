/// <reference types="@webgpu/types" preserve="true" />
/**
 * @rnagrad/kernels-wgsl/node — a WebGPU adapter and device in Node through Dawn (the npm package
 * `webgpu`, an optional peer dependency: install it beside this package).
 *
 * On Linux it asks Dawn for a hardware adapter only when a Vulkan driver manifest is installed (so
 * a machine without one gets no "vkCreateInstance: Found no drivers!" noise), and otherwise uses the
 * SwiftShader Vulkan driver that Debian's and Ubuntu's `chromium` packages ship. With no adapter at
 * all it throws an error that names the fix.
 */
import { existsSync, readdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NodeAdapterOptions {
  /**
   * 'auto' (default, or the RNAGRAD_ADAPTER environment variable): a hardware adapter when a
   * driver is installed, SwiftShader otherwise; 'software': SwiftShader only; 'hardware': no fallback.
   */
  adapter?: 'auto' | 'software' | 'hardware';
  powerPreference?: GPUPowerPreference;
  /** Suppress the one-line notice about the software adapter. */
  quiet?: boolean;
}

export interface NodeAdapter {
  adapter: GPUAdapter;
  /** Dawn's GPU object: it must stay reachable while the adapter or its devices are in use. */
  gpu: GPU;
  /** The SwiftShader driver manifest used, or null for a hardware adapter. */
  softwareIcd: string | null;
}

/** What rnagrad uses of the npm package `webgpu`. */
interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/** Known locations of the SwiftShader Vulkan ICD that Debian/Ubuntu Chromium packages ship. */
export const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/usr/lib64/chromium-browser/vk_swiftshader_icd.json',
];

const ADAPTER_MODES = ['auto', 'software', 'hardware'] as const;

export const NO_ADAPTER_HELP = `rnagrad: no WebGPU adapter was found.
  - With a GPU: install its Vulkan driver (Linux), or use a browser with WebGPU enabled.
  - Without a GPU on Debian/Ubuntu: install the software driver and the Vulkan loader:
        sudo apt-get install -y chromium libvulkan1
    rnagrad then finds SwiftShader at /usr/lib/chromium/vk_swiftshader_icd.json by itself
    (or point VK_ICD_FILENAMES at a vk_swiftshader_icd.json file).`;

let dawn: Promise<DawnModule> | null = null;
let softwareNoticeShown = false;
/** Dawn objects of live devices: collecting one while its device works crashes the process. */
const liveGpus = new Set<GPU>();

/** Loads Dawn once and defines GPUBufferUsage, GPUMapMode, … as a browser would. */
export function loadDawn(): Promise<DawnModule> {
  dawn ??= (import('webgpu') as Promise<unknown> as Promise<DawnModule>).then(
    (module) => {
      for (const [name, value] of Object.entries(module.globals)) {
        if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
      }
      return module;
    },
    (err: Error) => {
      dawn = null;
      throw new Error(
        'rnagrad: a WebGPU device in Node needs the npm package "webgpu" (Dawn), which is not installed: ' +
          `run \`npm install webgpu\` beside @rnagrad packages. (${err.message})`,
      );
    },
  );
  return dawn;
}

/**
 * Vulkan driver manifests the Vulkan loader would read (Linux), in its search order: the
 * VK_DRIVER_FILES / VK_ICD_FILENAMES override, VK_ADD_DRIVER_FILES, then the icd.d folders under
 * the XDG config and data directories and /etc. Empty means Dawn would find no Vulkan driver.
 */
export function vulkanDriverManifests(env: Record<string, string | undefined> = process.env): string[] {
  const listed = (value: string | undefined) => (value ?? '').split(':').filter((p) => p && existsSync(p));
  const override = env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES;
  if (override) return listed(override);
  const home = env.HOME ?? homedir();
  const configDirs = [env.XDG_CONFIG_HOME ?? join(home, '.config'), ...(env.XDG_CONFIG_DIRS ?? '/etc/xdg').split(':')];
  const dataDirs = [
    env.XDG_DATA_HOME ?? join(home, '.local/share'),
    ...(env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share').split(':'),
  ];
  const folders = [...configDirs, '/usr/local/etc', '/etc', ...dataDirs]
    .filter(Boolean)
    .map((d) => join(d, 'vulkan', 'icd.d'));
  const manifests = listed(env.VK_ADD_DRIVER_FILES);
  for (const folder of folders) {
    if (!existsSync(folder)) continue;
    for (const name of readdirSync(folder)) if (name.endsWith('.json')) manifests.push(join(folder, name));
  }
  return manifests;
}

function adapterMode(opts: NodeAdapterOptions): 'auto' | 'software' | 'hardware' {
  const mode = opts.adapter ?? process.env.RNAGRAD_ADAPTER ?? 'auto';
  if (!(ADAPTER_MODES as readonly string[]).includes(mode)) {
    throw new Error(`rnagrad: RNAGRAD_ADAPTER must be one of ${ADAPTER_MODES.join(', ')}, got "${mode}"`);
  }
  return mode as 'auto' | 'software' | 'hardware';
}

/** A Dawn adapter: hardware when there is one (and a driver for it), else SwiftShader on Linux. */
export async function requestNodeAdapter(opts: NodeAdapterOptions = {}): Promise<NodeAdapter> {
  const mode = adapterMode(opts);
  const webgpu = await loadDawn();
  const request = opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined;
  const linux = process.platform === 'linux';
  if (mode !== 'software' && (!linux || mode === 'hardware' || vulkanDriverManifests().length > 0)) {
    const gpu = webgpu.create([]);
    const adapter = await gpu.requestAdapter(request);
    if (adapter) return { adapter, gpu, softwareIcd: null };
    if (mode === 'hardware')
      throw new Error(`${NO_ADAPTER_HELP}\n  (RNAGRAD_ADAPTER=hardware: the software fallback is off.)`);
  }
  // The Vulkan loader reads VK_ICD_FILENAMES when Dawn creates its instance, so setting it before
  // `create` is enough.
  const userIcd = process.env.VK_ICD_FILENAMES;
  const icd = userIcd && existsSync(userIcd) ? userIcd : SWIFTSHADER_ICDS.find((p) => existsSync(p));
  if (!icd || !linux) throw new Error(NO_ADAPTER_HELP);
  process.env.VK_ICD_FILENAMES = icd;
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  const gpu = webgpu.create([]);
  const adapter = await gpu.requestAdapter(request);
  if (!adapter)
    throw new Error(`${NO_ADAPTER_HELP}\n  (SwiftShader at ${icd} gave no adapter: is libvulkan1 installed?)`);
  if (!opts.quiet && !softwareNoticeShown) {
    softwareNoticeShown = true;
    console.error(
      `rnagrad: no hardware GPU adapter; using SwiftShader (software Vulkan) from ${icd} — correct but slow.`,
    );
  }
  return { adapter, gpu, softwareIcd: icd };
}

/**
 * A GPUDevice from `requestNodeAdapter`, created with `descriptor`. Dawn's GPU object is kept
 * alive until the device is destroyed or lost.
 */
export async function requestNodeDevice(
  opts: NodeAdapterOptions & { descriptor?: GPUDeviceDescriptor } = {},
): Promise<GPUDevice> {
  const { adapter, gpu } = await requestNodeAdapter(opts);
  const device = await adapter.requestDevice(opts.descriptor);
  liveGpus.add(gpu);
  void device.lost.then(() => liveGpus.delete(gpu));
  return device;
}
