/**
 * The hierarchical cross-entropy op (src/hxe/op.ts) on both devices: the models.md A3 vectors,
 * GPU vs CPU twin vs tokenizers' float64 `hxeLossReference`, gradients against central
 * differences, rows far outside f32's range, strided inputs, target validation, and what the op
 * records for autograd (see hxe-rule.test.ts for the registered rule through backward()).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { type LabelTree, type TreeSpec, codonTree, hxeLossReference, hxePathTable, leafMembership, randomCodonTree, treeFromSpec } from '@rnagrad/tokenizers';
import * as T from '@rnagrad/tensor';
import { type HxeAttrs, type HxeTable, hierarchicalCrossEntropy, hierarchicalCrossEntropyBackward } from '../src/hxe/op.js';

const rt = await T.init({ quiet: true });

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol: number, atol: number): void {
  assert.is(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < actual.length; i++) {
    const [a, e] = [actual[i]!, expected[i]!];
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    assert.ok(Math.abs(a - e) <= atol + rtol * Math.abs(e), `${what}: element ${i} is ${a}, expected ${e}`);
  }
}

const tableFor = (tree: LabelTree, alpha: number): HxeTable => ({ ...hxePathTable(tree, alpha), membership: leafMembership(tree) });

function smallTree(): LabelTree {
  const spec: TreeSpec = {
    label: 'root',
    children: [{ label: 'A', children: ['a', 'b', 'c'] }, { label: 'B', children: ['d', { label: 'C', children: ['e', 'f'] }] }, 'g'],
  };
  return treeFromSpec(spec, ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
}

function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
/** f32-representable values `offset + scale·u`, u uniform in [-1, 1). */
function values(n: number, seed: number, scale = 4, offset = 0): number[] {
  const r = lcg(seed);
  return Array.from({ length: n }, () => Math.fround(offset + scale * (2 * r() - 1)));
}
function targetsFor(n: number, C: number, seed: number, ignoreEvery = 0): number[] {
  const r = lcg(seed + 99);
  return Array.from({ length: n }, (_, i) => (ignoreEvery && i % ignoreEvery === 1 ? -100 : Math.floor(r() * C)));
}

const TEST_TARGETS = [45, 20, 54, 2];
const testLogits = () => Array.from({ length: 4 * 70 }, (_, x) => 2 * Math.sin(0.37 * (70 * Math.floor(x / 70) + (x % 70)) + 0.1 * Math.floor(x / 70)));

/** Captures what the op records, standing in for @rnagrad/autograd (which would take the op). */
function withCapture<R>(fn: () => R, take = true): { result: R; recorded: { op: string; inputs: readonly T.Tensor[]; attrs: HxeAttrs }[] } {
  const recorded: { op: string; inputs: readonly T.Tensor[]; attrs: HxeAttrs }[] = [];
  const saved = T.hooks.record;
  T.hooks.record = (op, inputs, output, attrs) => {
    recorded.push({ op, inputs, attrs: attrs as HxeAttrs });
    if (take) output.gradNode = { op };
  };
  try {
    return { result: fn(), recorded };
  } finally {
    T.hooks.record = saved;
  }
}

function disposeSaved(attrs: HxeAttrs): void {
  for (const t of Object.values(attrs.saved ?? {})) t.dispose();
}

/** Mean loss over non-ignored rows from tokenizers' edge-by-edge float64 reference (or plain CE). */
function referenceMean(logits: number[], C: number, targets: number[], tree: LabelTree | null, alpha: number): number {
  const rows = targets.map((t, i) => [t, i] as const).filter(([t]) => t !== -100);
  if (rows.length === 0) return 0;
  const z = new Float64Array(rows.length * C);
  rows.forEach(([, i], r) => z.set(logits.slice(i * C, (i + 1) * C), r * C));
  const t = rows.map(([t]) => t);
  const losses = tree
    ? Array.from(hxeLossReference(z, C, t, tree, alpha))
    : t.map((target, r) => {
        const row = Array.from(z.subarray(r * C, (r + 1) * C));
        const m = Math.max(...row);
        return Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) + m - row[target]!;
      });
  return losses.reduce((a, b) => a + b, 0) / rows.length;
}

