/**
 * The fused HXE/XE kernels (src/hxe/kernel.ts) on raw buffers of the runtime's device and queue,
 * against their float64 CPU references (which themselves are checked against tokenizers'
 * edge-by-edge `hxeLossReference` and a central-difference gradient).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import {
  type LabelTree,
  type TreeSpec,
  codonTree,
  hxeLossReference,
  randomCodonTree,
  treeFromSpec,
} from '@rnagrad/tokenizers';
import { init } from '@rnagrad/tensor';
import type { GpuOperand } from '@rnagrad/kernels-wgsl';
import {
  type HxeGpuTable,
  type HxeTableData,
  hxeBackwardCpu,
  hxeForwardCpu,
  hxeGpu,
  hxeKernelTable,
  hxeBackwardGpu,
  hxeReduceGpu,
  hxeStatsWords,
  uploadHxeTable,
  xeKernelTable,
} from '../src/hxe/kernel.js';
import { A3_MEANS, A3_PER_SAMPLE, A3_TARGETS, a3Logits, assertClose, lcg, tableFor } from './hxe-helpers.js';

const { device, queue } = await init({ quiet: true });
const gpuErrors: string[] = [];
device.addEventListener('uncapturederror', (e) => gpuErrors.push((e as GPUUncapturedErrorEvent).error.message));

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const buffers: GPUBuffer[] = [];
function upload(values: ArrayLike<number>, dtype: 'f32' | 'i32', shape: number[], pad = 0): GpuOperand {
  const words = dtype === 'f32' ? new Float32Array(pad + values.length) : new Int32Array(pad + values.length);
  words.set(Array.from(values), pad);
  const buffer = device.createBuffer({ size: Math.max(16, words.byteLength), usage: USAGE() });
  device.queue.writeBuffer(buffer, 0, words);
  buffers.push(buffer);
  const strides = shape.length === 2 ? [shape[1]!, 1] : [1];
  return { buffer, dtype, shape, strides, offset: pad };
}
function output(n: number, shape: number[], pad = 0): GpuOperand {
  return upload(new Float32Array(n).fill(-12345), 'f32', shape, pad);
}
async function read(op: GpuOperand, n: number): Promise<Float64Array> {
  const bytes = n * 4;
  const staging = device.createBuffer({
    size: Math.max(4, bytes),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  if (bytes > 0) queue.copy(op.buffer, op.offset * 4, staging, 0, bytes);
  queue.flush();
  await staging.mapAsync(GPUMapMode.READ);
  const values = Float64Array.from(new Float32Array(staging.getMappedRange().slice(0)));
  staging.unmap();
  staging.destroy();
  for (const b of buffers.splice(0)) b.destroy();
  if (gpuErrors.length) throw new Error(`WebGPU errors: ${gpuErrors.splice(0).join('\n')}`);
  return values.subarray(0, n);
}

// ---------------------------------------------------------------------------------------------
// Trees and data

/** A hand-made 11-class tree of mixed depth (1 to 4), unary chains included. */
function smallTree(): LabelTree {
  const classes = ['a1', 'a2', 'a3', 'b1', 'c1', 'c2', 'd', 'g1', 'h1', 'h2', 'h3'];
  const spec: TreeSpec = {
    label: 'root',
    children: [
      { label: 'A', children: ['a1', 'a2', 'a3'] },
      { label: 'B', children: ['b1', { label: 'C', children: ['c2', 'c1'] }] },
      'd',
      { label: 'E', children: [{ label: 'F', children: [{ label: 'G', children: ['g1'] }] }] },
      { label: 'H', children: ['h3', 'h1', 'h2'] },
    ],
  };
  return treeFromSpec(spec, classes);
}

/** A caterpillar of depth `depth` (width > 8 exercises the kernel's chunk loop). */
function deepTree(depth: number): LabelTree {
  const classes = Array.from({ length: depth + 1 }, (_, i) => `x${i}`);
  let spec: TreeSpec = `x${depth}`;
  for (let d = depth - 1; d >= 0; d--) spec = { label: `n${d}`, children: [`x${d}`, spec] };
  return treeFromSpec(spec, classes);
}

