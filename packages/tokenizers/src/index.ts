/**
 * @rnagrad/tokenizers — browser-safe tokenizers, codon hierarchy and data readers for RNA
 * language models (RiNALMo nucleotides, HELM codons). File-path readers live in
 * `@rnagrad/tokenizers/node`.
 */
export {
  type BatchEncodeOptions,
  type DecodeOptions,
  type EncodeOptions,
  type TokenBatch,
  type TruncationPolicy,
  padBatch,
} from './batch.js';
export { NucleotideTokenizer, type NucleotideTokenizerOptions, RINALMO_VOCAB } from './nucleotide.js';
export {
  CODON_SPECIAL_TOKENS,
  CODON_VOCAB,
  CODONS,
  CodonTokenizer,
  type CodonTokenizerOptions,
  GENETIC_CODE,
  type ReadingFrameOptions,
  type RemainderPolicy,
  codonToAminoAcid,
  normalizeCodingSequence,
  translateCds,
} from './codon.js';
export {
  type LabelTree,
  type TreeSpec,
  classesUnderNodes,
  leafMembership,
  nodeDepths,
  rootIndex,
  treeFromSpec,
  validateTree,
} from './tree.js';
export { codonTree, randomCodonTree } from './codon-tree.js';
export {
  type HxeEdge,
  type HxeOptions,
  type HxePathTable,
  hxeBreakdown,
  hxeLossReference,
  hxePathTable,
} from './hxe.js';
export { type SeededRandom, seededRandom } from './random.js';
export { ParseError, type TextSource, splitLines, streamLines } from './text.js';
export { type FastaOptions, type FastaRecord, parseFasta, readFasta } from './fasta.js';
export { type CsvOptions, type CsvRow, type CsvValue, parseCsv, readCsv, readCsvColumn } from './csv.js';
export {
  type SecondaryStructure,
  type StructureReadOptions,
  UNPAIRED,
  basePairs,
  dotBracketFromPartners,
  formatBpseq,
  formatCt,
  formatDotBracket,
  parseBpseq,
  parseCt,
  parseDotBracket,
  partnersFromDotBracket,
  partnersFromPairs,
} from './structure.js';
export { type BucketBatchOptions, type IndexedTokenBatch, bucketBatches, bucketedTokenBatches } from './batcher.js';