test('models.md A3 test vectors on GPU and CPU: mean at α = 0 … 0.6, per-sample (none), sum, and xe = plain CE', async () => {
  const logits = testLogits();
  const expected: [number, number][] = [[0, 0.050024], [0.2, 0.063175], [0.4, 0.078723], [0.6, 0.095298]];
  for (const device of ['gpu', 'cpu'] as const) {
    const z = T.tensor(logits, { shape: [4, 70], device });
    const targets = T.tensor(Int32Array.from(TEST_TARGETS), { device });
    for (const [alpha, value] of expected) {
      const loss = await hierarchicalCrossEntropy(z, targets, tableFor(codonTree(), alpha)).item();
      assert.ok(Math.abs(loss - value) < 1e-5, `${device} α=${alpha}: ${loss} vs ${value}`);
    }
    const table = tableFor(codonTree(), 0.2);
    const none = hierarchicalCrossEntropy(z, targets, table, { reduction: 'none' });
    assert.equal(none.shape, [4]);
    assertClose(await none.dataF64(), [0.066485, 0.042643, 0.05806, 0.085512], `${device} per-sample`, 0, 1e-5);
    const sum = await hierarchicalCrossEntropy(z, TEST_TARGETS, table, { reduction: 'sum' }).item();
    assert.ok(Math.abs(sum - 4 * 0.063175) < 4e-5, `${device} sum ${sum}`);
    const xe = await hierarchicalCrossEntropy(z, targets, table, { mode: 'xe' }).item();
    assert.ok(Math.abs(xe - 5.0024) < 1e-5, `${device} xe ${xe}`);
    const xeNoTable = await hierarchicalCrossEntropy(z, targets, null, { mode: 'xe' }).item();
    assert.ok(Math.abs(xeNoTable - xe) < 1e-6);
  }
});

test('GPU equals CPU and the float64 edge reference: random trees, [B, L, C] logits, ignored rows, every reduction, large magnitudes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.nat(100_000),
      fc.constantFrom('codon', 'random', 'small', 'xe'),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 24 }),
      fc.constantFrom([4, 0], [30, 0], [35, 800]),
      async (seed, kind, B, L, [scale, offset]) => {
        const tree = kind === 'codon' ? codonTree() : kind === 'random' ? randomCodonTree(seed) : kind === 'small' ? smallTree() : null;
        const C = tree ? tree.leafIds.length : 70;
        const alpha = [0.2, 0.4, 0.6][seed % 3]!;
        const table = tableFor(tree ?? codonTree(), alpha);
        const mode = tree ? 'hxe' : 'xe';
        const z = values(B * L * C, seed, scale, offset);
        const t = targetsFor(B * L, C, seed, 3);
        const gz = T.tensor(z, { shape: [B, L, C] });
        const cz = T.tensor(z, { shape: [B, L, C], device: 'cpu' });
        const gt = T.tensor(Int32Array.from(t), { shape: [B, L] });
        const ct = T.tensor(Int32Array.from(t), { shape: [B, L], device: 'cpu' });
        const what = `${kind} [${B}, ${L}, ${C}] α=${alpha} scale ${scale} offset ${offset}`;
        const tbl = tree ? table : null;
        for (const reduction of ['mean', 'sum', 'none'] as const) {
          const g = hierarchicalCrossEntropy(gz, gt, tbl, { reduction, mode });
          const c = hierarchicalCrossEntropy(cz, ct, tbl, { reduction, mode });
          assert.equal(g.shape, reduction === 'none' ? [B, L] : []);
          assert.equal(c.shape, g.shape);
          assertClose(await g.dataF64(), await c.dataF64(), `${what} ${reduction}`, 2e-5, 2e-6);
        }
        const mean = await hierarchicalCrossEntropy(gz, gt, tbl, { mode }).item();
        const ref = referenceMean(z, C, t, tree, alpha);
        assert.ok(Math.abs(mean - ref) <= 2e-5 * Math.abs(ref) + 2e-6, `${what}: mean ${mean} vs edge reference ${ref}`);
        for (const x of [gz, cz, gt, ct]) x.dispose();
      },
    ),
    { numRuns: 25 },
  );
});

