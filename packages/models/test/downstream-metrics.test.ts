/** Classification and regression metrics against hand-computed values (scikit-learn's conventions). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { classificationMetrics, regressionMetrics } from '../src/downstream-metrics.js';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('accuracy, macro and weighted F1 (a class absent from labels and predictions is not averaged)', () => {
  // Class 0: P 1, R 2/3, F1 0.8; class 1: P 1/2, R 1/2, F1 1/2; class 2: P 1/2, R 1, F1 2/3; class 3 unused.
  const m = classificationMetrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], 4);
  close(m.accuracy, 4 / 6, 'accuracy');
  close(m.macroF1, (0.8 + 0.5 + 2 / 3) / 3, 'macro F1');
  close(m.weightedF1, (3 * 0.8 + 2 * 0.5 + 1 * (2 / 3)) / 6, 'weighted F1');
  assert.equal(
    m.perClass.map((c) => c.support),
    [3, 2, 1, 0],
  );
  assert.equal(m.confusion, [
    [2, 1, 0, 0],
    [0, 1, 1, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 0],
  ]);
  // Predicted but never true: precision 0 (zero division), F1 0, and it counts in the macro average.
  const n = classificationMetrics([0, 0], [0, 1], 2);
  close(n.macroF1, 1 / 3, 'macro with a predicted-only class');
  close(n.weightedF1, 2 / 3, 'weighted with a predicted-only class');
  assert.equal(classificationMetrics([1, 0], [1, 0], 2).macroF1, 1);
  assert.throws(() => classificationMetrics([0, 3], [0, 1], 3), /class 3 at 1 is outside 0…2/);
  assert.throws(() => classificationMetrics([0], [0, 1], 3), /1 labels but 2 predictions/);
  assert.throws(() => classificationMetrics([], [], 3), /no examples/);
});

test('MSE, R², Pearson and Spearman with ties', () => {
  const r = regressionMetrics([1, 2, 3, 4], [1, 3, 2, 4]);
  close(r.mse, 0.5, 'mse');
  close(r.r2, 1 - 2 / 5, 'r2');
  close(r.pearson, 0.8, 'pearson');
  close(r.spearman, 0.8, 'spearman');
  // Ties: ranks of [1, 1, 2] are [1.5, 1.5, 3]; of [3, 2, 1] are [3, 2, 1]: Pearson of those = −√3/2.
  close(regressionMetrics([1, 1, 2], [3, 2, 1]).spearman, -Math.sqrt(3) / 2, 'spearman with ties');
  // A monotone but non-linear prediction: Spearman 1, Pearson below 1.
  const m = regressionMetrics([1, 2, 3, 4], [1, 4, 9, 100]);
  close(m.spearman, 1, 'monotone spearman');
  assert.ok(m.pearson < 0.9);
  assert.ok(Number.isNaN(regressionMetrics([1, 1], [0, 2]).r2));
  assert.throws(() => regressionMetrics([1], [1, 2]), /1 targets but 2 predictions/);
});

test.run();
