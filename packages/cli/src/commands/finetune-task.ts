/**
 * `rnagrad finetune --task ss|ncrna|regression`: a RiNALMo encoder (pre-trained with
 * `rnagrad train rinalmo`, or random) with one of RiNALMo's downstream heads, trained by the shared
 * trainer with a frozen encoder, full fine-tuning or gradual unfreezing; then scored on the test
 * split. Writes the final checkpoint, metrics.jsonl and results.json into --out.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import * as T from '@rnagrad/tensor';
import { seededRandom } from '@rnagrad/tokenizers';
import {
  type RinalmoFinetuneMode,
  type FinetuneTask,
  HEAD_DEFAULTS,
  RINALMO_CONFIGS,
  RinalmoDownstream,
  RinalmoModel,
  type DownstreamTask,
  TRAINER_DEFAULTS,
  type TrainerOptions,
  cachedClassificationTask,
  classificationTask,
  finetuneFreezing,
  leaveOneFamilyOut,
  regressionTask,
  secondaryStructureTask,
  train,
  writeFileAtomic,
} from '@rnagrad/models';
import {
  loadArchiveII,
  loadModel,
  loadNrc,
  loadRegressionCsv,
  onInterrupt,
  saveCheckpointDir,
} from '@rnagrad/models/node';
import { type CommandSpec, type FlagSpecs, type Parsed, UsageError } from '../args.js';
import { formatDuration } from '../progress.js';
import { describeAdapter, initRuntime } from '../runtime.js';

const flags = {
  task: {
    type: 'choice',
    choices: ['ss', 'ncrna', 'regression'],
    help: 'secondary structure (ArchiveII), ncRNA family (nRC, 13 classes) or sequence → value',
  },
  from: {
    type: 'string',
    meta: 'DIR',
    help: 'pre-trained RiNALMo checkpoint or run folder (rnagrad train rinalmo); without it the encoder is random',
  },
  config: {
    type: 'choice',
    choices: Object.keys(RINALMO_CONFIGS),
    default: 'nano',
    help: 'size of the random encoder when there is no --from',
  },
  data: {
    type: 'string',
    meta: 'PATH',
    help:
      'ss: archiveII.csv or a folder of .ct files; ncrna: nrc_13class.csv (both default to ../shared/data); ' +
      'regression: a CSV (required)',
  },
  'test-family': {
    type: 'string',
    meta: 'NAME',
    default: 'tRNA',
    help: 'ss: the ArchiveII family held out for testing (5s, srp, tRNA, tmRNA, RNaseP, grp1, 16s, telomerase, 23s)',
  },
  'max-nt': { type: 'int', min: 2, default: 512, help: 'ss: sequences longer than this are left out of the data set' },
  'max-train-nt': {
    type: 'int',
    min: 2,
    help: 'ss: train only on sequences up to this length (memory and time grow with L²)',
  },
  dedup: { type: 'bool', help: 'ncrna: drop the test sequences that also occur in train (347 in nRC)' },
  'cache-features': {
    type: 'bool',
    help:
      'ncrna with --mode frozen: run the encoder once per sequence (eval mode, so without its dropout) and train ' +
      'the head on the stored <cls> features',
  },
  'sequence-column': {
    type: 'string',
    meta: 'NAME',
    default: 'sequence',
    help: 'regression: CSV column of the sequences',
  },
  'value-column': { type: 'string', meta: 'NAME', default: 'value', help: 'regression: CSV column of the targets' },
  mode: {
    type: 'choice',
    choices: ['frozen', 'full', 'gradual'],
    default: 'full',
    help: 'frozen encoder (head only), full fine-tuning, or gradual unfreezing',
  },
  'unfreeze-every': {
    type: 'int',
    min: 1,
    default: 50,
    help: 'gradual: steps between unfreezing the next group (top block first, embedding last)',
  },
  channels: {
    type: 'int',
    min: 1,
    help: `head channels (default: ss ${HEAD_DEFAULTS.ss.channels}, regression ${HEAD_DEFAULTS.regression.channels})`,
  },
  blocks: {
    type: 'int',
    min: 0,
    help: `head ResNet blocks (default: ss ${HEAD_DEFAULTS.ss.blocks}, regression ${HEAD_DEFAULTS.regression.blocks})`,
  },
  steps: { type: 'int', min: 0, default: 200, help: 'optimiser updates' },
  batch: {
    type: 'int',
    min: 1,
    max: 4096,
    default: 8,
    help: 'sequences per micro-batch (ss: always 1, as in RiNALMo; use --accumulate)',
  },
  accumulate: { type: 'int', min: 1, max: 1024, default: 1, help: 'micro-batches per update' },
  length: {
    type: 'int',
    min: 3,
    default: 514,
    help: 'ncrna/regression: tokens per sequence at most, <cls>/<eos> included (longer ones keep their start)',
  },
  lr: { type: 'number', min: 0, exclusiveMin: true, max: 10, default: 5e-4, help: 'peak learning rate' },
  'min-lr': { type: 'number', min: 0, max: 10, default: 5e-5, help: 'learning rate at the end of the cosine' },
  warmup: { type: 'int', min: 0, default: 10, help: 'linear warm-up steps' },
  'weight-decay': { type: 'number', min: 0, max: 10, default: 0.01, help: 'AdamW decay (never on biases and norms)' },
  clip: { type: 'number', min: 0, default: 1, help: 'global gradient-norm clip (0: off)' },
  seed: {
    type: 'int',
    min: 0,
    max: 2 ** 32 - 1,
    default: 42,
    help: 'seed of the head, data order and validation split',
  },
  'eval-every': {
    type: 'int',
    min: 0,
    default: 50,
    help: 'validate every N steps, before the first and at the end (0: never)',
  },
  'val-limit': { type: 'int', min: 1, help: 'validation sequences per evaluation (default all)' },
  'train-limit': {
    type: 'int',
    min: 1,
    help: 'train on a seeded random sample of N training sequences (ss: before --max-train-nt)',
  },
  'test-limit': { type: 'int', min: 1, help: 'score a seeded random sample of N test sequences (quick runs)' },
  out: {
    type: 'string',
    meta: 'DIR',
    default: 'runs/finetune-task',
    help: 'run folder: checkpoint-NNNNNN/, metrics.jsonl, results.json',
  },
  json: { type: 'bool', help: 'print metrics as JSON lines on stdout' },
} satisfies FlagSpecs;

export const FINETUNE_TASK: CommandSpec<typeof flags> = {
  name: 'finetune',
  summary:
    "Fine-tunes a RiNALMo encoder with one of RiNALMo's downstream heads (--task ss, ncrna or regression) and " +
    'scores the test split.',
  usage: 'rnagrad finetune --task ss|ncrna|regression [--from DIR] [options]',
  flags,
  notes: [
    'ss: ArchiveII, leave one family out (train on the others, 5% of them held out to tune the pair threshold);',
    'reports mean F1 over test sequences with ±1 shifts (as RiNALMo) and exact. ncrna: accuracy, macro and weighted ' +
      'F1.',
    'regression: targets standardised on train only; reports R², Spearman, Pearson, MSE.',
    'Without --task, rnagrad finetune continues a HELM model (see rnagrad finetune --help).',
  ],
  examples: [
    'rnagrad finetune --task ss --from runs/rinalmo --test-family 5s --mode gradual --steps 300 --out runs/ss-5s',
    'rnagrad finetune --task ncrna --from runs/rinalmo --dedup --mode frozen --steps 200',
    'rnagrad finetune --task ncrna --from runs/rinalmo --dedup --mode frozen --cache-features --steps 2000',
    'rnagrad finetune --task regression --data utr.csv --value-column mrl --config tiny --steps 100',
  ],
};

type Args = Parsed<typeof flags>;

/** Flags that only one task reads: given for another task they are a mistake. */
const ONLY: Record<string, DownstreamTask[]> = {
  'test-family': ['ss'],
  'max-nt': ['ss'],
  'max-train-nt': ['ss'],
  dedup: ['ncrna'],
  'cache-features': ['ncrna'],
  'sequence-column': ['regression'],
  'value-column': ['regression'],
  length: ['ncrna', 'regression'],
  batch: ['ncrna', 'regression'],
};

