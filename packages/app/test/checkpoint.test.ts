import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import * as T from '@rnagrad/tensor';
import {
  HelmModel,
  RinalmoModel,
  type CodonCorpus,
  type TrainerSnapshot,
  encodeSafetensors,
  helmTask,
  nucleotideCorpus,
  rinalmoTask,
  train,
} from '@rnagrad/models';
import { decodeAppCheckpoint, encodeAppCheckpoint } from '../src/checkpoint.js';
import { DEFAULT_SETTINGS } from '../src/protocol.js';

await T.init({ quiet: true });

const corpus: CodonCorpus = {
  train: Array.from({ length: 12 }, (_, i) => Int32Array.from({ length: 30 }, (_, j) => 6 + ((i * 5 + j * 7) % 64))),
  validation: [],
  names: { train: [], validation: [] },
};
const info = { loss: 'hxe' as const, settings: { ...DEFAULT_SETTINGS, steps: 4 } };
const options = {
  steps: 4,
  batchSize: 2,
  length: 12,
  loss: 'hxe' as const,
  lr: 1e-2,
  warmupSteps: 1,
  evalEvery: 0,
  seed: 3,
};
const tiny = () => new HelmModel({ dModel: 16, layers: 1, heads: 2, dFF: 32, maxPositions: 16, objective: 'clm' });

async function rejects(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}

test('a run paused into an app checkpoint and resumed from its bytes has the losses of an unbroken run', async () => {
  T.manualSeed(9);
  const straight = tiny();
  const whole = await train(helmTask(straight, corpus, options), options);
  T.manualSeed(9);
  const first = tiny();
  let bytes: Uint8Array | null = null;
  let stepsSeen = 0;
  await train(helmTask(first, corpus, options), options, {
    onStep: () => stepsSeen++,
    shouldStop: () => stepsSeen === 2,
    onSnapshot: async (s) => {
      bytes = await encodeAppCheckpoint(first, info, s);
    },
  });
  first.dispose();
  const loaded = await decodeAppCheckpoint(bytes!, 'paused.safetensors');
  assert.equal(loaded.info, info);
  assert.is(loaded.snapshot!.step, 2);
  assert.instance(loaded.model, HelmModel);
  const rest = await train(helmTask(loaded.model as HelmModel, corpus, options), options, {}, loaded.snapshot!);
  loaded.dispose();
  assert.equal(
    rest.history.steps.map((s) => s.loss),
    whole.history.steps.map((s) => s.loss),
  );
  straight.dispose();
  loaded.model.dispose();
});

test('weights saved before training load without a trainer state', async () => {
  const model = tiny();
  const loaded = await decodeAppCheckpoint(await encodeAppCheckpoint(model, info, null), 'fresh.safetensors');
  assert.is(loaded.snapshot, null);
  const [a, b] = await Promise.all([model.lm_head.weight.data(), (loaded.model as HelmModel).lm_head.weight.data()]);
  assert.equal(Array.from(a), Array.from(b));
  loaded.dispose();
  loaded.model.dispose();
  model.dispose();
});

test('wrong files: another model, no metadata, another kind, mismatched weights, corrupt bytes', async () => {
  const rinalmo = readFileSync(new URL('../../models/fixtures/rinalmo_tiny_official.safetensors', import.meta.url));
  await rejects(
    () => decodeAppCheckpoint(rinalmo, 'rinalmo.safetensors'),
    /rinalmo\.safetensors: not a checkpoint of this app/,
  );
  const model = tiny();
  const plain = await encodeSafetensors(model.namedParameters());
  await rejects(() => decodeAppCheckpoint(plain, 'plain.safetensors'), /without rnagrad app metadata/);
  const cli = await encodeSafetensors(model.namedParameters(), { format: 'rnagrad.checkpoint', kind: 'helm' });
  await rejects(() => decodeAppCheckpoint(cli, 'model.safetensors'), /weights of a helm CLI checkpoint folder/);
  const other = await encodeSafetensors(model.namedParameters(), { format: 'rnagrad.app-checkpoint', kind: 'bert' });
  await rejects(() => decodeAppCheckpoint(other, 'b.safetensors'), /b\.safetensors: holds a "bert" model/);
  const bigger = { ...model.cfg, dModel: 32, dFF: 64 };
  const lying = await encodeSafetensors(model.namedParameters(), {
    format: 'rnagrad.app-checkpoint',
    kind: 'helm',
    config: JSON.stringify(bigger),
    info: JSON.stringify(info),
    state: 'null',
  });
  await rejects(
    () => decodeAppCheckpoint(lying, 'lying.safetensors'),
    /lying\.safetensors: the weights do not fit .*shape mismatch/,
  );
  await rejects(
    () => decodeAppCheckpoint(new TextEncoder().encode('not a checkpoint'), 'junk.bin'),
    /junk\.bin: corrupt safetensors file/,
  );
  model.dispose();
});