test('gradient: float64 CPU path passes a central-difference check, the GPU gradient matches it (mean, sum, none; hxe and xe)', async () => {
  const tree = randomCodonTree(5);
  const alpha = 0.4;
  const table = tableFor(tree, alpha);
  const C = 70;
  const N = 6;
  const z = values(N * C, 3, 5);
  const t = targetsFor(N, C, 3, 3);
  for (const mode of ['hxe', 'xe'] as const) {
    // Central differences of the float64 reference mean (tokenizers' edge form, or plain CE).
    const h = 1e-5;
    const numeric = new Float64Array(N * C);
    for (let k = 0; k < N * C; k++) {
      const up = [...z];
      const down = [...z];
      up[k]! += h;
      down[k]! -= h;
      numeric[k] = (referenceMean(up, C, t, mode === 'hxe' ? tree : null, alpha) - referenceMean(down, C, t, mode === 'hxe' ? tree : null, alpha)) / (2 * h);
    }
    const grads: Record<string, Float64Array> = {};
    for (const device of ['cpu', 'gpu'] as const) {
      for (const reduction of ['mean', 'sum', 'none'] as const) {
        const logits = T.tensor(z, { shape: [N, C], device });
        logits.requiresGrad = true;
        const { result: out, recorded } = withCapture(() => hierarchicalCrossEntropy(logits, t, table, { mode, reduction }));
        assert.is(recorded.length, 1);
        assert.is(recorded[0]!.op, 'hxe');
        assert.is(recorded[0]!.inputs[0], logits);
        const attrs = recorded[0]!.attrs;
        assert.ok(attrs.saved, 'the forward saved what the backward needs');
        assert.equal(attrs.saved!.logits.shape, [N, C]);
        const keys = ['logits', 'targets', ...(device === 'gpu' ? ['stats'] : []), ...(reduction === 'mean' ? ['scale'] : [])];
        assert.equal(Object.keys(attrs.saved!).sort(), keys.sort());
        const gradOut = reduction === 'none' ? T.tensor(Array.from({ length: N }, (_, i) => 0.5 + i), { device }) : T.tensor(1.5, { device });
        const grad = hierarchicalCrossEntropyBackward(gradOut, attrs);
        assert.equal(grad.shape, [N, C]);
        grads[`${device} ${reduction}`] = await grad.dataF64();
        // Expected from the numeric mean gradient: sum = mean·count, none = per-row weights.
        const count = t.filter((v) => v !== -100).length;
        const expected = numeric.map((v, k) => (reduction === 'mean' ? 1.5 * v : reduction === 'sum' ? 1.5 * count * v : (0.5 + Math.floor(k / C)) * count * v));
        assertClose(grads[`${device} ${reduction}`]!, expected, `${mode} ${device} ${reduction} vs central differences`, 1e-4, 1e-6);
        // Recompute path (nothing saved) gives the same gradient.
        const again = hierarchicalCrossEntropyBackward(gradOut, { ...attrs, saved: undefined }, logits);
        assertClose(await again.dataF64(), grads[`${device} ${reduction}`]!, `${mode} ${device} ${reduction} recomputed`, 1e-6, 1e-9);
        assert.throws(() => hierarchicalCrossEntropyBackward(gradOut, { ...attrs, saved: undefined }), /nothing was saved by the forward .* pass the logits/);
        disposeSaved(attrs);
        for (const x of [out, logits, gradOut, grad, again]) x.dispose();
      }
    }
    for (const reduction of ['mean', 'sum', 'none']) assertClose(grads[`gpu ${reduction}`]!, grads[`cpu ${reduction}`]!, `${mode} gpu vs cpu ${reduction}`, 1e-5, 1e-7);
    // Ignored rows (1 and 4) get zero gradients.
    for (const k of [C, C + 5, 4 * C + 69]) assert.is(grads['gpu mean']![k], 0);
  }
});

