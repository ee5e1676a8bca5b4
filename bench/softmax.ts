/**
 * Softmax bandwidth and fused cross-entropy time on this adapter.
 *
 *   node --import tsx bench/softmax.ts          softmax [1024,1024] + copy ceiling + CE fwd+bwd [16384,70]
 *   node --import tsx bench/softmax.ts --all    also the softmax schedule variants, LayerNorm, AdamW,
 *                                               global-norm clipping and the scatter strategies
 *
 * Every sample ends with `queue.sync()` (GPU completion). Softmax bytes = 1 read + 1 write of
 * 1024×1024 f32 (8 MiB), as in shared/reference/peers-swiftshader.md, where jax-js reached 0.159 GB/s.
 * The copy kernel (vec4, 16 words per thread: the fastest copy measured here) gives the adapter's
 * practical bandwidth ceiling in the same run. SwiftShader on a shared 2-core VM varies ±10–50%
 * between samples: both the median (p50) and the best sample are printed.
 */
import { Bench } from 'tinybench';
import { init } from '@rnagrad/tensor';
import type { GpuOperand } from '@rnagrad/kernels-wgsl';
// Not yet re-exported by @rnagrad/kernels-wgsl's index (switch these imports once they are):
import { type RowSchedule, crossEntropyBackwardGpu, crossEntropyGpu, softmaxGpu } from '@rnagrad/kernels-wgsl';
import { layerNormBackwardGpu, layerNormGpu } from '@rnagrad/kernels-wgsl';
import { adamwGpu, clipGradNormGpu } from '@rnagrad/kernels-wgsl';
import { type ScatterStrategy, scatterAddRowsGpu } from '@rnagrad/kernels-wgsl';

const ALL = process.argv.includes('--all');
const JAX_JS_GBPS = 0.159;

