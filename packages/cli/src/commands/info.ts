/** `rnagrad info`: the WebGPU adapter, its limits, and memory. */
import { freemem, totalmem } from 'node:os';
import type { CommandSpec, Parsed } from '../args.js';
import { describeAdapter, initRuntime } from '../runtime.js';

const flags = {
  json: { type: 'bool', help: 'print one JSON object' },
} as const;

export const INFO: CommandSpec<typeof flags> = {
  name: 'info',
  summary: 'Shows the WebGPU adapter rnagrad uses, the limits that bound tensor sizes, and memory.',
  usage: 'rnagrad info [--json]',
  flags,
  examples: ['rnagrad info'],
};

const LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export async function runInfo(a: Parsed<typeof flags>): Promise<void> {
  const rt = await initRuntime();
  const limits = Object.fromEntries(
    LIMITS.map((n) => [n, (rt.device.limits as unknown as Record<string, number>)[n]!]),
  );
  const stats = rt.stats();
  const memory = {
    rss: process.memoryUsage().rss,
    hostTotal: totalmem(),
    hostFree: freemem(),
    gpuLive: stats.liveBytes,
    gpuPooled: stats.pooledBytes,
  };
  const features = [...rt.device.features].sort();
  if (a.json) {
    process.stdout.write(
      `${JSON.stringify({ adapter: rt.adapter, limits, features, memory, node: process.version })}\n`,
    );
    return;
  }
  const lines = [
    `adapter:  ${describeAdapter(rt)}`,
    `features: ${features.join(', ') || 'none'}`,
    'limits:',
    ...LIMITS.map(
      (n) =>
        `  ${n.padEnd(36)}${limits[n]!.toLocaleString('en-US')}${
          /Size$/.test(n) && limits[n]! > 2 ** 20 ? ` (${mib(limits[n]!)})` : ''
        }`,
    ),
    'memory:',
    `  process RSS                         ${mib(memory.rss)}`,
    `  host                                ${mib(memory.hostFree)} free of ${mib(memory.hostTotal)}`,
    `  GPU buffers                         ${mib(memory.gpuLive)} live, ${mib(memory.gpuPooled)} pooled`,
    `node ${process.version}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
