/**
 * RiNALMo fine-tuning on the shared trainer: the encoder with one downstream head
 * (`RinalmoDownstream`), batch sources that are pure functions of the batch index, validation
 * metrics, test metrics, and the three training modes — frozen encoder, full fine-tuning and
 * gradual unfreezing (head first, then the top blocks one at a time, the embedding last).
 *
 * Parameter names follow the official fine-tuned checkpoints: the encoder under `lm.` (secondary
 * structure, regression) or `rinalmo.` (ncRNA classification), the head under `pred_head.`.
 * Where the official recipe differs, by choice: one learning rate for all groups (RiNALMo gives
 * newly unfrozen groups lr/10), unfreezing by steps rather than epochs.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { noGrad } from '@rnagrad/autograd';
import { NucleotideTokenizer, seededRandom } from '@rnagrad/tokenizers';
import { Module } from './module.js';
import { mixSeed } from './data.js';
import { RINALMO_TOKENS, RinalmoModel, type RinalmoConfig } from './rinalmo.js';
import {
  ClassificationHead,
  type ClassificationHeadConfig,
  RegressionHead,
  type RegressionHeadConfig,
  SecondaryStructureHead,
  type SecondaryStructureHeadConfig,
  pairLoss,
} from './rinalmo-heads.js';
import type {
  ClassificationDataset,
  FamilySplit,
  LabelledSequence,
  RegressionDataset,
  Standardizer,
  StructureRecord,
  ValuedSequence,
} from './downstream-data.js';
import { fitStandardizer, standardize, unstandardize } from './downstream-data.js';
import {
  THRESHOLD_GRID,
  meanScores,
  pairCandidates,
  pairsAboveThreshold,
  structureScores,
  tuneThreshold,
} from './secondary-structure.js';
import { classificationMetrics, regressionMetrics } from './downstream-metrics.js';
import { type BatchSource, type TrainSetup, type UnfreezeStage, gradualUnfreeze } from './trainer.js';
import { registerModelKind } from './registry.js';

export type DownstreamTask = 'ss' | 'ncrna' | 'regression';

type HeadConfigs = {
  ss: Omit<SecondaryStructureHeadConfig, 'dim'>;
  ncrna: Omit<ClassificationHeadConfig, 'dim'>;
  regression: Omit<RegressionHeadConfig, 'dim'>;
};

/** RiNALMo's head sizes (models.md B6). */
export const HEAD_DEFAULTS: HeadConfigs = {
  ss: { channels: 64, blocks: 2 },
  ncrna: { hidden: 256, classes: 13 },
  regression: { channels: 32, blocks: 6, dropout: 0.2 },
};

export interface RinalmoDownstreamConfig<K extends DownstreamTask = DownstreamTask> {
  task: K;
  encoder: RinalmoConfig;
  head: HeadConfigs[K];
}

type Head = SecondaryStructureHead | ClassificationHead | RegressionHead;

export class RinalmoDownstream extends Module {
  readonly encoder: RinalmoModel;
  readonly head: Head;
  /** `lm` or `rinalmo`: the prefix of the encoder's parameters. */
  readonly encoderName: string;

  constructor(readonly cfg: RinalmoDownstreamConfig) {
    super();
    if (!(cfg.task in HEAD_DEFAULTS))
      throw new RangeError(`RinalmoDownstream: unknown task "${String(cfg.task)}" (ss, ncrna, regression)`);
    this.encoderName = cfg.task === 'ncrna' ? 'rinalmo' : 'lm';
    this.encoder = this.module(this.encoderName, new RinalmoModel({ ...cfg.encoder, mlmHead: false }));
    const dim = this.encoder.cfg.dim;
    const head = { ...HEAD_DEFAULTS[cfg.task], ...cfg.head, dim } as never;
    this.head = this.module(
      'pred_head',
      cfg.task === 'ss'
        ? new SecondaryStructureHead(head)
        : cfg.task === 'ncrna'
          ? new ClassificationHead(head)
          : new RegressionHead(head),
    );
  }

  /**
   * Copies the encoder weights of a pre-trained RiNALMo (its MLM head is ignored); every encoder
   * parameter must be there with the same shape.
   */
  loadEncoder(pretrained: RinalmoModel): void {
    const state = new Map(pretrained.namedParameters().filter(([n]) => !n.startsWith('lm_mask_head.')));
    this.encoder.loadStateDict(state);
  }

