/** Kernel-level tests of matmul/ on a plain GPUDevice + KernelQueue (no tensor package). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import type { CpuOperand, GpuOperand } from '../src/layout.js';
import {
  type MatmulActivation,
  type MatmulConfig,
  type MatmulPlan,
  MATMUL_ACTIVATIONS,
  clearMatmulTunings,
  defaultMatmulPlan,
  exportMatmulTunings,
  importMatmulTunings,
  matmulCandidates,
  matmulCpu,
  matmulGpu,
  matmulPlanFor,
  matmulShapeClass,
  planKey,
  subgroupSizes,
  tuneMatmul,
} from '../src/matmul/index.js';
import { KernelQueue, adapterKey, isSoftwareAdapter, setAdapterName } from '../src/queue.js';
import { plainDevice } from './device.js';

const { device, queue, gpu } = await plainDevice();
const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

function contiguous(shape: readonly number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 4 - 2;
  });
}

/**
 * A matrix operand stored on both devices; `transposed` stores it as the transpose and views it back (swapped strides).
 */
interface Operand {
  gpu: GpuOperand;
  cpu: CpuOperand;
}
function operand(shape: number[], seed: number, transposed = false, offset = 0): Operand {
  const r = shape.length;
  const phys = transposed ? [...shape.slice(0, r - 2), shape[r - 1]!, shape[r - 2]!] : shape;
  const n = phys.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n + offset);
  data.set(values(n, seed), offset);
  const buffer = device.createBuffer({ size: Math.max(16, data.byteLength), usage: USAGE });
  device.queue.writeBuffer(buffer, 0, data);
  const ps = contiguous(phys);
  const strides = transposed ? [...ps.slice(0, r - 2), ps[r - 1]!, ps[r - 2]!] : ps;
  return {
    gpu: { buffer, dtype: 'f32', shape, strides, offset },
    cpu: { data: Float64Array.from(data), dtype: 'f32', shape, strides, offset },
  };
}
function output(shape: number[]): Operand {
  const n = shape.reduce((a, b) => a * b, 1);
  const buffer = device.createBuffer({ size: Math.max(16, n * 4), usage: USAGE });
  device.queue.writeBuffer(buffer, 0, new Float32Array(n).fill(NaN));
  return {
    gpu: { buffer, dtype: 'f32', shape, strides: contiguous(shape), offset: 0 },
    cpu: { data: new Float64Array(n), dtype: 'f32', shape, strides: contiguous(shape), offset: 0 },
  };
}

async function read(buffer: GPUBuffer, n: number): Promise<Float32Array> {
  const staging = device.createBuffer({
    size: Math.max(16, n * 4),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  queue.copy(buffer, 0, staging, 0, Math.max(16, n * 4));
  queue.flush();
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0, n * 4));
  staging.destroy();
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, k: number): void {
  assert.is(actual.length, expected.length, `${what}: lengths`);
  // f32 accumulation over k terms of size ≤ 4: error grows ~ sqrt(k)·ulp·|terms|
  const atol = 2e-5 * Math.max(1, k);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + 1e-5 * Math.abs(e)))
      assert.unreachable(`${what}: element ${i} is ${a}, expected ${e}`);
  }
}

interface Case {
  batchA: number[];
  batchB: number[];
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  bias?: 'row' | 'full' | 'col';
  activation?: MatmulActivation;
  pre?: boolean;
  plan?: MatmulPlan;
  /** Offset 0 (else 3 and 1 elements): with dims that are multiples of 4 the kernels take their vec4 paths. */
  aligned?: boolean;
}

function broadcast(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    return x === 1 ? y : x;
  });
}

let seed = 1;
async function check(c: Case, what: string): Promise<void> {
  const batch = broadcast(c.batchA, c.batchB);
  const A = operand([...c.batchA, c.m, c.k], seed++, c.transA, c.aligned ? 0 : 3);
  const B = operand([...c.batchB, c.k, c.n], seed++, c.transB, c.aligned ? 0 : 1);
  const outShape = [...batch, c.m, c.n];
  const biasShape = c.bias === 'row' ? [c.n] : c.bias === 'col' ? [c.m, 1] : c.bias === 'full' ? outShape : null;
  const bias = biasShape ? operand(biasShape, seed++) : undefined;
  const out = output(outShape);
  const pre = c.pre ? output(outShape) : undefined;
  const activation = c.activation ?? 'none';
  matmulGpu(queue, out.gpu, A.gpu, B.gpu, { bias: bias?.gpu, activation, preActivation: pre?.gpu, plan: c.plan });
  matmulCpu(out.cpu, A.cpu, B.cpu, { bias: bias?.cpu, activation, preActivation: pre?.cpu });
  const n = out.cpu.data.length;
  assertClose(await read(out.gpu.buffer, n), out.cpu.data, what, c.k);
  if (pre) assertClose(await read(pre.gpu.buffer, n), pre.cpu.data, `${what} (pre-activation)`, c.k);
  for (const x of [A, B, bias, out, pre]) x?.gpu.buffer.destroy();
}

