/**
 * @rnagrad/models — modules with PyTorch-style parameter names, HELM's codon language model
 * (masked and causal), the shared trainer, inference (generate, score, embed) and safetensors
 * checkpoints. Browser-safe; checkpoint folders and Ctrl-C handling are in `@rnagrad/models/node`.
 */
export { Module, normalInit, uniformInit } from './module.js';
export { Linear, Conv1D, LayerNorm, Embedding, Dropout } from './layers.js';
export { HelmModel, HELM_DEFAULTS, BlockList, type HelmConfig } from './helm.js';
export { MultiHeadAttention, type MultiHeadAttentionOptions } from './attention.js';
export { codonCorpus, codonCorpusFromCsv, loadEcoliCds, mlmBatch, clmBatch, sampler, mixSeed, IGNORE_INDEX, CODON_TOKENS, type CodonCorpus, type LmBatch, type BatchOptions } from './data.js';
export { AdamW, cosineSchedule, isNoDecayParameter, type AdamWOptions, type AdamWState } from './optim.js';
export {
  train,
  gradualUnfreeze,
  matchesPattern,
  checkPatterns,
  TRAINER_DEFAULTS,
  type BatchSource,
  type LossFunction,
  type EarlyStopping,
  type UnfreezeStage,
  type TrainerOptions,
  type TrainerHooks,
  type TrainerSnapshot,
  type TrainSetup,
  type TrainResult,
  type TrainHistory,
  type StepEntry,
  type EvalEntry,
} from './trainer.js';
export { trainHelm, helmTask, helmUnfreezeGroups, lossFunction, batchTensors, TRAIN_DEFAULTS, type HelmTask, type HelmTaskOptions, type HelmTrainOptions } from './train.js';
export {
  generate,
  score,
  embed,
  samplingDistribution,
  sampleIndex,
  describeCodons,
  untrainedPositionsWarning,
  GENERATION_TOKENS,
  SAMPLING_DEFAULTS,
  type SamplingOptions,
  type GenerateOptions,
  type GeneratedSequence,
  type ScoreResult,
  type EmbedOptions,
  type Embeddings,
  type ProgressCallback,
} from './inference.js';
export { registerModelKind, modelKind, kindOf, type ModelKind } from './registry.js';
export { encodeSafetensors, decodeSafetensors, saveCheckpoint, loadCheckpoint, writeFileAtomic, type DecodedCheckpoint } from './checkpoint.js';
export { lineChartSvg, asciiChart, smooth, type Series } from './plot.js';
