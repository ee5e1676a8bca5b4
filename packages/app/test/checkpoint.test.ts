import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import * as T from '@rnagrad/tensor';
import { HelmModel, type CodonCorpus, type TrainerSnapshot, encodeSafetensors, helmTask, train } from '@rnagrad/models';
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
  const rest = await train(helmTask(loaded.model, corpus, options), options, {}, loaded.snapshot!);
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
  const [a, b] = await Promise.all([model.lm_head.weight.data(), loaded.model.lm_head.weight.data()]);
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
  const other = await encodeSafetensors(model.namedParameters(), { format: 'rnagrad.app-checkpoint', kind: 'rinalmo' });
  await rejects(() => decodeAppCheckpoint(other, 'r.safetensors'), /holds a "rinalmo" model/);
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

test.run();