const direct = (tm: number, tn: number, wx: number, wy: number): MatmulConfig => ({ kind: 'direct', tm, tn, wx, wy });
const tiled = (tm: number, tn: number, wx: number, wy: number, bk: number): MatmulConfig => ({
  kind: 'tiled',
  tm,
  tn,
  wx,
  wy,
  bk,
});

const subgroup = (tm: number, tn: number, wx: number): MatmulConfig => ({ kind: 'subgroup', tm, tn, wx });
/** Subgroup schedules, where the device has the feature; tm 4 and 8 take the vec4-sharing paths for A. */
const HAS_SUBGROUPS = device.features.has('subgroups');
const SUBGROUP_WX = Math.max(16, device.adapterInfo?.subgroupMaxSize ?? 128);
const SUBGROUP_VARIANTS: [string, MatmulPlan][] = HAS_SUBGROUPS
  ? [
      ['subgroup 4x4 (A shared across lanes)', { config: subgroup(4, 4, SUBGROUP_WX), splitK: 1 }],
      ['subgroup 3x5 (scalar A, scalar accumulators)', { config: subgroup(3, 5, SUBGROUP_WX), splitK: 1 }],
      ['subgroup 8x16', { config: subgroup(8, 16, SUBGROUP_WX), splitK: 1 }],
      ['split-K 3 over subgroup', { config: subgroup(4, 4, SUBGROUP_WX), splitK: 3 }],
    ]
  : [];
if (!HAS_SUBGROUPS)
  console.log('matmul: this adapter lacks the subgroups feature; the subgroup schedule is not tested');

const VARIANTS: [string, MatmulPlan][] = [
  ['direct 16x32 (large register tile)', { config: direct(16, 32, 2, 4), splitK: 1 }],
  ['direct 4x4', { config: direct(4, 4, 4, 4), splitK: 1 }],
  ['direct 3x5 (scalar accumulators)', { config: direct(3, 5, 4, 4), splitK: 1 }],
  ['direct 1x8 (skinny M)', { config: direct(1, 8, 32, 1), splitK: 1 }],
  ['direct 8x1 (skinny N)', { config: direct(8, 1, 1, 32), splitK: 1 }],
  ['direct 1x1 (thread per output)', { config: direct(1, 1, 64, 1), splitK: 1 }],
  ['tiled 4x4 vec4 B tile', { config: tiled(4, 4, 8, 8, 16), splitK: 1 }],
  ['tiled 8x4 bk 8', { config: tiled(8, 4, 8, 8, 8), splitK: 1 }],
  ['tiled 2x3 (scalar tile reads)', { config: tiled(2, 3, 8, 8, 8), splitK: 1 }],
  ['dot (workgroup per output)', { config: { kind: 'dot', wg: 64 }, splitK: 1 }],
  ['split-K 3 over direct', { config: direct(8, 8, 4, 4), splitK: 3 }],
  ['split-K 4 over tiled', { config: tiled(4, 4, 8, 8, 16), splitK: 4 }],
  ...SUBGROUP_VARIANTS,
];

