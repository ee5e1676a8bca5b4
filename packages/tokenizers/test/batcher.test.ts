import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { type BucketBatchOptions, bucketBatches, bucketedTokenBatches, seededRandom } from '../src/index.js';

function allIndices(batches: Int32Array[]): number[] {
  return batches.flatMap((batch) => [...batch]).sort((a, b) => a - b);
}

const lengthsArb = fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 120 });

test('seeded random is deterministic and in range', () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  for (let i = 0; i < 100; i++) {
    const x = a.next();
    assert.is(x, b.next());
    assert.ok(x >= 0 && x < 1);
  }
  const r = seededRandom(1);
  for (let i = 0; i < 100; i++) {
    const v = r.intBetween(1, 6);
    assert.ok(Number.isInteger(v) && v >= 1 && v <= 6);
  }
  assert.equal(seededRandom(3).shuffle([1, 2, 3, 4, 5]).sort(), [1, 2, 3, 4, 5]);
});

test('plain batching keeps order and respects batchSize', () => {
  const batches = bucketBatches([5, 5, 5, 5, 5], { batchSize: 2 });
  assert.equal(
    batches.map((b) => [...b]),
    [[0, 1], [2, 3], [4]],
  );
});

test('boundaries never mix buckets', () => {
  const lengths = [3, 30, 4, 31, 5, 100];
  const batches = bucketBatches(lengths, { batchSize: 8, boundaries: [10, 50] });
  assert.equal(
    batches.map((b) => [...b]),
    [[0, 2, 4], [1, 3], [5]],
  );
});

test('sortWindow groups similar lengths within each window', () => {
  const lengths = [9, 1, 8, 2, 7, 3];
  const batches = bucketBatches(lengths, { batchSize: 2, sortWindow: 6 });
  assert.equal(
    batches.map((b) => [...b].map((i) => lengths[i])),
    [
      [1, 2],
      [3, 7],
      [8, 9],
    ],
  );
});

test('maxTokens counts rows × longest row and rejects a sequence over budget', () => {
  const batches = bucketBatches([4, 4, 4, 8, 2], { maxTokens: 12 });
  assert.equal(
    batches.map((b) => [...b]),
    [[0, 1, 2], [3], [4]],
  );
  assert.throws(() => bucketBatches([4, 20], { maxTokens: 12 }), /sequence 1 has 20 tokens, more than maxTokens 12/);
  assert.throws(() => bucketBatches([4], {}), /set batchSize, maxTokens/);
  assert.throws(
    () => bucketBatches([4], { batchSize: 2, boundaries: [3], sortWindow: 4 }),
    /either boundaries or sortWindow/,
  );
  assert.throws(() => bucketBatches([4], { batchSize: 2, boundaries: [5, 3] }), /strictly ascending/);
});

test('shuffle is reproducible per seed and epoch', () => {
  const lengths = Array.from({ length: 50 }, (_, i) => ((i * 7) % 23) + 1);
  const options: BucketBatchOptions = { batchSize: 4, sortWindow: 16, shuffle: true, seed: 5 };
  const first = bucketBatches(lengths, options);
  assert.equal(bucketBatches(lengths, options), first);
  assert.not.equal(bucketBatches(lengths, { ...options, epoch: 1 }), first);
  assert.not.equal(bucketBatches(lengths, { ...options, seed: 6 }), first);
});

test('property: every index once, limits respected, in every mode', () => {
  const mode = fc.constantFrom<Partial<BucketBatchOptions>>({}, { sortWindow: 10 }, { boundaries: [8, 16, 32] });
  fc.assert(
    fc.property(
      lengthsArb,
      mode,
      fc.integer({ min: 1, max: 9 }),
      fc.boolean(),
      fc.integer(),
      (lengths, m, size, shuffle, seed) => {
        const options: BucketBatchOptions = { ...m, batchSize: size, maxTokens: 128, shuffle, seed };
        const batches = bucketBatches(lengths, options);
        assert.equal(
          allIndices(batches),
          lengths.map((_, i) => i),
        );
        for (const batch of batches) {
          assert.ok(batch.length >= 1 && batch.length <= size);
          const longest = Math.max(...Array.from(batch, (i) => lengths[i]!));
          assert.ok(batch.length * longest <= 128);
        }
      },
    ),
  );
});

test('bucketedTokenBatches pads each batch to its own longest row', () => {
  const sequences = [
    Int32Array.of(0, 5, 2),
    Int32Array.of(0, 5, 6, 7, 8, 2),
    Int32Array.of(0, 2),
    Int32Array.of(0, 6, 6, 6, 2),
  ];
  const batches = [...bucketedTokenBatches(sequences, 1, { batchSize: 2, sortWindow: 4 })];
  assert.equal(
    batches.map((b) => [...b.indices]),
    [
      [2, 0],
      [3, 1],
    ],
  );
  assert.equal(batches[0]!.shape, [2, 3]);
  assert.equal([...batches[0]!.ids], [0, 2, 1, 0, 5, 2]);
  assert.equal([...batches[0]!.attentionMask], [1, 1, 0, 1, 1, 1]);
  assert.equal(batches[1]!.shape, [2, 6]);
});

test.run();