const nucleotides = nucleotideCorpus(
  Array.from({ length: 24 }, (_, i) => ({
    id: `r${i}`,
    description: '',
    lineNumber: 1 + 2 * i,
    sequence: 'ACGU'.repeat(3 + (i % 5)) + 'GGC'.repeat(1 + (i % 3)),
  })),
);
const rinalmoOptions = { ...options, maxLength: 16, validationBatches: 1, evalEvery: 2 };
const rinalmoInfo = { loss: 'xe' as const, settings: { ...DEFAULT_SETTINGS, steps: 4, length: 16 } };

test('RiNALMo: a run paused into an app checkpoint and resumed from its bytes repeats an unbroken run', async () => {
  T.manualSeed(5);
  const straight = new RinalmoModel('pico');
  const whole = await train(rinalmoTask(straight, nucleotides, rinalmoOptions), rinalmoOptions);
  T.manualSeed(5);
  const first = new RinalmoModel('pico');
  let bytes: Uint8Array | null = null;
  let stepsSeen = 0;
  await train(rinalmoTask(first, nucleotides, rinalmoOptions), rinalmoOptions, {
    onStep: () => stepsSeen++,
    shouldStop: () => stepsSeen === 2,
    onSnapshot: async (s) => {
      bytes = await encodeAppCheckpoint(first, rinalmoInfo, s);
    },
  });
  first.dispose();
  const loaded = await decodeAppCheckpoint(bytes!, 'rinalmo-paused.safetensors', 'rinalmo');
  assert.instance(loaded.model, RinalmoModel);
  assert.equal((loaded.model as RinalmoModel).cfg, straight.cfg);
  assert.is(loaded.snapshot!.step, 2);
  const resumed = loaded.model as RinalmoModel;
  const rest = await train(rinalmoTask(resumed, nucleotides, rinalmoOptions), rinalmoOptions, {}, loaded.snapshot!);
  loaded.dispose();
  assert.equal(
    rest.history.steps.map((s) => s.loss),
    whole.history.steps.map((s) => s.loss),
  );
  assert.equal(rest.history.evaluations, whole.history.evaluations);
  straight.dispose();
  resumed.dispose();
});

test('a checkpoint records its model kind: HELM into RiNALMo and RiNALMo into HELM are refused', async () => {
  const helm = tiny();
  const rinalmo = new RinalmoModel('pico');
  const helmBytes = await encodeAppCheckpoint(helm, info, null);
  const rinalmoBytes = await encodeAppCheckpoint(rinalmo, rinalmoInfo, null);
  await rejects(
    () => decodeAppCheckpoint(helmBytes, 'helm.safetensors', 'rinalmo'),
    /helm\.safetensors: holds a HELM codon model, but the model picked is RiNALMo nucleotide; pick a HELM model/,
  );
  await rejects(
    () => decodeAppCheckpoint(rinalmoBytes, 'r.safetensors', 'helm'),
    /r\.safetensors: holds a RiNALMo nucleotide model, but the model picked is HELM codon; pick RiNALMo/,
  );
  for (const [bytes, kind, Model] of [
    [helmBytes, 'helm', HelmModel],
    [rinalmoBytes, 'rinalmo', RinalmoModel],
  ] as const) {
    const loaded = await decodeAppCheckpoint(bytes, `${kind}.safetensors`, kind);
    assert.instance(loaded.model, Model);
    loaded.dispose();
    loaded.model.dispose();
  }
  helm.dispose();
  rinalmo.dispose();
});

test.run();
