/**
 * The corpus as both kinds of model read it: codon ids for HELM, nucleotide ids for RiNALMo, with
 * one train/validation split. A user's upload is FASTA (">name" lines) or CSV with a `sequence`
 * column (and `gene_name` or `name`, else rows are numbered). Everything wrong is an error that
 * names the file, the record and the problem, for the page to show.
 */
import {
  CODON_TOKENS,
  CODON_VOCAB,
  type CodonCorpus,
  type NucleotideCorpus,
  NucleotideTokenizer,
  codonCorpus,
  normalizeCodingSequence,
  parseCsv,
  parseFasta,
} from './deps.js';

/** A, C, G, T/U and N; gaps and whitespace are dropped by normalisation. */
const NUCLEOTIDES = 'ACGTUN';

export interface NamedSequence {
  name: string;
  sequence: string;
}

/** Checks one coding sequence; returns it normalised (upper case, U as T, no gaps). */
export function checkCodingSequence(raw: string, what: string): string {
  const sequence = normalizeCodingSequence(raw);
  if (sequence.length === 0) throw new Error(`${what}: the sequence is empty`);
  const bad = [...sequence].findIndex((c) => !NUCLEOTIDES.includes(c));
  if (bad >= 0)
    throw new Error(`${what}: invalid character "${sequence[bad]}" at position ${bad + 1} (allowed: A, C, G, T, U, N)`);
  if (sequence.length < 3) throw new Error(`${what}: ${sequence.length} nucleotides, less than one codon`);
  return sequence;
}

/** The records of a FASTA or CSV text. */
export function parseUpload(name: string, text: string): NamedSequence[] {
  const body = text.replace(/^\uFEFF/, '').trim();
  if (!body) throw new Error(`${name}: the file is empty`);
  let records: NamedSequence[];
  if (body.startsWith('>')) {
    records = parseFasta(body, { sourceName: name }).map((r) => ({
      name: r.id || `line ${r.lineNumber}`,
      sequence: r.sequence,
    }));
  } else {
    const firstLine = body.split('\n', 1)[0]!;
    if (!firstLine.includes(',') && firstLine.trim() !== 'sequence') {
      throw new Error(
        `${name}: not FASTA (no ">" header) and not CSV (no comma in the first line); ` +
          'give FASTA or a CSV with a "sequence" column',
      );
    }
    const { columns, rows } = parseCsv(body, { sourceName: name });
    if (!columns.includes('sequence'))
      throw new Error(`${name}: the CSV has no "sequence" column (columns: ${columns.join(', ')})`);
    const nameColumn = ['gene_name', 'name', 'id'].find((c) => columns.includes(c));
    records = rows.map((r, i) => ({
      name: nameColumn ? r.fields[nameColumn]! : `row ${i + 1}`,
      sequence: r.fields.sequence!,
    }));
  }
  if (records.length === 0) throw new Error(`${name}: no sequences found`);
  return records.map((r) => ({ name: r.name, sequence: checkCodingSequence(r.sequence, `${name}: ${r.name}`) }));
}

export interface AppCorpus {
  name: string;
  /** For HELM: codon ids per sequence (a trailing partial codon dropped). */
  codons: CodonCorpus;
  /** For RiNALMo: nucleotide ids per sequence with <cls> … <eos>, the same split as `codons`. */
  nucleotides: NucleotideCorpus;
  /** No sequence fell into the validation split: validation uses the training sequences. */
  validationFromTrain: boolean;
}

/** Nucleotide token ids of both splits; an empty validation split reuses the training sequences, as HELM's does. */
function nucleotideSplit(train: NamedSequence[], validation: NamedSequence[], source: string): NucleotideCorpus {
  const tokenizer = new NucleotideTokenizer();
  const held = validation.length ? validation : train;
  return {
    train: train.map((r) => tokenizer.encode(r.sequence)),
    validation: held.map((r) => tokenizer.encode(r.sequence)),
    validationIds: held.map((r) => r.name),
    source,
  };
}

/**
 * The upload as a corpus, split by a hash of the name as the bundled one is (with few records the
 * validation split may be empty: validation then uses the training sequences).
 */
export function uploadCorpus(name: string, text: string): AppCorpus {
  const records = parseUpload(name, text);
  const codons = codonCorpus(records);
  if (codons.train.length === 0)
    throw new Error(`${name}: every sequence fell into the validation split; add more sequences`);
  const held = new Set(codons.names.validation);
  const split = (validation: boolean) => records.filter((r) => held.has(r.name) === validation);
  return {
    name,
    codons,
    nucleotides: nucleotideSplit(split(false), split(true), name),
    validationFromTrain: held.size === 0,
  };
}

/**
 * The bundled coding sequences for both kinds of model: the nucleotides are the codons read back
 * letter by letter (the file holds whole A/C/G/T codons only, so nothing is lost), in the same split.
 */
export function bundledCorpus(name: string, codons: CodonCorpus): AppCorpus {
  const letters = (ids: Int32Array) =>
    Array.from(ids, (id) => (id >= CODON_TOKENS.firstCodon ? CODON_VOCAB[id]! : 'NNN')).join('');
  const named = (split: 'train' | 'validation') =>
    codons[split].map((ids, i) => ({ name: codons.names[split][i]!, sequence: letters(ids) }));
  return {
    name,
    codons,
    nucleotides: nucleotideSplit(named('train'), named('validation'), name),
    validationFromTrain: codons.validation.length === 0,
  };
}
