/** The autotuner: times candidate plans on the queue's adapter and remembers the fastest per shape class. */
import { type KernelQueue, adapterKey } from '../queue.js';
import { type GpuOperand, contiguousStrides } from '../layout.js';
import { type MatmulConfig, type MatmulDims, type MatmulPlan, planKey } from './types.js';
import {
  chooseSplit,
  direct,
  matmulShapeClass,
  rememberTunedPlan,
  subgroup,
  subgroupSizes,
  tileOf,
  tiled,
} from './plan.js';
import { matmulGpu } from './launch.js';

export interface MatmulTiming {
  plan: MatmulPlan;
  key: string;
  /** Fastest of the synchronised runs, in ms (other load on a shared machine only ever adds time). */
  ms: number;
  /** Median of the runs, in ms. */
  medianMs: number;
  gflops: number;
}

export interface MatmulTuneResult {
  adapter: string;
  shapeClass: string;
  best: MatmulPlan;
  timings: MatmulTiming[];
}

/**
 * Candidate plans for a shape: register-blocked tiles that fit it, the workgroup-memory tiled kernel, split-K
 * variants, and with `subgroupMaxSize` (a device with the `subgroups` feature) the subgroup schedule, its
 * workgroups at least one subgroup wide.
 */
export function matmulCandidates(d: MatmulDims, subgroupMaxSize?: number): MatmulPlan[] {
  const pool: MatmulConfig[] = [
    direct(16, 32, 2, 4),
    direct(32, 16, 4, 2),
    direct(32, 32, 2, 2),
    direct(16, 16, 2, 4),
    direct(16, 16, 4, 4),
    direct(8, 32, 2, 8),
    direct(8, 16, 4, 4),
    direct(16, 8, 8, 4),
    direct(8, 8, 4, 4),
    direct(4, 4, 8, 8),
    direct(1, 16, 16, 1),
    direct(2, 16, 8, 2),
    direct(4, 16, 8, 1),
    direct(8, 16, 4, 1),
    direct(16, 1, 1, 16),
    direct(16, 2, 2, 8),
    direct(16, 4, 1, 8),
    direct(16, 8, 1, 4),
    direct(1, 4, 64, 1),
    direct(4, 1, 1, 64),
    direct(1, 1, 64, 1),
    tiled(4, 4, 8, 8, 16),
    tiled(8, 4, 8, 8, 8),
    tiled(4, 4, 16, 16, 8),
  ];
  if (subgroupMaxSize) {
    const wide = (wx: number) => Math.max(wx, subgroupMaxSize);
    pool.push(
      subgroup(32, 16, wide(4)),
      subgroup(16, 16, wide(8)),
      subgroup(8, 8, wide(32)),
      subgroup(4, 4, wide(64)),
      subgroup(1, 4, wide(64)),
    );
  }
  const fits = (c: MatmulConfig) => {
    const [bm, bn] = tileOf(c);
    // Skip tiles more than twice the matrix in a dim (wasted lanes) unless the dim is tiny.
    return (bm <= 2 * Math.max(d.m, 8) || c.kind === 'dot') && (bn <= 2 * Math.max(d.n, 8) || c.kind === 'dot');
  };
  const plans: MatmulPlan[] = pool.filter(fits).map((config) => ({ config, splitK: 1 }));
  if (d.batch * d.m * d.n <= 256 && d.k >= 64) plans.push({ config: { kind: 'dot', wg: 64 }, splitK: 1 });
  for (const p of [...plans]) {
    const s = chooseSplit(p.config, d, 16);
    if (s > 1) plans.push({ config: p.config, splitK: s });
  }
  return plans;
}

/**
 * Times candidate plans on this queue's adapter for one shape (random operands, each run
 * synchronised with `queue.sync()`, the first run — pipeline compilation — not counted) and caches
 * the fastest (best run) for the shape's class. Slow on CPU adapters: run it from benchmarks or
 * setup code, not in hot paths.
 */
export async function tuneMatmul(
  queue: KernelQueue,
  d: MatmulDims,
  opts: {
    candidates?: MatmulPlan[];
    reps?: number;
    maxMsPerCandidate?: number;
    onResult?: (t: MatmulTiming) => void;
  } = {},
): Promise<MatmulTuneResult> {
  const { device } = queue;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const mk = (n: number) => {
    const buffer = device.createBuffer({ size: Math.max(16, n * 4), usage });
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 0.5;
    device.queue.writeBuffer(buffer, 0, data);
    return buffer;
  };
  const A = mk(d.batch * d.m * d.k);
  const B = mk(d.batch * d.k * d.n);
  const C = mk(d.batch * d.m * d.n);
  const view = (buffer: GPUBuffer, shape: number[]): GpuOperand => ({
    buffer,
    dtype: 'f32',
    shape,
    strides: contiguousStrides(shape),
    offset: 0,
  });
  const shapes = { a: [d.batch, d.m, d.k], b: [d.batch, d.k, d.n], c: [d.batch, d.m, d.n] };
  const reps = opts.reps ?? 5;
  const timings: MatmulTiming[] = [];
  const flops = 2 * d.batch * d.m * d.n * d.k;
  try {
    for (const plan of opts.candidates ?? matmulCandidates(d, subgroupSizes(queue)?.max)) {
      const run = () => matmulGpu(queue, view(C, shapes.c), view(A, shapes.a), view(B, shapes.b), { plan });
      let t = performance.now();
      run(); // compiles the pipeline
      await queue.sync();
      const first = performance.now() - t;
      const times: number[] = [];
      const n =
        opts.maxMsPerCandidate && first * reps > opts.maxMsPerCandidate
          ? Math.max(1, Math.floor(opts.maxMsPerCandidate / first))
          : reps;
      for (let r = 0; r < n; r++) {
        t = performance.now();
        run();
        await queue.sync();
        times.push(performance.now() - t);
      }
      times.sort((x, y) => x - y);
      const ms = times[0]!;
      const timing = { plan, key: planKey(plan), ms, medianMs: times[times.length >> 1]!, gflops: flops / ms / 1e6 };
      timings.push(timing);
      opts.onResult?.(timing);
    }
  } finally {
    await queue.sync();
    A.destroy();
    B.destroy();
    C.destroy();
  }
  const best = timings.reduce((x, y) => (y.ms < x.ms ? y : x)).plan;
  const adapter = adapterKey(queue);
  const shapeClass = matmulShapeClass(d);
  rememberTunedPlan(adapter, shapeClass, best);
  return { adapter, shapeClass, best, timings };
}
