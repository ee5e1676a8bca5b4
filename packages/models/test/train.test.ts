import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { HelmModel, trainHelm, type CodonCorpus } from '../src/index.js';

await T.init({ quiet: true });

/** Sequences cycling through three codons from a random phase: a causal LM can learn them fully. */
function cyclicCorpus(): CodonCorpus {
  const cycle = [20, 45, 54, 33, 61];
  const make = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => Int32Array.from({ length: 40 }, (_, j) => cycle[(i * 7 + seed + j) % cycle.length]!));
  return { train: make(40, 0), validation: make(8, 3), names: { train: [], validation: [] } };
}

for (const loss of ['xe', 'hxe'] as const) {
  test(`trainHelm (CLM, ${loss}) learns a cyclic codon language; GPU memory stays flat`, async () => {
    T.manualSeed(1);
    const model = new HelmModel({ dModel: 32, layers: 1, heads: 2, dFF: 64, maxPositions: 16, objective: 'clm' });
    const rt = T.runtime();
    const sizes: number[] = [];
    const history = await trainHelm(model, cyclicCorpus(), { steps: 60, batchSize: 8, length: 16, loss, lr: 1e-2, minLr: 1e-3, warmupSteps: 5, evalEvery: 30, validationBatches: 2 }, (e) => {
      if (e.step >= 10) sizes.push(rt.stats().liveBytes);
    });
    const before = history[0]!.initialValidation!;
    const after = history.at(-1)!.validation!;
    assert.ok(after.crossEntropy < 0.5 * before.crossEntropy, `CE ${before.crossEntropy} → ${after.crossEntropy}`);
    assert.ok(after.accuracy > 0.8, `accuracy ${after.accuracy}`);
    // Never above the first measured step (the FinalizationRegistry may still free strays from earlier tests).
    assert.ok(Math.max(...sizes) <= sizes[0]!, `live GPU bytes grew: ${sizes[0]} → ${Math.max(...sizes)}`);
    model.dispose();
  });
}

test.run();