  /** Parameter-name groups from the head down to the embedding, for gradual unfreezing. */
  unfreezeGroups(): string[][] {
    const e = this.encoderName;
    const layers = this.encoder.cfg.layers;
    const blocks = Array.from({ length: layers }, (_, i) => [`${e}.transformer.blocks.${layers - 1 - i}`]);
    blocks[0]!.push(`${e}.transformer.final_layer_norm`);
    return [['pred_head'], ...blocks, [`${e}.embedding`]];
  }
}

registerModelKind('rinalmo-downstream', {
  create: (config) => new RinalmoDownstream(config as unknown as RinalmoDownstreamConfig),
  owns: (model) => model instanceof RinalmoDownstream,
  config: (model) => ({
    ...(model as RinalmoDownstream).cfg,
    encoder: { ...(model as RinalmoDownstream).encoder.cfg },
  }),
  describe: (config) => `RiNALMo with a ${String(config.task)} head`,
});

export type RinalmoFinetuneMode = 'frozen' | 'full' | 'gradual';

/**
 * The trainer's freeze / unfreeze options for a mode: `frozen` trains the head only, `full`
 * everything, `gradual` the head first and one more group (top block + final LayerNorm, the
 * next block, …, the embedding) every `unfreezeEvery` steps.
 */
export function finetuneFreezing(
  model: RinalmoDownstream,
  mode: RinalmoFinetuneMode,
  unfreezeEvery = 0,
): { freeze: string[]; unfreeze: UnfreezeStage[] } {
  if (mode === 'full') return { freeze: [], unfreeze: [] };
  if (mode === 'frozen') return { freeze: [model.encoderName], unfreeze: [] };
  if (mode !== 'gradual')
    throw new RangeError(`finetuneFreezing: unknown mode "${String(mode)}" (frozen, full, gradual)`);
  if (!(Number.isInteger(unfreezeEvery) && unfreezeEvery >= 1))
    throw new RangeError(`finetuneFreezing: gradual unfreezing needs unfreezeEvery ≥ 1 step, got ${unfreezeEvery}`);
  return gradualUnfreeze(model.unfreezeGroups(), unfreezeEvery);
}

const tokenizer = new NucleotideTokenizer();

/** Items in a seeded order per epoch, `size` at a time: batch `index` is a pure function of (seed, index). */
class EpochBatches<I> {
  private order: { epoch: number; indices: number[] } | null = null;
  private readonly perEpoch: number;
  constructor(
    readonly items: readonly I[],
    readonly size: number,
    readonly seed: number,
  ) {
    if (items.length === 0) throw new Error('fine-tuning: the training split is empty');
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`fine-tuning: batch size must be a positive integer, got ${size}`);
    this.perEpoch = Math.max(1, Math.floor(items.length / size));
  }
  pick(index: number): I[] {
    const epoch = Math.floor(index / this.perEpoch);
    if (this.order?.epoch !== epoch)
      this.order = { epoch, indices: seededRandom(mixSeed(this.seed, epoch)).shuffle([...this.items.keys()]) };
    const start = (index % this.perEpoch) * this.size;
    return this.order.indices.slice(start, start + this.size).map((i) => this.items[i]!);
  }
}

function source<I, B extends { tokens: number }>(batches: EpochBatches<I>, make: (items: I[]) => B): BatchSource<B> {
  let nextBatch = 0;
  return {
    batch(index) {
      nextBatch = index + 1;
      return make(batches.pick(index));
    },
    tokens: (batch) => batch.tokens,
    state: () => ({ seed: batches.seed, nextBatch }),
    restore(state) {
      nextBatch = Number(state.nextBatch ?? 0);
    },
  };
}

/** Token ids of sequences, <cls> … <eos>, cut to `maxLength` tokens (keeping <eos>), right-padded. */
export function encodeSequences(
  sequences: readonly string[],
  maxLength = Infinity,
): { ids: Int32Array; shape: [number, number]; mask: Float32Array } {
  const rows = sequences.map((s) => {
    const ids = tokenizer.encode(s);
    if (ids.length <= maxLength) return ids;
    const cut = ids.slice(0, maxLength);
    cut[maxLength - 1] = RINALMO_TOKENS.eos;
    return cut;
  });
  const length = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * length).fill(RINALMO_TOKENS.pad);
  const mask = new Float32Array(rows.length * length);
  rows.forEach((r, b) => {
    ids.set(r, b * length);
    mask.fill(1, b * length, b * length + r.length);
  });
  return { ids, shape: [rows.length, length], mask };
}

