/**
 * Shared shapes and helpers for turning per-sequence token ids into the flat,
 * right-padded arrays that GPU kernels consume.
 */

/**
 * What happens when a tokenized sequence (specials included) is longer than `maxLength`:
 * - `'hard'`: keep the first `maxLength` tokens. This is what HELM's dataset does, so the
 *   `<eos>` of a long sequence is lost and the model never sees where it ended.
 * - `'keepEos'`: keep the first `maxLength - 1` tokens and re-append `<eos>`, so every row
 *   stays framed (only applies when the sequence ends in `<eos>`, otherwise acts like `'hard'`).
 * - `'error'`: throw, for pipelines where silent truncation would corrupt the data.
 */
export type TruncationPolicy = 'hard' | 'keepEos' | 'error';

export interface EncodeOptions {
  /** Prepend `<cls>` and append `<eos>` (default true, as both RiNALMo and HELM do). */
  addSpecialTokens?: boolean;
  /** Longest allowed token sequence, specials included; unset means no truncation. */
  maxLength?: number;
  /** Applies only when `maxLength` is set. Default `'hard'` (HELM's behaviour). */
  truncation?: TruncationPolicy;
}

export interface BatchEncodeOptions extends EncodeOptions {
  /**
   * `'longest'` (default) right-pads every row to the longest row of the batch, as RiNALMo
   * and HELM collate; a number pads every row to exactly that length. A row longer than a
   * fixed `padTo` is an error rather than a silent cut: set `maxLength` to truncate.
   */
  padTo?: 'longest' | number;
}

export interface DecodeOptions {
  /**
   * Drop the framing tokens `<cls>`, `<eos>`, `<pad>` (and `<distill_token>` for codons); default
   * true. `<unk>` and `<mask>` stand for a sequence position, so they are always written out
   * as their token text to keep positions aligned.
   */
  skipSpecialTokens?: boolean;
}

/** A right-padded batch in row-major layout, ready to upload as a [batch, length] tensor. */
export interface TokenBatch {
  /** Token ids, `shape[0] * shape[1]` entries, row-major. */
  ids: Int32Array;
  /** `[batchSize, length]`. */
  shape: [number, number];
  /** Same layout as `ids`: 1 for a real token (including `<cls>`/`<eos>`), 0 for padding. */
  attentionMask: Uint8Array;
  /** Number of real tokens in each row. */
  lengths: Int32Array;
}

/** Validates a length-like option so a typo (0, 2.5, NaN) fails loudly instead of producing empty rows. */
export function assertPositiveInteger(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}

/** Applies a truncation policy to one tokenized sequence; returns the input itself when it fits. */
export function truncateTokens(
  ids: Int32Array,
  maxLength: number | undefined,
  policy: TruncationPolicy,
  eosId: number,
): Int32Array {
  if (maxLength === undefined) return ids;
  assertPositiveInteger(maxLength, 'maxLength');
  if (ids.length <= maxLength) return ids;
  if (policy === 'error') {
    throw new RangeError(`sequence has ${ids.length} tokens, more than maxLength ${maxLength}`);
  }
  if (policy === 'keepEos' && ids[ids.length - 1] === eosId) {
    const kept = new Int32Array(maxLength);
    kept.set(ids.subarray(0, maxLength - 1));
    kept[maxLength - 1] = eosId;
    return kept;
  }
  return ids.slice(0, maxLength);
}

/** Right-pads token rows into one {@link TokenBatch}. */
export function padBatch(
  rows: readonly ArrayLike<number>[],
  padId: number,
  padTo: 'longest' | number = 'longest',
): TokenBatch {
  let length: number;
  if (padTo === 'longest') {
    length = 0;
    for (const row of rows) length = Math.max(length, row.length);
  } else {
    assertPositiveInteger(padTo, 'padTo');
    length = padTo;
    rows.forEach((row, index) => {
      if (row.length > length) {
        throw new RangeError(
          `sequence ${index} has ${row.length} tokens, longer than padTo ${length}; set maxLength to truncate`,
        );
      }
    });
  }
  const ids = new Int32Array(rows.length * length).fill(padId);
  const attentionMask = new Uint8Array(rows.length * length);
  const lengths = new Int32Array(rows.length);
  rows.forEach((row, index) => {
    const offset = index * length;
    for (let i = 0; i < row.length; i++) ids[offset + i] = row[i]!;
    attentionMask.fill(1, offset, offset + row.length);
    lengths[index] = row.length;
  });
  return { ids, shape: [rows.length, length], attentionMask, lengths };
}

/**
 * Encodes every sequence with `encode` and pads the rows; errors are re-thrown naming the
 * sequence index so a bad record in a large batch can be found.
 */
export function encodeRows(
  sequences: readonly string[],
  encode: (sequence: string) => Int32Array,
  padId: number,
  padTo: 'longest' | number | undefined,
): TokenBatch {
  const rows = sequences.map((sequence, index) => {
    try {
      return encode(sequence);
    } catch (error) {
      throw new Error(`sequence ${index}: ${(error as Error).message}`, { cause: error });
    }
  });
  return padBatch(rows, padId, padTo);
}

/** Checks a token id before decoding so corrupted ids are reported rather than printed as "undefined". */
export function tokenAt(vocab: readonly string[], id: number): string {
  const token = vocab[id];
  if (token === undefined || !Number.isInteger(id)) {
    throw new RangeError(`token id ${id} is outside the vocabulary (0..${vocab.length - 1})`);
  }
  return token;
}