async function encoderFor(a: Args): Promise<{ model: RinalmoDownstream; origin: string }> {
  const task = a.task as DownstreamTask;
  const head = {
    ...HEAD_DEFAULTS[task],
    ...(a.channels !== undefined ? { channels: a.channels } : {}),
    ...(a.blocks !== undefined ? { blocks: a.blocks } : {}),
  } as never;
  if (a.from === undefined) {
    T.manualSeed(a.seed);
    return {
      model: new RinalmoDownstream({ task, encoder: RINALMO_CONFIGS[a.config as keyof typeof RINALMO_CONFIGS], head }),
      origin: `random ${a.config} encoder`,
    };
  }
  if (a._given.has('config'))
    throw new UsageError('--config sizes a random encoder; with --from the size comes from the checkpoint');
  const loaded = await loadModel(a.from).catch((err: Error) => {
    throw new UsageError(`--from: ${err.message}`);
  });
  if (!(loaded.model instanceof RinalmoModel)) {
    loaded.model.dispose();
    throw new UsageError(`--from: ${loaded.dir} holds a ${loaded.config.model.kind} model, not a RiNALMo encoder`);
  }
  T.manualSeed(a.seed);
  const model = new RinalmoDownstream({ task, encoder: loaded.model.cfg, head });
  model.loadEncoder(loaded.model);
  loaded.model.dispose();
  return { model, origin: `pre-trained encoder ${loaded.dir}` };
}

