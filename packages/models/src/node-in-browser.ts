/**
 * What a browser bundle gets for '@rnagrad/models/node': the same names, and an error on load that
 * names the right entry (the Node entry reads and writes files through node:fs).
 */
export * from './index.js';
export const ECOLI_CDS_PATH = '';

throw new Error(
  "@rnagrad/models/node is the Node entry (files through node:fs); in a browser import '@rnagrad/models', " +
    'and load the corpus with loadEcoliCds({ url }) or ({ bytes }).',
);