/** A random tree over `numClasses` classes (random nested groups, classes in shuffled order). */
function randomTree(numClasses: number, seed: number): LabelTree {
  let s = seed >>> 0 || 1;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const classes = Array.from({ length: numClasses }, (_, i) => `k${i}`);
  const shuffled = [...classes].sort(() => rand() - 0.5);
  let labels = 0;
  const build = (items: string[], depth: number): TreeSpec => {
    if (items.length === 1 && (depth > 0 || rand() < 0.5)) return items[0]!;
    const children: TreeSpec[] = [];
    for (let i = 0; i < items.length;) {
      const size = Math.max(1, Math.min(items.length - i, Math.floor(rand() * Math.max(2, items.length / 3)) + 1));
      const part = items.slice(i, i + size);
      children.push(
        depth > 6 || part.length === 1
          ? part.length === 1
            ? part[0]!
            : { label: `g${labels++}`, children: part }
          : build(part, depth + 1),
      );
      i += size;
    }
    return { label: `g${labels++}`, children };
  };
  return treeFromSpec(build(shuffled, 0), classes);
}

/** f32-rounded logits `offset + scale·u`, u uniform in [-1, 1). */
function randomLogits(n: number, seed: number, scale: number, offset = 0): Float32Array {
  const r = lcg(seed);
  return Float32Array.from({ length: n }, () => offset + scale * (2 * r() - 1));
}

function randomTargets(n: number, C: number, seed: number, ignoreEvery = 0, ignoreIndex = -100): Int32Array {
  const r = lcg(seed ^ 0x9e3779b9);
  return Int32Array.from({ length: n }, (_, i) =>
    ignoreEvery && i % ignoreEvery === ignoreEvery - 1 ? ignoreIndex : Math.floor(r() * C),
  );
}

const uploaded = new WeakMap<object, HxeGpuTable>();
function gpuTableOf(table: HxeTableData): HxeGpuTable {
  let t = uploaded.get(table);
  if (!t) uploaded.set(table, (t = uploadHxeTable(device, hxeKernelTable(table))));
  return t;
}
const xeTables = new Map<number, HxeGpuTable>();
function xeTableOf(C: number): HxeGpuTable {
  let t = xeTables.get(C);
  if (!t) xeTables.set(C, (t = uploadHxeTable(device, xeKernelTable(C))));
  return t;
}

/** Runs the kernel; returns losses and (unless forwardOnly) dlogits. Buffers carry offsets. */
async function runGpu(
  logits: Float32Array,
  C: number,
  targets: Int32Array,
  table: HxeGpuTable,
  opts: { threadsPerRow?: number; forwardOnly?: boolean; ignoreIndex?: number } = {},
): Promise<{ losses: Float64Array; dlogits: Float64Array | null }> {
  const N = targets.length;
  const z = upload(logits, 'f32', [N, C], 3);
  const t = upload(targets, 'i32', [N], 5);
  const losses = output(N, [N], 7);
  const { ignoreIndex, threadsPerRow } = opts;
  const stats = opts.forwardOnly ? null : output(N * hxeStatsWords(table), [N, hxeStatsWords(table)], 1);
  hxeGpu(queue, { logits: z, targets: t, table, losses, stats, ignoreIndex, threadsPerRow });
  let d: Float64Array | null = null;
  if (stats) {
    const dlogits = output(N * C, [N, C], 2);
    hxeBackwardGpu(queue, {
      logits: z,
      targets: t,
      table,
      stats,
      dlogits,
      gradOutput: upload([1], 'f32', [1], 3),
      perRow: false,
      ignoreIndex,
      threadsPerRow,
    });
    d = await readKeep(dlogits, N * C);
  }
  return { losses: await read(losses, N), dlogits: d };
}
async function readKeep(op: GpuOperand, n: number): Promise<Float64Array> {
  const saved = buffers.splice(0);
  const values = await read(op, n);
  buffers.push(...saved);
  return values;
}