test('extreme rows (logits in ±100, the target group up to ~200 nats below the max): GPU, CPU twin and float64 reference agree', async () => {
  const tree = codonTree();
  const C = 70;
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          target: fc.integer({ min: 0, max: C - 1 }),
          gap: fc.double({ min: 0, max: 200, noNaN: true }),
          spread: fc.double({ min: 0, max: 30, noNaN: true }),
          top: fc.integer({ min: 0, max: C - 1 }),
          seed: fc.nat(10_000),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      fc.constantFrom(0.2, 0.6),
      async (rows, alpha) => {
        const table = tableFor(tree, alpha);
        const W = table.width;
        // Each row: values in [100 − spread, 100]; the target's smallest group (entry 1 of its path)
        // pushed `gap` below; one other class at exactly 100.
        const z: number[] = [];
        for (const { target, gap, spread, top, seed } of rows) {
          const row = values(C, seed, spread / 2, 100 - spread / 2);
          const group = table.nodes[target * W + 1]!;
          for (let k = 0; k < C; k++) if (table.membership[group * C + k]) row[k] = Math.fround(Math.max(-100, row[k]! - gap));
          if (!table.membership[group * C + top]) row[top] = 100;
          z.push(...row);
        }
        const t = rows.map((r) => r.target);
        const reference = hxeLossReference(Float64Array.from(z), C, t, tree, alpha);
        const what = `α=${alpha} rows ${JSON.stringify(rows)}`;
        const grads: Float64Array[] = [];
        for (const device of ['gpu', 'cpu'] as const) {
          const logits = T.tensor(z, { shape: [rows.length, C], device });
          logits.requiresGrad = true;
          const { result, recorded } = withCapture(() => hierarchicalCrossEntropy(logits, t, table, { reduction: 'none' }));
          const losses = await result.dataF64();
          losses.forEach((l, i) => assert.ok(Math.abs(l - reference[i]!) <= 2e-5 * Math.abs(reference[i]!) + 2e-6, `${device} row ${i}: ${l} vs reference ${reference[i]} (${what})`));
          const ones = T.ones([rows.length], { device });
          const grad = hierarchicalCrossEntropyBackward(ones, recorded[0]!.attrs);
          grads.push(await grad.dataF64());
          disposeSaved(recorded[0]!.attrs);
          for (const x of [logits, result, ones, grad]) x.dispose();
        }
        // The gradient: the CPU twin (float64) is checked by central differences of the reference
        // on the first row; the GPU's must match the twin to 1e-4 of each row's largest component.
        const [gpu, cpu] = grads as [Float64Array, Float64Array];
        for (let i = 0; i < rows.length; i++) {
          const scale = Math.max(...cpu.subarray(i * C, (i + 1) * C).map(Math.abs));
          for (let k = i * C; k < (i + 1) * C; k++) {
            assert.ok(Math.abs(gpu[k]! - cpu[k]!) <= 1e-4 * scale, `gradient row ${i} class ${k - i * C}: gpu ${gpu[k]} vs cpu ${cpu[k]} (${what})`);
          }
        }
        const h = 1e-4;
        for (let k = 0; k < C; k += 7) {
          const at = (d: number) => hxeLossReference(Float64Array.from(z.slice(0, C), (v, j) => (j === k ? v + d : v)), C, [t[0]!], tree, alpha)[0]!;
          const numeric = (at(h) - at(-h)) / (2 * h);
          assert.ok(Math.abs(cpu[k]! - numeric) <= 1e-5 + 1e-4 * Math.abs(numeric), `twin gradient class ${k}: ${cpu[k]} vs ${numeric} (${what})`);
        }
      },
    ),
    { numRuns: 20 },
  );
});

