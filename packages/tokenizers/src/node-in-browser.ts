/**
 * What a browser bundle gets for '@rnagrad/tokenizers/node': the same names, and an error on load
 * that names the right entry (file-path readers need node:fs).
 */
const MESSAGE =
  "@rnagrad/tokenizers/node reads files by path and needs Node; in a browser import '@rnagrad/tokenizers' " +
  'and pass the text, or a stream of chunks (e.g. (await fetch(url)).body), ' +
  'to parseFasta / readFasta / readCsv / readCsvColumn / parseCt / parseBpseq / parseDotBracket.';

function nodeOnly(): never {
  throw new Error(MESSAGE);
}

export const readFastaFile = nodeOnly;
export const readCsvFile = nodeOnly;
export const readCsvColumnFile = nodeOnly;
export const readStructureFile = nodeOnly;

throw new Error(MESSAGE);