const rt = await init({ quiet: true });
const { device, queue } = rt;
console.log(
  `adapter: ${rt.adapter.vendor} ${rt.adapter.architecture} ${rt.adapter.description}${
    rt.adapter.isSoftware ? ' (software)' : ''
  }`,
);

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
function buffer(values: ArrayLike<number> | number, dtype: 'f32' | 'i32' = 'f32'): GPUBuffer {
  const n = typeof values === 'number' ? values : values.length;
  const b = device.createBuffer({ size: Math.max(16, Math.ceil((n * 4) / 16) * 16), usage: USAGE });
  if (typeof values !== 'number')
    device.queue.writeBuffer(b, 0, dtype === 'f32' ? Float32Array.from(values) : Int32Array.from(values));
  return b;
}
function op(b: GPUBuffer, shape: number[], dtype: 'f32' | 'i32' = 'f32', strides?: number[]): GpuOperand {
  const s = strides ?? shape.map((_, k) => shape.slice(k + 1).reduce((a, c) => a * c, 1));
  return { buffer: b, dtype, shape, strides: s, offset: 0 };
}
function random(n: number, scale = 4, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}
async function read(b: GPUBuffer, count: number): Promise<Float32Array> {
  const staging = device.createBuffer({ size: count * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  queue.copy(b, 0, staging, 0, count * 4);
  queue.flush();
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Workloads

const R = 1024;
const C = 1024;
const N = R * C;
const x = buffer(random(N, 6));
const y = buffer(N);

const COPY_SOURCE = `@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> b: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let start = w.x * 1024u + l;
  for (var k = 0u; k < 16u; k++) { let i = start + k * 64u; b[i] = a[i]; }
}`;
const copy = () =>
  queue.dispatch({ key: 'bench:copy', source: () => COPY_SOURCE, storage: [x, y], workgroups: [N / 4 / 1024] });
const softmax = (schedule?: RowSchedule, allowVec = true) =>
  softmaxGpu(queue, op(y, [R, C]), op(x, [R, C]), { schedule, allowVec });

// Cross-entropy on [16384, 70] (the RNA vocabulary-sized classifier), mean reduction.
const CN = 16384;
const CC = 70;
const logits = buffer(random(CN * CC, 5, 3));
const targets = buffer(
  Array.from({ length: CN }, (_, i) => (i % 11 === 0 ? -100 : (i * 31) % CC)),
  'i32',
);
const loss = buffer(CN);
const lse = buffer(CN);
const gscale = buffer([1 / CN]);
const dlogits = buffer(CN * CC);
const crossEntropy = (schedule?: RowSchedule) => {
  crossEntropyGpu(queue, op(loss, [CN]), op(lse, [CN]), op(logits, [CN, CC]), op(targets, [CN], 'i32'), { schedule });
  crossEntropyBackwardGpu(
    queue,
    op(dlogits, [CN, CC]),
    op(logits, [CN, CC]),
    op(targets, [CN], 'i32'),
    op(lse, [CN]),
    op(gscale, [CN], 'f32', [0]),
    { schedule },
  );
};

// sanity: rows of the softmax sum to 1
softmax();
const check = await read(y, 2 * C);
for (let r = 0; r < 2; r++) {
  const s = check.subarray(r * C, r * C + C).reduce((a, b) => a + b, 0);
  if (Math.abs(s - 1) > 1e-4) throw new Error(`softmax row ${r} sums to ${s}`);
}

const bench = new Bench({ time: 1500, warmupIterations: 3, warmupTime: 200 });
const task = (name: string, fn: () => void) =>
  bench.add(name, async () => {
    fn();
    await queue.sync();
  });
task('copy kernel (vec4) 4 MiB → 4 MiB', copy);
task('softmax [1024,1024]', () => softmax());
task('cross-entropy fwd+bwd [16384,70]', () => crossEntropy());

if (ALL) {
  task('softmax [1024,1024] L=1 scalar loads', () => softmax({ lanes: 1 }, false));
  task('softmax [1024,1024] L=4 (16 rows/workgroup)', () => softmax({ lanes: 4 }));
  task('softmax [1024,1024] L=16', () => softmax({ lanes: 16 }));
  task('softmax [1024,1024] L=64 leader reduction', () => softmax({ lanes: 64 }));
  task('softmax [1024,1024] L=64 tree reduction', () => softmax({ lanes: 64, reduce: 'tree' }));
  task('log-softmax [1024,1024]', () => softmaxGpu(queue, op(y, [R, C]), op(x, [R, C]), { log: true }));
  task('cross-entropy fwd+bwd [16384,70] L=4', () => crossEntropy({ lanes: 4 }));

  // LayerNorm [4096, 256] with weight and bias
  const LR = 4096;
  const LC = 256;
  const lx = buffer(random(LR * LC, 3, 5));
  const ly = buffer(LR * LC);
  const lw = buffer(random(LC, 1, 6));
  const lb = buffer(random(LC, 1, 7));
  const lm = buffer(LR);
  const ls = buffer(LR);
  const ldx = buffer(LR * LC);
  const ldw = buffer(LC);
  const ldb = buffer(LC);
  task('layerNorm fwd [4096,256]', () =>
    layerNormGpu(
      queue,
      { y: op(ly, [LR, LC]), mean: op(lm, [LR]), rstd: op(ls, [LR]) },
      op(lx, [LR, LC]),
      op(lw, [LC]),
      op(lb, [LC]),
    ),
  );
  task('layerNorm bwd [4096,256] (dx, dw, db)', () =>
    layerNormBackwardGpu(
      queue,
      { dx: op(ldx, [LR, LC]), dweight: op(ldw, [LC]), dbias: op(ldb, [LC]) },
      { x: op(lx, [LR, LC]), weight: op(lw, [LC]), mean: op(lm, [LR]), rstd: op(ls, [LR]), dy: op(ly, [LR, LC]) },
    ),
  );

  // AdamW / clipping over 1M parameters in 4 tensors
  const sizes = [512 * 1024, 256 * 1024, 256 * 1024 - 4, 3];
  const params = sizes.map((n, k) => ({
    p: buffer(random(n, 1, 10 + k)),
    g: buffer(random(n, 0.1, 20 + k)),
    m: buffer(n),
    v: buffer(n),
    n,
  }));
  let step = 0;
  task('adamw 1M params (4 tensors)', () =>
    adamwGpu(
      queue,
      params.map((t) => ({ param: op(t.p, [t.n]), grad: op(t.g, [t.n]), m: op(t.m, [t.n]), v: op(t.v, [t.n]) })),
      { lr: 1e-3, step: ++step },
    ),
  );
  const norm = buffer(1);
  task('clipGradNorm 1M grads (4 tensors)', () =>
    clipGradNormGpu(
      queue,
      op(norm, [1]),
      params.map((t) => op(t.g, [t.n])),
      1e9,
    ),
  );

  // scatter-add (embedding backward), D = 128
  const D = 128;
  for (const [n, v] of [
    [512, 22],
    [2048, 22],
    [8192, 22],
    [2048, 70],
    [8192, 70],
    [2048, 50000],
    [8192, 50000],
  ] as const) {
    const ids = buffer(
      Array.from({ length: n }, (_, i) => (i * 7919) % v),
      'i32',
    );
    const src = buffer(random(n * D, 1, n));
    const out = buffer(v * D);
    const keys = buffer(2 * 16384);
    for (const strategy of ['scan', 'sort'] as ScatterStrategy[]) {
      if (strategy === 'scan' && n * v > 2_000_000) continue; // minutes
      task(`scatter N=${n} V=${v} D=${D} ${strategy}`, () =>
        scatterAddRowsGpu(queue, op(out, [v, D]), op(ids, [n], 'i32'), op(src, [n, D]), { strategy, scratch: keys }),
      );
    }
  }
}

await bench.run();

const stats = new Map<string, { p50: number; min: number }>();
const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state };
  stats.set(t.name, { p50: r.latency.p50, min: r.latency.min });
  return {
    task: t.name,
    'p50 ms': +r.latency.p50.toFixed(2),
    'best ms': +r.latency.min.toFixed(2),
    samples: r.latency.samplesCount,
  };
});
console.table(rows);

const gbps = (bytes: number, ms: number) => bytes / ms / 1e6;
const bytes = 8 * N;
const cp = stats.get('copy kernel (vec4) 4 MiB → 4 MiB')!;
const sm = stats.get('softmax [1024,1024]')!;
const ce = stats.get('cross-entropy fwd+bwd [16384,70]')!;
console.log(
  `copy ceiling:          ${gbps(bytes, cp.p50).toFixed(3)} GB/s p50, ${gbps(bytes, cp.min).toFixed(3)} GB/s best`,
);
console.log(
  `softmax [1024,1024]:   ${gbps(bytes, sm.p50).toFixed(3)} GB/s p50, ${gbps(bytes, sm.min).toFixed(3)} GB/s best`,
);
console.log(
  `  vs jax-js 0.159 GB/s: ${(gbps(bytes, sm.p50) / JAX_JS_GBPS).toFixed(2)}× ` +
    `(p50), ${(gbps(bytes, sm.min) / JAX_JS_GBPS).toFixed(2)}× (best)`,
);
console.log(`  vs copy ceiling:      ${((100 * cp.p50) / sm.p50).toFixed(0)}% (p50)`);
console.log(`cross-entropy fwd+bwd [16384,70]: ${ce.p50.toFixed(2)} ms p50, ${ce.min.toFixed(2)} ms best`);
rt.destroy();
process.exit(0);