/** A seeded random sample of `limit` items (all of them without a limit), in their original order. */
function sample<I>(items: I[], limit: number | undefined, seed: number): I[] {
  if (limit === undefined || limit >= items.length) return items;
  const keep = new Set(
    seededRandom(seed)
      .shuffle([...items.keys()])
      .slice(0, limit),
  );
  return items.filter((_, i) => keep.has(i));
}

async function taskFor(a: Args, model: RinalmoDownstream, say: (l: string) => void): Promise<FinetuneTask<unknown>> {
  const seed = a.seed;
  const sequenceOptions = { seed, batchSize: a.batch, maxLength: a.length, validationLimit: a['val-limit'] };
  const data = <R>(p: Promise<R>) =>
    p.catch((err: Error) => {
      throw new UsageError(`--data: ${err.message}`);
    });
  if (a.task === 'ss') {
    const records = await data(loadArchiveII(a.data, { maxLength: a['max-nt'] }));
    const split = leaveOneFamilyOut(records, a['test-family'], { seed });
    split.train = sample(split.train, a['train-limit'], seed);
    split.test = sample(split.test, a['test-limit'], seed);
    say(
      `data: ArchiveII ≤ ${a['max-nt']} nt, test family ${split.testFamily}: ${split.train.length} train ` +
        `/ ${split.validation.length} validation / ${split.test.length} test structures` +
        `${split.droppedDuplicates ? ` (${split.droppedDuplicates} training copies of test sequences dropped)` : ''}`,
    );
    return secondaryStructureTask(model, split, {
      seed,
      maxTrainLength: a['max-train-nt'],
      validationLimit: a['val-limit'],
    }) as FinetuneTask<unknown>;
  }
  if (a.task === 'ncrna') {
    const dataset = await data(loadNrc(a.data, { dropTestDuplicates: a.dedup ?? false, seed }));
    dataset.train = sample(dataset.train, a['train-limit'], seed);
    dataset.test = sample(dataset.test, a['test-limit'], seed);
    say(
      `data: nRC, 13 classes: ${dataset.train.length} train / ${dataset.validation.length} validation ` +
        `/ ${dataset.test.length} test${
          a.dedup ? ` (${dataset.droppedDuplicates} test copies of train sequences dropped)` : ''
        }`,
    );
    if (!a['cache-features']) return classificationTask(model, dataset, sequenceOptions) as FinetuneTask<unknown>;
    let shown = '';
    return (await cachedClassificationTask(model, dataset, {
      ...sequenceOptions,
      onProgress(split, done, total) {
        const line = `encoder features, ${split}: ${Math.floor((10 * done) / total) * 10}% of ${total} sequences`;
        if (line !== shown) say((shown = line));
      },
    })) as FinetuneTask<unknown>;
  }
  if (a.data === undefined)
    throw new UsageError('--data FILE is required for --task regression (a CSV with sequence and value columns)');
  const dataset = await data(
    loadRegressionCsv(a.data, { sequenceColumn: a['sequence-column'], valueColumn: a['value-column'], seed }),
  );
  dataset.train = sample(dataset.train, a['train-limit'], seed);
  dataset.test = sample(dataset.test, a['test-limit'], seed);
  const task = regressionTask(model, dataset, sequenceOptions);
  say(
    `data: ${a.data}: ${dataset.train.length} train / ${dataset.validation.length} validation ` +
      `/ ${dataset.test.length} test; targets scaled by mean ${task.scaler.mean.toPrecision(4)}, ` +
      `std ${task.scaler.std.toPrecision(4)} (train)`,
  );
  return task as FinetuneTask<unknown>;
}

const show = (metrics: Record<string, number>) =>
  Object.entries(metrics)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join('  ');

