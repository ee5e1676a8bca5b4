/**
 * @rnagrad/models — modules with PyTorch-style parameter names, HELM's codon language model
 * (masked and causal), the shared trainer, inference (generate, score, embed) and safetensors
 * checkpoints. This is the browser-safe entry; plain Node gets ./node.ts (also `@rnagrad/models/node`),
 * which adds file helpers, checkpoint folders (save, resume, `loadModel`) and Ctrl-C handling.
 */
export { Module, normalInit, uniformInit } from './module.js';
export { Linear, Conv1D, LayerNorm, Embedding, Dropout } from './layers.js';
export {
  HelmModel,
  HELM_DEFAULTS,
  BlockList,
  attentionProbabilities,
  sinusoidalPositions,
  type HelmConfig,
  type Recorder,
} from './helm.js';
export { inspectHelm, sourceOfTensor, type HelmInspection, type InspectedTensor } from './inspect.js';
export { CodonNgram, type NgramCrossEntropy } from './ngram.js';
export { TextCnnHead, CodonConv, TEXTCNN_DEFAULTS, type TextCnnConfig } from './textcnn.js';
export {
  finetuneProperty,
  PropertyModel,
  PROPERTY_TRAIN_DEFAULTS,
  type PropertyFinetuneMode,
  type PropertyTrainOptions,
  type PropertyResult,
  type PropertyMetrics,
} from './property-train.js';
export { spearman, pearson, auroc, accuracy, averageRanks } from './metrics.js';
export {
  codonbertDatasetFromCsv,
  ecoliExpressionFromCsv,
  CODONBERT_FILES,
  ECOLI_EXPRESSION_FILE,
  type PropertyDataset,
  type PropertyExample,
  type CodonbertDatasetName,
} from './property-data.js';
export { MultiHeadAttention, type MultiHeadAttentionOptions } from './attention.js';
export {
  codonCorpus,
  codonCorpusFromCsv,
  codonCorpusFromBytes,
  loadEcoliCds,
  ECOLI_CDS_FILE,
  type CorpusSource,
  mlmBatch,
  clmBatch,
  sampler,
  mixSeed,
  IGNORE_INDEX,
  CODON_TOKENS,
  type CodonCorpus,
  type LmBatch,
  type BatchOptions,
} from './data.js';
// HELM's hierarchical cross-entropy: an op added outside the core engine (its kernels, the op, and
// its gradient rule registered with autograd), the worked example of extending rnagrad.
export * from './hxe/kernel.js';
export * from './hxe/op.js';
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
export {
  trainHelm,
  helmTask,
  helmValidationBatches,
  helmUnfreezeGroups,
  lossFunction,
  batchTensors,
  TRAIN_DEFAULTS,
  type HelmTask,
  type HelmTaskOptions,
  type HelmTrainOptions,
} from './train.js';
export {
  rinalmoTask,
  trainRinalmo,
  RINALMO_TRAIN_DEFAULTS,
  type RinalmoTask,
  type RinalmoTaskOptions,
  type RinalmoTrainOptions,
} from './rinalmo-train.js';
export { embedRinalmo, type RinalmoEmbedOptions, type RinalmoEmbeddings } from './rinalmo-embed.js';
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
export { encodeSafetensors, decodeSafetensors, type DecodedCheckpoint } from './checkpoint.js';
// Browser stand-ins that name the entry to use; the Node entry (./node.ts) replaces them.
export { saveCheckpoint, loadCheckpoint, writeFileAtomic } from './node-only.js';
export { lineChartSvg, asciiChart, smooth, type Series } from './plot.js';
export {
  RinalmoModel,
  RinalmoBlock,
  SwiGLU,
  RINALMO_CONFIGS,
  RINALMO_TOKENS,
  rinalmoConfig,
  rinalmoFfnDim,
  rinalmoMlmLoss,
  type RinalmoConfig,
  type RinalmoSize,
  type RinalmoOutput,
} from './rinalmo.js';
export {
  loadRinalmoWeights,
  detectRinalmoLayout,
  inferRinalmoConfig,
  rinalmoExportEntries,
  rinalmoExportMetadata,
  MULTIMOLECULE_VOCAB,
  MULTIMOLECULE_VOCAB_26,
  type RinalmoLayout,
  type RinalmoKeyLayout,
  type RinalmoLoadOptions,
  type RinalmoLoadReport,
  type RinalmoExportOptions,
} from './rinalmo-checkpoint.js';
export {
  bytesSource,
  blobSource,
  readSafetensorsIndex,
  readSafetensorsTensor,
  decodeFloats,
  encodeFloats,
  safetensorsChunks,
  safetensorsBytes,
  SafetensorsError,
  FLOAT_DTYPES,
  type ByteSource,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsIndex,
  type TensorToWrite,
  type WritableDType,
} from './safetensors-stream.js';
export {
  nucleotideCorpus,
  rinalmoMlmBatch,
  rinalmoBatchTensors,
  evaluateRinalmoMlm,
  RinalmoMlmSource,
  RINALMO_MASKING,
  IGNORE_TARGET,
  type NucleotideCorpus,
  type RinalmoMlmBatch,
  type MlmMaskingOptions,
  type RinalmoMlmSourceOptions,
} from './rinalmo-data.js';
export {
  canPair,
  pairCandidates,
  pairsAboveThreshold,
  predictPairs,
  structureScores,
  meanScores,
  tuneThreshold,
  MIN_PAIR_SEPARATION,
  THRESHOLD_GRID,
  type PairCandidates,
  type StructureScores,
  type ThresholdChoice,
} from './secondary-structure.js';
export {
  archiveIIFamily,
  archiveIIRecords,
  archiveIIFromStructures,
  leaveOneFamilyOut,
  nrcDataset,
  regressionDataset,
  fitStandardizer,
  standardize,
  unstandardize,
  NRC_CLASSES,
  type StructureRecord,
  type ArchiveIIOptions,
  type FamilySplit,
  type LabelledSequence,
  type ClassificationDataset,
  type ValuedSequence,
  type RegressionDataset,
  type RegressionCsvOptions,
  type Standardizer,
} from './downstream-data.js';
export {
  classificationMetrics,
  regressionMetrics,
  type ClassScores,
  type ClassificationMetrics,
  type RegressionMetrics,
} from './downstream-metrics.js';
export {
  SecondaryStructureHead,
  ClassificationHead,
  RegressionHead,
  pairLoss,
  type SecondaryStructureHeadConfig,
  type ClassificationHeadConfig,
  type RegressionHeadConfig,
} from './rinalmo-heads.js';
export {
  RinalmoDownstream,
  HEAD_DEFAULTS,
  finetuneFreezing,
  secondaryStructureTask,
  classificationTask,
  cachedClassificationTask,
  clsFeatures,
  regressionTask,
  evaluateStructures,
  encodeSequences,
  type DownstreamTask,
  type RinalmoDownstreamConfig,
  type RinalmoFinetuneMode,
  type FinetuneTask,
  type StructureEvaluation,
  type StructureTaskOptions,
  type SequenceTaskOptions,
  type StructureBatch,
  type SequenceBatch,
  type ClassificationBatch,
  type FeatureBatch,
  type CachedFeatureOptions,
  type RegressionBatch,
} from './rinalmo-finetune.js';
