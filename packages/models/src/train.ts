/**
 * The HELM pre-training loop: sample a batch, forward, loss (flat or hierarchical cross-entropy),
 * backward, clip, AdamW, all inside one `tidy` so GPU memory stays flat; the loss is read back
 * once per logged step.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { noGrad, zeroGrad } from '@rnagrad/autograd';
import { codonTree, hxePathTable, leafMembership } from '@rnagrad/tokenizers';
import { type CodonCorpus, IGNORE_INDEX, type LmBatch, clmBatch, mlmBatch, sampler } from './data.js';
import type { HelmModel } from './helm.js';
import { AdamW, cosineSchedule } from './optim.js';

export interface HelmTrainOptions {
  steps: number;
  batchSize: number;
  /** Tokens per row, <cls>/<eos> included. */
  length: number;
  loss: 'hxe' | 'xe';
  /** HXE's α (HELM: 0.2–0.6). */
  alpha: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  maxGradNorm: number;
  seed: number;
  /** Validate every this many steps (and at the end) on `validationBatches` fixed batches. */
  evalEvery: number;
  validationBatches: number;
}

export const TRAIN_DEFAULTS: HelmTrainOptions = {
  steps: 200,
  batchSize: 16,
  length: 64,
  loss: 'hxe',
  alpha: 0.2,
  lr: 3e-3,
  minLr: 3e-4,
  warmupSteps: 20,
  weightDecay: 0.01,
  maxGradNorm: 1,
  seed: 42,
  evalEvery: 50,
  validationBatches: 4,
};

export interface LogEntry {
  step: number;
  /** Training loss of this step (the chosen objective). */
  loss: number;
  lr: number;
  /** Wall time of the step including the loss readback. */
  ms: number;
  /** Validation: mean of the objective and, for comparability, of plain cross-entropy. */
  validation?: ValidationResult;
  /** On step 0 only: validation of the untrained model, before the first update. */
  initialValidation?: ValidationResult;
}

export interface ValidationResult {
  loss: number;
  crossEntropy: number;
  accuracy: number;
}

/** The loss head: logits [N, V] and targets [N] → scalar mean over non-ignored rows. */
export function lossFunction(kind: 'hxe' | 'xe', alpha: number): (logits: Tensor, targets: Tensor) => Tensor {
  if (kind === 'xe') return (logits, targets) => T.crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX });
  const tree = codonTree();
  const table = { ...hxePathTable(tree, alpha), membership: leafMembership(tree) };
  return (logits, targets) => T.hierarchicalCrossEntropy(logits, targets, table, { ignoreIndex: IGNORE_INDEX });
}

function toTensors(batch: LmBatch): { ids: Tensor; targets: Tensor; mask: Tensor } {
  return {
    ids: T.tensor(batch.ids, { shape: batch.shape, dtype: 'i32' }),
    targets: T.tensor(batch.targets, { shape: [batch.shape[0] * batch.shape[1]], dtype: 'i32' }),
    mask: T.tensor(batch.attentionMask, { shape: batch.shape, dtype: 'i32' }),
  };
}

export async function trainHelm(model: HelmModel, corpus: CodonCorpus, options: Partial<HelmTrainOptions> = {}, onLog?: (entry: LogEntry) => void): Promise<LogEntry[]> {
  const opts = { ...TRAIN_DEFAULTS, ...options };
  const makeBatch = model.cfg.objective === 'mlm' ? mlmBatch : clmBatch;
  const objective = lossFunction(opts.loss, opts.alpha);
  const crossEntropy = lossFunction('xe', 0);
  const optimizer = new AdamW(model.parameters(), { lr: opts.lr, weightDecay: opts.weightDecay, maxGradNorm: opts.maxGradNorm });
  const train = sampler(corpus.train, opts.batchSize, opts.seed);
  // Fixed validation batches: same windows and masks at every evaluation.
  const valSampler = sampler(corpus.validation.length ? corpus.validation : corpus.train, opts.batchSize, opts.seed + 1);
  const validation = Array.from({ length: opts.validationBatches }, () => makeBatch(valSampler.next(), valSampler.rng, { length: opts.length }));
  const V = model.cfg.vocabSize;
  const history: LogEntry[] = [];

  const evaluate = async () => {
    model.eval();
    let loss = 0;
    let ce = 0;
    let correct = 0;
    let count = 0;
    for (const batch of validation) {
      const [l, c, hits, n] = noGrad(() =>
        T.tidy(() => {
          const { ids, targets, mask } = toTensors(batch);
          const logits = model.forward(ids, mask).reshape([-1, V]);
          const scored = T.ne(targets, IGNORE_INDEX);
          const hit = T.sum(T.logicalAnd(T.eq(T.argmax(logits, 1), targets), scored));
          return [objective(logits, targets), crossEntropy(logits, targets), hit, T.sum(scored)];
        }),
      );
      loss += await l.item();
      ce += await c.item();
      correct += await hits.item();
      count += await n.item();
      for (const t of [l, c, hits, n]) t.dispose();
    }
    model.train();
    return { loss: loss / validation.length, crossEntropy: ce / validation.length, accuracy: correct / Math.max(1, count) };
  };

  const initial = opts.steps > 0 ? await evaluate() : undefined;
  for (let step = 0; step < opts.steps; step++) {
    const started = performance.now();
    const lr = cosineSchedule(step, { maxLr: opts.lr, minLr: opts.minLr, warmupSteps: opts.warmupSteps, totalSteps: opts.steps });
    const batch = makeBatch(train.next(), train.rng, { length: opts.length });
    const loss = T.tidy(() => {
      const { ids, targets, mask } = toTensors(batch);
      const l = objective(model.forward(ids, mask).reshape([-1, V]), targets);
      l.backward();
      return l;
    });
    optimizer.update(lr);
    zeroGrad(model.parameters());
    const value = await loss.item();
    loss.dispose();
    if (!Number.isFinite(value)) throw new Error(`trainHelm: loss became ${value} at step ${step}`);
    const entry: LogEntry = { step, loss: value, lr, ms: performance.now() - started };
    if (step === 0) entry.initialValidation = initial;
    if ((step + 1) % opts.evalEvery === 0 || step === opts.steps - 1) entry.validation = await evaluate();
    history.push(entry);
    onLog?.(entry);
  }
  optimizer.dispose();
  return history;
}