const CASES: Case[] = [
  { batchA: [], batchB: [], m: 37, n: 29, k: 45 },
  { batchA: [2], batchB: [], m: 19, n: 70, k: 13, transA: true, bias: 'row', activation: 'relu' },
  { batchA: [3, 1], batchB: [2], m: 5, n: 9, k: 67, transB: true, bias: 'full', activation: 'gelu', pre: true },
  { batchA: [1], batchB: [2], m: 1, n: 33, k: 7, transA: true, transB: true, bias: 'col', activation: 'geluTanh' },
  { batchA: [], batchB: [], m: 65, n: 1, k: 1 },
  { batchA: [2], batchB: [2], m: 3, n: 4, k: 0, bias: 'row' },
  // vec4 paths: A along k + B along n + vec4 stores; A along m + B along k (transposed); B along n with a k tail
  { batchA: [2], batchB: [2], m: 36, n: 44, k: 52, aligned: true, bias: 'row', activation: 'gelu', pre: true },
  { batchA: [], batchB: [2], m: 36, n: 44, k: 52, aligned: true, transA: true, transB: true },
  { batchA: [], batchB: [], m: 20, n: 24, k: 37, aligned: true, activation: 'relu' },
];
/**
 * Big register tiles and the workgroup-memory kernel compile slowly on CPU adapters (one pipeline
 * per epilogue variant): they get the cases that cover their code paths.
 */
const FEW: Record<string, number[]> = { big: [0, 6, 7], tiled: [0, 1, 2, 5, 7], splitTiled: [0, 2] };

for (const [name, plan] of VARIANTS) {
  test(`${name}: odd sizes, transposes, broadcast batch, bias, activations`, async () => {
    const c = plan.config;
    const few =
      c.kind === 'tiled'
        ? plan.splitK > 1
          ? FEW.splitTiled
          : FEW.tiled
        : c.kind === 'direct' && c.tm * c.tn >= 128
          ? FEW.big
          : null;
    const cases = few ? few.map((i) => CASES[i]!) : CASES;
    for (const x of cases) await check({ ...x, plan }, `${name} ${JSON.stringify(x)}`);
  });
}

test('random shapes (fast-check) on the default plans', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        m: fc.integer({ min: 1, max: 70 }),
        n: fc.integer({ min: 1, max: 70 }),
        k: fc.integer({ min: 1, max: 70 }),
        batch: fc.constantFrom<[number[], number[]]>([[], []], [[3], [3]], [[2, 1], [3]], [[1], [2]]),
        transA: fc.boolean(),
        transB: fc.boolean(),
        activation: fc.constantFrom(...MATMUL_ACTIVATIONS),
        bias: fc.constantFrom<Case['bias']>(undefined, 'row', 'full'),
      }),
      async (r) => {
        await check({ ...r, batchA: r.batch[0], batchB: r.batch[1] }, JSON.stringify(r));
      },
    ),
    { numRuns: 12 },
  );
});

/** The same storage read as its matrix transpose (last two dims and strides swapped): no copy, as autograd does. */
function transposed(x: Operand): Operand {
  const swap = <T>(v: readonly T[]) => [...v.slice(0, -2), v[v.length - 1]!, v[v.length - 2]!];
  return {
    gpu: { ...x.gpu, shape: swap(x.gpu.shape), strides: swap(x.gpu.strides) },
    cpu: { ...x.cpu, shape: swap(x.cpu.shape), strides: swap(x.cpu.strides) },
  };
}

/** out = a @ b with a forced plan on the GPU, against the float64 reference. */
async function checkProduct(a: Operand, b: Operand, plan: MatmulPlan, what: string): Promise<void> {
  const k = a.gpu.shape[a.gpu.shape.length - 1]!;
  const out = output([...a.gpu.shape.slice(0, -1), b.gpu.shape[b.gpu.shape.length - 1]!]);
  matmulGpu(queue, out.gpu, a.gpu, b.gpu, { plan });
  matmulCpu(out.cpu, a.cpu, b.cpu);
  assertClose(await read(out.gpu.buffer, out.cpu.data.length), out.cpu.data, what, k);
  out.gpu.buffer.destroy();
}

test('subgroup schedule on random shapes (fast-check): C = A·B, dA = dC·Bᵀ, dB = Aᵀ·dC', async () => {
  if (!HAS_SUBGROUPS) {
    console.log('skipped: the adapter lacks the subgroups feature');
    return;
  }
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        m: fc.integer({ min: 1, max: 70 }),
        n: fc.integer({ min: 1, max: 70 }),
        k: fc.integer({ min: 1, max: 70 }),
        batch: fc.constantFrom<number[]>([], [3], [2, 1]),
        transA: fc.boolean(),
        transB: fc.boolean(),
        aligned: fc.boolean(),
        variant: fc.constantFrom(0, 1, 2),
      }),
      async (r) => {
        const plan = SUBGROUP_VARIANTS[r.variant]![1];
        const what = JSON.stringify(r);
        const A = operand([...r.batch, r.m, r.k], seed++, r.transA, r.aligned ? 0 : 3);
        const B = operand([...r.batch, r.k, r.n], seed++, r.transB, r.aligned ? 0 : 1);
        const dC = operand([...r.batch, r.m, r.n], seed++);
        await checkProduct(A, B, plan, `forward ${what}`);
        await checkProduct(dC, transposed(B), plan, `dA = dC·Bᵀ ${what}`);
        await checkProduct(transposed(A), dC, plan, `dB = Aᵀ·dC ${what}`);
        for (const x of [A, B, dC]) x.gpu.buffer.destroy();
      },
    ),
    { numRuns: 10 },
  );
});

