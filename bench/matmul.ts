/**
 * Matmul GFLOP/s on this adapter, against the adapter's FMA ceiling measured in the same run and
 * against jax-js's figures from shared/reference/peers-swiftshader.md.
 *
 *   node --import tsx bench/matmul.ts                 256³, 512³, 1024³, [8,128,64]×[8,64,128] + FMA ceiling
 *   node --import tsx bench/matmul.ts --tune          first autotune each case's shape class (slow on CPU adapters)
 *   node --import tsx bench/matmul.ts --tunings f.json   load tuned plans from f.json if it exists; with --tune,
 *                                                        save them there
 *   node --import tsx bench/matmul.ts --cases 1024    only the cases whose name contains one of the given words
 *
 * Each sample runs the tensor-level `matmul` (output allocated from the pool, then disposed) and
 * ends with `rt.sync()`, i.e. waits for GPU completion. Every case's output is spot-checked against
 * a float64 dot product first. SwiftShader on a shared 2-core VM varies ±10–50% between samples
 * (more while other processes run): the median (p50) and the best sample are both printed, plus
 * process CPU time per sample ÷ 2 cores, which is less sensitive to other load.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { type Tensor, init, matmul, tensor } from '@rnagrad/tensor';
import { exportMatmulTunings, importMatmulTunings, matmulPlanFor, planKey, tuneMatmul } from '@rnagrad/kernels-wgsl';

const args = process.argv.slice(2);
const TUNE = args.includes('--tune');
const tuningsFile = args.includes('--tunings') ? args[args.indexOf('--tunings') + 1] : undefined;
const only = args.includes('--cases') ? args[args.indexOf('--cases') + 1]!.split(',') : null;

/** jax-js 0.1.25 (jit) on the CI machine's SwiftShader, GFLOP/s (peers-swiftshader.md). */
const JAX_JS: Record<string, number> = {
  '256³': 1.56,
  '512³': 1.99,
  '1024³': 2.08,
  'batched [8,128,64]×[8,64,128]': 1.37,
};
const TARGET: Record<string, number> = { '1024³': 3.1, 'batched [8,128,64]×[8,64,128]': 2.05 };
const PEER_CEILING = 7.7;

const rt = await init({ quiet: true });
const { device, queue } = rt;
console.log(
  `adapter: ${rt.adapter.vendor} ${rt.adapter.architecture} ${rt.adapter.description}` +
    `${rt.adapter.isSoftware ? ' (software)' : ''}`,
);
if (tuningsFile && existsSync(tuningsFile)) {
  importMatmulTunings(readFileSync(tuningsFile, 'utf8'));
  console.log(`loaded tuned plans from ${tuningsFile}`);
}

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

interface Case {
  name: string;
  batch: number;
  m: number;
  n: number;
  k: number;
}
const CASES: Case[] = [
  { name: '256³', batch: 1, m: 256, n: 256, k: 256 },
  { name: '512³', batch: 1, m: 512, n: 512, k: 512 },
  { name: '1024³', batch: 1, m: 1024, n: 1024, k: 1024 },
  { name: 'batched [8,128,64]×[8,64,128]', batch: 8, m: 128, n: 128, k: 64 },
].filter((c) => !only || only.some((w) => c.name.includes(w)));

// ---------------------------------------------------------------------------------------------
// FMA ceiling: independent vec4 fma chains, unrolled, no memory traffic in the loop.

const FMA_WG = 64;
const FMA_GROUPS = 256;
const FMA_ITERS = 1024;
const FMA_CHAINS = 8;
const FMA_UNROLL = 4;
const fmaSource = () => {
  const chains = Array.from({ length: FMA_CHAINS }, (_, i) => i);
  const step = chains.map((i) => `a${i} = fma(a${i}, m, c);`).join(' ');
  return `@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(${FMA_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = f32(gid.x) * 1e-7;
  ${chains.map((i) => `var a${i} = vec4<f32>(s + ${i}.0, s, s, s);`).join(' ')}
  let m = vec4<f32>(0.9999, 0.9998, 0.9997, 0.9996);
  let c = vec4<f32>(1e-4, 2e-4, 3e-4, 4e-4);
  for (var i = 0u; i < ${FMA_ITERS}u; i++) {
    ${Array.from({ length: FMA_UNROLL }, () => step).join('\n    ')}
  }
  out[gid.x] = ${chains.map((i) => `a${i}`).join(' + ')};
}`;
};
const fmaFlops = FMA_GROUPS * FMA_WG * FMA_ITERS * FMA_UNROLL * FMA_CHAINS * 4 * 2;
const fmaOut = device.createBuffer({ size: FMA_GROUPS * FMA_WG * 16, usage: GPUBufferUsage.STORAGE });
const fmaRun = () =>
  queue.dispatch({
    key: 'bench:fma-ceiling',
    source: fmaSource,
    storage: [fmaOut],
    workgroups: [FMA_GROUPS],
    label: 'fma ceiling',
  });

// ---------------------------------------------------------------------------------------------

interface Row {
  name: string;
  plan: string;
  p50: number;
  best: number;
  cpu: number;
  flops: number;
}
const rows: Row[] = [];

