/**
 * Length-aware batching: grouping sequences of similar length keeps padding (wasted GPU work)
 * low, and a token budget keeps memory per step roughly constant across short and long batches.
 */
import { type TokenBatch, assertPositiveInteger, padBatch } from './batch.js';
import { seededRandom } from './random.js';

export interface BucketBatchOptions {
  /** Most sequences per batch. At least one of `batchSize` and `maxTokens` is required. */
  batchSize?: number;
  /**
   * Most padded tokens per batch, counted as rows × longest row (what a padded tensor costs).
   * A single sequence longer than this is an error: truncate first.
   */
  maxTokens?: number;
  /**
   * Ascending length limits: bucket k holds lengths in (boundaries[k−1], boundaries[k]], and one
   * more bucket holds everything longer. Batches never mix buckets.
   */
  boundaries?: readonly number[];
  /**
   * Instead of fixed buckets: sort by length within consecutive windows of this many sequences
   * (taken in the shuffled order), then cut each window into batches. Larger windows pad less
   * but randomize less.
   */
  sortWindow?: number;
  /** Shuffle the sequences before grouping and the batches after (default false). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** Mixed into the seed so each epoch gets a different, reproducible order (default 0). */
  epoch?: number;
}

/** Grows one batch at a time and hands it over when the next sequence would break a limit. */
class BatchFiller {
  private indices: number[] = [];
  private longest = 0;

  constructor(
    private readonly batchSize: number,
    private readonly maxTokens: number,
  ) {}

  /** Adds a sequence; returns the batch it closed, if adding it did not fit. */
  add(index: number, length: number): Int32Array | undefined {
    if (length > this.maxTokens) {
      throw new RangeError(`sequence ${index} has ${length} tokens, more than maxTokens ${this.maxTokens}`);
    }
    const longest = Math.max(this.longest, length);
    const fits = this.indices.length < this.batchSize && (this.indices.length + 1) * longest <= this.maxTokens;
    const closed = fits ? undefined : this.flush();
    this.indices.push(index);
    this.longest = Math.max(this.longest, length);
    return closed;
  }

  /** The batch in progress (undefined when empty); starts a new one. */
  flush(): Int32Array | undefined {
    if (this.indices.length === 0) return undefined;
    const batch = Int32Array.from(this.indices);
    this.indices = [];
    this.longest = 0;
    return batch;
  }
}

/**
 * Plans one epoch: returns batches as lists of sequence indices into `lengths`. Every index
 * appears exactly once. Without `boundaries` or `sortWindow`, sequences are batched in
 * (optionally shuffled) order.
 */
export function bucketBatches(lengths: ArrayLike<number>, options: BucketBatchOptions): Int32Array[] {
  const { batchSize, maxTokens, boundaries, sortWindow } = options;
  if (batchSize === undefined && maxTokens === undefined) {
    throw new RangeError('set batchSize, maxTokens, or both');
  }
  if (batchSize !== undefined) assertPositiveInteger(batchSize, 'batchSize');
  if (maxTokens !== undefined) assertPositiveInteger(maxTokens, 'maxTokens');
  if (boundaries !== undefined && sortWindow !== undefined) {
    throw new RangeError('choose either boundaries or sortWindow, not both');
  }
  if (sortWindow !== undefined) assertPositiveInteger(sortWindow, 'sortWindow');
  boundaries?.forEach((limit, k, all) => {
    if (k > 0 && limit <= all[k - 1]!) throw new RangeError('boundaries must be strictly ascending');
  });

  const random = seededRandom(((options.seed ?? 0) >>> 0) ^ Math.imul(options.epoch ?? 0, 0x9e3779b9));
  const order = Array.from({ length: lengths.length }, (_, i) => i);
  if (options.shuffle) random.shuffle(order);
  const newFiller = (): BatchFiller => new BatchFiller(batchSize ?? Infinity, maxTokens ?? Infinity);
  const batches: Int32Array[] = [];
  const keep = (batch: Int32Array | undefined): void => {
    if (batch) batches.push(batch);
  };

  if (boundaries !== undefined) {
    const fillers = Array.from({ length: boundaries.length + 1 }, newFiller);
    for (const index of order) {
      const length = lengths[index]!;
      let bucket = boundaries.findIndex((limit) => length <= limit);
      if (bucket === -1) bucket = boundaries.length;
      keep(fillers[bucket]!.add(index, length));
    }
    for (const filler of fillers) keep(filler.flush());
  } else {
    const window = sortWindow ?? order.length;
    for (let start = 0; start < order.length; start += window) {
      const slice = order.slice(start, start + window);
      if (sortWindow !== undefined) slice.sort((a, b) => lengths[a]! - lengths[b]!);
      const filler = newFiller();
      for (const index of slice) keep(filler.add(index, lengths[index]!));
      keep(filler.flush());
    }
  }
  if (options.shuffle) random.shuffle(batches);
  return batches;
}

export interface IndexedTokenBatch extends TokenBatch {
  /** Which input sequences the rows are, in row order. */
  indices: Int32Array;
}

/**
 * Plans batches with {@link bucketBatches} and yields them right-padded (to each batch's longest
 * row) with `padId`, ready for the model.
 */
export function* bucketedTokenBatches(
  sequences: readonly ArrayLike<number>[],
  padId: number,
  options: BucketBatchOptions,
): Generator<IndexedTokenBatch> {
  const plan = bucketBatches(
    sequences.map((sequence) => sequence.length),
    options,
  );
  for (const indices of plan) {
    const rows = Array.from(indices, (index) => sequences[index]!);
    yield { ...padBatch(rows, padId), indices };
  }
}