const idsTensor = (e: { ids: Int32Array; shape: [number, number] }) =>
  T.tensor(e.ids, { shape: e.shape, dtype: 'i32' });

async function withoutGrad<R>(model: Module, run: () => Promise<R>): Promise<R> {
  const wasTraining = (model as RinalmoDownstream).training;
  model.eval();
  try {
    return await run();
  } finally {
    model.train(wasTraining);
  }
}

// ---- secondary structure ------------------------------------------------------------------

export interface StructureBatch {
  record: StructureRecord;
  tokens: number;
}

/** Pair logits [1, L, L] of one sequence (the representation without <cls>/<eos>). */
function pairLogits(model: RinalmoDownstream, sequence: string): Tensor {
  const representation = model.encoder.forward(idsTensor(encodeSequences([sequence]))).representation;
  return (model.head as SecondaryStructureHead).forward(T.narrow(representation, 1, 1, sequence.length));
}

function pairTargets(record: StructureRecord): Tensor {
  const n = record.sequence.length;
  const target = new Float32Array(n * n);
  record.partners.forEach((j, i) => j >= 0 && (target[i * n + j] = 1));
  return T.tensor(target, { shape: [1, n, n] });
}

/** Pairing probabilities (sigmoid of the logits), read back as float64 [L·L]. */
async function pairProbabilities(model: RinalmoDownstream, sequence: string): Promise<Float64Array> {
  const probs = noGrad(() => T.tidy(() => T.sigmoid(pairLogits(model, sequence))));
  try {
    return await probs.dataF64();
  } finally {
    probs.dispose();
  }
}

export interface StructureEvaluation {
  /** Mean F1 (±1 shifts allowed) at the tuned threshold, and without shifts. */
  f1: number;
  f1Exact: number;
  precision: number;
  recall: number;
  threshold: number;
}

/** Candidates of every record (probabilities from the model), with targets, for tuning and scoring. */
async function structureCandidates(model: RinalmoDownstream, records: readonly StructureRecord[]) {
  const out = [];
  for (const record of records) {
    out.push({
      candidates: pairCandidates(await pairProbabilities(model, record.sequence), record.sequence, THRESHOLD_GRID[0]!),
      target: record.partners,
    });
  }
  return out;
}

/**
 * Tunes the threshold on `validation` (mean F1 with ±1 shifts over RiNALMo's grid), then scores
 * `test` at it; both without gradients, in eval mode.
 */
export function evaluateStructures(
  model: RinalmoDownstream,
  validation: readonly StructureRecord[],
  test: readonly StructureRecord[],
): Promise<StructureEvaluation> {
  return withoutGrad(model, async () => {
    const { threshold } = tuneThreshold(await structureCandidates(model, validation));
    const scored = (await structureCandidates(model, test)).map(({ candidates, target }) => {
      const predicted = pairsAboveThreshold(candidates, threshold);
      return { shift: structureScores(target, predicted, { shift: true }), exact: structureScores(target, predicted) };
    });
    const shift = meanScores(scored.map((s) => s.shift));
    return {
      f1: shift.f1,
      f1Exact: meanScores(scored.map((s) => s.exact)).f1,
      precision: shift.precision,
      recall: shift.recall,
      threshold,
    };
  });
}

export interface StructureTaskOptions {
  seed: number;
  /** Training sequences longer than this are skipped (memory is O(L²·channels)); default all. */
  maxTrainLength?: number;
  /** Validation sequences scored at each evaluation (default all). */
  validationLimit?: number;
}

export interface FinetuneTask<B> extends TrainSetup<RinalmoDownstream, B> {
  /** Metrics on the held-out test split with the current weights. */
  test(): Promise<Record<string, number>>;
}