const LANES = [1, 4, 16, 64];
const A3_TARGETS_I32 = Int32Array.from(A3_TARGETS);
const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;

// ---------------------------------------------------------------------------------------------

test(
  'models.md A3 test vectors: mean HXE at α = 0, 0.2, 0.4, 0.6 and per-sample at 0.2, GPU ' +
    '(every lane count) and CPU',
  async () => {
    const logits = a3Logits();
    for (const [alpha, value] of A3_MEANS) {
      const table = tableFor(codonTree(), alpha);
      assert.ok(
        Math.abs(mean(hxeForwardCpu(logits, 70, A3_TARGETS_I32, table)) - value) < 1e-5,
        `CPU mean at α=${alpha}`,
      );
      for (const T of LANES) {
        const { losses } = await runGpu(logits, 70, A3_TARGETS_I32, gpuTableOf(table), {
          threadsPerRow: T,
          forwardOnly: alpha !== 0.2,
        });
        assert.ok(
          Math.abs(mean(losses) - value) < 1e-5,
          `GPU (${T} lanes/row) mean at α=${alpha}: ${mean(losses)} vs ${value}`,
        );
      }
    }
    const perSample = A3_PER_SAMPLE;
    const table = tableFor(codonTree(), 0.2);
    assertClose(hxeForwardCpu(logits, 70, A3_TARGETS_I32, table), perSample, 'CPU per-sample', 0, 1e-5);
    const { losses } = await runGpu(logits, 70, A3_TARGETS_I32, gpuTableOf(table));
    assertClose(losses, perSample, 'GPU per-sample', 0, 1e-5);
    // Plain CE of the vectors is 5.002400, and XE mode is exactly that.
    assert.ok(Math.abs(mean(hxeForwardCpu(logits, 70, A3_TARGETS_I32, null, { mode: 'xe' })) - 5.0024) < 1e-5);
    const xe = await runGpu(logits, 70, A3_TARGETS_I32, xeTableOf(70));
    assert.ok(Math.abs(mean(xe.losses) - 5.0024) < 1e-5, `GPU XE mean ${mean(xe.losses)}`);
  },
);

test("the CPU reference equals tokenizers' edge-by-edge hxeLossReference on random trees and logits", () => {
  fc.assert(
    fc.property(
      fc.nat(1000),
      fc.constantFrom(0, 0.2, 0.6, 1.3),
      fc.integer({ min: 1, max: 8 }),
      (seed, alpha, rows) => {
        const tree =
          seed % 3 === 0 ? smallTree() : seed % 3 === 1 ? randomCodonTree(seed) : randomTree(5 + (seed % 40), seed);
        const C = tree.leafIds.length;
        const logits = Float64Array.from(randomLogits(rows * C, seed, 6));
        const targets = randomTargets(rows, C, seed);
        assertClose(
          hxeForwardCpu(logits, C, targets, tableFor(tree, alpha)),
          hxeLossReference(logits, C, targets, tree, alpha),
          'cpu vs edge reference',
          1e-10,
          1e-12,
        );
      },
    ),
    { numRuns: 40 },
  );
});

/** Σ_i w_i · loss_i differentiated by central differences. */
function numericGrad(
  logits: Float64Array,
  C: number,
  targets: Int32Array,
  table: HxeTableData | null,
  mode: 'hxe' | 'xe',
  w: Float64Array,
): Float64Array {
  const h = 1e-5;
  const grad = new Float64Array(logits.length);
  const f = () => hxeForwardCpu(logits, C, targets, table, { mode }).reduce((a, v, i) => a + v * w[i]!, 0);
  for (let k = 0; k < logits.length; k++) {
    const z = logits[k]!;
    logits[k] = z + h;
    const up = f();
    logits[k] = z - h;
    const down = f();
    logits[k] = z;
    grad[k] = (up - down) / (2 * h);
  }
  return grad;
}

