import {
  type BatchEncodeOptions,
  type DecodeOptions,
  type EncodeOptions,
  type TokenBatch,
  encodeRows,
  tokenAt,
  truncateTokens,
} from './batch.js';

/**
 * RiNALMo's 22-token alphabet in its id order (specials first, then IUPAC letters, inosine `I`
 * and the gap `-`). Pretrained embedding rows are indexed by these ids, so the order is fixed.
 */
// prettier-ignore
export const RINALMO_VOCAB = Object.freeze([
  '<cls>', '<pad>', '<eos>', '<unk>', '<mask>',
  'A', 'C', 'G', 'T', 'I', 'R', 'Y', 'K', 'M', 'S', 'W', 'B', 'D', 'H', 'V', 'N', '-',
] as const);

export interface NucleotideTokenizerOptions {
  /**
   * Throw on characters outside the alphabet, naming the character and its position,
   * instead of mapping them to `<unk>` as RiNALMo does (default false).
   */
  strict?: boolean;
}

const NOT_IN_ALPHABET = -1;
const SKIPPED = -2;

/** ASCII code → token id, with case folded and U read as T; whitespace is marked for skipping. */
function buildCharTable(): Int8Array {
  const table = new Int8Array(128).fill(NOT_IN_ALPHABET);
  RINALMO_VOCAB.forEach((token, id) => {
    if (token.length !== 1) return;
    table[token.charCodeAt(0)] = id;
    table[token.toLowerCase().charCodeAt(0)] = id;
  });
  const t = RINALMO_VOCAB.indexOf('T');
  table['U'.charCodeAt(0)] = t;
  table['u'.charCodeAt(0)] = t;
  for (const space of ' \t\n\r\v\f') table[space.charCodeAt(0)] = SKIPPED;
  return table;
}

const CHAR_TABLE = buildCharTable();

/**
 * Character-level tokenizer matching RiNALMo's `Alphabet`: upper-cases, reads U as T (the model
 * was trained on T), maps unknown characters to `<unk>`, and frames with `<cls>` … `<eos>`.
 * Whitespace is removed (RiNALMo would map it to `<unk>`, but it is never sequence content;
 * wrapped or pasted sequences should not grow unknown tokens).
 */
export class NucleotideTokenizer {
  readonly vocab: readonly string[] = RINALMO_VOCAB;
  readonly vocabSize = RINALMO_VOCAB.length;
  readonly clsId = 0;
  readonly padId = 1;
  readonly eosId = 2;
  readonly unkId = 3;
  readonly maskId = 4;
  private readonly strict: boolean;
  private readonly ids = new Map<string, number>(RINALMO_VOCAB.map((token, id) => [token, id]));

  constructor(options: NucleotideTokenizerOptions = {}) {
    this.strict = options.strict ?? false;
  }

  /** Id of an exact vocabulary token (`'A'`, `'<mask>'`); throws for anything else. */
  tokenToId(token: string): number {
    const id = this.ids.get(token);
    if (id === undefined) throw new RangeError(`'${token}' is not in the RiNALMo vocabulary`);
    return id;
  }

  idToToken(id: number): string {
    return tokenAt(this.vocab, id);
  }

  encode(sequence: string, options: EncodeOptions = {}): Int32Array {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const ids = new Int32Array(sequence.length + 2);
    let n = 0;
    if (addSpecialTokens) ids[n++] = this.clsId;
    for (let position = 0; position < sequence.length; position++) {
      const code = sequence.charCodeAt(position);
      const id = code < 128 ? CHAR_TABLE[code]! : NOT_IN_ALPHABET;
      if (id === SKIPPED) continue;
      if (id === NOT_IN_ALPHABET) {
        if (this.strict) {
          throw new SyntaxError(`unexpected character ${JSON.stringify(sequence[position])} at position ${position}`);
        }
        ids[n++] = this.unkId;
      } else {
        ids[n++] = id;
      }
    }
    if (addSpecialTokens) ids[n++] = this.eosId;
    return truncateTokens(ids.slice(0, n), options.maxLength, options.truncation ?? 'hard', this.eosId);
  }

  encodeBatch(sequences: readonly string[], options: BatchEncodeOptions = {}): TokenBatch {
    return encodeRows(sequences, (sequence) => this.encode(sequence, options), this.padId, options.padTo);
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skipSpecialTokens = options.skipSpecialTokens ?? true;
    let text = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const token = tokenAt(this.vocab, id);
      if (skipSpecialTokens && (id === this.clsId || id === this.eosId || id === this.padId)) continue;
      text += token;
    }
    return text;
  }
}
