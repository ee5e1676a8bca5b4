/**
 * HELM pre-training on the shared trainer: masked or causal LM batches of codon windows (each
 * keeping its offset in the gene as position ids), flat or hierarchical cross-entropy, and a
 * validation of the objective, plain cross-entropy and accuracy on fixed batches.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { noGrad } from '@rnagrad/autograd';
import { codonTree, randomCodonTree, hxePathTable, leafMembership, seededRandom } from '@rnagrad/tokenizers';
import { type CodonCorpus, IGNORE_INDEX, type LmBatch, clmBatch, mixSeed, mlmBatch, sampler } from './data.js';
import type { HelmModel } from './helm.js';
import { hierarchicalCrossEntropy } from './hxe/op.js';
import {
  type BatchSource,
  type TrainResult,
  type TrainSetup,
  type TrainerHooks,
  type TrainerOptions,
  type TrainerSnapshot,
  TRAINER_DEFAULTS,
  train,
} from './trainer.js';

export interface HelmTaskOptions {
  batchSize: number;
  /** Tokens per row (a window of the gene; <cls>/<eos> where the window reaches the ends). */
  length: number;
  loss: 'hxe' | 'xe';
  /** HXE's α (HELM: 0.2–0.6). */
  alpha: number;
  /** HXE's tree: HELM's codon hierarchy, or the random-hierarchy ablation drawn from `hierarchySeed`. */
  hierarchy: 'codon' | 'random';
  hierarchySeed: number;
  /** Fixed validation batches evaluated each time. */
  validationBatches: number;
  /** MLM: share of codons masked (HELM: 0.15). */
  maskProbability: number;
  seed: number;
}

export type HelmTrainOptions = TrainerOptions & HelmTaskOptions;

export const TRAIN_DEFAULTS: HelmTrainOptions = {
  ...TRAINER_DEFAULTS,
  batchSize: 16,
  length: 64,
  loss: 'hxe',
  alpha: 0.2,
  hierarchy: 'codon',
  hierarchySeed: 1,
  validationBatches: 4,
  maskProbability: 0.15,
};

/**
 * The fixed validation batches of a HELM run: the same windows and masks at every evaluation, and
 * for any other scorer (e.g. the n-gram baselines of `ngram.ts`) that must see the same tokens.
 * They always mask HELM's 15%, whatever the training rate, so runs with other rates stay comparable.
 */
export function helmValidationBatches(
  corpus: CodonCorpus,
  cfg: Pick<HelmModel['cfg'], 'objective' | 'maxPositions'>,
  options: Partial<HelmTaskOptions> = {},
): LmBatch[] {
  const opts = { ...TRAIN_DEFAULTS, ...options };
  const makeBatch = cfg.objective === 'mlm' ? mlmBatch : clmBatch;
  const batchOptions = { length: opts.length, maxPositions: cfg.maxPositions, maskProbability: 0.15 };
  const valSeqs = corpus.validation.length ? corpus.validation : corpus.train;
  const valOrder = sampler(valSeqs, opts.batchSize, opts.seed + 1);
  const valRng = seededRandom(opts.seed + 1);
  return Array.from({ length: opts.validationBatches }, (_, i) => makeBatch(valOrder.batch(i), valRng, batchOptions));
}

/**
 * The loss head: logits [N, V] and targets [N] → scalar mean over non-ignored rows. `hierarchy`
 * picks HXE's tree (default HELM's codon tree; 'random' with a seed for the ablation).
 */
export function lossFunction(
  kind: 'hxe' | 'xe',
  alpha: number,
  hierarchy: { kind: 'codon' | 'random'; seed?: number } = { kind: 'codon' },
): (logits: Tensor, targets: Tensor) => Tensor {
  if (kind === 'xe') return (logits, targets) => T.crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX });
  if (hierarchy.kind !== 'codon' && hierarchy.kind !== 'random')
    throw new RangeError(`lossFunction: hierarchy must be 'codon' or 'random', got ${String(hierarchy.kind)}`);
  const tree = hierarchy.kind === 'random' ? randomCodonTree(hierarchy.seed ?? 1) : codonTree();
  const table = { ...hxePathTable(tree, alpha), membership: leafMembership(tree) };
  return (logits, targets) => hierarchicalCrossEntropy(logits, targets, table, { ignoreIndex: IGNORE_INDEX });
}

export function batchTensors(batch: LmBatch): { ids: Tensor; targets: Tensor; mask: Tensor; positions: Tensor } {
  return {
    ids: T.tensor(batch.ids, { shape: batch.shape, dtype: 'i32' }),
    targets: T.tensor(batch.targets, { shape: [batch.shape[0] * batch.shape[1]], dtype: 'i32' }),
    mask: T.tensor(batch.attentionMask, { shape: batch.shape, dtype: 'i32' }),
    positions: T.tensor(batch.positions, { shape: batch.shape, dtype: 'i32' }),
  };
}

/** Longest position (exclusive) holding a real token in the batch. */
function positionsReached(batch: LmBatch): number {
  let reach = 0;
  batch.positions.forEach((p, i) => {
    if (batch.attentionMask[i]) reach = Math.max(reach, p + 1);
  });
  return reach;
}

