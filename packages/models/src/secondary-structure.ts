/**
 * From a pairing-probability matrix to a structure, and how good it is — RiNALMo's rules
 * (models.md B6, `rinalmo/utils/sec_struct.py`), on the CPU in float64:
 * - allowed pairs: A-U, G-C and G-U in either order (T read as U), |i − j| ≥ 4;
 * - candidates: allowed pairs with probability strictly above the threshold;
 * - greedy clean-up: highest probability first, a pair is kept when neither base is taken yet
 *   (ties broken by smaller i, then smaller j), so every base has at most one partner;
 * - per-sequence precision, recall and F1 on the strict upper triangle, optionally with ±1
 *   flexible pairing: a predicted (i, j) counts for precision when the target holds (i, j),
 *   (i ± 1, j) or (i, j ± 1); a target pair counts for recall when the prediction holds one of
 *   those. Precision (recall) is 0 without predicted (target) pairs, F1 = 0 when P + R < 1e-5;
 *   means are macro averages over sequences.
 */
import { UNPAIRED } from '@rnagrad/tokenizers';

/** |i − j| below this is a "sharp loop" and never predicted. */
export const MIN_PAIR_SEPARATION = 4;
/** RiNALMo's validation grid: 0.01, 0.02, …, 0.29. */
export const THRESHOLD_GRID: readonly number[] = Array.from({ length: 29 }, (_, k) => (k + 1) / 100);

const CANONICAL = new Set(['AU', 'UA', 'GC', 'CG', 'GU', 'UG']);

/** Whether bases a and b (one letter each, any case, T as U) form a Watson-Crick or G-U pair. */
export function canPair(a: string, b: string): boolean {
  return CANONICAL.has((a + b).toUpperCase().replaceAll('T', 'U'));
}

/** Allowed pairs (i < j) with their probabilities, highest first; the input to every threshold. */
export interface PairCandidates {
  length: number;
  /** Pairs at or below this probability were left out: thresholds below it would be wrong. */
  floor: number;
  i: Int32Array;
  j: Int32Array;
  probability: Float64Array;
}

/**
 * The allowed pairs of a symmetric [L, L] probability matrix (row-major; the upper triangle is
 * read) with probability above `floor`, sorted for the greedy clean-up.
 */
export function pairCandidates(probabilities: ArrayLike<number>, sequence: string, floor = 0): PairCandidates {
  const n = sequence.length;
  if (probabilities.length !== n * n) {
    throw new RangeError(
      `pairCandidates: a sequence of ${n} bases needs ${n * n} probabilities, got ${probabilities.length}`,
    );
  }
  const found: [number, number, number][] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + MIN_PAIR_SEPARATION; j < n; j++) {
      const p = probabilities[i * n + j]!;
      if (Number.isNaN(p)) throw new RangeError(`pairCandidates: probability (${i}, ${j}) is NaN`);
      if (p > floor && canPair(sequence[i]!, sequence[j]!)) found.push([p, i, j]);
    }
  }
  found.sort((x, y) => y[0] - x[0] || x[1] - y[1] || x[2] - y[2]);
  return {
    length: n,
    floor,
    i: Int32Array.from(found, (f) => f[1]),
    j: Int32Array.from(found, (f) => f[2]),
    probability: Float64Array.from(found, (f) => f[0]),
  };
}

/** Greedy one-partner structure from the candidates above `threshold` (a prefix of the sorted list). */
export function pairsAboveThreshold(candidates: PairCandidates, threshold: number): Int32Array {
  if (threshold < candidates.floor)
    throw new RangeError(
      `pairsAboveThreshold: threshold ${threshold} is below the candidates' floor ${candidates.floor}`,
    );
  const partners = new Int32Array(candidates.length).fill(UNPAIRED);
  for (let k = 0; k < candidates.probability.length && candidates.probability[k]! > threshold; k++) {
    const i = candidates.i[k]!;
    const j = candidates.j[k]!;
    if (partners[i] === UNPAIRED && partners[j] === UNPAIRED) {
      partners[i] = j;
      partners[j] = i;
    }
  }
  return partners;
}