test('float64 backward passes central differences (HXE on several trees, XE); ignored rows: zero', () => {
  const cases: [string, LabelTree | null][] = [
    ['codon', codonTree()],
    ['random codon', randomCodonTree(7)],
    ['small', smallTree()],
    ['deep', deepTree(11)],
    ['xe', null],
  ];
  for (const [name, tree] of cases) {
    const C = tree ? tree.leafIds.length : 9;
    const table = tree ? tableFor(tree, 0.4) : null;
    const rows = 5;
    const logits = Float64Array.from(randomLogits(rows * C, C + 3, 4));
    const targets = randomTargets(rows, C, C, 3);
    const w = Float64Array.from({ length: rows }, (_, i) => 0.5 + i);
    const mode = tree ? 'hxe' : 'xe';
    const analytic = hxeBackwardCpu(logits, C, targets, table, { mode, gradLosses: w });
    assertClose(analytic, numericGrad(logits, C, targets, table, mode, w), `${name} gradcheck`, 1e-5, 1e-8);
    for (let k = 2 * C; k < 3 * C; k++) assert.is(analytic[k], 0, `${name}: ignored row 2 has a zero gradient`);
  }
});

test(
  'GPU loss and gradient match the CPU reference: random trees, sizes, lane counts, ignored ' +
    'rows, large magnitudes',
  async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(10_000),
        fc.constantFrom('codon', 'randomCodon', 'small', 'deep', 'random', 'xe'),
        fc.constantFrom(...LANES),
        fc.integer({ min: 1, max: 90 }),
        fc.constantFrom([4, 0], [30, 0], [40, 1000], [40, -500]),
        async (seed, kind, T, rows, [scale, offset]) => {
          const tree =
            kind === 'codon'
              ? codonTree()
              : kind === 'randomCodon'
                ? randomCodonTree(seed)
                : kind === 'small'
                  ? smallTree()
                  : kind === 'deep'
                    ? deepTree(9 + (seed % 6))
                    : kind === 'random'
                      ? randomTree(20 + (seed % 200), seed)
                      : null;
          const C = tree ? tree.leafIds.length : 5 + (seed % 300);
          const table = tree ? tableFor(tree, [0, 0.2, 0.6][seed % 3]!) : null;
          const logits = randomLogits(rows * C, seed, scale!, offset!);
          const targets = randomTargets(rows, C, seed, 4);
          const mode = tree ? 'hxe' : 'xe';
          const { losses, dlogits } = await runGpu(logits, C, targets, table ? gpuTableOf(table) : xeTableOf(C), {
            threadsPerRow: T,
          });
          const what = `${kind} C=${C} rows=${rows} lanes=${T} scale=${scale} offset=${offset}`;
          assertClose(losses, hxeForwardCpu(logits, C, targets, table, { mode }), `${what} losses`, 2e-5, 2e-6);
          assertClose(dlogits!, hxeBackwardCpu(logits, C, targets, table, { mode }), `${what} dlogits`, 1e-4, 2e-6);
        },
      ),
      { numRuns: 60 },
    );
  },
);

test('the forward-only variant writes the same losses', async () => {
  const tree = randomCodonTree(3);
  const table = tableFor(tree, 0.2);
  const logits = randomLogits(100 * 70, 5, 5);
  const targets = randomTargets(100, 70, 5, 7);
  for (const T of [1, 16]) {
    const fb = await runGpu(logits, 70, targets, gpuTableOf(table), { threadsPerRow: T });
    const f = await runGpu(logits, 70, targets, gpuTableOf(table), { threadsPerRow: T, forwardOnly: true });
    assertClose(f.losses, fb.losses, `forward-only, ${T} lanes`, 0, 0);
  }
});

test('long rows (C = 3000, a random tree) on every lane count, row counts leaving workgroups part-full', async () => {
  const tree = randomTree(3000, 17);
  const table = tableFor(tree, 0.3);
  assert.ok(table.width >= 3);
  const logits = randomLogits(7 * 3000, 9, 8);
  const targets = randomTargets(7, 3000, 9, 5);
  const losses = hxeForwardCpu(logits, 3000, targets, table);
  const grad = hxeBackwardCpu(logits, 3000, targets, table);
  for (const T of LANES) {
    const r = await runGpu(logits, 3000, targets, gpuTableOf(table), { threadsPerRow: T });
    assertClose(r.losses, losses, `C=3000 losses, ${T} lanes`, 2e-5, 1e-6);
    assertClose(r.dlogits!, grad, `C=3000 dlogits, ${T} lanes`, 1e-4, 1e-7);
  }
});

