/**
 * Secondary-structure post-processing and metrics on hand-computed cases, and the ±1 metric
 * against an independent dense-matrix version of RiNALMo's `_relax_ss` on random structures.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { basePairs, partnersFromPairs } from '@rnagrad/tokenizers';
import {
  THRESHOLD_GRID,
  canPair,
  meanScores,
  pairCandidates,
  pairsAboveThreshold,
  predictPairs,
  structureScores,
  tuneThreshold,
} from '../src/secondary-structure.js';

/** A symmetric n×n matrix with the given upper-triangle entries. */
function matrix(n: number, entries: [number, number, number][]): Float64Array {
  const m = new Float64Array(n * n); // float64, so that 0.8 is not above 0.8
  for (const [i, j, p] of entries) m[i * n + j] = m[j * n + i] = p;
  return m;
}

// G G G A A A U C C C: (3,6) is a sharp loop, (0,3) G-A is not canonical, (2,6) is G-U.
const SEQUENCE = 'GGGAAAUCCC';
const PROBS = matrix(10, [
  [0, 9, 0.9],
  [0, 8, 0.85],
  [1, 8, 0.8],
  [2, 7, 0.3],
  [2, 6, 0.6],
  [3, 6, 0.95],
  [0, 3, 0.99],
  [1, 9, 0.5],
]);

test('canonical and G-U pairs only, either order, T read as U', () => {
  for (const pair of ['AU', 'UA', 'GC', 'CG', 'GU', 'UG', 'at', 'Tg']) assert.ok(canPair(pair[0]!, pair[1]!), pair);
  for (const pair of ['AA', 'AG', 'AC', 'CU', 'CC', 'GG', 'UU', 'NA', 'GN'])
    assert.not.ok(canPair(pair[0]!, pair[1]!), pair);
});

test('post-processing: sharp loops and non-canonical pairs removed, strict threshold, greedy one partner', () => {
  const pairsAt = (t: number, sequence = SEQUENCE) => basePairs(predictPairs(PROBS, sequence, t));
  assert.equal(pairsAt(0.5), [
    [0, 9],
    [1, 8],
    [2, 6],
  ]);
  assert.equal(pairsAt(0.2), [
    [0, 9],
    [1, 8],
    [2, 6],
  ]); // (2,7) loses base 2 to (2,6)
  assert.equal(pairsAt(0.7), [
    [0, 9],
    [1, 8],
  ]);
  assert.equal(pairsAt(0.8), [[0, 9]]); // 0.8 is not above 0.8; (0,8) loses base 0
  assert.equal(pairsAt(0.5, 'GGGAAATCCC'), [
    [0, 9],
    [1, 8],
    [2, 6],
  ]);
  assert.equal(pairsAt(0.95), []);
  const c = pairCandidates(PROBS, SEQUENCE, 0.2);
  assert.equal(
    Array.from(c.probability, (p) => Math.round(p * 100)),
    [90, 85, 80, 60, 50, 30],
  );
  assert.throws(() => pairsAboveThreshold(c, 0.1), /below the candidates' floor 0.2/);
  assert.throws(() => predictPairs(new Float32Array(99), SEQUENCE, 0.5), /needs 100 probabilities, got 99/);
  assert.throws(() => predictPairs(matrix(10, [[0, 9, NaN]]), SEQUENCE, 0.5), /probability \(0, 9\) is NaN/);
});

test('precision, recall and F1, exact and with ±1 shifts (hand-computed)', () => {
  const target = partnersFromPairs(12, [
    [0, 11],
    [1, 10],
    [2, 9],
  ]);
  const predicted = partnersFromPairs(12, [
    [0, 11],
    [1, 9],
    [4, 8],
  ]);
  const exact = structureScores(target, predicted);
  assert.ok(
    Math.abs(exact.precision - 1 / 3) < 1e-12 &&
      Math.abs(exact.recall - 1 / 3) < 1e-12 &&
      Math.abs(exact.f1 - 1 / 3) < 1e-12,
  );
  const shifted = structureScores(target, predicted, { shift: true });
  assert.ok(Math.abs(shifted.precision - 2 / 3) < 1e-12, `precision ${shifted.precision}`);
  assert.is(shifted.recall, 1);
  assert.ok(Math.abs(shifted.f1 - 0.8) < 1e-12, `F1 ${shifted.f1}`);
  // A diagonal shift (i+1, j+1) is not a ±1 match.
  assert.equal(structureScores(partnersFromPairs(12, [[1, 10]]), partnersFromPairs(12, [[2, 11]]), { shift: true }), {
    precision: 0,
    recall: 0,
    f1: 0,
  });

  const none = new Int32Array(12).fill(-1);
  assert.equal(structureScores(target, none), { precision: 0, recall: 0, f1: 0 });
  assert.equal(structureScores(none, predicted), { precision: 0, recall: 0, f1: 0 });
  assert.equal(structureScores(none, none), { precision: 0, recall: 0, f1: 0 });
  assert.equal(structureScores(target, target, { shift: true }), { precision: 1, recall: 1, f1: 1 });
  assert.throws(() => structureScores(target, new Int32Array(3)), /target has 12 bases, prediction 3/);

  const mean = meanScores([exact, shifted]);
  assert.ok(Math.abs(mean.f1 - (1 / 3 + 0.8) / 2) < 1e-12);
  assert.equal(meanScores([]), { precision: 0, recall: 0, f1: 0 });
});

test('threshold tuning picks the best mean F1 on validation (first on ties)', () => {
  const target = partnersFromPairs(10, [
    [0, 9],
    [1, 8],
    [2, 7],
  ]);
  const validation = [{ candidates: pairCandidates(PROBS, SEQUENCE, 0.2), target }];
  // Exact: 0.2 and 0.5 → {(0,9),(1,8),(2,6)}: F1 2/3; 0.7 → P 1, R 2/3: F1 0.8; 0.8 → P 1, R 1/3: F1 0.5.
  const exact = tuneThreshold(validation, { grid: [0.2, 0.5, 0.7, 0.8], shift: false });
  assert.is(exact.threshold, 0.7);
  assert.ok(Math.abs(exact.f1 - 0.8) < 1e-12);
  assert.equal(
    exact.curve.map((c) => Math.round(c.f1 * 1e6) / 1e6),
    [0.666667, 0.666667, 0.8, 0.5],
  );
  // With ±1, (2,6) matches (2,7): F1 1 at 0.2 and 0.5; the first wins.
  assert.is(tuneThreshold(validation, { grid: [0.2, 0.5, 0.7, 0.8] }).threshold, 0.2);
  assert.throws(() => tuneThreshold(validation), /floor above the lowest threshold 0.01/);
  assert.is(THRESHOLD_GRID.length, 29);
  assert.is(THRESHOLD_GRID[28], 0.29);
  assert.throws(() => tuneThreshold([], { grid: [0.5] }), /no validation sequences/);
});

/** RiNALMo's relaxation on a dense symmetric 0/1 matrix: pad, roll by ±1 along each axis, add, clip. */
function relaxDense(m: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n * n);
  const at = (i: number, j: number) => (i >= 0 && j >= 0 && i < n && j < n ? m[i * n + j]! : 0);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++)
      out[i * n + j] = at(i, j) || at(i - 1, j) || at(i + 1, j) || at(i, j - 1) || at(i, j + 1) ? 1 : 0;
  }
  return out;
}

