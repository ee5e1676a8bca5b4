/**
 * RiNALMo fine-tuning: official parameter names, the three training modes' freeze schedules,
 * pre-trained encoder weights carried over, and short runs of each task on the shared trainer
 * (tiny sizes: SwiftShader is slow) whose loss falls and whose metrics are computed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { partnersFromDotBracket } from '@rnagrad/tokenizers';
import {
  RinalmoDownstream,
  RinalmoModel,
  NRC_CLASSES,
  cachedClassificationTask,
  classificationTask,
  clsFeatures,
  encodeSequences,
  finetuneFreezing,
  kindOf,
  modelKind,
  regressionTask,
  secondaryStructureTask,
  train,
} from '../src/index.js';
import type { RinalmoDownstreamConfig, StructureRecord } from '../src/index.js';

await T.init({ quiet: true });
const PICO = {
  dim: 16,
  layers: 2,
  heads: 2,
  vocabSize: 22,
  dropout: 0,
  attentionDropout: 0,
  transitionDropout: 0,
  mlmHead: false,
};

test('parameter names follow the official fine-tuned checkpoints (lm. / rinalmo. and pred_head.)', () => {
  const ss = new RinalmoDownstream({ task: 'ss', encoder: PICO, head: { channels: 4, blocks: 1 } });
  const names = ss.namedParameters().map(([n]) => n);
  assert.ok(names.includes('lm.transformer.blocks.1.mh_attn.Wqkv.weight'));
  assert.ok(names.includes('pred_head.resnet.blocks.0.conv_net.3.weight'));
  assert.not.ok(names.some((n) => n.includes('lm_mask_head')));
  const nc = new RinalmoDownstream({ task: 'ncrna', encoder: PICO, head: { hidden: 8, classes: 13 } });
  assert.ok(nc.namedParameters().some(([n]) => n === 'rinalmo.embedding.weight'));
  // The registry rebuilds the model from its stored config.
  const kind = modelKind(kindOf(ss));
  const rebuilt = kind.create(kind.config(ss)) as RinalmoDownstream;
  assert.equal(
    rebuilt.namedParameters().map(([n, p]) => [n, p.shape]),
    ss.namedParameters().map(([n, p]) => [n, p.shape]),
  );
  for (const m of [ss, nc, rebuilt]) m.dispose();
});

test('frozen, full and gradual modes: which parameters train when', () => {
  const model = new RinalmoDownstream({
    task: 'regression',
    encoder: PICO,
    head: { channels: 4, blocks: 1, dropout: 0 },
  });
  assert.equal(finetuneFreezing(model, 'frozen'), { freeze: ['lm'], unfreeze: [] });
  assert.equal(finetuneFreezing(model, 'full'), { freeze: [], unfreeze: [] });
  assert.equal(finetuneFreezing(model, 'gradual', 5), {
    freeze: ['lm.transformer.blocks.1', 'lm.transformer.final_layer_norm', 'lm.transformer.blocks.0', 'lm.embedding'],
    unfreeze: [
      { atStep: 5, patterns: ['lm.transformer.blocks.1', 'lm.transformer.final_layer_norm'] },
      { atStep: 10, patterns: ['lm.transformer.blocks.0'] },
      { atStep: 15, patterns: ['lm.embedding'] },
    ],
  });
  assert.throws(() => finetuneFreezing(model, 'gradual'), /unfreezeEvery ≥ 1/);
  model.dispose();
});

test('a pre-trained encoder is copied; its MLM head is left behind', async () => {
  const pretrained = new RinalmoModel({ ...PICO, mlmHead: true });
  const model = new RinalmoDownstream({ task: 'ncrna', encoder: pretrained.cfg, head: { hidden: 8, classes: 13 } });
  model.loadEncoder(pretrained);
  const ours = new Map(model.namedParameters());
  for (const [name, p] of pretrained.namedParameters()) {
    if (name.startsWith('lm_mask_head.')) continue;
    assert.equal(Array.from(await ours.get(`rinalmo.${name}`)!.data()), Array.from(await p.data()), name);
  }
  const smaller = new RinalmoDownstream({
    task: 'ncrna',
    encoder: { ...PICO, dim: 8 },
    head: { hidden: 8, classes: 13 },
  });
  assert.throws(() => smaller.loadEncoder(pretrained), /shape mismatch/);
  for (const m of [pretrained, model, smaller]) m.dispose();
});

test('encodeSequences: <cls> … <eos>, cut keeping <eos>, right-padded, with a token mask', () => {
  const e = encodeSequences(['ACGU', 'ACGUACGU'], 6);
  assert.equal(e.shape, [2, 6]);
  assert.equal(Array.from(e.ids), [0, 5, 6, 7, 8, 2, 0, 5, 6, 7, 8, 2]);
  assert.equal(Array.from(encodeSequences(['AC', 'ACGU']).mask), [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]);
});

const cfg = (task: RinalmoDownstreamConfig['task'], head: object): RinalmoDownstreamConfig => ({
  task,
  encoder: PICO,
  head: head as never,
});

test('secondary structure: the loss falls on a hairpin, and the threshold is tuned on validation', async () => {
  T.manualSeed(1);
  const hairpin = (id: string, sequence: string, structure: string): StructureRecord => ({
    id,
    family: 'toy',
    sequence,
    partners: partnersFromDotBracket(structure),
  });
  const records = [hairpin('a', 'GGGGAAAACCCC', '((((....))))'), hairpin('b', 'GCGCAAAAGCGC', '((((....))))')];
  const model = new RinalmoDownstream(cfg('ss', { channels: 4, blocks: 1 }));
  const task = secondaryStructureTask(model, { train: records, validation: records, test: records }, { seed: 3 });
  const result = await train(task, { steps: 12, lr: 1e-2, minLr: 1e-2, warmupSteps: 0, evalEvery: 12, seed: 3 });
  const losses = result.history.steps.map((s) => s.loss);
  assert.ok(
    losses.slice(-3).reduce((a, b) => a + b) < losses.slice(0, 3).reduce((a, b) => a + b),
    `loss ${losses.map((l) => l.toFixed(3)).join(' ')}`,
  );
  const last = result.history.evaluations.at(-1)!.metrics;
  assert.ok(last.threshold! >= 0.01 && last.threshold! <= 0.29 && last.f1! >= 0 && last.f1! <= 1, JSON.stringify(last));
  const scored = await task.test();
  for (const key of ['f1', 'f1Exact', 'precision', 'recall', 'threshold']) assert.ok(Number.isFinite(scored[key]), key);
  model.dispose();
});

test('ncRNA classification and regression: short runs train and report their metrics', async () => {
  T.manualSeed(2);
  const items = Array.from({ length: 8 }, (_, i) => ({
    id: `s${i}`,
    sequence: i % 2 ? 'GGGGCCCCGG' : 'AAAUUUAAAU',
    label: i % 2,
  }));
  const classifier = new RinalmoDownstream(cfg('ncrna', { hidden: 8, classes: 13 }));
  const cls = classificationTask(
    classifier,
    { classes: NRC_CLASSES, train: items, validation: items, test: items, droppedDuplicates: 0 },
    { seed: 1, batchSize: 4, maxLength: 16 },
  );
  const run = await train(cls, {
    steps: 10,
    lr: 1e-2,
    minLr: 1e-2,
    warmupSteps: 0,
    evalEvery: 10,
    seed: 1,
    ...finetuneFreezing(classifier, 'frozen'),
  });
  assert.ok(run.history.steps.at(-1)!.loss < run.history.steps[0]!.loss);
  const m = await cls.test();
  assert.equal(Object.keys(m).sort(), ['accuracy', 'loss', 'macroF1', 'weightedF1']);
  classifier.dispose();

  const valued = Array.from({ length: 8 }, (_, i) => ({
    id: `r${i}`,
    sequence: 'ACGU'.repeat(1 + (i % 3)),
    value: 10 + (i % 3),
  }));
  const regressor = new RinalmoDownstream(cfg('regression', { channels: 4, blocks: 1, dropout: 0 }));
  const reg = regressionTask(
    regressor,
    { train: valued.slice(0, 6), validation: valued.slice(6), test: valued.slice(6) },
    { seed: 1, batchSize: 3, maxLength: 16 },
  );
  // Standardised on the training targets only: 10, 11, 12, 10, 11, 12.
  assert.ok(Math.abs(reg.scaler.mean - 11) < 1e-12 && Math.abs(reg.scaler.std - Math.sqrt(2 / 3)) < 1e-12);
  const fit = await train(reg, {
    steps: 10,
    lr: 1e-2,
    minLr: 1e-2,
    warmupSteps: 0,
    evalEvery: 0,
    seed: 1,
    ...finetuneFreezing(regressor, 'gradual', 3),
  });
  assert.ok(fit.history.steps.every((s) => Number.isFinite(s.loss)));
  const r = await reg.test();
  assert.equal(Object.keys(r).sort(), ['mse', 'pearson', 'r2', 'spearman']);
  regressor.dispose();
});

test('frozen ncRNA classification: cached <cls> features train the head exactly as the encoder does', async () => {
  // Sequences of different lengths, so batches mix paddings (uncached) or group by length (cached).
  const sequences = ['ACGUAC', 'GGGGCCCCGGAU', 'AUAU', 'GCGCGCAAUUAAGC', 'CCA', 'UUUUGGGAC', 'AGCUAGCUAG', 'GAUC'];
  const items = sequences.map((sequence, i) => ({ id: `s${i}`, sequence, label: i % 3 }));
  const data = { classes: NRC_CLASSES, train: items, validation: items.slice(0, 5), test: items, droppedDuplicates: 0 };
  const opts = { seed: 4, batchSize: 3, maxLength: 12 };
  const fresh = () => {
    T.manualSeed(9);
    return new RinalmoDownstream(cfg('ncrna', { hidden: 8, classes: 13 }));
  };
  const schedule = { steps: 6, lr: 1e-2, minLr: 1e-3, warmupSteps: 1, evalEvery: 3, seed: 4 };
  const plain = fresh();
  const cachedModel = fresh();
  const uncached = await train(classificationTask(plain, data, opts), {
    ...schedule,
    ...finetuneFreezing(plain, 'frozen'),
  });
  const passes: string[] = [];
  const cachedTask = await cachedClassificationTask(cachedModel, data, {
    ...opts,
    onProgress: (split, done, total) => done === total && passes.push(`${split} ${total}`),
  });
  assert.equal(passes, ['train 8']);
  const cached = await train(cachedTask, { ...schedule, ...finetuneFreezing(cachedModel, 'frozen') });
  assert.equal(passes, ['train 8', 'validation 5']);
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-5, `${what}: ${a} vs ${b}`);
  assert.equal(cached.history.steps.length, 6);
  cached.history.steps.forEach((s, k) => {
    close(s.loss, uncached.history.steps[k]!.loss, `loss at step ${k + 1}`);
    assert.equal(s.tokens, uncached.history.steps[k]!.tokens);
  });
  assert.ok(cached.history.steps.at(-1)!.loss < cached.history.steps[0]!.loss, 'the head learns');
  cached.history.evaluations.forEach((e, k) =>
    close(e.metrics.loss!, uncached.history.evaluations[k]!.metrics.loss!, `validation loss ${k}`),
  );
  const [a, b] = [await cachedTask.test(), await classificationTask(plain, data, opts).test()];
  close(a.loss!, b.loss!, 'test loss');
  assert.equal(a.accuracy, b.accuracy);
  // The encoder stayed as it was; its <cls> rows do not depend on the batch (pads are masked).
  const alone = await clsFeatures(cachedModel, [sequences[3]!], { batchSize: 1, maxLength: 12 });
  const together = await clsFeatures(cachedModel, sequences, { batchSize: 8, maxLength: 12 });
  const dim = PICO.dim;
  alone.forEach((v, i) => close(v, together[3 * dim + i]!, `feature ${i}`));
  const ss = new RinalmoDownstream(cfg('ss', { channels: 2, blocks: 0 }));
  const refused = await cachedClassificationTask(ss, data, opts).then(
    () => null,
    (err: Error) => err.message,
  );
  assert.match(refused ?? 'accepted', /has a ss head/);
  ss.dispose();
  plain.dispose();
  cachedModel.dispose();
});

test.run();