test('xe mode is plain cross-entropy, exact even when the target logit is far below the max', async () => {
  const C = 33;
  const rows = 6;
  const logits = randomLogits(rows * C, 21, 3);
  const targets = Int32Array.from([0, 5, 32, 7, -100, 11]);
  logits[3 * C + 7] = -300; // target 300 below the rest: p_t underflows f32, CE stays ≈ 300
  logits[5 * C + 11] = 1e4;
  const expected = Array.from(targets, (t, i) => {
    if (t === -100) return 0;
    const z = Array.from(logits.subarray(i * C, (i + 1) * C));
    const m = Math.max(...z);
    return Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0)) + m - z[t]!;
  });
  const { losses, dlogits } = await runGpu(logits, C, targets, xeTableOf(C));
  assertClose(losses, expected, 'xe losses', 1e-5, 1e-5);
  assert.ok(losses[3]! > 290, 'a confidently wrong row keeps its loss');
  assertClose(dlogits!, hxeBackwardCpu(logits, C, targets, null, { mode: 'xe' }), 'xe dlogits', 1e-5, 1e-6);
  assert.ok(Math.abs(dlogits![3 * C + 7]! + 1) < 1e-6, 'dL/dz_t = p_t − 1 = −1');
});

test('masses that underflow f32 are computed in the log domain: GPU, CPU twin and the exact value agree', async () => {
  const tree = codonTree();
  const table = tableFor(tree, 0.4);
  const C = 70;
  const logits = randomLogits(3 * C, 4, 1);
  // Row 0: everything under amino acid A (GCA, GCC, GCG, GCT = 42..45) is 2000 below the rest,
  // so S(A) underflows f32 (and float64) unless taken in the log domain.
  for (const k of [42, 43, 44, 45]) logits[k] = -2000;
  // Row 1: target ATG (20) under start_codon alone: one-class entries never underflow.
  logits[C + 20] = -5000;
  // Row 2: all codons (ids 6..69) 3000 below the specials, target a codon.
  for (let k = 6; k < C; k++) logits[2 * C + k] = -3000;
  const targets = Int32Array.from([45, 20, 30]);
  const cpu = hxeForwardCpu(logits, C, targets, table);
  // One lane per row and four: either way a fix-up pass, run because the main kernel raised its flag.
  for (const threadsPerRow of [1, 4]) {
    for (const forwardOnly of [false, true]) {
      const { losses, dlogits } = await runGpu(logits, C, targets, gpuTableOf(table), { threadsPerRow, forwardOnly });
      assertClose(
        losses,
        cpu,
        `underflow losses, ${threadsPerRow} lanes/row${forwardOnly ? ', loss only' : ''}`,
        2e-5,
        1e-5,
      );
      if (dlogits)
        assertClose(
          dlogits,
          hxeBackwardCpu(logits, C, targets, table),
          `underflow dlogits, ${threadsPerRow} lanes/row`,
          1e-4,
          1e-6,
        );
    }
  }
  assert.ok(cpu.every(Number.isFinite));
  // Row 0 by hand: every entry's term −c_j·log S_j, with log S_j from the entry's own max.
  const z = Array.from(logits.subarray(0, C));
  const logSumExp = (v: number[]) => {
    const m = Math.max(...v);
    return m + Math.log(v.reduce((a, x) => a + Math.exp(x - m), 0));
  };
  const lse = logSumExp(z);
  const logMass = (node: number) => logSumExp(z.filter((_, k) => table.membership[node * C + k])) - lse;
  const W = table.width;
  let byHand = 0;
  for (let j = 0; j < W; j++) byHand -= table.coefficients[45 * W + j]! * logMass(table.nodes[45 * W + j]!);
  assert.ok(Math.abs(cpu[0]! - byHand) < 1e-9 * byHand, `row 0: ${cpu[0]} vs ${byHand}`);
});

