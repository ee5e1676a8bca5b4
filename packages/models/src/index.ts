/**
 * @rnagrad/models — modules with PyTorch-style parameter names, HELM's codon language model
 * (masked and causal) with its training loop, and safetensors checkpoints. This is the browser-safe
 * entry; plain Node gets ./node.ts, which adds the file helpers.
 */
export { Module, normalInit, uniformInit } from './module.js';
export { Linear, Conv1D, LayerNorm, Embedding, Dropout } from './layers.js';
export { HelmModel, HELM_DEFAULTS, BlockList, type HelmConfig } from './helm.js';
export { MultiHeadAttention, type MultiHeadAttentionOptions } from './attention.js';
export { codonCorpusFromCsv, codonCorpusFromBytes, loadEcoliCds, ECOLI_CDS_FILE, type CorpusSource, mlmBatch, clmBatch, sampler, IGNORE_INDEX, type CodonCorpus, type LmBatch, type BatchOptions } from './data.js';
export { AdamW, cosineSchedule, type AdamWOptions } from './optim.js';
export { trainHelm, lossFunction, TRAIN_DEFAULTS, type HelmTrainOptions, type LogEntry, type ValidationResult } from './train.js';
export { encodeSafetensors, decodeSafetensors, type DecodedCheckpoint } from './checkpoint.js';
// Browser stand-ins that name the entry to use; the Node entry (./node.ts) replaces them.
export { saveCheckpoint, loadCheckpoint, writeFileAtomic } from './node-only.js';
export { lineChartSvg, asciiChart, smooth, type Series } from './plot.js';
