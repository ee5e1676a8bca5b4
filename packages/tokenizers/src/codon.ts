import {
  type BatchEncodeOptions,
  type DecodeOptions,
  type EncodeOptions,
  type TokenBatch,
  encodeRows,
  tokenAt,
  truncateTokens,
} from './batch.js';

/** Nucleotides in the order that makes codon ids follow ASCII order: A=0, C=1, G=2, T=3. */
const BASES = 'ACGT';

/** HELM's special tokens, ASCII-sorted exactly as the hierarchical loss numbers its classes. */
export const CODON_SPECIAL_TOKENS = Object.freeze([
  '<cls>',
  '<distill_token>',
  '<eos>',
  '<mask>',
  '<pad>',
  '<unk>',
] as const);

/** The 64 codons in id order (AAA, AAC, …, TTT). */
export const CODONS: readonly string[] = Object.freeze(
  Array.from({ length: 64 }, (_, i) => BASES[i >> 4]! + BASES[(i >> 2) & 3]! + BASES[i & 3]!),
);

/**
 * HELM's 70-token vocabulary in the HXE (tree class) order: the ASCII sort of all labels,
 * so specials 0–5 and codon id = 6 + 16a + 4b + c with A,C,G,T = 0..3 (AAA=6, ATG=20, TTT=69).
 * HELM's XE baseline used a different order; HXE-trained models use this one.
 */
export const CODON_VOCAB: readonly string[] = Object.freeze([...CODON_SPECIAL_TOKENS, ...CODONS]);

/**
 * Standard genetic code (NCBI table 1) with bases in T, C, A, G order, the conventional layout
 * of the codon table; `*` marks a stop.
 */
const STANDARD_CODE_TCAG = 'FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG';

/** Codon (DNA alphabet, upper case) → one-letter amino acid, `*` for stop codons. */
export const GENETIC_CODE: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(
    Array.from(STANDARD_CODE_TCAG, (aminoAcid, i) => {
      const codon = 'TCAG'[i >> 4]! + 'TCAG'[(i >> 2) & 3]! + 'TCAG'[i & 3]!;
      return [codon, aminoAcid];
    }),
  ),
);

/**
 * What to do with the 1–2 nucleotides left after the last full codon:
 * - `'drop'`: discard them silently, as HELM does (default).
 * - `'warn'`: discard them and report it once per tokenizer (a translation call reports each time).
 * - `'error'`: throw, naming the sequence length.
 */
export type RemainderPolicy = 'drop' | 'warn' | 'error';

export interface ReadingFrameOptions {
  remainder?: RemainderPolicy;
  /** Receives the `'warn'` message; defaults to `console.warn`. */
  warn?: (message: string) => void;
}

export type CodonTokenizerOptions = ReadingFrameOptions;

const GAPS_AND_WHITESPACE = /[\s-]+/g;

/**
 * HELM's sequence clean-up: remove gaps, upper-case, read U as T. HELM only strips whitespace at
 * the ends; here all whitespace is removed, because inner whitespace would otherwise shift the
 * reading frame and turn every later codon into garbage.
 */
export function normalizeCodingSequence(sequence: string): string {
  return sequence.replace(GAPS_AND_WHITESPACE, '').toUpperCase().replaceAll('U', 'T');
}

/** Number of full codons in a normalized sequence, after applying the remainder policy. */
function codonCount(normalized: string, policy: RemainderPolicy, report: (message: string) => void): number {
  const remainder = normalized.length % 3;
  if (remainder !== 0 && policy !== 'drop') {
    const message =
      `sequence length ${normalized.length} (after removing gaps and whitespace) is not a multiple of 3: ` +
      `${remainder} trailing nucleotide${remainder === 1 ? '' : 's'}`;
    if (policy === 'error') throw new RangeError(message);
    report(`${message} dropped`);
  }
  return (normalized.length - remainder) / 3;
}

function baseIndex(code: number): number {
  switch (code) {
    case 65:
      return 0; // A
    case 67:
      return 1; // C
    case 71:
      return 2; // G
    case 84:
      return 3; // T
    default:
      return -1;
  }
}

/** Vocabulary id of the codon at `offset` in a normalized sequence, or -1 if it is not a plain ACGT codon. */
function codonIndexAt(normalized: string, offset: number): number {
  const a = baseIndex(normalized.charCodeAt(offset));
  const b = baseIndex(normalized.charCodeAt(offset + 1));
  const c = baseIndex(normalized.charCodeAt(offset + 2));
  if (a < 0 || b < 0 || c < 0) return -1;
  return 16 * a + 4 * b + c;
}

