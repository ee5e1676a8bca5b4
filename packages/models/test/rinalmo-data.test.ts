/**
 * RiNALMo MLM data: the masking statistics (15% of standard tokens, 80/10/10, specials and padding
 * never selected, random replacements from A/C/G/T), reproducibility and the pure-function-of-index
 * batch source, the fixed validation split, and the shared ncRNA corpus when it is present.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { parseFasta, seededRandom } from '@rnagrad/tokenizers';
import * as T from '@rnagrad/tensor';
import {
  IGNORE_TARGET,
  RinalmoMlmSource,
  RinalmoModel,
  evaluateRinalmoMlm,
  nucleotideCorpus,
  rinalmoBatchTensors,
  rinalmoMlmBatch,
} from '../src/index.js';
import { loadNucleotideCorpus, ncrnaPretrainPath } from '../src/node/rinalmo-data-file.js';

const random = seededRandom(9);
const fasta = Array.from(
  { length: 60 },
  (_, i) =>
    `>s${i} test\n${Array.from({ length: 30 + (i % 17) * 7 }, () => 'ACGUN'[random.intBetween(0, 4)]).join('')}`,
).join('\n');
const corpus = nucleotideCorpus(parseFasta(fasta), { source: 'test.fasta' });

test(
  'masking: 15% of standard tokens per row, 80% <mask> / 10% random A,C,G,T / 10% unchanged, loss only ' + 'there',
  () => {
    let [selected, eligible, masked, replaced, unchanged] = [0, 0, 0, 0, 0];
    for (let seed = 0; seed < 40; seed++) {
      const batch = rinalmoMlmBatch(corpus.train, seededRandom(seed));
      const [B, L] = batch.shape;
      for (let b = 0; b < B; b++) {
        const original = corpus.train[b]!;
        let rowSelected = 0;
        for (let i = 0; i < L; i++) {
          const k = b * L + i;
          const target = batch.targets[k]!;
          if (i >= original.length) {
            assert.equal([batch.ids[k], batch.attentionMask[k], target], [1, 0, IGNORE_TARGET], 'padding');
            continue;
          }
          if (original[i]! >= 5) eligible++;
          if (target === IGNORE_TARGET) {
            assert.is(batch.ids[k], original[i], 'unselected tokens are untouched');
            continue;
          }
          assert.ok(original[i]! >= 5, 'specials are never selected');
          assert.is(target, original[i]);
          rowSelected++;
          if (batch.ids[k] === 4) masked++;
          else if (batch.ids[k] === original[i]) unchanged++;
          else replaced++;
          assert.ok(
            batch.ids[k]! === 4 || batch.ids[k] === original[i] || (batch.ids[k]! >= 5 && batch.ids[k]! <= 8),
            'replacements are A, C, G or T',
          );
        }
        const standard = original.filter((t) => t >= 5).length;
        assert.is(rowSelected, Math.max(1, Math.round(0.15 * standard)), 'exactly round(15%) per row');
        selected += rowSelected;
      }
    }
    assert.ok(Math.abs(selected / eligible - 0.15) < 0.005, `selected ${selected / eligible}`);
    // Random draws of A/C/G/T equal to the original count as unchanged: expect 0.1 + 0.1/4 ≈ 0.125 and 0.075.
    assert.ok(Math.abs(masked / selected - 0.8) < 0.02, `<mask> share ${masked / selected}`);
    assert.ok(Math.abs(replaced / selected - 0.075) < 0.015, `replaced share ${replaced / selected}`);
    assert.ok(Math.abs(unchanged / selected - 0.125) < 0.015, `unchanged share ${unchanged / selected}`);
  },
);

test('cropping keeps <cls> … <eos> framing within maxLength', () => {
  const long = new Int32Array([0, ...Array(50).fill(6), 2]);
  const batch = rinalmoMlmBatch([long, new Int32Array([0, 5, 2])], seededRandom(1), { maxLength: 10 });
  assert.equal(batch.shape, [2, 10]);
  assert.is(batch.ids[0], 0);
  assert.is(batch.ids[9], 2);
  assert.equal([...batch.attentionMask.subarray(10)], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => rinalmoMlmBatch([long], seededRandom(1), { maxLength: 2 }), /maxLength must be ≥ 3/);
});

test('source: batch(i) is a pure function of (seed, i); epochs cover the training set; validation is fixed', () => {
  const source = new RinalmoMlmSource(corpus, { batchSize: 8, seed: 4 });
  const again = new RinalmoMlmSource(corpus, { batchSize: 8, seed: 4 });
  assert.equal(again.batch(13), source.batch(13));
  source.batch(2);
  assert.equal(source.batch(13), again.batch(13), 'order of calls does not matter');
  assert.not.equal(source.batch(13).ids, source.batch(14).ids);
  assert.not.equal(new RinalmoMlmSource(corpus, { batchSize: 8, seed: 5 }).batch(13).ids, source.batch(13).ids);
  const perEpoch = Math.floor(corpus.train.length / 8);
  const seen = new Set<string>();
  for (let i = 0; i < perEpoch; i++) {
    const b = source.batch(i);
    const [B, L] = b.shape;
    for (let r = 0; r < B; r++) seen.add(String(r) + Array.from(b.targets.subarray(r * L, (r + 1) * L)).join());
  }
  assert.is(seen.size, perEpoch * 8, 'no sequence twice in an epoch');
  assert.equal(source.validationBatches(), again.validationBatches(), 'the validation masking is fixed');
  assert.is(
    source.tokens(source.batch(0)),
    source.batch(0).attentionMask.reduce((a, b) => a + b, 0),
  );
  assert.equal([corpus.train.length, corpus.validation.length, corpus.validationIds[0]], [57, 3, 's19']);
  assert.throws(
    () => nucleotideCorpus(parseFasta('>a\nACGU\n'), { source: 'one.fasta' }),
    /one\.fasta: 1 sequences are too few/,
  );
});

test(
  'evaluateRinalmoMlm: selected-weighted loss and argmax accuracy, equal to a hand count, eval mode ' + 'restored',
  async () => {
    await T.init({ quiet: true });
    T.manualSeed(2);
    const model = new RinalmoModel('pico');
    const batches = new RinalmoMlmSource(corpus, { batchSize: 2, seed: 1, maxLength: 24 }).validationBatches();
    const result = await evaluateRinalmoMlm(model, batches);
    assert.ok(model.training, 'training mode restored');
    let [nll, correct, selected] = [0, 0, 0];
    for (const batch of batches) {
      const { ids, targets } = rinalmoBatchTensors(batch);
      model.eval();
      const logits = model.forward(ids).logits!;
      model.train();
      const values = await logits.dataF64();
      batch.targets.forEach((t, k) => {
        if (t === IGNORE_TARGET) return;
        const row = values.subarray(k * 22, (k + 1) * 22);
        const max = Math.max(...row);
        nll += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[t]!;
        if (row.indexOf(max) === t) correct++;
        selected++;
      });
      for (const x of [ids, targets, logits]) x.dispose();
    }
    assert.is(result.selected, selected);
    assert.ok(Math.abs(result.loss - nll / selected) < 1e-4 * result.loss, `loss ${result.loss} vs ${nll / selected}`);
    assert.is(result.accuracy, correct / selected);
    model.dispose();
  },
);

test('the shared ncRNA corpus (when present): 13,603 sequences, every 20th held out', async () => {
  if (!existsSync(ncrnaPretrainPath())) {
    console.log(`    (skipped: ${ncrnaPretrainPath()} is not on this machine)`);
    return;
  }
  const ncrna = await loadNucleotideCorpus();
  assert.is(ncrna.train.length + ncrna.validation.length, 13603);
  assert.is(ncrna.validation.length, Math.floor(13603 / 20));
  const lengths = ncrna.train.map((s) => s.length - 2);
  assert.equal([Math.min(...lengths) >= 42, Math.max(...lengths) <= 500], [true, true]);
  assert.ok(
    ncrna.train.every((s) => s.every((t) => t === 0 || t === 2 || (t >= 5 && t <= 8))),
    'ACGU only (U read as T)',
  );
  await loadNucleotideCorpus('/nonexistent/x.fasta').then(
    () => assert.unreachable(),
    (err: Error) => assert.match(err.message, /x\.fasta: no such file/),
  );
});

test.run();