export interface HelmTask extends TrainSetup<HelmModel, LmBatch> {
  source: BatchSource<LmBatch> & { trainedPositions(): number };
}

/** The model, loss, batch source and validation of a HELM MLM/CLM run. */
export function helmTask(model: HelmModel, corpus: CodonCorpus, options: Partial<HelmTaskOptions> = {}): HelmTask {
  const opts = { ...TRAIN_DEFAULTS, ...options };
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1)
    throw new RangeError(`helmTask: batchSize must be an integer ≥ 1, got ${opts.batchSize}`);
  if (!Number.isInteger(opts.length) || opts.length < 2 || opts.length > model.cfg.maxPositions) {
    throw new RangeError(
      `helmTask: length must be an integer in 2..${model.cfg.maxPositions} (the model's maxPositions), ` +
        `got ${opts.length}`,
    );
  }
  if (!(opts.maskProbability > 0 && opts.maskProbability < 1))
    throw new RangeError(`helmTask: maskProbability must be in (0, 1), got ${opts.maskProbability}`);
  const makeBatch = model.cfg.objective === 'mlm' ? mlmBatch : clmBatch;
  const batchOptions = {
    length: opts.length,
    maxPositions: model.cfg.maxPositions,
    maskProbability: opts.maskProbability,
  };
  const objective = lossFunction(opts.loss, opts.alpha, { kind: opts.hierarchy, seed: opts.hierarchySeed });
  const crossEntropy = lossFunction('xe', 0);
  const V = model.cfg.vocabSize;
  const order = sampler(corpus.train, opts.batchSize, opts.seed);
  let trained = 0;
  let nextBatch = 0;

  const validation = helmValidationBatches(corpus, model.cfg, opts);

  const forward = (m: HelmModel, t: ReturnType<typeof batchTensors>) =>
    m.forward(t.ids, t.mask, t.positions).reshape([-1, V]);

  return {
    model,
    loss: (m, batch) => {
      const t = batchTensors(batch);
      const logits = forward(m, t);
      const loss = objective(logits, t.targets);
      // Beside HXE, plain cross-entropy in nats: comparable across losses.
      return opts.loss === 'xe'
        ? loss
        : { loss, metrics: { crossEntropy: noGrad(() => crossEntropy(logits, t.targets)) } };
    },
    source: {
      batch(index) {
        const batch = makeBatch(order.batch(index), seededRandom(mixSeed(opts.seed, index, 1)), batchOptions);
        trained = Math.max(trained, positionsReached(batch));
        nextBatch = index + 1;
        return batch;
      },
      tokens: (batch) => batch.attentionMask.reduce((a, b) => a + b, 0),
      // The data order is a function of (seed, batch index): recorded so a checkpoint says where it stands.
      state: () => ({ trainedPositions: trained, seed: opts.seed, nextBatch, epoch: order.epochOf(nextBatch) }),
      restore(state) {
        trained = Number(state.trainedPositions ?? 0);
        nextBatch = Number(state.nextBatch ?? 0);
      },
      trainedPositions: () => trained,
    },
    async evaluate(m) {
      let loss = 0;
      let ce = 0;
      let correct = 0;
      let count = 0;
      for (const batch of validation) {
        const parts = noGrad(() =>
          T.tidy(() => {
            const t = batchTensors(batch);
            const logits = forward(m, t);
            const scored = T.ne(t.targets, IGNORE_INDEX);
            const hit = T.sum(T.logicalAnd(T.eq(T.argmax(logits, 1), t.targets), scored));
            return [objective(logits, t.targets), crossEntropy(logits, t.targets), hit, T.sum(scored)];
          }),
        );
        const [l, c, hits, n] = await Promise.all(parts.map((p) => p.item()));
        for (const p of parts) p.dispose();
        loss += l!;
        ce += c!;
        correct += hits!;
        count += n!;
      }
      return {
        loss: loss / validation.length,
        crossEntropy: ce / validation.length,
        accuracy: correct / Math.max(1, count),
      };
    },
  };
}

/** Layer groups from the output to the input, for `gradualUnfreeze`: head, blocks top-down, embeddings. */
export function helmUnfreezeGroups(model: HelmModel): string[][] {
  const blocks = Array.from({ length: model.cfg.layers }, (_, i) => [`transformer.h.${model.cfg.layers - 1 - i}`]);
  return [['lm_head', 'transformer.ln_f'], ...blocks, ['transformer.wte', 'transformer.wpe']];
}

/** HELM pre-training: `helmTask` run by the shared trainer. */
export function trainHelm(
  model: HelmModel,
  corpus: CodonCorpus,
  options: Partial<HelmTrainOptions> = {},
  hooks: TrainerHooks = {},
  resume?: TrainerSnapshot,
): Promise<TrainResult> {
  const opts = { ...TRAIN_DEFAULTS, ...options };
  return train(helmTask(model, corpus, opts), opts, hooks, resume);
}