/**
 * One-letter amino acid for a codon (case-insensitive, U read as T); `*` for stops and `X` for
 * codons containing ambiguous or unknown letters such as N.
 */
export function codonToAminoAcid(codon: string): string {
  const normalized = normalizeCodingSequence(codon);
  if (normalized.length !== 3) throw new RangeError(`a codon has 3 nucleotides, got '${codon}'`);
  return GENETIC_CODE[normalized] ?? 'X';
}

/** Translates a coding sequence from its first nucleotide with the standard code (stops become `*`). */
export function translateCds(sequence: string, options: ReadingFrameOptions = {}): string {
  const normalized = normalizeCodingSequence(sequence);
  const count = codonCount(normalized, options.remainder ?? 'drop', options.warn ?? console.warn);
  let protein = '';
  for (let i = 0; i < count; i++) protein += GENETIC_CODE[normalized.slice(3 * i, 3 * i + 3)] ?? 'X';
  return protein;
}

/**
 * HELM's codon tokenizer (non-overlapping 3-mers from position 0) in the HXE vocabulary order.
 * Codons containing anything but A/C/G/T/U become `<unk>`; the trailing 1–2 nucleotides follow
 * the `remainder` policy; long sequences follow the `truncation` policy of `encode`.
 */
export class CodonTokenizer {
  readonly vocab: readonly string[] = CODON_VOCAB;
  readonly vocabSize = CODON_VOCAB.length;
  readonly clsId = 0;
  readonly distillId = 1;
  readonly eosId = 2;
  readonly maskId = 3;
  readonly padId = 4;
  readonly unkId = 5;
  private readonly codonOffset = CODON_SPECIAL_TOKENS.length;
  private readonly remainder: RemainderPolicy;
  private readonly warn: (message: string) => void;
  private warned = false;
  private readonly ids = new Map<string, number>(CODON_VOCAB.map((token, id) => [token, id]));

  constructor(options: CodonTokenizerOptions = {}) {
    this.remainder = options.remainder ?? 'drop';
    this.warn = options.warn ?? console.warn;
  }

  /** Id of an exact vocabulary token (`'ATG'`, `'<mask>'`); throws for anything else. */
  tokenToId(token: string): number {
    const id = this.ids.get(token);
    if (id === undefined) throw new RangeError(`'${token}' is not in the HELM codon vocabulary`);
    return id;
  }

  idToToken(id: number): string {
    return tokenAt(this.vocab, id);
  }

  encode(sequence: string, options: EncodeOptions = {}): Int32Array {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const normalized = normalizeCodingSequence(sequence);
    const count = codonCount(normalized, this.remainder, (message) => this.warnOnce(message));
    const ids = new Int32Array(count + (addSpecialTokens ? 2 : 0));
    let n = 0;
    if (addSpecialTokens) ids[n++] = this.clsId;
    for (let i = 0; i < count; i++) {
      const codon = codonIndexAt(normalized, 3 * i);
      ids[n++] = codon < 0 ? this.unkId : this.codonOffset + codon;
    }
    if (addSpecialTokens) ids[n++] = this.eosId;
    return truncateTokens(ids, options.maxLength, options.truncation ?? 'hard', this.eosId);
  }

  encodeBatch(sequences: readonly string[], options: BatchEncodeOptions = {}): TokenBatch {
    return encodeRows(sequences, (sequence) => this.encode(sequence, options), this.padId, options.padTo);
  }

  /** Joins the tokens into a codon string; `separator` (default none) goes between tokens. */
  decode(ids: ArrayLike<number>, options: DecodeOptions & { separator?: string } = {}): string {
    const skipSpecialTokens = options.skipSpecialTokens ?? true;
    const framing = new Set([this.clsId, this.eosId, this.padId, this.distillId]);
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const token = tokenAt(this.vocab, id);
      if (!(skipSpecialTokens && framing.has(id))) tokens.push(token);
    }
    return tokens.join(options.separator ?? '');
  }

  /** Warns about a dropped remainder only once, so a corpus of ragged sequences does not flood the log. */
  private warnOnce(message: string): void {
    if (this.warned) return;
    this.warned = true;
    this.warn(`${message} (further remainders from this tokenizer are dropped without warning)`);
  }
}