/** Secondary structure on a family split: batches of one sequence (as RiNALMo), BCE on the upper triangle. */
export function secondaryStructureTask(
  model: RinalmoDownstream,
  split: Pick<FamilySplit, 'train' | 'validation' | 'test'>,
  opts: StructureTaskOptions,
): FinetuneTask<StructureBatch> {
  if (model.cfg.task !== 'ss') throw new Error(`secondaryStructureTask: the model has a ${model.cfg.task} head`);
  const train = split.train.filter(
    (r) => r.sequence.length >= 2 && r.sequence.length <= (opts.maxTrainLength ?? Infinity),
  );
  const validation = split.validation.slice(0, opts.validationLimit ?? split.validation.length);
  if (validation.length === 0)
    throw new Error('secondaryStructureTask: no validation sequences to tune the threshold on');
  return {
    model,
    loss: (m, batch) => pairLoss(pairLogits(m, batch.record.sequence), pairTargets(batch.record)),
    source: source(new EpochBatches(train, 1, opts.seed), ([record]) => ({
      record: record!,
      tokens: record!.sequence.length + 2,
    })),
    async evaluate(m) {
      const { f1, f1Exact, threshold } = await evaluateStructures(m, validation, validation);
      return { f1, f1Exact, threshold };
    },
    async test() {
      return { ...(await evaluateStructures(model, validation, split.test)) };
    },
  };
}

// ---- ncRNA classification ----------------------------------------------------------------

export interface SequenceBatch {
  ids: Int32Array;
  shape: [number, number];
  mask: Float32Array;
  tokens: number;
}

export interface ClassificationBatch extends SequenceBatch {
  labels: Int32Array;
}

export interface SequenceTaskOptions {
  seed: number;
  batchSize: number;
  /** Tokens per sequence at most, <cls>/<eos> included (longer ones keep their start). */
  maxLength: number;
  /** Validation sequences per evaluation (default all). */
  validationLimit?: number;
}

function sequenceBatch(sequences: readonly string[], maxLength: number): SequenceBatch {
  const e = encodeSequences(sequences, maxLength);
  return { ...e, tokens: e.mask.reduce((n, v) => n + v, 0) };
}

function classificationBatch(items: readonly LabelledSequence[], maxLength: number): ClassificationBatch {
  return {
    ...sequenceBatch(
      items.map((i) => i.sequence),
      maxLength,
    ),
    labels: Int32Array.from(items, (i) => i.label),
  };
}

function classLogits(model: RinalmoDownstream, batch: SequenceBatch): Tensor {
  return (model.head as ClassificationHead).forward(model.encoder.forward(idsTensor(batch)).representation);
}

const labelTensor = (labels: Int32Array) => T.tensor(labels, { shape: [labels.length], dtype: 'i32' });

/**
 * Mean cross-entropy, accuracy, macro and weighted F1 of `labels`, the logits computed
 * `batchSize` items at a time by `logitsOf(start, end)`; without gradients, in eval mode.
 */
function scoreClassification(
  model: RinalmoDownstream,
  labels: readonly number[],
  batchSize: number,
  logitsOf: (start: number, end: number) => Tensor,
): Promise<Record<string, number>> {
  return withoutGrad(model, async () => {
    const predictions: number[] = [];
    let lossSum = 0;
    for (let start = 0; start < labels.length; start += batchSize) {
      const end = Math.min(start + batchSize, labels.length);
      const [loss, argmax] = noGrad(() =>
        T.tidy(() => {
          const logits = logitsOf(start, end);
          return [T.crossEntropy(logits, labelTensor(Int32Array.from(labels.slice(start, end)))), T.argmax(logits, -1)];
        }),
      );
      lossSum += (await loss!.item()) * (end - start);
      predictions.push(...(await argmax!.data()));
      loss!.dispose();
      argmax!.dispose();
    }
    const m = classificationMetrics(labels, predictions, (model.head as ClassificationHead).cfg.classes);
    return { loss: lossSum / labels.length, accuracy: m.accuracy, macroF1: m.macroF1, weightedF1: m.weightedF1 };
  });
}

function evaluateClassification(
  model: RinalmoDownstream,
  items: readonly LabelledSequence[],
  opts: SequenceTaskOptions,
): Promise<Record<string, number>> {
  return scoreClassification(
    model,
    items.map((i) => i.label),
    opts.batchSize,
    (start, end) => classLogits(model, classificationBatch(items.slice(start, end), opts.maxLength)),
  );
}