test('xe mode equals plain cross-entropy computed from log-softmax, on both devices, far-off targets included', async () => {
  const C = 70;
  const N = 5;
  const z = values(N * C, 8, 6);
  z[2 * C + 7] = -400; // p_t far below f32's range: the loss must still be ≈ 400
  const t = [3, 7 + 60, 7, -100, 69];
  const expected = t.map((target, i) => {
    if (target === -100) return 0;
    const row = z.slice(i * C, (i + 1) * C);
    const m = Math.max(...row);
    return Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) + m - row[target]!;
  });
  for (const device of ['gpu', 'cpu'] as const) {
    const loss = hierarchicalCrossEntropy(T.tensor(z, { shape: [N, C], device }), t, null, { mode: 'xe', reduction: 'none' });
    assertClose(await loss.dataF64(), expected, `xe ${device}`, 1e-5, 1e-5);
  }
});

test('strided logits and targets, targets as numbers / CPU tensor / GPU tensor, empty and all-ignored batches', async () => {
  const table = tableFor(smallTree(), 0.2);
  const C = 7;
  const z = values(5 * C, 12, 3);
  const t = [0, 6, -100, 3, 5];
  const expected = await hierarchicalCrossEntropy(T.tensor(z, { shape: [5, C] }), t, table, { reduction: 'none' }).dataF64();
  // The same logits stored transposed, viewed back as [5, C] (non-contiguous), and strided targets.
  const zt = T.tensor(Array.from({ length: 5 * C }, (_, k) => z[(k % 5) * C + Math.floor(k / 5)]!), { shape: [C, 5] });
  const strided = T.transpose(zt);
  assert.not.ok(strided.isContiguous);
  const tWide = T.tensor(Int32Array.from(t.flatMap((v) => [v, 42])), { shape: [5, 2] });
  const tView = T.slice(tWide, 1, 0, 1).reshape([5]);
  for (const targets of [t, Int32Array.from(t), T.tensor(Int32Array.from(t), { device: 'cpu' }), T.tensor(Int32Array.from(t)), tView]) {
    const logits = targets instanceof T.Tensor && targets.device === 'cpu' ? T.tensor(z, { shape: [5, C], device: 'cpu' }) : strided;
    const loss = hierarchicalCrossEntropy(logits, targets, table, { reduction: 'none' });
    assertClose(await loss.dataF64(), expected, 'strided / target kinds', 1e-6, 1e-7);
  }
  for (const device of ['gpu', 'cpu'] as const) {
    const empty = hierarchicalCrossEntropy(T.zeros([0, C], { device }), [], table);
    assert.is(await empty.item(), 0);
    assert.equal(hierarchicalCrossEntropy(T.zeros([0, C], { device }), [], table, { reduction: 'none' }).shape, [0]);
    const logits = T.tensor(z.slice(0, 3 * C), { shape: [3, C], device });
    logits.requiresGrad = true;
    const { result, recorded } = withCapture(() => hierarchicalCrossEntropy(logits, [-100, -100, -100], table));
    assert.is(await result.item(), 0, 'mean over no rows is 0');
    const grad = hierarchicalCrossEntropyBackward(T.tensor(1, { device }), recorded[0]!.attrs);
    assert.ok(Array.from(await grad.dataF64()).every((v) => v === 0));
  }
});

