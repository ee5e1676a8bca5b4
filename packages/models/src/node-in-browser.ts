/**
 * What a browser bundle gets for '@rnagrad/models/node': the same names, and an error on load that
 * names the right entry (the Node entry reads and writes files through node:fs).
 */
export * from './index.js';
export const ECOLI_CDS_PATH = '';
// The Node entry's own names, so a bundle resolves them and reaches the error below.
export const CHECKPOINT_FORMAT = undefined,
  checkpointName = undefined,
  cleanRunFolder = undefined,
  disposeSnapshot = undefined,
  listCheckpoints = undefined,
  loadModel = undefined,
  loadTrainingState = undefined,
  readCheckpointConfig = undefined,
  resolveCheckpoint = undefined,
  saveCheckpointDir = undefined,
  onInterrupt = undefined,
  fileSource = undefined,
  loadRinalmoFile = undefined,
  writeSafetensorsFile = undefined,
  loadNucleotideCorpus = undefined,
  ncrnaPretrainPath = undefined,
  loadArchiveII = undefined,
  loadNrc = undefined,
  loadRegressionCsv = undefined,
  archiveIIPath = undefined,
  nrcPath = undefined,
  sharedDataRoot = undefined,
  loadCodonbertDataset = undefined,
  loadEcoliExpression = undefined;

throw new Error(
  "@rnagrad/models/node is the Node entry (files through node:fs); in a browser import '@rnagrad/models', " +
    'and load the corpus with loadEcoliCds({ url }) or ({ bytes }).',
);