function checkClassificationData(model: RinalmoDownstream, data: ClassificationDataset, caller: string): void {
  if (model.cfg.task !== 'ncrna') throw new Error(`${caller}: the model has a ${model.cfg.task} head`);
  const classes = (model.head as ClassificationHead).cfg.classes;
  if (data.classes.length !== classes)
    throw new Error(`${caller}: the data has ${data.classes.length} classes, the head ${classes}`);
}

export function classificationTask(
  model: RinalmoDownstream,
  data: ClassificationDataset,
  opts: SequenceTaskOptions,
): FinetuneTask<ClassificationBatch> {
  checkClassificationData(model, data, 'classificationTask');
  const validation = data.validation.slice(0, opts.validationLimit ?? data.validation.length);
  return {
    model,
    loss: (m, batch) => T.crossEntropy(classLogits(m, batch), labelTensor(batch.labels)),
    source: source(new EpochBatches(data.train, opts.batchSize, opts.seed), (items) =>
      classificationBatch(items, opts.maxLength),
    ),
    evaluate: (m) => evaluateClassification(m, validation, opts),
    test: () => evaluateClassification(model, data.test, opts),
  };
}

/**
 * The <cls> rows [N · d] of `sequences` (cut to `maxLength` tokens) through the encoder, in eval
 * mode and without gradients: what a frozen encoder gives every time. Batches are formed from
 * sequences of similar length to spend little on padding (the attention masks pads, so a row does
 * not depend on its batch-mates beyond float rounding).
 */
export async function clsFeatures(
  model: RinalmoDownstream,
  sequences: readonly string[],
  opts: { batchSize: number; maxLength: number; onProgress?: (done: number, total: number) => void },
): Promise<Float32Array> {
  const dim = model.encoder.cfg.dim;
  const features = new Float32Array(sequences.length * dim);
  const order = [...sequences.keys()].sort((a, b) => sequences[a]!.length - sequences[b]!.length);
  await withoutGrad(model, async () => {
    for (let start = 0; start < order.length; start += opts.batchSize) {
      const rows = order.slice(start, start + opts.batchSize);
      const cls = noGrad(() =>
        T.tidy(() => {
          const batch = encodeSequences(
            rows.map((i) => sequences[i]!),
            opts.maxLength,
          );
          return T.contiguous(T.narrow(model.encoder.forward(idsTensor(batch)).representation, 1, 0, 1));
        }),
      );
      const values = (await cls.data()) as Float32Array;
      cls.dispose();
      rows.forEach((i, k) => features.set(values.subarray(k * dim, (k + 1) * dim), i * dim));
      opts.onProgress?.(start + rows.length, order.length);
    }
  });
  return features;
}

export interface FeatureBatch {
  /** <cls> features [B · d] of the batch's sequences. */
  features: Float32Array;
  labels: Int32Array;
  tokens: number;
}

export interface CachedFeatureOptions extends SequenceTaskOptions {
  /** Called after each batch of the feature pass: which split, sequences done, sequences in it. */
  onProgress?: (split: 'train' | 'validation' | 'test', done: number, total: number) => void;
}

/**
 * ncRNA classification with a frozen encoder whose <cls> features are computed once (see
 * `clsFeatures`): the training split's before training, the validation and test splits' when
 * first scored; every step then runs the head only. Train with `finetuneFreezing(model, 'frozen')`:
 * the encoder is outside the graph, so it cannot learn here. Differs from `classificationTask` in
 * frozen mode only by the encoder's dropout, which is off for the cached features (eval mode).
 */