test('the subgroup schedule is refused with a clear error where it cannot run', () => {
  const A = operand([4, 4], 1);
  const out = output([4, 4]);
  const narrow: MatmulPlan = { config: subgroup(4, 4, 2), splitK: 1 };
  const expected = HAS_SUBGROUPS
    ? /not a multiple of the adapter's subgroup size/
    : /needs the device feature 'subgroups'/;
  assert.throws(() => matmulGpu(queue, out.gpu, A.gpu, A.gpu, { plan: narrow }), expected);
  for (const x of [A, out]) x.gpu.buffer.destroy();
});

test('dispatches over 65535 workgroups in a dimension are chunked', async () => {
  await check(
    { batchA: [], batchB: [], m: 70000, n: 1, k: 2, plan: { config: direct(1, 1, 1, 1), splitK: 1 } },
    'tall chunked',
  );
});

test('default plans pick skinny, dot and split-K kernels by shape', () => {
  const sw = true; // a software adapter's defaults
  assert.is(defaultMatmulPlan({ batch: 1, m: 1, n: 1, k: 4096 }, sw).config.kind, 'dot');
  const gemv = defaultMatmulPlan({ batch: 1, m: 1, n: 512, k: 512 }, sw);
  assert.is(gemv.config.kind === 'direct' && gemv.config.tm, 1);
  const tall = defaultMatmulPlan({ batch: 1, m: 512, n: 2, k: 512 }, sw);
  assert.is(tall.config.kind === 'direct' && tall.config.tn, 2);
  const fewTiles = defaultMatmulPlan({ batch: 1, m: 32, n: 32, k: 4096 }, sw);
  assert.ok(fewTiles.splitK > 1, `expected split-K for 32x32x4096, got ${JSON.stringify(fewTiles)}`);
  assert.is(defaultMatmulPlan({ batch: 1, m: 1024, n: 1024, k: 1024 }, sw).splitK, 1);
  assert.is(defaultMatmulPlan({ batch: 1, m: 256, n: 256, k: 256 }, false).config.kind, 'tiled');
  // With subgroups: CPU adapters share A across lanes, workgroups at least one subgroup wide; GPUs keep `tiled`.
  const square = { batch: 1, m: 512, n: 512, k: 512 };
  assert.equal(defaultMatmulPlan(square, sw, 4).config, subgroup(32, 16, 4));
  assert.equal(defaultMatmulPlan(square, sw, 16).config, subgroup(32, 16, 16));
  assert.is(defaultMatmulPlan(square, false, 32).config.kind, 'tiled');
  assert.is(defaultMatmulPlan({ batch: 1, m: 1, n: 512, k: 512 }, sw, 4).config.kind, 'direct', 'gemv unchanged');
  // The tuner tries subgroup plans only where the device has subgroups, each at least a subgroup wide.
  const kinds = (size?: number) => matmulCandidates(square, size).filter((p) => p.config.kind === 'subgroup');
  assert.is(kinds().length, 0);
  assert.ok(kinds(4).length > 0);
  assert.ok(kinds(64).every((p) => p.config.kind === 'subgroup' && p.config.wx % 64 === 0));
});

test('default plans are correct on split-K and dot shapes', async () => {
  await check({ batchA: [], batchB: [], m: 1, n: 1, k: 300, bias: 'row', activation: 'relu' }, 'dot default');
  await check({ batchA: [], batchB: [], m: 9, n: 11, k: 700, transA: true, activation: 'gelu' }, 'split-K default');
});