function denseScores(target: Int32Array, predicted: Int32Array, shift: boolean) {
  const n = target.length;
  const dense = (p: Int32Array) => {
    const m = new Uint8Array(n * n);
    p.forEach((j, i) => j >= 0 && (m[i * n + j] = 1));
    return m;
  };
  const [t, p] = [dense(target), dense(predicted)];
  const [tRelaxed, pRelaxed] = shift ? [relaxDense(t, n), relaxDense(p, n)] : [t, p];
  let [tpP, predCount, tpR, targetCount] = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const k = i * n + j;
      predCount += p[k]!;
      tpP += p[k]! & tRelaxed[k]!;
      targetCount += t[k]!;
      tpR += t[k]! & pRelaxed[k]!;
    }
  }
  const precision = predCount ? tpP / predCount : 0;
  const recall = targetCount ? tpR / targetCount : 0;
  return { precision, recall, f1: precision + recall < 1e-5 ? 0 : (2 * precision * recall) / (precision + recall) };
}

const partners = (n: number) =>
  fc.shuffledSubarray([...Array(n).keys()]).map((order) => {
    const pairs: [number, number][] = [];
    for (let k = 0; k + 1 < order.length; k += 2) pairs.push([order[k]!, order[k + 1]!]);
    return partnersFromPairs(n, pairs);
  });

test('property: the metrics equal the dense-matrix definition, exact and ±1', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 24 }).chain((n) => fc.tuple(partners(n), partners(n))),
      fc.boolean(),
      ([target, predicted], shift) => {
        const ours = structureScores(target, predicted, { shift });
        const dense = denseScores(target, predicted, shift);
        for (const key of ['precision', 'recall', 'f1'] as const)
          assert.ok(Math.abs(ours[key] - dense[key]) < 1e-12, key);
      },
    ),
    { numRuns: 300 },
  );
});

test.run();
