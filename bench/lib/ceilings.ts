/**
 * The adapter's practical ceilings, measured in the same run as every other figure:
 *
 * - FMA: a compute-bound WGSL kernel, chains of vec4 (or scalar) `fma` on many independent
 *   accumulators per thread, so nothing but arithmetic limits it. GFLOP/s = 2 per lane FMA.
 * - copy: a bandwidth-bound WGSL kernel, vec4 loads and stores, several per thread. GB/s counts
 *   bytes read + bytes written.
 * - sync: an empty submit followed by `onSubmittedWorkDone` (the floor under any tiny kernel).
 *
 * Each is the best median over a few kernel shapes (the shapes differ per adapter).
 */
import type { Runtime } from '@rnagrad/tensor';
import { type Spread, rate, timeIt } from './stats.js';

export interface CeilingVariant {
  name: string;
  ms: Spread;
  value: Spread;
}

export interface Ceilings {
  fmaGflops: number;
  fma: { best: string; value: Spread; variants: CeilingVariant[]; flopsPerCall: number };
  copyGbps: number;
  copy: { best: string; value: Spread; variants: CeilingVariant[]; bytesPerCall: number };
  syncMs: Spread;
  /** When measured twice (start and end of a run): both, and `fmaGflops`/`copyGbps` are the higher. */
  runs?: { at: string; fmaGflops: number; copyGbps: number }[];
}

/** Combines the start and end measurements: the higher median is the ceiling (load only lowers it). */
export function combineCeilings(start: Ceilings, end: Ceilings): Ceilings {
  const best = <K extends 'fma' | 'copy'>(k: K) => (end[k].value.median > start[k].value.median ? end[k] : start[k]);
  return {
    fmaGflops: Math.max(start.fmaGflops, end.fmaGflops),
    fma: best('fma'),
    copyGbps: Math.max(start.copyGbps, end.copyGbps),
    copy: best('copy'),
    syncMs: start.syncMs,
    runs: [
      { at: 'start', fmaGflops: start.fmaGflops, copyGbps: start.copyGbps },
      { at: 'end', fmaGflops: end.fmaGflops, copyGbps: end.copyGbps },
    ],
  };
}

const WG = 64;

function fmaSource(accs: number, iters: number, vec: boolean): string {
  const ty = vec ? 'vec4<f32>' : 'f32';
  const lines = (f: (i: number) => string, sep: string) => Array.from({ length: accs }, (_, i) => f(i)).join(sep);
  return `@group(0) @binding(1) var<storage, read_write> out: array<${ty}>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let seed = f32(gid.x) * 1e-7;
  let m = ${ty}(0.9999999) - ${ty}(seed * 1e-3);
  let c = ${ty}(1e-7) + ${ty}(seed);
  ${lines((i) => `var a${i} = ${ty}(seed + ${i + 1}.0);`, '\n  ')}
  for (var k = 0u; k < ${iters}u; k = k + 1u) {
    ${lines((i) => `a${i} = fma(a${i}, m, c);`, '\n    ')}
  }
  out[gid.x] = ${lines((i) => `a${i}`, ' + ')};
}`;
}

function copySource(perThread: number): string {
  return `@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  let base = w * ${WG * perThread}u + lid;
  for (var k = 0u; k < ${perThread}u; k = k + 1u) {
    let i = base + k * ${WG}u;
    dst[i] = src[i];
  }
}`;
}

