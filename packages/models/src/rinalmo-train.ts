/**
 * RiNALMo masked-LM pre-training on the shared trainer: batches from `RinalmoMlmSource` (BERT
 * masking as in RiNALMo's config), the masked-token cross-entropy, and a validation of masked-token
 * loss and accuracy on fixed batches of the held-out sequences.
 */
import type { NucleotideCorpus, RinalmoMlmBatch } from './rinalmo-data.js';
import { RinalmoMlmSource, evaluateRinalmoMlm, rinalmoBatchTensors } from './rinalmo-data.js';
import { type RinalmoModel, rinalmoMlmLoss } from './rinalmo.js';
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

export interface RinalmoTaskOptions {
  batchSize: number;
  /** Tokens per row at most, <cls> and <eos> included; longer sequences are cropped at random. */
  maxLength: number;
  /** Fixed validation batches (of `batchSize` held-out sequences) evaluated each time. */
  validationBatches: number;
  seed: number;
}

export type RinalmoTrainOptions = TrainerOptions & RinalmoTaskOptions;

/** Defaults for short runs on small machines (RiNALMo itself: lr 1e-4, 2,000 warm-up steps, crops of 1,024). */
export const RINALMO_TRAIN_DEFAULTS: RinalmoTrainOptions = {
  ...TRAINER_DEFAULTS,
  lr: 5e-4,
  minLr: 5e-5,
  batchSize: 8,
  maxLength: 128,
  validationBatches: 8,
};

export interface RinalmoTask extends TrainSetup<RinalmoModel, RinalmoMlmBatch> {
  source: BatchSource<RinalmoMlmBatch>;
}

/** The model, masked-token loss, batch source and validation of a RiNALMo MLM run. */
export function rinalmoTask(
  model: RinalmoModel,
  corpus: NucleotideCorpus,
  options: Partial<RinalmoTaskOptions> = {},
): RinalmoTask {
  const opts = { ...RINALMO_TRAIN_DEFAULTS, ...options };
  if (!model.lm_mask_head) throw new Error('rinalmoTask: the model has no MLM head (mlmHead: false)');
  if (!Number.isInteger(opts.validationBatches) || opts.validationBatches < 1) {
    throw new RangeError(`rinalmoTask: validationBatches must be an integer ≥ 1, got ${opts.validationBatches}`);
  }
  const data = new RinalmoMlmSource(corpus, { batchSize: opts.batchSize, seed: opts.seed, maxLength: opts.maxLength });
  const validation = data.validationBatches({ limit: opts.validationBatches * opts.batchSize });
  let nextBatch = 0;
  return {
    model,
    loss: (m, batch) => {
      const { ids, targets } = rinalmoBatchTensors(batch);
      return rinalmoMlmLoss(m.forward(ids).logits!, targets);
    },
    source: {
      batch(index) {
        nextBatch = index + 1;
        return data.batch(index);
      },
      tokens: (batch) => data.tokens(batch),
      // The data order is a function of (seed, batch index): recorded so a checkpoint says where it stands.
      state: () => ({ seed: opts.seed, nextBatch }),
      restore(state) {
        nextBatch = Number(state.nextBatch ?? 0);
      },
    },
    async evaluate(m) {
      const { loss, accuracy } = await evaluateRinalmoMlm(m, validation);
      // The MLM loss is a cross-entropy in nats: named both ways so callers can treat every model alike.
      return { loss, crossEntropy: loss, accuracy };
    },
  };
}

/** RiNALMo MLM pre-training: `rinalmoTask` run by the shared trainer. */
export function trainRinalmo(
  model: RinalmoModel,
  corpus: NucleotideCorpus,
  options: Partial<RinalmoTrainOptions> = {},
  hooks: TrainerHooks = {},
  resume?: TrainerSnapshot,
): Promise<TrainResult> {
  const opts = { ...RINALMO_TRAIN_DEFAULTS, ...options };
  return train(rinalmoTask(model, corpus, opts), opts, hooks, resume);
}
