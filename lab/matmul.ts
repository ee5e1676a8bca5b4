/**
 * The matmul lab: C = A·B for row-major f32 A [M, K] and B [K, N]. Version 1 is the naive kernel,
 * written here; versions 2–6 are the kept kernels of kernels-wgsl (matmul/index.ts holds the
 * measured version table), forced to one plan each. Run: pnpm lab matmul 1..6 [--size N | --shape M,N,K]
 */
import * as T from '@rnagrad/tensor';
import {
  type KernelQueue,
  type MatmulConfig,
  UniformWriter,
  matmulGpu,
  subgroupSizes,
  uniformBlock,
} from '@rnagrad/kernels-wgsl';
import { type LabKernel, type LabVersion, UsageError } from './harness.js';

interface MatmulProblem {
  a: T.Tensor;
  b: T.Tensor;
  c: T.Tensor;
  m: number;
  n: number;
  k: number;
}

/** Version 1, the naive kernel: one thread per output element, a scalar loop over K. */
const NAIVE_WG = 8;
const naiveSource = () => `${uniformBlock(3)}
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@compute @workgroup_size(${NAIVE_WG}, ${NAIVE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = word(0u);
  let N = word(1u);
  let K = word(2u);
  let row = gid.y;
  let col = gid.x;
  if (row >= M || col >= N) { return; }
  var acc = 0.0;
  for (var k = 0u; k < K; k++) {
    acc += a[row * K + k] * b[k * N + col];
  }
  c[row * N + col] = acc;
}`;

function naiveMatmul(queue: KernelQueue, p: MatmulProblem): void {
  queue.dispatch({
    key: 'lab:matmul:naive',
    source: naiveSource,
    storage: [T.gpuOperand('lab', p.c).buffer, T.gpuOperand('lab', p.a).buffer, T.gpuOperand('lab', p.b).buffer],
    uniforms: new UniformWriter(3).u32(0, p.m).u32(1, p.n).u32(2, p.k).data,
    workgroups: [Math.ceil(p.n / NAIVE_WG), Math.ceil(p.m / NAIVE_WG)],
    label: 'naive matmul',
  });
}

/** A kept kernel of kernels-wgsl, forced to one config (no split-K), which may depend on the device. */
function kept(
  name: string,
  about: string,
  config: MatmulConfig | ((queue: KernelQueue) => MatmulConfig),
): LabVersion<MatmulProblem> {
  return {
    name,
    about,
    launch: (queue, p) =>
      matmulGpu(queue, T.gpuOperand('lab', p.c), T.gpuOperand('lab', p.a), T.gpuOperand('lab', p.b), {
        plan: { config: typeof config === 'function' ? config(queue) : config, splitK: 1 },
      }),
  };
}

export const matmulLab: LabKernel<MatmulProblem, { m: number; n: number; k: number }> = {
  name: 'matmul',
  options: '--size N (square, default 256) or --shape M,N,K',
  versions: [
    { name: 'naive: one thread per output, scalar loop over K', about: 'lab/matmul.ts', launch: naiveMatmul },
    kept('tiled in workgroup memory: 4×4/thread, 8×8 threads, bk 16', 'kernels-wgsl tiledSource (the GPU default)', {
      kind: 'tiled',
      tm: 4,
      tn: 4,
      wx: 8,
      wy: 8,
      bk: 16,
    }),
    kept('register-blocked from storage, 4×4/thread, 8×4 threads', 'kernels-wgsl directSource, vec4 loads', {
      kind: 'direct',
      tm: 4,
      tn: 4,
      wx: 8,
      wy: 4,
    }),
    kept('register-blocked, 16×16/thread, 2×4 threads', 'bigger register tile: fewer loads per FMA', {
      kind: 'direct',
      tm: 16,
      tn: 16,
      wx: 2,
      wy: 4,
    }),
    kept('register-blocked, 32×16/thread, 4×2 threads', 'the CPU-adapter default without subgroups', {
      kind: 'direct',
      tm: 32,
      tn: 16,
      wx: 4,
      wy: 2,
    }),
    // Needs the `subgroups` feature (matmulGpu names it when missing); a workgroup is one subgroup wide at least.
    kept('A shared across subgroup lanes, 32×16/thread, ≥4 threads', 'the CPU-adapter default with subgroups', (q) => ({
      kind: 'subgroup',
      tm: 32,
      tn: 16,
      wx: Math.max(4, subgroupSizes(q)?.max ?? 4),
    })),
  ],
  parse(flags) {
    const size = flags.get('size');
    const shape = flags.get('shape');
    if (size !== undefined && shape !== undefined) throw new UsageError('give --size or --shape, not both');
    const dims = shape !== undefined ? shape.split(',') : [size ?? '256', size ?? '256', size ?? '256'];
    const [m, n, k] = dims.map(Number) as [number, number, number];
    if (dims.length !== 3 || ![m, n, k].every((d) => Number.isInteger(d) && d >= 1 && d <= 4096)) {
      throw new UsageError(
        `matmul sizes must be 3 integers in 1..4096 (--shape M,N,K or --size N), got "${shape ?? size}"`,
      );
    }
    return { m, n, k };
  },
  async setup({ m, n, k }) {
    const ac = T.randn([m, k], { device: 'cpu', seed: 1 });
    const bc = T.randn([k, n], { device: 'cpu', seed: 2 });
    const reference = await T.matmul(ac, bc).dataF64(); // the float64 twin
    const [a, b] = await Promise.all([ac.to('gpu'), bc.to('gpu')]);
    const c = T.empty([m, n]);
    return {
      problem: { a, b, c, m, n, k },
      describe: `[${m}, ${k}] @ [${k}, ${n}] (f32)`,
      reference,
      output: c,
      tolerance: 1e-5 + 1e-6 * k, // f32 rounding of a sum of k products of N(0, 1) values, with room
      work: { unit: 'GFLOP/s', amount: 2 * m * n * k },
      dispose: () => [ac, bc, a, b, c].forEach((t) => t.dispose()),
    };
  },
};