test('fix-up flags: calls with and without underflowing rows, in any order on one table, match the CPU', async () => {
  const tree = codonTree();
  const table = tableFor(tree, 0.4);
  const C = 70;
  const ordinary = randomLogits(4 * C, 9, 2);
  const extreme = Float32Array.from(ordinary);
  for (const k of [42, 43, 44, 45]) extreme[2 * C + k] = -2000; // row 2's target group underflows
  const targets = Int32Array.from([3, 17, 44, 60]);
  const gpuTable = gpuTableOf(table);
  const calls: [Float32Array, boolean][] = [
    [extreme, false],
    [ordinary, false],
    [extreme, true],
    [ordinary, true],
    [ordinary, false],
    [extreme, false],
  ];
  for (const [i, [logits, forwardOnly]] of calls.entries()) {
    const { losses, dlogits } = await runGpu(logits, C, targets, gpuTable, { forwardOnly });
    assertClose(losses, hxeForwardCpu(logits, C, targets, table), `call ${i} losses`, 2e-5, 1e-5);
    if (dlogits) assertClose(dlogits, hxeBackwardCpu(logits, C, targets, table), `call ${i} dlogits`, 1e-4, 1e-6);
  }
});

test('ignored rows give loss 0 and zero gradients (any ignore index); out-of-range targets give NaN rows', async () => {
  const table = tableFor(smallTree(), 0.2);
  const C = 11;
  const logits = randomLogits(5 * C, 2, 3);
  const targets = Int32Array.from([3, 99, -1, 11, 2]);
  const { losses, dlogits } = await runGpu(logits, C, targets, gpuTableOf(table), { ignoreIndex: 99 });
  assert.is(losses[1], 0);
  assert.ok(Array.from(dlogits!.subarray(C, 2 * C)).every((v) => v === 0));
  for (const row of [2, 3]) {
    assert.ok(Number.isNaN(losses[row]!), `row ${row} (target ${targets[row]}) is NaN`);
    assert.ok(Array.from(dlogits!.subarray(row * C, (row + 1) * C)).every(Number.isNaN));
  }
  assert.ok(Number.isFinite(losses[0]!) && Number.isFinite(losses[4]!));
  assert.throws(
    () => hxeForwardCpu(logits, C, targets, table, { ignoreIndex: 99 }),
    /target -1 in row 2 is not a class id in 0\.\.10/,
  );
});

test('reduce: mean over non-ignored rows, sum', async () => {
  const N = 1000;
  const lossValues = Float32Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 0 : 0.001 * i));
  const targets = Int32Array.from({ length: N }, (_, i) => (i % 3 === 0 ? -100 : i % 7));
  const count = targets.filter((t) => t !== -100).length;
  const sum = lossValues.reduce((a, b) => a + b, 0);
  for (const reduction of ['mean', 'sum'] as const) {
    const losses = upload(lossValues, 'f32', [N], 1);
    const t = upload(targets, 'i32', [N], 2);
    const out = output(1, [1], 3);
    const scale = output(1, [1], 1);
    hxeReduceGpu(queue, { losses, targets: t, out, scale, reduction });
    const s = await readKeep(scale, 1);
    const o = await read(out, 1);
    assertClose(o, [reduction === 'mean' ? sum / count : sum], `${reduction} value`, 1e-5, 0);
    assertClose(s, [reduction === 'mean' ? 1 / count : 1], `${reduction} scale`, 1e-6, 0);
  }
  // Every row ignored: mean 0 and scale 0 (no NaN).
  const out = output(1, [1]);
  const scale = output(1, [1]);
  hxeReduceGpu(queue, {
    losses: upload([1, 2], 'f32', [2]),
    targets: upload([-100, -100], 'i32', [2]),
    out,
    scale,
    reduction: 'mean',
  });
  assert.equal(Array.from(await readKeep(scale, 1)), [0]);
  assert.equal(Array.from(await read(out, 1)), [0]);
});

