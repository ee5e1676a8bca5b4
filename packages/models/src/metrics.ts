/**
 * Evaluation metrics of downstream tasks, in float64 on plain arrays: Spearman's ρ (tied values
 * get their average rank), Pearson's r, AUROC (the Mann–Whitney statistic, a tie counting one half)
 * and accuracy. As SciPy does, a constant input (or any NaN) gives NaN rather than a number.
 */

type Values = ArrayLike<number>;

function checkPair(name: string, a: Values, b: Values): void {
  if (a.length !== b.length) throw new RangeError(`${name}: the inputs differ in length (${a.length} vs ${b.length})`);
}

/** Ranks 1..n, tied values sharing the mean of their ranks (SciPy's rankdata 'average'). */
export function averageRanks(values: Values): Float64Array {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((i, j) => values[i]! - values[j]!);
  const ranks = new Float64Array(values.length);
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && values[order[end]!] === values[order[start]!]) end++;
    const rank = (start + end + 1) / 2; // mean of the 1-based ranks start+1 .. end
    for (let k = start; k < end; k++) ranks[order[k]!] = rank;
    start = end;
  }
  return ranks;
}

/** Pearson's correlation; NaN for fewer than 2 values, a constant input, or a NaN anywhere. */
export function pearson(x: Values, y: Values): number {
  checkPair('pearson', x, y);
  const n = x.length;
  if (n < 2) return NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  // Clamped: rounding can push |r| a hair past 1.
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Spearman's ρ: Pearson's r of the average ranks; NaN for a constant input or any NaN. */
export function spearman(x: Values, y: Values): number {
  checkPair('spearman', x, y);
  for (let i = 0; i < x.length; i++) if (Number.isNaN(x[i]!) || Number.isNaN(y[i]!)) return NaN;
  return pearson(averageRanks(x), averageRanks(y));
}

/**
 * Area under the ROC curve of `scores` for binary `labels` (1 positive, 0 negative): the share of
 * (positive, negative) pairs ranked correctly, ties counting ½. NaN when a class is absent or a
 * score is NaN.
 */
export function auroc(labels: Values, scores: Values): number {
  checkPair('auroc', labels, scores);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 0 && labels[i] !== 1)
      throw new RangeError(`auroc: labels must be 0 or 1, got ${labels[i]} at index ${i}`);
    if (Number.isNaN(scores[i]!)) return NaN;
    positives += labels[i]!;
  }
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return NaN;
  const ranks = averageRanks(scores);
  let rankSum = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) rankSum += ranks[i]!;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Share of equal entries (class ids); NaN for empty inputs. */
export function accuracy(labels: Values, predictions: Values): number {
  checkPair('accuracy', labels, predictions);
  if (labels.length === 0) return NaN;
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === predictions[i]) hits++;
  return hits / labels.length;
}
