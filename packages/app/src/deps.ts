/** The engine as the app uses it: one place that names the packages (the worker runs them unchanged). */
export * as T from '@rnagrad/tensor';
export {
  HelmModel, helmTask, train, generate, inspectHelm, encodeSafetensors, decodeSafetensors, bytesSource, readSafetensorsIndex,
  loadEcoliCds, codonCorpus, lineChartSvg, CODON_TOKENS,
  type HelmConfig, type StepEntry, type EvalEntry, type GeneratedSequence, type InspectedTensor, type TrainerSnapshot,
  type CodonCorpus, type Series,
} from '@rnagrad/models';
export {
  CODON_VOCAB, CodonTokenizer, codonTree, classesUnderNodes, hxeBreakdown, parseFasta, parseCsv, normalizeCodingSequence,
  type HxeEdge,
} from '@rnagrad/tokenizers';
