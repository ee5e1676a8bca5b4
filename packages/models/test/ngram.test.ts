import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '@rnagrad/tokenizers';
import { CODON_TOKENS, CodonNgram, IGNORE_INDEX, type LmBatch, clmBatch, mlmBatch } from '../src/index.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

/** Genes alternating two codons: the neighbours decide the masked codon, frequency does not. */
const genes = Array.from({ length: 50 }, (_, g) => Int32Array.from({ length: 30 }, (_, i) => ((g + i) % 2 ? 20 : 45)));

test('unigram: add-one over the 64 codons, by hand', () => {
  const ngram = new CodonNgram([Int32Array.from([20, 20, 45])]);
  close(ngram.unigram(20), 3 / 67);
  close(ngram.unigram(45), 2 / 67);
  close(ngram.unigram(6), 1 / 67);
  // Left bigram with k = 64: n(<cls>, ATG) = 1, n(<cls>) = 1.
  close(ngram.left(CODON_TOKENS.cls, 20), (1 + 64 * (3 / 67)) / 65);
  // Unseen context: the order below.
  close(ngram.neighbours(CODON_TOKENS.mask, CODON_TOKENS.mask, 45), 2 / 67);
});

test('on an alternating language the neighbour orders beat the unigram; masked neighbours carry nothing', () => {
  const ngram = new CodonNgram(genes, { k: 1 });
  const rng = seededRandom(3);
  const batches = [mlmBatch(genes.slice(0, 8), rng, { length: 16, maskProbability: 0.15 })];
  const ce = ngram.crossEntropy(batches, 'mlm');
  assert.ok(ce.unigram > 0.6, `unigram ${ce.unigram}`);
  assert.ok(ce.left < 0.2 && ce.neighbours < ce.left + 1e-9, JSON.stringify(ce));
  const masked = batches[0]!.targets.filter((t) => t !== IGNORE_INDEX).length;
  assert.is(ce.tokens, masked);
  // A row whose neighbours are both masked scores like the unigram.
  const lone: LmBatch = {
    ids: Int32Array.from([CODON_TOKENS.mask, CODON_TOKENS.mask, CODON_TOKENS.mask]),
    targets: Int32Array.from([IGNORE_INDEX, 20, IGNORE_INDEX]),
    attentionMask: Int32Array.from([1, 1, 1]),
    positions: Int32Array.from([0, 1, 2]),
    shape: [1, 3],
  };
  close(ngram.crossEntropy([lone], 'mlm').neighbours, -Math.log(ngram.unigram(20)));
});

test('causal targets need withEos; neighbours are NaN there', () => {
  const batches = [clmBatch(genes.slice(0, 4), seededRandom(1), { length: 40 })];
  assert.throws(() => new CodonNgram(genes).crossEntropy(batches, 'clm'), /target id 2 is not a class/);
  const ce = new CodonNgram(genes, { withEos: true }).crossEntropy(batches, 'clm');
  assert.ok(ce.left < ce.unigram && Number.isNaN(ce.neighbours), JSON.stringify(ce));
});

test.run();
