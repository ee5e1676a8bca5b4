import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '@rnagrad/tokenizers';
import {
  IGNORE_INDEX,
  clmBatch,
  codonCorpus,
  codonCorpusFromCsv,
  loadEcoliCds,
  mlmBatch,
  sampler,
} from '../src/node.js';

test('the bundled E. coli corpus loads and splits deterministically by gene name', async () => {
  const corpus = await loadEcoliCds();
  assert.is(corpus.train.length + corpus.validation.length, 3682);
  assert.ok(
    corpus.validation.length > 250 && corpus.validation.length < 500,
    `${corpus.validation.length} validation genes`,
  );
  const again = await loadEcoliCds();
  assert.equal(again.names.validation.slice(0, 5), corpus.names.validation.slice(0, 5));
  // thrL: ATG AAA CGC ... → first codon ATG = 20
  const i = corpus.names.train.indexOf('thrL');
  const j = corpus.names.validation.indexOf('thrL');
  const thrL = i >= 0 ? corpus.train[i]! : corpus.validation[j]!;
  assert.is(thrL[0], 20);
  assert.is(thrL.length, 22);
});

test('the split by name: similar names spread, order does not matter, no side empty by chance', () => {
  const records = Array.from({ length: 80 }, (_, i) => ({ name: `gene${i}`, sequence: 'ATGAAATAA' }));
  const corpus = codonCorpus(records);
  // ~10% of 80; before the hash had a finaliser, gene0 … gene79 all went to train.
  assert.ok(corpus.validation.length >= 3 && corpus.validation.length <= 16, `${corpus.validation.length} of 80`);
  const reversed = codonCorpus([...records].reverse());
  assert.equal([...reversed.names.validation].sort(), [...corpus.names.validation].sort());
  for (const n of [2, 3, 5]) {
    const few = codonCorpus(records.slice(0, n));
    assert.ok(few.validation.length >= 1 && few.train.length >= 1, `${n} records: ${few.validation.length} held out`);
  }
  for (const record of records.slice(0, 20)) assert.is(codonCorpus([record]).train.length, 1, 'one sequence: train');
  assert.is(codonCorpus(records, { validationFraction: 0 }).validation.length, 0);
});

test('a CSV without the needed columns is refused by name', () => {
  assert.throws(
    () => codonCorpusFromCsv('name,seq\na,ATG\n', { sourceName: 'x.csv' }),
    /x\.csv: missing column "gene_name" \(columns: name, seq\)/,
  );
});

test('MLM batches: <cls> framing, 15% <mask> with targets only there, padding masked', () => {
  const rng = seededRandom(1);
  const seqs = [Int32Array.from({ length: 200 }, (_, i) => 6 + (i % 64)), Int32Array.from([20, 45, 54])];
  const b = mlmBatch(seqs, rng, { length: 32, crop: 'start' });
  assert.equal(b.shape, [2, 32]);
  assert.is(b.ids[0], 0);
  let masked = 0;
  for (let i = 0; i < 64; i++) {
    if (b.targets[i] !== IGNORE_INDEX) {
      assert.is(b.ids[i], 3, 'every target position holds <mask>');
      masked++;
    }
  }
  assert.ok(masked >= 2);
  // Row 1: <cls> 20 45 54 <eos> then padding.
  assert.equal(Array.from(b.attentionMask.subarray(32, 38)), [1, 1, 1, 1, 1, 0]);
  assert.is(b.ids[32 + 10], 4);
});

test('CLM batches shift targets by one and ignore padding', () => {
  const b = clmBatch([Int32Array.from([20, 45, 54])], seededRandom(2), { length: 8 });
  assert.equal(Array.from(b.ids), [0, 20, 45, 54, 2, 4, 4, 4]);
  assert.equal(Array.from(b.targets), [20, 45, 54, 2, -100, -100, -100, -100]);
});

test('the sampler visits every sequence once per epoch, and a batch is a function of its index', () => {
  const seqs = Array.from({ length: 10 }, (_, i) => Int32Array.from([i]));
  const s = sampler(seqs, 5, 3);
  const seen = [...s.batch(0), ...s.batch(1)].map((x) => x[0]).sort((a, b) => a! - b!);
  assert.equal(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const epoch2 = [...s.batch(2), ...s.batch(3)].map((x) => x[0]);
  assert.equal(
    [...epoch2].sort((a, b) => a! - b!),
    seen,
  );
  assert.equal(sampler(seqs, 5, 3).batch(3), s.batch(3), 'a fresh sampler gives the same batch 3');
});

test('random windows keep their offset in the gene as position ids and reach every position', () => {
  const gene = Int32Array.from({ length: 100 }, (_, i) => 6 + (i % 64)); // tokens: <cls> + 100 codons + <eos> = 102
  const reached = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const b = clmBatch([gene], seededRandom(seed), { length: 16 });
    for (let i = 0; i < 16; i++) {
      const pos = b.positions[i]!;
      reached.add(pos);
      const want = pos === 0 ? 0 : pos === 101 ? 2 : gene[pos - 1]!;
      assert.is(b.ids[i], want, `token at position ${pos}`);
    }
  }
  assert.is(reached.size, 101, 'inputs cover positions 0..100 (101 is only ever a target)');
  // No position is starved: the first (<cls>) is covered as often as a mid-gene one, none over twice as often.
  const hits = new Array<number>(102).fill(0);
  for (let seed = 0; seed < 2000; seed++)
    clmBatch([gene], seededRandom(seed), { length: 16 }).positions.forEach((p) => hits[p]!++);
  const mid = hits[50]!;
  assert.ok(
    hits[0]! > 0.8 * mid && Math.min(...hits.slice(0, 101)) > 0.8 * mid && Math.max(...hits) < 2.2 * mid,
    `coverage ${hits.join(' ')}`,
  );
  // maxPositions cuts the gene: no position at or past it.
  const cut = mlmBatch([gene], seededRandom(1), { length: 16, maxPositions: 20 });
  assert.ok(Math.max(...cut.positions) < 20);
});

test.run();