test('backward with per-row and scalar incoming gradients and a scale factor, any offsets', async () => {
  const tree = randomTree(40, 7);
  const table = tableFor(tree, 0.3);
  const C = table.numClasses;
  const N = 37;
  const logits = randomLogits(N * C, 5, 4);
  const targets = randomTargets(N, C, 8, 6);
  const gpu = gpuTableOf(table);
  for (const T of [1, 4]) {
    const z = upload(logits, 'f32', [N, C], 3);
    const t = upload(targets, 'i32', [N], 1);
    const stats = output(N * hxeStatsWords(gpu), [N, hxeStatsWords(gpu)], 2);
    hxeGpu(queue, { logits: z, targets: t, table: gpu, losses: output(N, [N]), stats, threadsPerRow: T });
    const perRow = Array.from({ length: N }, (_, i) => 0.5 - 0.1 * i);
    const d1 = output(N * C, [N, C], 1);
    hxeBackwardGpu(queue, {
      logits: z,
      targets: t,
      table: gpu,
      stats,
      dlogits: d1,
      gradOutput: upload(perRow, 'f32', [N], 3),
      perRow: true,
      threadsPerRow: T,
    });
    assertClose(
      await readKeep(d1, N * C),
      hxeBackwardCpu(logits, C, targets, table, { gradLosses: perRow }),
      `per-row gradient, ${T} lanes`,
      1e-4,
      2e-6,
    );
    const d2 = output(N * C, [N, C], 4);
    hxeBackwardGpu(queue, {
      logits: z,
      targets: t,
      table: gpu,
      stats,
      dlogits: d2,
      gradOutput: upload([3], 'f32', [1], 1),
      perRow: false,
      scale: upload([0.25], 'f32', [1], 2),
      threadsPerRow: T,
    });
    assertClose(
      await read(d2, N * C),
      hxeBackwardCpu(logits, C, targets, table, { gradLosses: 0.75 }),
      `scaled gradient, ${T} lanes`,
      1e-4,
      2e-6,
    );
  }
});

test('probability concentrated outside the path, inside the target group, or split between them', async () => {
  const table = tableFor(codonTree(), 0.2);
  const C = 70;
  const rows: number[][] = [];
  const targets: number[] = [];
  for (const [t, hot, gap] of [
    [45, 0, 12],
    [45, 45, 12],
    [45, 46, 8],
    [20, 54, 20],
    [69, 2, 3],
    [45, 30, 0],
    [2, 45, 15],
  ] as const) {
    rows.push(Array.from({ length: C }, (_, k) => 0.3 * Math.sin(k + t) + (k === hot ? gap : 0)));
    targets.push(t);
  }
  const logits = Float32Array.from(rows.flat());
  const tgt = Int32Array.from(targets);
  for (const T of [1, 4]) {
    const { losses, dlogits } = await runGpu(logits, C, tgt, gpuTableOf(table), { threadsPerRow: T });
    assertClose(losses, hxeForwardCpu(logits, C, tgt, table), `losses, ${T} lanes`, 1e-5, 1e-6);
    assertClose(dlogits!, hxeBackwardCpu(logits, C, tgt, table), `dlogits, ${T} lanes`, 1e-4, 2e-6);
  }
});

