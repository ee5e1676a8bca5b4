/**
 * Downstream property prediction as HELM evaluates a backbone (models.md A6): the TextCNN head on the
 * backbone's final hidden states (after ln_f), trained with MSE on standardised targets (cross-entropy
 * for classes), early-stopped on the validation split's Spearman ρ (AUROC for two classes, accuracy
 * for more), and scored once on the test split with the weights of the best validation epoch.
 *
 * Modes: 'frozen' (the backbone's features are computed once; only the head trains), 'full' (the
 * backbone trains with the head, one learning rate), 'scratch' (no backbone: the same head on learned
 * codon embeddings, randomly initialised — CodonBERT's plain TextCNN baseline).
 * Runs on the shared trainer: Adam at a constant rate (HELM: Adam; its plateau schedule is not used).
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { noGrad } from '@rnagrad/autograd';
import { CODON_TOKENS, sampler } from './data.js';
import type { HelmModel } from './helm.js';
import { Embedding } from './layers.js';
import { accuracy, auroc, pearson, spearman } from './metrics.js';
import { Module } from './module.js';
import type { PropertyDataset, PropertyExample } from './property-data.js';
import { TextCnnHead, type TextCnnConfig } from './textcnn.js';
import { type TrainerHooks, type TrainerOptions, train } from './trainer.js';

export type PropertyFinetuneMode = 'frozen' | 'full' | 'scratch';

export interface PropertyTrainOptions {
  mode: PropertyFinetuneMode;
  batchSize: number;
  lr: number;
  /** Passes over the training split at most (HELM: 300). */
  maxEpochs: number;
  /** Epochs without a better validation metric before stopping (HELM: 15). */
  patience: number;
  seed: number;
  head: Partial<Omit<TextCnnConfig, 'inputSize' | 'outputs'>>;
  /** 'scratch': width of the learned codon embeddings. */
  embeddingSize: number;
}

export const PROPERTY_TRAIN_DEFAULTS: PropertyTrainOptions = {
  mode: 'frozen',
  batchSize: 32,
  lr: 3e-4,
  maxEpochs: 300,
  patience: 15,
  seed: 42,
  head: {},
  embeddingSize: 64,
};

export interface PropertyMetrics {
  /** Regression: Spearman ρ and Pearson r; classification: AUROC (two classes) and accuracy. */
  [name: string]: number;
}

export interface PropertyResult {
  test: PropertyMetrics;
  /** The validation metrics of the epoch whose weights were kept. */
  validation: PropertyMetrics;
  bestEpoch: number;
  epochs: number;
  stopped: 'completed' | 'early-stop' | 'interrupt';
  parameters: number;
  seconds: number;
}

/** What trains: the head, plus the backbone ('full') or codon embeddings ('scratch'). */
export class PropertyModel extends Module {
  readonly head: TextCnnHead;
  readonly backbone: HelmModel | null;
  readonly embedding: Embedding | null;
  constructor(
    readonly mode: PropertyFinetuneMode,
    inputSize: number,
    outputs: number,
    opts: { backbone?: HelmModel; head?: PropertyTrainOptions['head'] } = {},
  ) {
    super();
    this.backbone = mode === 'full' ? this.module('backbone', opts.backbone!) : null;
    this.embedding =
      mode === 'scratch' ? this.module('embedding', new Embedding(CODON_TOKENS.firstCodon + 64, inputSize)) : null;
    this.head = this.module('head', new TextCnnHead({ inputSize, outputs, ...opts.head }));
  }
}

interface PropertyBatch {
  examples: PropertyExample[];
  features?: Float32Array[];
}

/** Codon ids framed as the backbone saw them in pre-training: <cls> codons <eos> <pad>… */
function framedIds(examples: readonly PropertyExample[], length: number): { ids: Tensor; mask: Tensor } {
  const ids = new Int32Array(examples.length * (length + 2)).fill(CODON_TOKENS.pad);
  const mask = new Int32Array(ids.length);
  examples.forEach(({ codons }, b) => {
    const row = b * (length + 2);
    ids[row] = CODON_TOKENS.cls;
    ids.set(codons, row + 1);
    ids[row + codons.length + 1] = CODON_TOKENS.eos;
    mask.fill(1, row, row + codons.length + 2);
  });
  const shape = [examples.length, length + 2];
  return { ids: T.tensor(ids, { shape, dtype: 'i32' }), mask: T.tensor(mask, { shape, dtype: 'i32' }) };
}

/** The backbone's final hidden states at the codon positions: [B, longest, d]. */
function backboneFeatures(backbone: HelmModel, examples: readonly PropertyExample[]): Tensor {
  const longest = Math.max(...examples.map((e) => e.codons.length));
  const { ids, mask } = framedIds(examples, longest);
  return backbone.hiddenStates(ids, { attentionMask: mask }).narrow(1, 1, longest);
}