export async function cachedClassificationTask(
  model: RinalmoDownstream,
  data: ClassificationDataset,
  opts: CachedFeatureOptions,
): Promise<FinetuneTask<FeatureBatch>> {
  checkClassificationData(model, data, 'cachedClassificationTask');
  const dim = model.encoder.cfg.dim;
  const featuresOf = (split: 'train' | 'validation' | 'test', items: readonly LabelledSequence[]) =>
    clsFeatures(
      model,
      items.map((i) => i.sequence),
      {
        batchSize: opts.batchSize,
        maxLength: opts.maxLength,
        onProgress: (done, total) => opts.onProgress?.(split, done, total),
      },
    );
  const featureLogits = (m: RinalmoDownstream, features: Float32Array) =>
    (m.head as ClassificationHead).forward(T.tensor(features, { shape: [features.length / dim, 1, dim] }));
  const cached = (split: 'validation' | 'test', items: readonly LabelledSequence[]) => {
    let features: Promise<Float32Array> | null = null;
    return async (m: RinalmoDownstream) => {
      const all = await (features ??= featuresOf(split, items));
      return scoreClassification(
        m,
        items.map((i) => i.label),
        opts.batchSize,
        (start, end) => featureLogits(m, all.subarray(start * dim, end * dim)),
      );
    };
  };
  const trainFeatures = await featuresOf('train', data.train);
  const trainRows = data.train.map((item, row) => ({ item, row }));
  const evaluate = cached('validation', data.validation.slice(0, opts.validationLimit ?? data.validation.length));
  const test = cached('test', data.test);
  return {
    model,
    loss: (m, batch) => T.crossEntropy(featureLogits(m, batch.features), labelTensor(batch.labels)),
    source: source(new EpochBatches(trainRows, opts.batchSize, opts.seed), (rows) => {
      const features = new Float32Array(rows.length * dim);
      rows.forEach(({ row }, k) => features.set(trainFeatures.subarray(row * dim, (row + 1) * dim), k * dim));
      return {
        features,
        labels: Int32Array.from(rows, ({ item }) => item.label),
        tokens: rows.reduce((n, { item }) => n + Math.min(tokenizer.encode(item.sequence).length, opts.maxLength), 0),
      };
    }),
    evaluate,
    test: () => test(model),
  };
}

// ---- sequence regression -----------------------------------------------------------------

export interface RegressionBatch extends SequenceBatch {
  /** Standardised targets. */
  targets: Float32Array;
}

function predictValues(model: RinalmoDownstream, batch: SequenceBatch): Tensor {
  const representation = model.encoder.forward(idsTensor(batch)).representation;
  return (model.head as RegressionHead).forward(representation, T.tensor(batch.mask, { shape: batch.shape }));
}

async function evaluateRegression(
  model: RinalmoDownstream,
  items: readonly ValuedSequence[],
  scaler: Standardizer,
  opts: SequenceTaskOptions,
): Promise<Record<string, number>> {
  return withoutGrad(model, async () => {
    const predictions: number[] = [];
    for (let start = 0; start < items.length; start += opts.batchSize) {
      const batch = sequenceBatch(
        items.slice(start, start + opts.batchSize).map((i) => i.sequence),
        opts.maxLength,
      );
      const values = noGrad(() => T.tidy(() => predictValues(model, batch)));
      predictions.push(...Array.from(await values.dataF64(), (z) => unstandardize(scaler, z)));
      values.dispose();
    }
    const m = regressionMetrics(
      items.map((i) => i.value),
      predictions,
    );
    return { mse: m.mse, r2: m.r2, pearson: m.pearson, spearman: m.spearman };
  });
}

/** Regression with the targets standardised by mean and population std of the training split only. */
export function regressionTask(
  model: RinalmoDownstream,
  data: RegressionDataset,
  opts: SequenceTaskOptions,
): FinetuneTask<RegressionBatch> & { scaler: Standardizer } {
  if (model.cfg.task !== 'regression') throw new Error(`regressionTask: the model has a ${model.cfg.task} head`);
  const scaler = fitStandardizer(data.train.map((r) => r.value));
  const validation = data.validation.slice(0, opts.validationLimit ?? data.validation.length);
  const make = (items: ValuedSequence[]): RegressionBatch => ({
    ...sequenceBatch(
      items.map((i) => i.sequence),
      opts.maxLength,
    ),
    targets: Float32Array.from(items, (i) => standardize(scaler, i.value)),
  });
  return {
    model,
    scaler,
    loss: (m, batch) => {
      const error = T.sub(predictValues(m, batch), T.tensor(batch.targets, { shape: [batch.targets.length] }));
      return T.mean(T.square(error));
    },
    source: source(new EpochBatches(data.train, opts.batchSize, opts.seed), make),
    evaluate: async (m) => (validation.length ? evaluateRegression(m, validation, scaler, opts) : {}),
    test: () => evaluateRegression(model, data.test, scaler, opts),
  };
}