export async function measureCeilings(
  rt: Runtime,
  opts: { quick: boolean; log: (s: string) => void },
): Promise<Ceilings> {
  const { device, queue } = rt;
  const samples = opts.quick ? 5 : 9;
  const sync = () => rt.sync();
  // A hardware GPU finishes one such kernel in microseconds, under the submit-and-wait floor: there
  // each sample runs more threads and repeats the kernel before waiting.
  const hardware = !rt.adapter.isSoftware;
  const repeat = hardware ? 20 : 1;

  // FMA: 512 workgroups × 64 threads (software; ~0.5 GFLOP per call), 8192 on hardware GPUs.
  const workgroups = hardware ? 8192 : 512;
  const threads = workgroups * WG;
  const out = device.createBuffer({ size: threads * 16, usage: GPUBufferUsage.STORAGE });
  const fmaConfigs: [number, number, boolean][] = opts.quick
    ? [[16, 128, true]]
    : [
        [4, 512, true],
        [8, 256, true],
        [16, 128, true],
        [32, 256, false],
      ];
  const fmaVariants: CeilingVariant[] = [];
  let flopsPerCall = 0;
  for (const [accs, iters, vec] of fmaConfigs) {
    const flops = threads * accs * iters * (vec ? 4 : 1) * 2 * repeat;
    const key = `bench:fma:${accs}:${iters}:${vec}`;
    const run = async () => {
      for (let r = 0; r < repeat; r++)
        queue.dispatch({ key, source: () => fmaSource(accs, iters, vec), storage: [out], workgroups: [workgroups] });
      await sync();
    };
    const { ms } = await timeIt(key, run, { warmup: 2, samples });
    const name = `${accs} ${vec ? 'vec4' : 'scalar'} accumulators × ${iters} iterations`;
    fmaVariants.push({ name, ms, value: rate(ms, flops / 1e6) });
    flopsPerCall = Math.max(flopsPerCall, flops);
  }
  out.destroy();
  const bestFma = fmaVariants.reduce((a, b) => (b.value.median > a.value.median ? b : a));
  opts.log(`FMA ceiling: ${bestFma.value.median.toFixed(2)} GFLOP/s (${bestFma.name})`);

  // Copy: 16 MiB → 16 MiB (repeated on hardware GPUs).
  const bytes = 16 * 2 ** 20;
  const src = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const dst = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE });
  device.queue.writeBuffer(src, 0, new Float32Array(bytes / 4).fill(1.5));
  const copyVariants: CeilingVariant[] = [];
  for (const perThread of opts.quick ? [16] : [1, 4, 16]) {
    const wgs = bytes / 16 / (WG * perThread);
    const grid: [number, number] =
      wgs > 65535 ? [Math.ceil(wgs / Math.ceil(wgs / 65535)), Math.ceil(wgs / 65535)] : [wgs, 1];
    if (grid[0] * grid[1] !== wgs) continue;
    const key = `bench:copy:${perThread}`;
    const run = async () => {
      for (let r = 0; r < repeat; r++)
        queue.dispatch({ key, source: () => copySource(perThread), storage: [src, dst], workgroups: grid });
      await sync();
    };
    const { ms } = await timeIt(key, run, { warmup: 2, samples });
    copyVariants.push({ name: `vec4, ${perThread} per thread`, ms, value: rate(ms, (2 * bytes * repeat) / 1e6) });
  }
  src.destroy();
  dst.destroy();
  const bestCopy = copyVariants.reduce((a, b) => (b.value.median > a.value.median ? b : a));
  opts.log(`copy ceiling: ${bestCopy.value.median.toFixed(3)} GB/s (${bestCopy.name})`);

  const { ms: syncMs } = await timeIt(
    'empty submit',
    async () => {
      device.queue.submit([]);
      await device.queue.onSubmittedWorkDone();
    },
    { warmup: 3, samples: 20, budgetMs: 200 },
  );
  opts.log(`empty submit + onSubmittedWorkDone: ${syncMs.median.toFixed(3)} ms`);

  return {
    fmaGflops: bestFma.value.median,
    fma: { best: bestFma.name, value: bestFma.value, variants: fmaVariants, flopsPerCall },
    copyGbps: bestCopy.value.median,
    copy: { best: bestCopy.name, value: bestCopy.value, variants: copyVariants, bytesPerCall: 2 * bytes * repeat },
    syncMs,
  };
}
