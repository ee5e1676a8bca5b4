/**
 * @rnagrad/models/node — Node-only parts: checkpoint folders (save, resume, `loadModel`) and
 * Ctrl-C handling. The main entry stays browser-safe.
 */
export {
  CHECKPOINT_FORMAT,
  type CheckpointConfig,
  checkpointName,
  cleanRunFolder,
  disposeSnapshot,
  listCheckpoints,
  loadModel,
  loadTrainingState,
  readCheckpointConfig,
  resolveCheckpoint,
  saveCheckpointDir,
} from './checkpoint-dir.js';
export { type InterruptFlag, onInterrupt } from './interrupt.js';
export { fileSource, loadRinalmoFile, writeSafetensorsFile } from './safetensors-file.js';
export { loadNucleotideCorpus, ncrnaPretrainPath } from './rinalmo-data-file.js';
export {
  loadArchiveII,
  loadNrc,
  loadRegressionCsv,
  archiveIIPath,
  nrcPath,
  sharedDataRoot,
} from './downstream-data-file.js';
export { loadCodonbertDataset, loadEcoliExpression } from './property-data-file.js';
