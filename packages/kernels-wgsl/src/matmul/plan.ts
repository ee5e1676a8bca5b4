/** Which schedule a shape gets: defaults by measurement, tuned choices per adapter and shape class. */
import { type KernelQueue, adapterKey, isSoftwareAdapter } from '../queue.js';
import type { DirectConfig, MatmulConfig, MatmulDims, MatmulPlan, SubgroupConfig, TiledConfig } from './types.js';

const bucket = (x: number) => (x <= 8 ? 's' : x <= 48 ? 'm' : x <= 256 ? 'l' : 'x');

/** Shape classes share a tuned plan: size buckets of M, N, K (≤8, ≤48, ≤256, larger) and whether there is a batch. */
export function matmulShapeClass(d: MatmulDims): string {
  return `m${bucket(d.m)}n${bucket(d.n)}k${bucket(d.k)}${d.batch > 1 ? 'b' : ''}`;
}

const tunings = new Map<string, Map<string, MatmulPlan>>();

/** Tuned plans of every adapter as JSON, to persist between runs. */
export function exportMatmulTunings(): string {
  const obj: Record<string, Record<string, MatmulPlan>> = {};
  for (const [adapter, classes] of tunings) obj[adapter] = Object.fromEntries(classes);
  return JSON.stringify(obj, null, 2);
}

/** Loads plans exported by `exportMatmulTunings` (merging over what is cached). Invalid entries are skipped. */
export function importMatmulTunings(json: string): void {
  const obj = JSON.parse(json) as Record<string, Record<string, MatmulPlan>>;
  for (const [adapter, classes] of Object.entries(obj)) {
    const map = tunings.get(adapter) ?? new Map<string, MatmulPlan>();
    for (const [cls, plan] of Object.entries(classes)) if (validPlan(plan)) map.set(cls, plan);
    tunings.set(adapter, map);
  }
}

export function clearMatmulTunings(): void {
  tunings.clear();
}

/** Caches the plan the tuner found fastest for an adapter and shape class. */
export function rememberTunedPlan(adapter: string, shapeClass: string, plan: MatmulPlan): void {
  const map = tunings.get(adapter) ?? new Map<string, MatmulPlan>();
  map.set(shapeClass, plan);
  tunings.set(adapter, map);
}

export function validPlan(p: MatmulPlan): boolean {
  const c = p?.config;
  if (!c || !Number.isInteger(p.splitK) || p.splitK < 1) return false;
  const pow2 = (x: number) => Number.isInteger(x) && x > 0 && (x & (x - 1)) === 0;
  if (c.kind === 'dot') return pow2(c.wg) && c.wg <= 256;
  if (c.kind === 'subgroup')
    return (
      [c.tm, c.tn].every((x) => Number.isInteger(x) && x > 0 && x <= 64) &&
      c.tm * c.tn <= 1024 &&
      pow2(c.wx) &&
      c.wx <= 256
    );
  if (![c.tm, c.tn, c.wx, c.wy].every((x) => Number.isInteger(x) && x > 0) || c.wx * c.wy > 256 || c.tm * c.tn > 1024)
    return false;
  if (c.kind === 'direct') return c.tm <= 64 && c.tn <= 64;
  return c.kind === 'tiled' && tiledFits(c);
}

function tiledFits(c: TiledConfig): boolean {
  const T = c.wx * c.wy;
  const BM = c.wy * c.tm;
  const BN = c.wx * c.tn;
  return (
    (BM * c.bk) % T === 0 &&
    (BN * c.bk) % T === 0 &&
    (c.tn % 4 !== 0 || (BN * c.bk) % 4 === 0) &&
    4 * c.bk * (BM + BN) <= 16384
  );
}

export const direct = (tm: number, tn: number, wx: number, wy: number): DirectConfig => ({
  kind: 'direct',
  tm,
  tn,
  wx,
  wy,
});
export const tiled = (tm: number, tn: number, wx: number, wy: number, bk: number): TiledConfig => ({
  kind: 'tiled',
  tm,
  tn,
  wx,
  wy,
  bk,
});

export const subgroup = (tm: number, tn: number, wx: number): SubgroupConfig => ({ kind: 'subgroup', tm, tn, wx });

/**
 * The subgroup sizes the queue's device may run with, or null when it lacks the `subgroups` feature (the subgroup
 * schedule is then never planned, and refused when forced). Sizes the adapter does not report are assumed 4…128,
 * the range WebGPU allows.
 */
