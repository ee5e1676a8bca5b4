import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  type HxePathTable,
  type LabelTree,
  classesUnderNodes,
  codonTree,
  hxeBreakdown,
  hxeLossReference,
  hxePathTable,
  randomCodonTree,
} from '../src/index.js';

const NUM_CLASSES = 70;
const TARGETS = [45, 20, 54, 2]; // GCT, ATG, TAA, <eos>

/** The A3 test logits: logits[i][j] = 2·sin(0.37·(70i + j) + 0.1i). */
function referenceLogits(): Float64Array {
  const logits = new Float64Array(TARGETS.length * NUM_CLASSES);
  for (let i = 0; i < TARGETS.length; i++) {
    for (let j = 0; j < NUM_CLASSES; j++) logits[i * NUM_CLASSES + j] = 2 * Math.sin(0.37 * (70 * i + j) + 0.1 * i);
  }
  return logits;
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

function crossEntropy(logits: Float64Array, targets: number[]): number[] {
  return targets.map((target, row) => {
    const z = logits.subarray(row * NUM_CLASSES, (row + 1) * NUM_CLASSES);
    const max = Math.max(...z);
    const logSum = Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
    return logSum - z[target]!;
  });
}

/** Loss via the closed-form path table, the way a GPU kernel would evaluate it. */
function lossFromTable(table: HxePathTable, tree: LabelTree, logits: Float64Array, targets: number[]): number[] {
  const under = classesUnderNodes(tree);
  return targets.map((target, row) => {
    const z = logits.subarray(row * NUM_CLASSES, (row + 1) * NUM_CLASSES);
    const max = Math.max(...z);
    const total = z.reduce((s, v) => s + Math.exp(v - max), 0);
    let loss = 0;
    for (let k = 0; k < table.width; k++) {
      const node = table.nodes[target * table.width + k]!;
      let mass = 0;
      for (const c of under[node]!) mass += Math.exp(z[c]! - max) / total;
      loss -= table.coefficients[target * table.width + k]! * Math.log(mass);
    }
    return loss;
  });
}

test('plain CE of the test vectors is 5.002400', () => {
  assert.ok(Math.abs(mean(crossEntropy(referenceLogits(), TARGETS)) - 5.0024) < 1e-5);
});

test('mean HXE matches the reference values at α = 0, 0.2, 0.4, 0.6', () => {
  const tree = codonTree();
  const logits = referenceLogits();
  const expected: [number, number][] = [
    [0, 0.050024],
    [0.2, 0.063175],
    [0.4, 0.078723],
    [0.6, 0.095298],
  ];
  for (const [alpha, value] of expected) {
    const losses = hxeLossReference(logits, NUM_CLASSES, TARGETS, tree, alpha);
    assert.ok(Math.abs(mean(losses) - value) < 1e-5, `α=${alpha}: ${mean(losses)} vs ${value}`);
  }
});

test('per-sample HXE at α = 0.2', () => {
  const losses = hxeLossReference(referenceLogits(), NUM_CLASSES, TARGETS, codonTree(), 0.2);
  const expected = [0.066485, 0.042643, 0.05806, 0.085512];
  expected.forEach((value, i) => assert.ok(Math.abs(losses[i]! - value) < 1e-5, `row ${i}: ${losses[i]}`));
});

test('at α = 0 HXE is exactly CE / 100 per row; unnormalized it is CE', () => {
  const logits = referenceLogits();
  const ce = crossEntropy(logits, TARGETS);
  const tree = codonTree();
  const normalized = hxeLossReference(logits, NUM_CLASSES, TARGETS, tree, 0);
  const raw = hxeLossReference(logits, NUM_CLASSES, TARGETS, tree, 0, { normalize: false });
  ce.forEach((value, i) => {
    assert.ok(Math.abs(normalized[i]! - value / 100) < 1e-12);
    assert.ok(Math.abs(raw[i]! - value) < 1e-12);
  });
});

test('path table: normalizers, widths, padding and the ATG / <eos> rows', () => {
  const tree = codonTree();
  const expectedZ: [number, number][] = [
    [0, 100],
    [0.2, 52.3464],
    [0.4, 28.7775],
    [0.6, 16.7974],
  ];
  for (const [alpha, z] of expectedZ) assert.ok(Math.abs(hxePathTable(tree, alpha).normalizer - z) < 1e-4);
  const table = hxePathTable(tree, 0.2);
  assert.is(table.numClasses, 70);
  assert.is(table.width, 4);
  assert.is(table.nodes.length, 280);
  const w = (depth: number): number => Math.exp(-0.2 * depth) / table.normalizer;
  // <eos> (class 2) is a depth-2 leaf: entries (leaf, w(2)), (eos node, w(1) − w(2)), then root padding.
  const eos = [...table.nodes.subarray(8, 12)];
  assert.equal(
    eos.map((n) => tree.labels[n]),
    ['<eos>', 'eos', 'all_tokens', 'all_tokens'],
  );
  assert.ok(Math.abs(table.coefficients[8]! - w(2)) < 1e-15);
  assert.ok(Math.abs(table.coefficients[9]! - (w(1) - w(2))) < 1e-15);
  assert.equal([...table.coefficients.subarray(10, 12)], [0, 0]);
  // ATG (class 20) is a depth-3 leaf under start_codon.
  assert.equal(
    [...table.nodes.subarray(80, 84)].map((n) => tree.labels[n]),
    ['ATG', 'start_codon', 'codons', 'all_tokens'],
  );
  // GCT (class 45) is a depth-4 leaf: every slot is used.
  assert.equal(
    [...table.nodes.subarray(180, 184)].map((n) => tree.labels[n]),
    ['GCT', 'A', 'aa_codons', 'codons'],
  );
  assert.ok(table.coefficients.every((c) => c >= 0));
  // The normalized sense-codon leaf weight at α = 0.2 from the reference table (0.00858).
  assert.ok(Math.abs(table.coefficients[180]! - 0.00858) < 5e-6);
});

test('property: the closed-form table equals the edge-by-edge reference on random trees and logits', () => {
  const logitsArb = fc.array(fc.double({ min: -8, max: 8, noNaN: true }), {
    minLength: NUM_CLASSES * 3,
    maxLength: NUM_CLASSES * 3,
  });
  fc.assert(
    fc.property(
      fc.integer(),
      fc.double({ min: 0, max: 1.5, noNaN: true }),
      logitsArb,
      fc.array(fc.integer({ min: 0, max: NUM_CLASSES - 1 }), { minLength: 3, maxLength: 3 }),
      (seed, alpha, values, targets) => {
        const tree = seed % 2 === 0 ? codonTree() : randomCodonTree(seed);
        const logits = Float64Array.from(values);
        const reference = hxeLossReference(logits, NUM_CLASSES, targets, tree, alpha);
        const closed = lossFromTable(hxePathTable(tree, alpha), tree, logits, targets);
        closed.forEach((value, i) => assert.ok(Math.abs(value - reference[i]!) < 1e-10, `${value} vs ${reference[i]}`));
      },
    ),
    { numRuns: 100 },
  );
});

test('hxeBreakdown: the GCT path (GCT → A → aa_codons → codons → root), terms summing to the loss', () => {
  const logits = referenceLogits();
  const tree = codonTree();
  const losses = hxeLossReference(logits, NUM_CLASSES, TARGETS, tree, 0.2);
  TARGETS.forEach((target, row) => {
    const rowLogits = logits.subarray(row * NUM_CLASSES, (row + 1) * NUM_CLASSES);
    const { edges, loss } = hxeBreakdown(rowLogits, target, tree, 0.2);
    assert.ok(Math.abs(loss - losses[row]!) < 1e-12, `row ${row}: ${loss} vs ${losses[row]}`);
    // Masses grow towards the root, each edge's parent is the next edge's node.
    edges.forEach((e, i) => {
      assert.ok(e.mass <= e.parentMass + 1e-15 && e.term >= 0, `${e.label}`);
      if (i + 1 < edges.length) assert.ok(Math.abs(edges[i + 1]!.mass - e.parentMass) < 1e-15);
    });
    assert.ok(Math.abs(edges.at(-1)!.parentMass - 1) < 1e-12, 'the root holds all the mass');
  });
  const gct = hxeBreakdown(logits.subarray(0, NUM_CLASSES), 45, tree, 0.2);
  assert.equal(
    gct.edges.map((e) => e.label),
    ['GCT', 'A', 'aa_codons', 'codons'],
  );
  assert.throws(() => hxeBreakdown(logits.subarray(0, 10), 1, tree, 0.2), /70 classes, the logits 10/);
  assert.throws(() => hxeBreakdown(logits.subarray(0, NUM_CLASSES), 70, tree, 0.2), /outside 0\.\.69/);
});

test('input checks', () => {
  const tree = codonTree();
  assert.throws(() => hxeLossReference(new Float64Array(69), 69, [0], tree, 0.2), /tree has 70 classes/);
  assert.throws(() => hxeLossReference(new Float64Array(140), 70, [0], tree, 0.2), /expected 1 rows/);
  assert.throws(() => hxeLossReference(new Float64Array(70), 70, [70], tree, 0.2), /target 70 in row 0/);
});

test.run();