test('GPU targets out of range raise an error at the readback; inputs are validated with clear errors', async () => {
  const table = tableFor(smallTree(), 0.2);
  const z = T.tensor(values(3 * 7, 1), { shape: [3, 7] });
  const bad = hierarchicalCrossEntropy(z, T.tensor(Int32Array.from([1, 7, 2])), table, { reduction: 'none' });
  await bad.dataF64().then(
    () => assert.unreachable('no error'),
    (err: Error) => assert.match(err.message, /hierarchicalCrossEntropy: index 7 is out of range: valid indices are 0…6 \(or the ignore index -100\)/),
  );
  assert.throws(() => hierarchicalCrossEntropy(z, [1, 7, 2], table), /target 7 at row 1 is not a class id in 0\.\.6 and not ignoreIndex \(-100\)/);
  assert.throws(() => hierarchicalCrossEntropy(T.tensor(values(21, 1), { shape: [3, 7], device: 'cpu' }), T.tensor(Int32Array.from([1, -5, 2]), { device: 'cpu' }), table), /target -5 at row 1/);
  assert.throws(() => hierarchicalCrossEntropy(z, [1, 2], table), /2 targets for logits \[3, 7\] \(expected 3, one per row of \[3\]\)/);
  assert.throws(() => hierarchicalCrossEntropy(z, T.tensor(Int32Array.from([1, 2, 3, 4]), { shape: [2, 2] }), table), /targets \[2, 2\] do not match logits \[3, 7\] \(targets must have shape \[3\]/);
  assert.throws(() => hierarchicalCrossEntropy(z, T.tensor([1, 2, 3]), table), /targets must be i32 class ids, got f32/);
  assert.throws(() => hierarchicalCrossEntropy(z, [1, 2, 3], tableFor(codonTree(), 0.2)), /the table has 70 classes but logits \[3, 7\] have 7/);
  assert.throws(() => hierarchicalCrossEntropy(z, [1, 2, 3], null), /mode 'hxe' needs a table/);
  assert.throws(() => hierarchicalCrossEntropy(z, [1, 2, 3], table, { reduction: 'avg' as 'mean' }), /reduction must be 'mean', 'sum' or 'none'/);
  assert.throws(() => hierarchicalCrossEntropy(z, T.tensor(Int32Array.from([1, 2, 3]), { device: 'cpu' }), table), /different devices/);
  const broken = { ...table, nodes: Int32Array.from(table.nodes, (n, i) => (i === 0 ? table.nodes[3 * table.width]! : n)) };
  assert.throws(() => hierarchicalCrossEntropy(z, [1, 2, 3], broken), /invalid table: .*does not contain class 0/);
  const g = T.tensor([1, 2]);
  const logits = T.tensor(values(21, 2), { shape: [3, 7] });
  logits.requiresGrad = true;
  const { recorded } = withCapture(() => hierarchicalCrossEntropy(logits, [1, 2, 3], table));
  assert.throws(() => hierarchicalCrossEntropyBackward(g, recorded[0]!.attrs), /gradOutput \[2\] has 2 values, expected 1 for reduction 'mean'/);
});

test('the table is uploaded once per table object; saved gradients survive tidy()', async () => {
  const table = tableFor(randomCodonTree(2), 0.2);
  const device = rt.device;
  const original = device.createBuffer.bind(device);
  let uploads = 0;
  device.createBuffer = (desc: GPUBufferDescriptor) => {
    if (desc.label?.startsWith('hxe table')) uploads++;
    return original(desc);
  };
  try {
    const z = T.tensor(values(8 * 70, 4), { shape: [8, 70] });
    const t = targetsFor(8, 70, 4);
    for (let i = 0; i < 3; i++) hierarchicalCrossEntropy(z, t, table).dispose();
    assert.is(uploads, 1);
    hierarchicalCrossEntropy(z, t, { ...table }).dispose();
    assert.is(uploads, 2, 'a different table object is a different table');
    const logits = T.tensor(values(8 * 70, 4), { shape: [8, 70] });
    logits.requiresGrad = true;
    const { result, recorded } = withCapture(() => T.tidy(() => hierarchicalCrossEntropy(logits, t, table)));
    const grad = hierarchicalCrossEntropyBackward(T.tensor(1), recorded[0]!.attrs);
    assert.ok(Array.from(await grad.dataF64()).every(Number.isFinite));
    result.dispose();
    disposeSaved(recorded[0]!.attrs);
    // When autograd does not take the op (say under noGrad), nothing saved outlives the call.
    const before = T.liveTensorCount();
    const { result: untaken, recorded: seen } = withCapture(() => hierarchicalCrossEntropy(logits, t, table), false);
    assert.is(seen.length, 1);
    assert.is(T.liveTensorCount(), before + 1, 'only the loss itself is alive');
    untaken.dispose();
  } finally {
    device.createBuffer = original;
  }
});

test.run();
