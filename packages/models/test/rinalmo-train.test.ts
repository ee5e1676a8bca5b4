/**
 * RiNALMo MLM on the shared trainer: a pico model's loss falls, a run resumed from a checkpoint
 * folder repeats the straight run bit for bit, loadModel rebuilds it, and embedRinalmo's mean is
 * the representation averaged over each sequence's real tokens.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@rnagrad/tensor';
import { noGrad } from '@rnagrad/autograd';
import { RinalmoModel, embedRinalmo, nucleotideCorpus, rinalmoTask, train } from '../src/index.js';
import { disposeSnapshot, loadModel, loadTrainingState, saveCheckpointDir } from '../src/node/index.js';

await T.init({ quiet: true });

const records = Array.from({ length: 40 }, (_, i) => ({
  id: `r${i}`,
  description: '',
  lineNumber: 1 + 2 * i,
  sequence: 'ACGU'.repeat(3 + (i % 5)) + 'GGC'.repeat(1 + (i % 3)),
}));
const corpus = nucleotideCorpus(records);
const RUN = { steps: 6, lr: 1e-2, minLr: 1e-3, warmupSteps: 0, evalEvery: 0, checkpointEvery: 3, seed: 3 };
const TASK = { batchSize: 4, maxLength: 24, validationBatches: 1, seed: 3 };

async function weights(model: RinalmoModel): Promise<Float32Array[]> {
  return Promise.all(model.namedParameters().map(async ([, p]) => (await p.data()) as Float32Array));
}

test(
  'the RiNALMo task trains through the shared trainer and resumes from its checkpoint folder bit for ' + 'bit',
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'rnagrad-rinalmo-train-'));
    try {
      T.manualSeed(7);
      const model = new RinalmoModel('pico');
      const straight = await train(rinalmoTask(model, corpus, TASK), RUN, {
        onSnapshot: async (s) =>
          void (s.step === 3 && (await saveCheckpointDir(root, model, s, { trainedPositions: 24, run: {} }))),
      });
      const losses = straight.history.steps.map((e) => e.loss);
      assert.ok(losses.every(Number.isFinite));
      assert.ok((losses[4]! + losses[5]!) / 2 < (losses[0]! + losses[1]!) / 2, `loss falls: ${losses.join(', ')}`);

      const { model: resumed, dir } = await loadModel<RinalmoModel>(root);
      assert.instance(resumed, RinalmoModel);
      const snapshot = await loadTrainingState(dir, resumed);
      const rest = await train(rinalmoTask(resumed, corpus, TASK), RUN, {}, snapshot);
      disposeSnapshot(snapshot);
      assert.equal(
        rest.history.steps.map((e) => e.loss),
        losses,
      );
      const [a, b] = [await weights(model), await weights(resumed)];
      a.forEach((w, i) =>
        assert.ok(
          w.every((v, j) => Object.is(v, b[i]![j])),
          `parameter ${i} differs`,
        ),
      );
      model.dispose();
      resumed.dispose();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);

test(
  'embedRinalmo: mean over real tokens (<cls>/<eos> included), per-token rows zero past each sequence, input ' +
    'order',
  async () => {
    T.manualSeed(2);
    const model = new RinalmoModel('pico');
    const seqs = [
      Int32Array.from([0, 5, 6, 7, 8, 5, 2]),
      Int32Array.from([0, 7, 2]),
      Int32Array.from([0, 4, 6, 20, 2]),
    ];
    const e = await embedRinalmo(model, seqs, { batchSize: 2, perToken: true });
    const d = model.cfg.dim;
    for (const [i, s] of seqs.entries()) {
      model.eval();
      const rep = noGrad(() => model.forward(T.tensor(s, { shape: [1, s.length], dtype: 'i32' })).representation);
      const values = (await rep.data()) as Float32Array;
      rep.dispose();
      for (let k = 0; k < d; k++) {
        let sum = 0;
        for (let t = 0; t < s.length; t++) sum += values[t * d + k]!;
        assert.ok(Math.abs(e.mean[i * d + k]! - sum / s.length) < 1e-5, `mean ${i},${k}`);
      }
      const row = e.representation!.subarray(i * e.maxLength * d, (i + 1) * e.maxLength * d);
      assert.ok(
        row.subarray(s.length * d).every((v) => v === 0),
        `pad rows of ${i} are zero`,
      );
      for (let j = 0; j < s.length * d; j++) assert.ok(Math.abs(row[j]! - values[j]!) < 1e-5, `token value ${i},${j}`);
    }
    model.dispose();
  },
);

test.run();