export function subgroupSizes(queue: KernelQueue): { min: number; max: number } | null {
  if (!queue.device.features.has('subgroups')) return null;
  const info = (queue.device as { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  return { min: info?.subgroupMinSize || 4, max: info?.subgroupMaxSize || 128 };
}

/** Why the queue's device cannot run a subgroup config, or null when it can. */
export function subgroupPlanError(queue: KernelQueue, c: SubgroupConfig): string | null {
  const sizes = subgroupSizes(queue);
  if (!sizes) return `the subgroup schedule needs the device feature 'subgroups', which this device lacks`;
  // Full subgroups: lanes 0–3 of every subgroup must exist to broadcast from.
  if (c.wx % sizes.max !== 0)
    return `the subgroup schedule's ${c.wx} threads are not a multiple of the adapter's subgroup size ${sizes.max}`;
  return null;
}

/** Output rows/cols one workgroup covers. */
export function tileOf(c: MatmulConfig): [number, number] {
  if (c.kind === 'dot') return [1, 1];
  if (c.kind === 'subgroup') return [c.tm, c.wx * c.tn];
  return [c.wy * c.tm, c.wx * c.tn];
}

function workgroupsOf(c: MatmulConfig, d: MatmulDims): number {
  const [bm, bn] = tileOf(c);
  return Math.ceil(d.m / bm) * Math.ceil(d.n / bn) * d.batch;
}

/** Splits K so that few-workgroup shapes keep every core busy; each split keeps ≥ 128 k-steps. */
export function chooseSplit(c: MatmulConfig, d: MatmulDims, minGroups: number): number {
  if (c.kind === 'dot') return 1;
  const groups = workgroupsOf(c, d);
  if (groups >= minGroups || d.k < 256) return 1;
  const s = Math.min(Math.ceil(minGroups / groups), Math.floor(d.k / 128), 32);
  return s * d.batch * d.m * d.n * 4 <= 64 * 2 ** 20 ? Math.max(1, s) : 1;
}

/**
 * Default plan when nothing is tuned for this adapter and shape class. `subgroupMaxSize`: the device has the
 * `subgroups` feature (CPU adapters then share A across lanes: ≈20% less CPU time at 256³–512³ on SwiftShader; the
 * hardware default stays `tiled` until the subgroup schedule is measured on a GPU).
 */
export function defaultMatmulPlan(d: MatmulDims, software: boolean, subgroupMaxSize?: number): MatmulPlan {
  const outputs = d.batch * d.m * d.n;
  if (outputs <= 16 && d.k >= 128) return { config: { kind: 'dot', wg: 64 }, splitK: 1 };
  const p2 = (x: number) => (x <= 1 ? 1 : x <= 2 ? 2 : x <= 4 ? 4 : 8);
  const minGroups = software ? 8 : 64;
  let config: MatmulConfig;
  if (d.m <= 4 && d.n <= 4) config = direct(p2(d.m), p2(d.n), 16, 4);
  else if (d.m <= 4) config = direct(p2(d.m), 4, 64, 1);
  else if (d.n <= 4) config = direct(4, p2(d.n), 1, 64);
  else if (d.m <= 8) config = direct(8, 8, 16, 1);
  else if (d.n <= 8) config = direct(8, 8, 1, 16);
  else if (!software && d.m >= 32 && d.n >= 32) config = tiled(4, 4, 8, 8, 16);
  else {
    // CPU adapters: loads cost far more than FMAs, so the biggest register tile that fits the
    // matrix (idle SIMD lanes waste as much) and still yields enough workgroups, with split-K's help.
    const shared = subgroupMaxSize
      ? [subgroup(32, 16, Math.max(4, subgroupMaxSize)), subgroup(16, 16, Math.max(8, subgroupMaxSize))]
      : [];
    const options = [
      ...shared,
      direct(32, 16, 4, 2),
      direct(16, 16, 2, 4),
      direct(16, 16, 2, 2),
      direct(8, 8, 4, 4),
      direct(4, 4, 8, 4),
    ];
    const up16 = (x: number) => Math.max(16, Math.ceil(x / 16) * 16);
    const usable = (c: MatmulConfig) => {
      const [bm, bn] = tileOf(c);
      const groups = workgroupsOf(c, d);
      return (
        bm <= up16(d.m) &&
        bn <= up16(d.n) &&
        (groups >= minGroups || (d.k >= 256 && groups * Math.floor(d.k / 128) >= minGroups))
      );
    };
    config = options.find(usable) ?? options[options.length - 1]!;
  }
  return { config, splitK: chooseSplit(config, d, minGroups) };
}

/** The plan `matmulGpu` uses for these dims on this queue: tuned if available, else the default. */
export function matmulPlanFor(queue: KernelQueue, d: MatmulDims): MatmulPlan {
  const key = adapterKey(queue);
  const tuned = tunings.get(key)?.get(matmulShapeClass(d));
  // A plan tuned (or imported) for a device with subgroups is skipped on one without.
  if (tuned && (tuned.config.kind !== 'subgroup' || !subgroupPlanError(queue, tuned.config))) {
    const splitK = tuned.splitK > 1 ? Math.min(tuned.splitK, Math.max(1, Math.floor(d.k / 64))) : 1;
    return { config: tuned.config, splitK };
  }
  return defaultMatmulPlan(d, isSoftwareAdapter(queue), subgroupSizes(queue)?.max);
}
