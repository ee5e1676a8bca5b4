import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import {
  HelmModel,
  type CodonCorpus,
  IGNORE_INDEX,
  gradualUnfreeze,
  helmTask,
  helmValidationBatches,
  isNoDecayParameter,
  lossFunction,
  matchesPattern,
  sinusoidalPositions,
  train,
  trainHelm,
} from '../src/index.js';

await T.init({ quiet: true });

/** Sequences cycling through five codons from a random phase: a causal LM can learn them fully. */
function cyclicCorpus(): CodonCorpus {
  const cycle = [20, 45, 54, 33, 61];
  const make = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) =>
      Int32Array.from({ length: 40 }, (_, j) => cycle[(i * 7 + seed + j) % cycle.length]!),
    );
  return { train: make(40, 0), validation: make(8, 3), names: { train: [], validation: [] } };
}

async function rejects(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a rejection matching ${pattern}`);
}

const tiny = (objective: 'mlm' | 'clm' = 'clm') =>
  new HelmModel({ dModel: 32, layers: 1, heads: 2, dFF: 64, maxPositions: 48, objective });

async function values(model: HelmModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, p] of model.namedParameters()) out.set(n, (await p.data()) as Float32Array);
  return out;
}

for (const loss of ['xe', 'hxe'] as const) {
  test(`trainHelm (CLM, ${loss}) learns a cyclic codon language; GPU memory stays flat`, async () => {
    T.manualSeed(1);
    const model = tiny();
    const rt = T.runtime();
    const sizes: number[] = [];
    const { history } = await trainHelm(
      model,
      cyclicCorpus(),
      {
        steps: 60,
        batchSize: 8,
        length: 16,
        loss,
        lr: 1e-2,
        minLr: 1e-3,
        warmupSteps: 5,
        evalEvery: 30,
        validationBatches: 2,
      },
      {
        onStep: (e) => {
          if (e.step > 10) sizes.push(rt.stats().liveBytes);
        },
      },
    );
    const before = history.evaluations[0]!.metrics;
    const after = history.evaluations.at(-1)!.metrics;
    assert.equal(
      history.evaluations.map((e) => e.step),
      [0, 30, 60],
    );
    assert.ok(after.crossEntropy! < 0.5 * before.crossEntropy!, `CE ${before.crossEntropy} → ${after.crossEntropy}`);
    assert.ok(after.accuracy! > 0.8, `accuracy ${after.accuracy}`);
    // Never above the first measured step (the FinalizationRegistry may still free strays from earlier tests).
    assert.ok(Math.max(...sizes) <= sizes[0]!, `live GPU bytes grew: ${sizes[0]} → ${Math.max(...sizes)}`);
    model.dispose();
  });
}

test('pipelines compile ahead of the first step and evaluation; the traced step changes no number', async () => {
  const rt = T.runtime();
  const run = async (traced: boolean) => {
    T.manualSeed(5);
    const model = new HelmModel({ dModel: 24, layers: 1, heads: 2, dFF: 40, maxPositions: 48, dropout: 0.1 });
    const progress: [number, number][] = [];
    const syncCreated = () => rt.stats().pipelinesCreated - rt.stats().pipelinesPrepared;
    const trace = rt.queue.trace;
    if (!traced) rt.queue.trace = () => [];
    const before = syncCreated();
    let atFirstStep = NaN;
    const { history } = await trainHelm(
      model,
      cyclicCorpus(),
      { steps: 3, batchSize: 4, accumulate: 2, length: 12, loss: 'hxe', evalEvery: 2, validationBatches: 1 },
      {
        onCompile: (done, total) => progress.push([done, total]),
        onStep: (e) => {
          if (e.step === 1) atFirstStep = syncCreated();
        },
      },
    ).finally(() => (rt.queue.trace = trace));
    const weights = await values(model);
    model.dispose();
    return { history, weights, progress, createdOnUse: atFirstStep - before };
  };
  const ahead = await run(true);
  const plain = await run(false);
  assert.ok(ahead.progress.length > 0 && plain.progress.length === 0, 'only the traced run compiled ahead');
  const total = ahead.progress[0]![1];
  assert.equal(
    ahead.progress,
    Array.from({ length: total + 1 }, (_, done) => [done, total]),
  );
  assert.is(ahead.createdOnUse, 0, 'pipelines created synchronously by the first evaluation and step');
  const numbers = (h: typeof plain.history) => ({ ...h, steps: h.steps.map((e) => ({ ...e, ms: 0 })) });
  assert.equal(numbers(ahead.history), numbers(plain.history));
  for (const [name, w] of plain.weights) assert.equal(ahead.weights.get(name), w, name);
});

test('parameter groups: biases, norms and embeddings take no weight decay', () => {
  T.manualSeed(2);
  const model = tiny();
  const noDecay = model
    .namedParameters()
    .filter(([n, p]) => isNoDecayParameter(n, p))
    .map(([n]) => n);
  assert.ok(noDecay.includes('transformer.wte.weight') && noDecay.includes('transformer.wpe.weight'));
  assert.ok(noDecay.includes('transformer.h.0.ln_1.weight') && noDecay.includes('transformer.h.0.attn.c_attn.bias'));
  assert.not.ok(noDecay.includes('transformer.h.0.attn.c_attn.weight'));
  assert.not.ok(noDecay.includes('lm_head.weight'));
  model.dispose();
});

test('weight decay changes only the parameters of the decay group', async () => {
  // One step of two identical models, one with weight decay 0.5: only the decay group differs afterwards.
  const run = async (weightDecay: number) => {
    T.manualSeed(3);
    const model = tiny();
    await trainHelm(model, cyclicCorpus(), {
      steps: 1,
      batchSize: 4,
      length: 8,
      loss: 'xe',
      lr: 1e-2,
      warmupSteps: 0,
      weightDecay,
      evalEvery: 0,
    });
    return { model, values: await values(model) };
  };
  const plain = await run(0);
  const decayed = await run(0.5);
  for (const [n, p] of plain.model.namedParameters()) {
    const same = plain.values.get(n)!.every((v, i) => v === decayed.values.get(n)![i]);
    assert.is(same, isNoDecayParameter(n, p), n);
  }
  plain.model.dispose();
  decayed.model.dispose();
});

test('frozen parameters do not move; a gradual-unfreeze stage starts them at its step', async () => {
  T.manualSeed(4);
  const model = tiny();
  const seen: Map<string, Float32Array>[] = [await values(model)];
  const schedule = gradualUnfreeze(
    [['lm_head', 'transformer.ln_f'], ['transformer.h.0'], ['transformer.wte', 'transformer.wpe']],
    2,
  );
  assert.equal(
    schedule.unfreeze.map((u) => u.atStep),
    [2, 4],
  );
  // A snapshot after every step shows when each group first moved.
  await train(
    helmTask(model, cyclicCorpus(), { batchSize: 4, length: 8, loss: 'xe' }),
    { steps: 5, lr: 1e-2, warmupSteps: 0, evalEvery: 0, checkpointEvery: 1, ...schedule },
    {
      onSnapshot: async () => void seen.push(await values(model)),
    },
  );
  assert.is(seen.length, 6);
  const moved = (n: string, s: number) => !seen[s]!.get(n)!.every((v, i) => v === seen[s - 1]!.get(n)![i]);
  assert.ok(moved('lm_head.weight', 1), 'the head trains from the first step');
  assert.not.ok(
    moved('transformer.h.0.mlp.c_fc.weight', 1) || moved('transformer.h.0.mlp.c_fc.weight', 2),
    'block 0 frozen for 2 steps',
  );
  assert.ok(moved('transformer.h.0.mlp.c_fc.weight', 3), 'block 0 trains from step 3');
  assert.not.ok(moved('transformer.wte.weight', 4), 'embeddings frozen for 4 steps');
  assert.ok(moved('transformer.wte.weight', 5), 'embeddings train from step 5');
  assert.ok(matchesPattern('transformer.h.0.ln_1.weight', 'transformer.h.*.ln_1'));
  assert.not.ok(matchesPattern('transformer.h.10.x', 'transformer.h.1'));
  model.dispose();
});

test('gradient accumulation: 2 micro-batches of 4 update like one batch of 8', async () => {
  // Equal-length genes shorter than the window: identical rows and token counts either way.
  const genes = Array.from({ length: 16 }, (_, i) =>
    Int32Array.from({ length: 10 }, (_, j) => 6 + ((i * 11 + j * 5) % 64)),
  );
  const corpus = { train: genes, validation: [], names: { train: [], validation: [] } };
  const run = async (batchSize: number, accumulate: number) => {
    T.manualSeed(8);
    const model = tiny();
    const { history } = await trainHelm(model, corpus, {
      steps: 2,
      batchSize,
      accumulate,
      length: 16,
      loss: 'xe',
      lr: 1e-2,
      warmupSteps: 0,
      evalEvery: 0,
    });
    const out = await values(model);
    model.dispose();
    return { out, history };
  };
  const [one, two] = [await run(8, 1), await run(4, 2)];
  // Adam hides a gradient's scale; the gradient norm and the loss do not.
  one.history.steps.forEach((e, k) => {
    const f = two.history.steps[k]!;
    assert.ok(
      Math.abs(e.gradNorm - f.gradNorm) < 1e-5 * e.gradNorm,
      `step ${k + 1} gradient norm ${e.gradNorm} vs ${f.gradNorm}`,
    );
    assert.ok(Math.abs(e.loss - f.loss) < 1e-5 * e.loss, `step ${k + 1} loss ${e.loss} vs ${f.loss}`);
    assert.is(e.tokens, f.tokens);
  });
  const [whole, accumulated] = [one.out, two.out];
  for (const [name, w] of whole) {
    const a = accumulated.get(name)!;
    w.forEach((v, i) => assert.ok(Math.abs(v - a[i]!) <= 1e-5 * (1 + Math.abs(v)), `${name}[${i}]: ${v} vs ${a[i]}`));
  }
});

test('early stopping: no improvement for `patience` evaluations ends the run', async () => {
  T.manualSeed(5);
  const model = tiny();
  // lr 0: the metric never improves after the first evaluation.
  const result = await trainHelm(model, cyclicCorpus(), {
    steps: 50,
    batchSize: 4,
    length: 8,
    loss: 'xe',
    lr: 0,
    minLr: 0,
    warmupSteps: 0,
    evalEvery: 2,
    earlyStopping: { metric: 'crossEntropy', mode: 'min', patience: 2 },
  });
  assert.is(result.stopped, 'early-stop');
  assert.is(result.step, 4);
  model.dispose();
});

test('bad options are refused by name', async () => {
  const model = tiny();
  await rejects(() => trainHelm(model, cyclicCorpus(), { length: 8, steps: 2.5 }), /steps must be an integer/);
  await rejects(
    () => trainHelm(model, cyclicCorpus(), { length: 8, accumulate: 0 }),
    /accumulate must be an integer ≥ 1/,
  );
  assert.throws(() => helmTask(model, cyclicCorpus(), { batchSize: 0 }), /batchSize must be an integer ≥ 1/);
  assert.throws(() => helmTask(model, cyclicCorpus(), { length: 49 }), /length must be an integer in 2\.\.48/);
  assert.throws(
    () => helmTask(model, cyclicCorpus(), { length: 8, maskProbability: 1 }),
    /maskProbability must be in \(0, 1\)/,
  );
  await rejects(
    () => trainHelm(model, cyclicCorpus(), { length: 8, steps: 1, freeze: ['transformer.nope'] }),
    /freeze: "transformer.nope" matches no parameter/,
  );
  model.dispose();
});

test('positionInit sinusoidal starts wpe at the scaled sin/cos table', async () => {
  const model = new HelmModel({ dModel: 8, layers: 1, heads: 2, dFF: 16, maxPositions: 5, positionInit: 'sinusoidal' });
  const wpe = (await model.transformer.wpe.weight.data()) as Float32Array;
  const table = sinusoidalPositions(5, 8, 0.02 * Math.SQRT2);
  table.forEach((v, i) => assert.ok(Math.abs(v - wpe[i]!) < 1e-7, `entry ${i}`));
  assert.ok(
    Math.abs(table[1 * 8 + 0]! - 0.02 * Math.SQRT2 * Math.sin(1)) < 1e-9 &&
      table[0 * 8 + 1] === Float32Array.of(0.02 * Math.SQRT2)[0],
  );
  model.dispose();
  assert.throws(
    () => new HelmModel({ dModel: 8, heads: 2, positionInit: 'rope' as never }),
    /positionInit must be 'normal' or 'sinusoidal', got rope/,
  );
});

test('maskProbability sets the training mask rate; validation always masks 15%', () => {
  const model = tiny('mlm');
  const corpus = cyclicCorpus();
  const share = (b: { targets: Int32Array; attentionMask: Int32Array }) =>
    b.targets.filter((t) => t !== IGNORE_INDEX).length / b.attentionMask.filter(Boolean).length;
  const task = helmTask(model, corpus, { batchSize: 8, length: 40, maskProbability: 0.5 });
  const trained = Array.from({ length: 4 }, (_, i) => share(task.source.batch(i)));
  assert.ok(
    trained.every((s) => s > 0.35),
    `training shares ${trained}`,
  );
  const validation = helmValidationBatches(corpus, model.cfg, {
    batchSize: 8,
    length: 40,
    maskProbability: 0.5,
    validationBatches: 4,
  }).map(share);
  assert.ok(
    validation.every((s) => s < 0.3),
    `validation shares ${validation}`,
  );
  model.dispose();
});

test("HXE on a random hierarchy differs from HELM's tree; the same seed gives the same loss", async () => {
  const logits = T.tensor(
    Array.from({ length: 3 * 70 }, (_, i) => Math.sin(0.37 * i)),
    { shape: [3, 70] },
  );
  const targets = T.tensor([45, 20, 30], { shape: [3], dtype: 'i32' });
  const value = (h: { kind: 'codon' | 'random'; seed?: number }) => lossFunction('hxe', 0.2, h)(logits, targets).item();
  const [codon, random1, random1again, random2] = await Promise.all([
    value({ kind: 'codon' }),
    value({ kind: 'random', seed: 1 }),
    value({ kind: 'random', seed: 1 }),
    value({ kind: 'random', seed: 2 }),
  ]);
  assert.ok(Math.abs(codon - random1) > 1e-4 && Math.abs(random1 - random2) > 1e-4, `${codon} ${random1} ${random2}`);
  assert.is(random1, random1again);
  assert.throws(() => lossFunction('hxe', 0.2, { kind: 'amino' as never }), /hierarchy must be 'codon' or 'random'/);
});

test.run();