/** RiNALMo's `prob_mat_to_sec_struct`: the predicted partner table of one sequence. */
export function predictPairs(probabilities: ArrayLike<number>, sequence: string, threshold: number): Int32Array {
  return pairsAboveThreshold(pairCandidates(probabilities, sequence, threshold), threshold);
}

export interface StructureScores {
  precision: number;
  recall: number;
  f1: number;
}

/** Whether `partners` holds (i, j) or, with `shift`, (i ± 1, j) or (i, j ± 1). */
function holds(partners: Int32Array, i: number, j: number, shift: boolean): boolean {
  if (partners[i] === j) return true;
  if (!shift) return false;
  return partners[i - 1] === j || partners[i + 1] === j || partners[i] === j - 1 || partners[i] === j + 1;
}

function f1Of(precision: number, recall: number): number {
  return precision + recall < 1e-5 ? 0 : (2 * precision * recall) / (precision + recall);
}

/** Precision, recall and F1 of one predicted structure against its target (partner tables, equal length). */
export function structureScores(
  target: Int32Array,
  predicted: Int32Array,
  opts: { shift?: boolean } = {},
): StructureScores {
  if (target.length !== predicted.length)
    throw new RangeError(`structureScores: target has ${target.length} bases, prediction ${predicted.length}`);
  const shift = opts.shift ?? false;
  let [predictedPairs, truePredicted, targetPairs, recalled] = [0, 0, 0, 0];
  for (let i = 0; i < target.length; i++) {
    const p = predicted[i]!;
    if (p > i) {
      predictedPairs++;
      if (holds(target, i, p, shift)) truePredicted++;
    }
    const t = target[i]!;
    if (t > i) {
      targetPairs++;
      if (holds(predicted, i, t, shift)) recalled++;
    }
  }
  const precision = predictedPairs ? truePredicted / predictedPairs : 0;
  const recall = targetPairs ? recalled / targetPairs : 0;
  return { precision, recall, f1: f1Of(precision, recall) };
}

/** Macro average over sequences (all zeros for an empty list). */
export function meanScores(scores: readonly StructureScores[]): StructureScores {
  const mean = (key: keyof StructureScores) =>
    scores.length ? scores.reduce((s, x) => s + x[key], 0) / scores.length : 0;
  return { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') };
}

export interface ThresholdChoice {
  threshold: number;
  /** Mean F1 at the chosen threshold. */
  f1: number;
  /** Mean F1 at every threshold tried, in grid order. */
  curve: { threshold: number; f1: number }[];
}

/**
 * The threshold of `grid` with the highest mean F1 over validation sequences (the first one on a
 * tie). `shift` picks the metric to maximise (default: ±1 flexible, the one RiNALMo reports).
 */
export function tuneThreshold(
  validation: readonly { candidates: PairCandidates; target: Int32Array }[],
  opts: { grid?: readonly number[]; shift?: boolean } = {},
): ThresholdChoice {
  const grid = opts.grid ?? THRESHOLD_GRID;
  if (grid.length === 0) throw new RangeError('tuneThreshold: the threshold grid is empty');
  if (validation.length === 0) throw new RangeError('tuneThreshold: no validation sequences');
  const lowest = Math.min(...grid);
  if (validation.some(({ candidates }) => candidates.floor > lowest)) {
    throw new RangeError(`tuneThreshold: candidates were cut at a floor above the lowest threshold ${lowest}`);
  }
  const curve = grid.map((threshold) => ({
    threshold,
    f1: meanScores(
      validation.map(({ candidates, target }) =>
        structureScores(target, pairsAboveThreshold(candidates, threshold), { shift: opts.shift ?? true }),
      ),
    ).f1,
  }));
  const best = curve.reduce((a, b) => (b.f1 > a.f1 ? b : a));
  return { threshold: best.threshold, f1: best.f1, curve };
}