/** Frozen mode: every example's features once, in batches of similar length. */
async function cacheFeatures(
  backbone: HelmModel,
  examples: readonly PropertyExample[],
  batchSize: number,
): Promise<Float32Array[]> {
  const d = backbone.cfg.dModel;
  const out: Float32Array[] = new Array(examples.length);
  const order = examples.map((_, i) => i).sort((a, b) => examples[a]!.codons.length - examples[b]!.codons.length);
  backbone.eval();
  for (let start = 0; start < order.length; start += batchSize) {
    const idx = order.slice(start, start + batchSize);
    const rows = idx.map((i) => examples[i]!);
    const features = noGrad(() => T.tidy(() => backboneFeatures(backbone, rows)));
    const data = (await features.data()) as Float32Array;
    const L = features.shape[1]!;
    features.dispose();
    idx.forEach((i, b) => {
      out[i] = data.slice(b * L * d, (b * L + examples[i]!.codons.length) * d);
    });
  }
  return out;
}

/**
 * Fine-tunes a TextCNN head (and, in 'full' mode, the backbone) on a property data set and returns
 * test metrics at the best validation epoch. `backbone` is required except in 'scratch' mode; in
 * 'full' mode its weights change (pass a copy to keep the original).
 */
export async function finetuneProperty(
  backbone: HelmModel | null,
  data: PropertyDataset,
  options: Partial<PropertyTrainOptions> = {},
  hooks: TrainerHooks = {},
): Promise<PropertyResult> {
  const opts = { ...PROPERTY_TRAIN_DEFAULTS, ...options };
  if (!['frozen', 'full', 'scratch'].includes(opts.mode))
    throw new RangeError(`finetuneProperty: mode must be frozen, full or scratch, got ${opts.mode}`);
  if (opts.mode !== 'scratch' && !backbone) throw new Error(`finetuneProperty: mode '${opts.mode}' needs a backbone`);
  for (const [name, v, min] of [
    ['batchSize', opts.batchSize, 1],
    ['maxEpochs', opts.maxEpochs, 1],
    ['patience', opts.patience, 1],
  ] as const) {
    if (!Number.isInteger(v) || v < min)
      throw new RangeError(`finetuneProperty: ${name} must be an integer ≥ ${min}, got ${v}`);
  }
  const regression = data.task === 'regression';
  const outputs = regression ? 1 : (data.classes ?? 2);
  const inputSize = opts.mode === 'scratch' ? opts.embeddingSize : backbone!.cfg.dModel;
  const head = { ...opts.head };
  const minLength = Math.max(...(head.kernels ?? [3, 4, 5]));
  const maxLength = backbone ? backbone.cfg.maxPositions - 2 : Infinity;
  for (const split of ['train', 'validation', 'test'] as const) {
    for (const [i, e] of data[split].entries()) {
      if (e.codons.length < minLength || e.codons.length > maxLength) {
        throw new RangeError(
          `${data.name}: ${split} example ${i} has ${e.codons.length} codons; the head needs ` +
            `≥ ${minLength}${backbone ? ` and the backbone ≤ ${maxLength}` : ''}`,
        );
      }
      if (!regression && !(Number.isInteger(e.target) && e.target >= 0 && e.target < outputs))
        throw new RangeError(`${data.name}: ${split} example ${i} has class ${e.target}, not in 0..${outputs - 1}`);
    }
  }
  const started = performance.now();
  T.manualSeed(opts.seed);
  const model = new PropertyModel(opts.mode, inputSize, outputs, { backbone: backbone ?? undefined, head });

  // Standardised regression targets (train mean and standard deviation).
  const ys = data.train.map((e) => e.target);
  const mean = regression ? ys.reduce((a, b) => a + b, 0) / ys.length : 0;
  const std = regression ? Math.sqrt(ys.reduce((a, b) => a + (b - mean) ** 2, 0) / ys.length) || 1 : 1;

  const cached = new Map<PropertyExample, Float32Array>();
  if (opts.mode === 'frozen') {
    for (const split of ['train', 'validation', 'test'] as const) {
      const features = await cacheFeatures(backbone!, data[split], 16);
      data[split].forEach((e, i) => cached.set(e, features[i]!));
    }
  }

  const forward = (m: PropertyModel, examples: readonly PropertyExample[]): Tensor => {
    const lengths = examples.map((e) => e.codons.length);
    const longest = Math.max(...lengths);
    let features: Tensor;
    if (opts.mode === 'frozen') {
      const flat = new Float32Array(examples.length * longest * inputSize);
      examples.forEach((e, b) => flat.set(cached.get(e)!, b * longest * inputSize));
      features = T.tensor(flat, { shape: [examples.length, longest, inputSize] });
    } else if (opts.mode === 'full') {
      features = backboneFeatures(m.backbone!, examples);
    } else {
      const ids = new Int32Array(examples.length * longest).fill(CODON_TOKENS.pad);
      examples.forEach((e, b) => ids.set(e.codons, b * longest));
      features = m.embedding!.forward(T.tensor(ids, { shape: [examples.length, longest], dtype: 'i32' }));
    }
    return m.head.forward(features, lengths);
  };

  const predict = async (m: PropertyModel, examples: readonly PropertyExample[]): Promise<Float32Array> => {
    const out = new Float32Array(examples.length * outputs);
    for (let start = 0; start < examples.length; start += 32) {
      const rows = examples.slice(start, start + 32);
      const y = noGrad(() => T.tidy(() => forward(m, rows)));
      out.set((await y.data()) as Float32Array, start * outputs);
      y.dispose();
    }
    return out;
  };

  const metricsOf = async (m: PropertyModel, examples: readonly PropertyExample[]): Promise<PropertyMetrics> => {
    const y = await predict(m, examples);
    const truth = examples.map((e) => e.target);
    if (regression) return { spearman: spearman(y, truth), pearson: pearson(y, truth) };
    const predicted = truth.map((_, i) => {
      const row = Array.from(y.subarray(i * outputs, (i + 1) * outputs));
      return row.indexOf(Math.max(...row));
    });
    const scores = truth.map((_, i) => y[i * outputs + 1]! - y[i * outputs]!);
    return outputs === 2
      ? { auroc: auroc(truth, scores), accuracy: accuracy(truth, predicted) }
      : { accuracy: accuracy(truth, predicted) };
  };
  const selectBy = regression ? 'spearman' : outputs === 2 ? 'auroc' : 'accuracy';

  const order = sampler(data.train, opts.batchSize, opts.seed);
  const stepsPerEpoch = Math.max(1, Math.floor(data.train.length / opts.batchSize));
  let evaluations = 0;
  let best: { value: number; epoch: number; state: Map<string, Tensor>; metrics: PropertyMetrics } | null = null;
  const keepBest = (metrics: PropertyMetrics, epoch: number) => {
    const value = metrics[selectBy]!;
    // NaN (e.g. constant predictions) never counts as better; the untrained head (epoch 0) is the fallback.
    if (best && !(value > best.value)) return;
    for (const t of best?.state.values() ?? []) t.dispose();
    const state = new Map(
      model.namedParameters().map(([n, p]) => [n, T.keep(noGrad(() => T.clone(p)))] as [string, Tensor]),
    );
    best = { value: Number.isNaN(value) ? -Infinity : value, epoch, state, metrics };
  };

  const trainer: Partial<TrainerOptions> = {
    steps: stepsPerEpoch * opts.maxEpochs,
    lr: opts.lr,
    minLr: opts.lr,
    warmupSteps: 0,
    weightDecay: 0,
    maxGradNorm: 0,
    seed: opts.seed,
    evalEvery: stepsPerEpoch,
    earlyStopping: { metric: selectBy, mode: 'max', patience: opts.patience },
  };
  const result = await train<PropertyModel, PropertyBatch>(
    {
      model,
      loss: (m, batch) => {
        const y = forward(m, batch.examples);
        if (!regression)
          return T.crossEntropy(
            y,
            T.tensor(
              batch.examples.map((e) => e.target),
              { shape: [batch.examples.length], dtype: 'i32' },
            ),
          );
        const target = T.tensor(
          batch.examples.map((e) => (e.target - mean) / std),
          { shape: [batch.examples.length] },
        );
        return T.mean(T.square(T.sub(y.reshape([-1]), target)));
      },
      source: {
        batch: (index) => ({ examples: order.batch(index) }),
        tokens: (batch) => batch.examples.reduce((n, e) => n + e.codons.length, 0),
      },
      async evaluate(m) {
        const metrics = await metricsOf(m, data.validation);
        // The trainer evaluates before the first step too (epoch 0: the untrained head).
        keepBest(metrics, evaluations++);
        return metrics;
      },
    },
    trainer,
    hooks,
  );
  const kept = best!;
  model.loadStateDict(kept.state, { strict: true });
  for (const t of kept.state.values()) t.dispose();
  model.eval();
  const test = await metricsOf(model, data.test);
  const parameters = model.parameterCount();
  // The backbone belongs to the caller: dispose only what this function created.
  if (opts.mode === 'full') model.head.dispose();
  else model.dispose();
  return {
    test,
    validation: kept.metrics,
    bestEpoch: kept.epoch,
    epochs: Math.round(result.step / stepsPerEpoch),
    stopped: result.stopped,
    parameters,
    seconds: (performance.now() - started) / 1000,
  };
}