test(
  'kernel tables: entries become runs of segments of a depth-first class order; one-class ' +
    'entries merge into the leaf coefficient',
  () => {
    for (const tree of [codonTree(), randomCodonTree(11), smallTree(), deepTree(12), randomTree(500, 3)]) {
      const table = tableFor(tree, 0.2);
      const kt = hxeKernelTable(table);
      const C = table.numClasses;
      const S = kt.numSegments;
      const stride = 1 + 3 * kt.width;
      const floats = new Float32Array(kt.words.buffer);
      const starts = kt.words.subarray(stride * C, stride * C + S + 1);
      const order = kt.words.subarray(stride * C + S + 1);
      assert.is(order.length, C);
      assert.equal(
        [...order].sort((a, b) => a - b),
        Array.from({ length: C }, (_, i) => i),
        'the order is a permutation',
      );
      assert.is(starts[0], 0);
      assert.is(starts[S], C);
      for (let i = 0; i < S; i++) assert.ok(starts[i]! < starts[i + 1]!, 'segments are non-empty and increasing');
      const rank = new Int32Array(C);
      order.forEach((k, r) => (rank[k] = r));
      const size = (node: number) =>
        Array.from({ length: C }, (_, k) => table.membership[node * C + k]).filter(Boolean).length;
      for (let c = 0; c < C; c++) {
        let leaf = 0;
        const groups: number[] = [];
        for (let j = 0; j < table.width; j++) {
          const node = table.nodes[c * table.width + j]!;
          if (size(node) === 1) leaf += table.coefficients[c * table.width + j]!;
          else groups.push(j);
        }
        assert.ok(Math.abs(floats[c * stride]! - leaf) < 1e-7, 'leaf coefficient');
        for (let g = 0; g < kt.width; g++) {
          const at = c * stride + 1 + 3 * g;
          const first = kt.words[at]!;
          const count = kt.words[at + 1]!;
          if (g >= groups.length) {
            assert.is(count, 0, 'padding entries are empty');
            continue;
          }
          const j = groups[g]!;
          const node = table.nodes[c * table.width + j]!;
          assert.ok(Math.abs(floats[at + 2]! - table.coefficients[c * table.width + j]!) < 1e-7);
          const lo = starts[first]!;
          const hi = starts[first + count]!;
          for (let k = 0; k < C; k++) assert.is(rank[k]! >= lo && rank[k]! < hi, table.membership[node * C + k] === 1);
        }
      }
    }
    assert.is(hxeKernelTable(tableFor(codonTree(), 0.2)).width, 3, 'codon tree: amino acid, aa_codons, codons');
    const xe = xeKernelTable(5);
    assert.is(xe.width, 0);
    assert.equal(Array.from(new Float32Array(xe.words.buffer).subarray(0, 5)), [1, 1, 1, 1, 1], 'leaf coefficients 1');
    assert.equal(Array.from(xe.words.subarray(5)), [0, 5, 0, 1, 2, 3, 4], 'one segment, identity order');
    const good = tableFor(smallTree(), 0.2);
    assert.throws(
      () => hxeKernelTable({ ...good, nodes: good.nodes.slice(1) }),
      /nodes has 43 entries, expected numClasses × width = 11 × 4 = 44/,
    );
    assert.throws(
      () => hxeKernelTable({ ...good, membership: good.membership.slice(1) }),
      /membership has \d+ entries, expected numNodes × numClasses \(a multiple of 11\)/,
    );
    const wrongNode = Int32Array.from(good.nodes);
    wrongNode[0] = good.nodes[4 * 3]!; // class 0's leaf entry pointing at class 3's leaf
    assert.throws(
      () => hxeKernelTable({ ...good, nodes: wrongNode }),
      /class 0 entry 0 is node \d+, which does not contain class 0/,
    );
    const notTree = Uint8Array.from(good.membership);
    const extra = new Uint8Array(11);
    extra[0] = 1; // a node holding a1 and b1 only: overlaps A and B without nesting
    extra[3] = 1;
    assert.throws(
      () => hxeKernelTable({ ...good, membership: Uint8Array.from([...notTree, ...extra]) }),
      /membership is not a tree/,
    );
    const reversed = Int32Array.from(good.nodes);
    [reversed[0], reversed[1]] = [reversed[1]!, reversed[0]!];
    assert.throws(() => hxeKernelTable({ ...good, nodes: reversed }), /must run from the leaf up/);
    assert.throws(
      () =>
        hxeKernelTable({ ...good, coefficients: Float64Array.from(good.coefficients, (v, i) => (i === 5 ? NaN : v)) }),
      /coefficient NaN/,
    );
  },
);

test.run();
