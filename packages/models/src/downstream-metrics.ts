/**
 * Metrics of the classification and regression heads, in float64, with scikit-learn's
 * conventions so numbers compare with published ones:
 * - per-class precision / recall are 0 when their denominator is (`zero_division=0`);
 * - macro F1 averages over the classes present in the labels or the predictions (sklearn's
 *   default label set), weighted F1 weights each class by its number of true examples;
 * - R² = 1 − SS_res / SS_tot, Spearman = Pearson of average ranks (ties share their mean rank).
 */

import { pearson, spearman } from './metrics.js';

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  /** True examples of the class. */
  support: number;
}

export interface ClassificationMetrics {
  accuracy: number;
  macroF1: number;
  weightedF1: number;
  perClass: ClassScores[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

export function classificationMetrics(
  labels: ArrayLike<number>,
  predictions: ArrayLike<number>,
  classes: number,
): ClassificationMetrics {
  if (labels.length !== predictions.length)
    throw new RangeError(`classificationMetrics: ${labels.length} labels but ${predictions.length} predictions`);
  if (labels.length === 0) throw new RangeError('classificationMetrics: no examples');
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let k = 0; k < labels.length; k++) {
    const [t, p] = [labels[k]!, predictions[k]!];
    for (const c of [t, p])
      if (!(Number.isInteger(c) && c >= 0 && c < classes))
        throw new RangeError(`classificationMetrics: class ${c} at ${k} is outside 0…${classes - 1}`);
    confusion[t]![p]!++;
  }
  let correct = 0;
  const perClass = confusion.map((row, c) => {
    const tp = row[c]!;
    correct += tp;
    const support = row.reduce((s, v) => s + v, 0);
    const predicted = confusion.reduce((s, r) => s + r[c]!, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    return {
      precision,
      recall,
      f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0,
      support,
      predicted,
    };
  });
  const present = perClass.filter((c) => c.support > 0 || c.predicted > 0);
  return {
    accuracy: correct / labels.length,
    macroF1: present.reduce((s, c) => s + c.f1, 0) / present.length,
    weightedF1: perClass.reduce((s, c) => s + c.f1 * c.support, 0) / labels.length,
    perClass: perClass.map(({ precision, recall, f1, support }) => ({ precision, recall, f1, support })),
    confusion,
  };
}

export interface RegressionMetrics {
  mse: number;
  r2: number;
  pearson: number;
  spearman: number;
}

/** MSE, R², Pearson and Spearman of predictions against targets (NaN correlations for constant input). */
export function regressionMetrics(targets: ArrayLike<number>, predictions: ArrayLike<number>): RegressionMetrics {
  const n = targets.length;
  if (n !== predictions.length)
    throw new RangeError(`regressionMetrics: ${n} targets but ${predictions.length} predictions`);
  if (n === 0) throw new RangeError('regressionMetrics: no examples');
  let mean = 0;
  for (let i = 0; i < n; i++) mean += targets[i]! / n;
  let [ssRes, ssTot] = [0, 0];
  for (let i = 0; i < n; i++) {
    ssRes += (targets[i]! - predictions[i]!) ** 2;
    ssTot += (targets[i]! - mean) ** 2;
  }
  return {
    mse: ssRes / n,
    r2: ssTot > 0 ? 1 - ssRes / ssTot : NaN,
    pearson: pearson(targets, predictions),
    spearman: spearman(targets, predictions),
  };
}