export async function runFinetuneTask(a: Args): Promise<void> {
  if (a.task === undefined) throw new UsageError('--task is required (ss, ncrna or regression)');
  const task = a.task as DownstreamTask;
  const foreign = Object.entries(ONLY).find(([flag, tasks]) => a._given.has(flag) && !tasks.includes(task));
  if (foreign)
    throw new UsageError(`--${foreign[0]} does not apply to --task ${task} (only to ${foreign[1].join(', ')})`);
  if (a['cache-features'] && a.mode !== 'frozen')
    throw new UsageError('--cache-features needs --mode frozen (a training encoder changes its features every step)');
  if (a._given.has('unfreeze-every') && a.mode !== 'gradual')
    throw new UsageError('--unfreeze-every only applies to --mode gradual');
  if (a['min-lr'] > a.lr) throw new UsageError(`--min-lr ${a['min-lr']} is above --lr ${a.lr}`);
  const say = (line: string) => (a.json ? process.stderr : process.stdout).write(`${line}\n`);
  const rt = await initRuntime();
  say(`adapter: ${describeAdapter(rt)}`);
  const { model, origin } = await encoderFor(a);
  const setupStarted = performance.now();
  const setup = await taskFor(a, model, say);
  // Data loading, plus the training split's encoder pass with --cache-features.
  const setupSeconds = (performance.now() - setupStarted) / 1000;
  const mode = a.mode as RinalmoFinetuneMode;
  const options: TrainerOptions = {
    ...TRAINER_DEFAULTS,
    steps: a.steps,
    accumulate: a.accumulate,
    lr: a.lr,
    minLr: a['min-lr'],
    warmupSteps: a.warmup,
    weightDecay: a['weight-decay'],
    maxGradNorm: a.clip,
    seed: a.seed,
    evalEvery: a['eval-every'],
    checkpointEvery: 0,
    ...finetuneFreezing(model, mode, a['unfreeze-every']),
  };
  say(
    `model: ${origin} (${model.encoder.cfg.layers} blocks, d ${model.encoder.cfg.dim}) + ${task} ` +
      `head; ${model.parameterCount().toLocaleString('en-US')} parameters; mode ${mode}`,
  );

  const metricsPath = join(a.out, 'metrics.jsonl');
  await writeFileAtomic(metricsPath, '');
  const jsonLine = (obj: object) => {
    appendFileSync(metricsPath, `${JSON.stringify(obj)}\n`);
    if (a.json) process.stdout.write(`${JSON.stringify(obj)}\n`);
  };
  const started = performance.now();
  const interrupt = onInterrupt(say);
  let checkpoint = '';
  const run = {
    command: 'finetune',
    task,
    mode,
    from: a.from ?? null,
    data: a.data ?? null,
    args: Object.fromEntries([...a._given].map((f) => [f, a[f as keyof Args]])),
  };
  const result = await train(setup, options, {
    onStep(e) {
      jsonLine({ type: 'step', ...e });
      if (e.step === 1 || e.step % 10 === 0 || e.step === options.steps)
        say(
          `step ${e.step}/${options.steps}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(1)}  ` +
            `${(e.ms / 1000).toFixed(2)} s`,
        );
    },
    onEvaluation(e) {
      jsonLine({ type: 'eval', ...e });
      say(`validation at step ${e.step}: ${show(e.metrics)}`);
    },
    async onSnapshot(s) {
      checkpoint = await saveCheckpointDir(a.out, model, s, { trainedPositions: 0, run, keep: 1 });
    },
    shouldStop: () => interrupt.requested,
  }).finally(() => interrupt.dispose());
  const trainSeconds = (performance.now() - started) / 1000;
  say(`trained ${result.step} steps in ${formatDuration(trainSeconds)} (${result.stopped}); scoring the test split…`);
  const test = await setup.test();
  const seconds = (performance.now() - started) / 1000;
  say(`test: ${show(test)}`);
  await writeFileAtomic(
    join(a.out, 'results.json'),
    `${JSON.stringify(
      {
        task,
        mode,
        encoder: origin,
        steps: result.step,
        stopped: result.stopped,
        test,
        setupSeconds,
        trainSeconds,
        seconds,
        run,
      },
      null,
      1,
    )}\n`,
  );
  say(`wrote ${join(a.out, 'results.json')}, ${metricsPath}${checkpoint ? ` and ${checkpoint}` : ''}`);
  model.dispose();
  if (result.stopped === 'interrupt') process.exitCode = 130;
}
