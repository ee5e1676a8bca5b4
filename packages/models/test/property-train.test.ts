import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { seededRandom } from '@rnagrad/tokenizers';
import { HelmModel, type PropertyDataset, type PropertyExample, finetuneProperty } from '../src/index.js';

await T.init({ quiet: true });

/** Random genes of 6–12 codons; the target counts one codon (GCT = 45), so a codon-level model can learn it. */
function countingData(classes: boolean): PropertyDataset {
  const rng = seededRandom(11);
  const make = (n: number): PropertyExample[] =>
    Array.from({ length: n }, () => {
      const codons = Int32Array.from({ length: rng.intBetween(6, 12) }, () =>
        rng.next() < 0.3 ? 45 : rng.intBetween(6, 69),
      );
      const count = codons.filter((c) => c === 45).length;
      return { codons, target: classes ? Number(count >= 3) : count };
    });
  return {
    name: 'counting',
    task: classes ? 'classification' : 'regression',
    classes: classes ? 2 : undefined,
    train: make(64),
    validation: make(24),
    test: make(24),
  };
}

const small = { batchSize: 8, lr: 1e-2, maxEpochs: 6, patience: 3, head: { filters: 8 }, embeddingSize: 8 };

test('scratch TextCNN learns a codon count (test Spearman from the best validation epoch)', async () => {
  const result = await finetuneProperty(null, countingData(false), { ...small, mode: 'scratch' });
  assert.ok(result.test.spearman! > 0.6, JSON.stringify(result));
  assert.ok(result.bestEpoch >= 1 && result.epochs <= 6, JSON.stringify(result));
  assert.ok('pearson' in result.test);
});

test(
  'frozen and full backbones: classification gives AUROC and accuracy; frozen leaves the backbone ' + 'unchanged',
  async () => {
    T.manualSeed(3);
    const backbone = new HelmModel({ dModel: 8, layers: 1, heads: 2, dFF: 16, maxPositions: 16 });
    const before = (await backbone.transformer.wte.weight.data()).slice();
    const frozen = await finetuneProperty(backbone, countingData(true), { ...small, mode: 'frozen' });
    assert.ok(frozen.test.auroc! >= 0 && frozen.test.auroc! <= 1 && frozen.test.accuracy! >= 0, JSON.stringify(frozen));
    assert.equal(await backbone.transformer.wte.weight.data(), before);
    const full = await finetuneProperty(backbone, countingData(true), { ...small, mode: 'full', maxEpochs: 2 });
    assert.ok(full.parameters > frozen.parameters, `${full.parameters} vs ${frozen.parameters}`);
    assert.not.equal(await backbone.transformer.wte.weight.data(), before);
    backbone.dispose();
  },
);

test('bad inputs are refused by name', async () => {
  const data = countingData(false);
  await finetuneProperty(null, data, { mode: 'frozen' }).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /mode 'frozen' needs a backbone/),
  );
  const short = { ...data, train: [{ codons: Int32Array.of(45, 45), target: 1 }, ...data.train] };
  await finetuneProperty(null, short, { mode: 'scratch' }).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /counting: train example 0 has 2 codons; the head needs ≥ 5/),
  );
  await finetuneProperty(null, data, { mode: 'scratch', batchSize: 0 }).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /batchSize must be an integer ≥ 1/),
  );
});

test.run();
