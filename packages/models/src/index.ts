/**
 * @rnagrad/models — modules with PyTorch-style parameter names, HELM's codon language model
 * (masked and causal) with its training loop, and safetensors checkpoints.
 */
export { Module, normalInit, uniformInit } from './module.js';
export { Linear, Conv1D, LayerNorm, Embedding, Dropout } from './layers.js';
export { HelmModel, HELM_DEFAULTS, BlockList, type HelmConfig } from './helm.js';
export { MultiHeadAttention, type MultiHeadAttentionOptions } from './attention.js';
export { codonCorpusFromCsv, loadEcoliCds, mlmBatch, clmBatch, sampler, IGNORE_INDEX, type CodonCorpus, type LmBatch, type BatchOptions } from './data.js';
export { AdamW, cosineSchedule, type AdamWOptions } from './optim.js';
export { trainHelm, lossFunction, TRAIN_DEFAULTS, type HelmTrainOptions, type LogEntry, type ValidationResult } from './train.js';
export { encodeSafetensors, decodeSafetensors, saveCheckpoint, loadCheckpoint, writeFileAtomic, type DecodedCheckpoint } from './checkpoint.js';
export { lineChartSvg, asciiChart, smooth, type Series } from './plot.js';
export {
  RinalmoModel, RinalmoBlock, SwiGLU, RINALMO_CONFIGS, RINALMO_TOKENS, rinalmoConfig, rinalmoFfnDim, rinalmoMlmLoss,
  type RinalmoConfig, type RinalmoSize, type RinalmoOutput,
} from './rinalmo.js';
export {
  loadRinalmoWeights, detectRinalmoLayout, inferRinalmoConfig, rinalmoExportEntries, rinalmoExportMetadata,
  MULTIMOLECULE_VOCAB, MULTIMOLECULE_VOCAB_26,
  type RinalmoLayout, type RinalmoKeyLayout, type RinalmoLoadOptions, type RinalmoLoadReport, type RinalmoExportOptions,
} from './rinalmo-checkpoint.js';
export {
  bytesSource, blobSource, readSafetensorsIndex, readSafetensorsTensor, decodeFloats, encodeFloats, safetensorsChunks,
  safetensorsBytes, SafetensorsError, FLOAT_DTYPES,
  type ByteSource, type SafetensorsDType, type SafetensorsEntry, type SafetensorsIndex, type TensorToWrite, type WritableDType,
} from './safetensors-stream.js';
export {
  nucleotideCorpus, rinalmoMlmBatch, rinalmoBatchTensors, evaluateRinalmoMlm, RinalmoMlmSource, RINALMO_MASKING, IGNORE_TARGET,
  type NucleotideCorpus, type RinalmoMlmBatch, type MlmMaskingOptions, type RinalmoMlmSourceOptions,
} from './rinalmo-data.js';