/** Runs `fn` (which must end with GPU completion) under tinybench; also records process CPU ms per sample. */
async function measure(
  name: string,
  fn: () => Promise<void>,
  iterations: number,
): Promise<{ p50: number; best: number; cpu: number }> {
  const cpu: number[] = [];
  const bench = new Bench({ iterations, time: 0, warmup: true, warmupIterations: 1, warmupTime: 0 });
  bench.add(name, async () => {
    const c0 = process.cpuUsage();
    await fn();
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  });
  await bench.run();
  const r = bench.tasks[0]!.result;
  if (r.state !== 'completed') throw new Error(`${name}: ${r.state === 'errored' ? r.error.message : r.state}`);
  cpu.sort((x, y) => x - y);
  return { p50: r.latency.p50, best: r.latency.min, cpu: cpu[cpu.length >> 1]! / 2 };
}

async function spotCheck(c: Case, av: Float32Array, bv: Float32Array, y: Tensor): Promise<void> {
  const out = await y.data();
  let seed = 7;
  for (let t = 0; t < 64; t++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const bi = seed % c.batch;
    const i = (seed >>> 8) % c.m;
    const j = (seed >>> 16) % c.n;
    let s = 0;
    for (let p = 0; p < c.k; p++) s += av[(bi * c.m + i) * c.k + p]! * bv[(bi * c.k + p) * c.n + j]!;
    const got = out[(bi * c.m + i) * c.n + j]!;
    if (Math.abs(got - s) > 1e-4 * Math.sqrt(c.k) + 1e-5 * Math.abs(s))
      throw new Error(`${c.name}: element (${bi}, ${i}, ${j}) is ${got}, expected ${s}`);
  }
}

for (const c of CASES) {
  const dims = { batch: c.batch, m: c.m, n: c.n, k: c.k };
  if (TUNE) {
    console.log(`tuning ${c.name} ...`);
    const res = await tuneMatmul(queue, dims, {
      reps: 3,
      maxMsPerCandidate: 6000,
      onResult: (t) =>
        console.log(
          `  ${t.key.padEnd(34)} best ${t.ms.toFixed(1).padStart(8)} ms (${t.gflops.toFixed(2)} GFLOP/s), ` +
            `median ${t.medianMs.toFixed(1)} ms`,
        ),
    });
    console.log(`  → ${planKey(res.best)} for shape class ${res.shapeClass}`);
  }
  const aShape = c.batch > 1 ? [c.batch, c.m, c.k] : [c.m, c.k];
  const bShape = c.batch > 1 ? [c.batch, c.k, c.n] : [c.k, c.n];
  const av = random(c.batch * c.m * c.k, 1);
  const bv = random(c.batch * c.k * c.n, 2);
  const a = tensor(av, { shape: aShape });
  const b = tensor(bv, { shape: bShape });
  const first = matmul(a, b);
  await spotCheck(c, av, bv, first);
  first.dispose();
  const flops = 2 * c.batch * c.m * c.n * c.k;
  const iterations = flops > 1e9 ? 8 : flops > 1e8 ? 12 : 30;
  const r = await measure(
    c.name,
    async () => {
      const y = matmul(a, b);
      await rt.sync();
      y.dispose();
    },
    iterations,
  );
  rows.push({ name: c.name, plan: planKey(matmulPlanFor(queue, dims)), ...r, flops });
  a.dispose();
  b.dispose();
}

const ceiling = await measure(
  'fma ceiling',
  async () => {
    fmaRun();
    await queue.sync();
  },
  12,
);
const ceilingGflops = fmaFlops / ceiling.p50 / 1e6;
const ceilingBest = fmaFlops / ceiling.best / 1e6;

const g = (flops: number, ms: number) => flops / ms / 1e6;
console.log(
  `\nFMA ceiling (vec4 fma chains, same run): p50 ${ceilingGflops.toFixed(2)} GFLOP/s, ` +
    `best ${ceilingBest.toFixed(2)} (peers' run: ${PEER_CEILING})\n`,
);
console.log(
  `${'case'.padEnd(31)} ${'plan'.padEnd(24)} ${'p50 ms'.padStart(8)} ${'GFLOP/s'.padStart(8)} ` +
    `${'best'.padStart(6)} ${'cpu/2'.padStart(6)} ${'ceil%'.padStart(6)} ${'×jax-js'.padStart(8)} target`,
);
for (const r of rows) {
  const p50 = g(r.flops, r.p50);
  const jax = JAX_JS[r.name];
  const target = TARGET[r.name];
  console.log(
    `${r.name.padEnd(31)} ${r.plan.padEnd(24)} ${r.p50.toFixed(1).padStart(8)} ${p50.toFixed(2).padStart(8)} ` +
      `${g(r.flops, r.best).toFixed(2).padStart(6)} ${g(r.flops, r.cpu).toFixed(2).padStart(6)} ` +
      `${((100 * p50) / ceilingGflops).toFixed(0).padStart(5)}% ` +
      `${jax ? `${(p50 / jax).toFixed(2)}×`.padStart(8) : ''.padStart(8)} ` +
      `${target ? `${target} ${p50 >= target ? 'met' : 'not met'}` : ''}`,
  );
}
if (TUNE && tuningsFile) {
  writeFileSync(tuningsFile, exportMatmulTunings());
  console.log(`\nsaved tuned plans to ${tuningsFile}`);
}
fmaOut.destroy();
rt.destroy();
process.exit(0);