test('tuner times candidates, caches the winner per adapter and shape class, exports and imports JSON', async () => {
  clearMatmulTunings();
  setAdapterName(queue, 'test-adapter');
  assert.is(adapterKey(queue), 'test-adapter');
  assert.not.ok(isSoftwareAdapter(queue));
  const dims = { batch: 2, m: 24, n: 20, k: 16 };
  const candidates: MatmulPlan[] = [
    { config: direct(4, 4, 4, 4), splitK: 1 },
    { config: tiled(4, 4, 8, 8, 8), splitK: 1 },
  ];
  const seen: string[] = [];
  const result = await tuneMatmul(queue, dims, { candidates, reps: 2, onResult: (t) => seen.push(t.key) });
  assert.is(result.timings.length, 2);
  assert.equal(
    seen,
    result.timings.map((t) => t.key),
  );
  assert.ok(result.timings.every((t) => t.ms > 0 && Number.isFinite(t.gflops)));
  assert.is(result.shapeClass, matmulShapeClass(dims));
  assert.equal(matmulPlanFor(queue, dims), result.best);
  const json = exportMatmulTunings();
  clearMatmulTunings();
  assert.equal(matmulPlanFor(queue, dims), defaultMatmulPlan(dims, false), 'cleared: back to the default');
  importMatmulTunings(json);
  assert.equal(matmulPlanFor(queue, dims), result.best);
  // the tuned plan is used (and correct) for another shape of the same class
  await check({ batchA: [2], batchB: [2], m: 30, n: 17, k: 40 }, 'tuned class');
  importMatmulTunings(
    JSON.stringify({ 'test-adapter': { [matmulShapeClass(dims)]: { config: { kind: 'bogus' }, splitK: 1 } } }),
  );
  assert.equal(matmulPlanFor(queue, dims), result.best, 'invalid imported plans are ignored');
  clearMatmulTunings();
  setAdapterName(queue, { vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver' });
  assert.ok(isSoftwareAdapter(queue));
  setAdapterName(queue, 'unknown');
});

test('without the subgroups feature: never planned, tuned plans skipped, a forced plan refused by name', async () => {
  // A second device from the same Dawn instance, created without the feature.
  const bare = await (await gpu.requestAdapter())!.requestDevice();
  const bareQueue = new KernelQueue(bare);
  try {
    assert.is(subgroupSizes(bareQueue), null);
    const square = { batch: 1, m: 512, n: 512, k: 512 };
    assert.is(planKey(matmulPlanFor(bareQueue, square)), 'direct32x16/4x2');
    if (HAS_SUBGROUPS)
      assert.is(planKey(matmulPlanFor(queue, square)), `subgroup32x16/${Math.max(4, subgroupSizes(queue)!.max)}`);
    clearMatmulTunings();
    const tunedForSubgroups = { config: subgroup(32, 16, 4), splitK: 1 };
    importMatmulTunings(JSON.stringify({ [adapterKey(bareQueue)]: { [matmulShapeClass(square)]: tunedForSubgroups } }));
    assert.is(planKey(matmulPlanFor(bareQueue, square)), 'direct32x16/4x2', 'a subgroup plan is skipped');
    clearMatmulTunings();
    const buffer = bare.createBuffer({ size: 64, usage: GPUBufferUsage.STORAGE });
    const view: GpuOperand = { buffer, dtype: 'f32', shape: [4, 4], strides: [4, 1], offset: 0 };
    assert.throws(
      () => matmulGpu(bareQueue, view, view, view, { plan: tunedForSubgroups }),
      /needs the device feature 'subgroups', which this device lacks/,
    );
  } finally {
    bare.destroy();
  }
});

test('shape and dtype errors name the operands', () => {
  const A = operand([2, 3], 1);
  const B = operand([4, 5], 2);
  const out = output([2, 5]);
  assert.throws(() => matmulGpu(queue, out.gpu, A.gpu, B.gpu), /matmul: \[2, 3\] @ \[4, 5\] does not give \[2, 5\]/);
  assert.throws(() => matmulCpu(out.cpu, { ...A.cpu, dtype: 'i32' }, B.cpu), /only f32/);
  const B2 = operand([3, 5], 3);
  const bias = operand([4], 4);
  assert.throws(
    () => matmulGpu(queue, out.gpu, A.gpu, B2.gpu, { bias: bias.gpu }),
    /bias \[4\] does not broadcast to \[2, 5\]/,
  );
  for (const x of [A, B, B2, out, bias]) x.gpu.buffer.destroy();
});

test.run();
