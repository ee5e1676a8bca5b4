/**
 * RiNALMo's masked-LM data: a nucleotide corpus with a fixed validation split, BERT masking as in
 * its config (`mask_ratio 0.15, mask_tkn_prob 0.8, random_tkn_prob 0.1`), and a batch source whose
 * batch `i` is a pure function of (seed, i), so a resumed run sees the same batches. Browser-safe:
 * reading the corpus file lives in `node/rinalmo-data-file.ts`.
 *
 * Choices where the official pretraining script (not released) leaves facts open, stated here:
 * - eligible for selection: the standard tokens (ids ≥ 5: nucleotides, IUPAC codes, I, -), never
 *   <cls>, <eos>, <pad>, <unk>, <mask>;
 * - exactly max(1, round(0.15 · eligible)) positions per sequence, drawn without replacement (so
 *   the token-dropout rescale sees the trained mask ratio, and every row has a target);
 * - the 10% "random token" case draws uniformly from the four nucleotides A, C, G, T (models.md
 *   B4 marks the official replacement set as unverified; drawing IUPAC codes or specials would
 *   teach tokens that never occur in real input).
 */
import { NucleotideTokenizer, type FastaRecord, type SeededRandom, seededRandom } from '@rnagrad/tokenizers';
import * as T from '@rnagrad/tensor';
import { noGrad } from '@rnagrad/autograd';
import { RINALMO_TOKENS, type RinalmoModel, rinalmoMlmLoss } from './rinalmo.js';

export const IGNORE_TARGET = -100;
/** First standard (maskable) token id of the official alphabet: A. */
const FIRST_STANDARD = 5;
/** A, C, G, T: the random-replacement set. */
const NUCLEOTIDE_IDS = [5, 6, 7, 8] as const;

export interface NucleotideCorpus {
  /** Token ids with <cls> … <eos> (U read as T), one array per sequence. */
  train: Int32Array[];
  validation: Int32Array[];
  /** FASTA ids of the validation sequences, in order. */
  validationIds: string[];
  source: string;
}

/**
 * Tokenizes records into a corpus; every `validationEvery`-th record (indices k·n − 1) is held out,
 * a split that depends only on the file's order. Sequences longer than `maxLength − 2` keep their
 * full length here; batches crop them.
 */
export function nucleotideCorpus(
  records: Iterable<FastaRecord>,
  opts: { validationEvery?: number; source?: string } = {},
): NucleotideCorpus {
  const every = opts.validationEvery ?? 20;
  if (!Number.isInteger(every) || every < 2)
    throw new RangeError(`nucleotideCorpus: validationEvery must be an integer ≥ 2, got ${every}`);
  const tokenizer = new NucleotideTokenizer();
  const corpus: NucleotideCorpus = { train: [], validation: [], validationIds: [], source: opts.source ?? 'corpus' };
  let n = 0;
  for (const record of records) {
    if (record.sequence.length === 0) throw new Error(`${corpus.source}: record "${record.id}" has an empty sequence`);
    const ids = tokenizer.encode(record.sequence);
    if ((n + 1) % every === 0) {
      corpus.validation.push(ids);
      corpus.validationIds.push(record.id);
    } else corpus.train.push(ids);
    n++;
  }
  if (corpus.train.length === 0 || corpus.validation.length === 0) {
    throw new Error(
      `${corpus.source}: ${n} sequences are too few for a training and a validation split (every ${every}th is held ` +
        `out)`,
    );
  }
  return corpus;
}

export interface RinalmoMlmBatch {
  /** i32 [batch, length]: <cls> … <eos> with the masking applied, right-padded with <pad>. */
  ids: Int32Array;
  /** i32 [batch, length]: the original token at selected positions, −100 elsewhere. */
  targets: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
  shape: [number, number];
  /** Selected (loss-bearing) positions. */
  selected: number;
}

export interface MlmMaskingOptions {
  /** Tokens per row at most, <cls> and <eos> included (longer sequences are cropped; default 1024). */
  maxLength?: number;
  maskRatio?: number;
  maskTokenProb?: number;
  randomTokenProb?: number;
}

export const RINALMO_MASKING = { maxLength: 1024, maskRatio: 0.15, maskTokenProb: 0.8, randomTokenProb: 0.1 } as const;

/** A window of at most `maxLength` tokens: a random crop of the nucleotides, re-framed by <cls> … <eos>. */
function crop(tokens: Int32Array, maxLength: number, rng: SeededRandom): Int32Array {
  if (tokens.length <= maxLength) return tokens;
  const keep = maxLength - 2;
  const start = 1 + rng.intBetween(0, tokens.length - 2 - keep);
  const out = new Int32Array(maxLength);
  out[0] = RINALMO_TOKENS.cls;
  out.set(tokens.subarray(start, start + keep), 1);
  out[maxLength - 1] = RINALMO_TOKENS.eos;
  return out;
}

/** RiNALMo BERT masking of a batch of tokenized sequences, padded to the longest (after cropping). */
export function rinalmoMlmBatch(
  sequences: readonly Int32Array[],
  rng: SeededRandom,
  opts: MlmMaskingOptions = {},
): RinalmoMlmBatch {
  const { maxLength, maskRatio, maskTokenProb, randomTokenProb } = { ...RINALMO_MASKING, ...opts };
  if (!(maxLength >= 3))
    throw new RangeError(`rinalmoMlmBatch: maxLength must be ≥ 3 (<cls>, a token, <eos>), got ${maxLength}`);
  if (!(
    maskRatio > 0 &&
    maskRatio <= 1 &&
    maskTokenProb >= 0 &&
    randomTokenProb >= 0 &&
    maskTokenProb + randomTokenProb <= 1
  )) {
    throw new RangeError('rinalmoMlmBatch: need 0 < maskRatio ≤ 1 and maskTokenProb + randomTokenProb ≤ 1');
  }
  const rows = sequences.map((s) => crop(s, maxLength, rng));
  const length = Math.max(...rows.map((r) => r.length));
  const batch: RinalmoMlmBatch = {
    ids: new Int32Array(rows.length * length).fill(RINALMO_TOKENS.pad),
    targets: new Int32Array(rows.length * length).fill(IGNORE_TARGET),
    attentionMask: new Int32Array(rows.length * length),
    shape: [rows.length, length],
    selected: 0,
  };
  rows.forEach((tokens, b) => {
    const at = b * length;
    batch.ids.set(tokens, at);
    batch.attentionMask.fill(1, at, at + tokens.length);
    const eligible: number[] = [];
    tokens.forEach((t, i) => t >= FIRST_STANDARD && eligible.push(i));
    if (eligible.length === 0) return;
    const count = Math.max(1, Math.round(maskRatio * eligible.length));
    for (const i of rng.shuffle(eligible).slice(0, count)) {
      batch.targets[at + i] = tokens[i]!;
      const u = rng.next();
      if (u < maskTokenProb) batch.ids[at + i] = RINALMO_TOKENS.mask;
      else if (u < maskTokenProb + randomTokenProb)
        batch.ids[at + i] = NUCLEOTIDE_IDS[rng.intBetween(0, NUCLEOTIDE_IDS.length - 1)]!;
      batch.selected++;
    }
  });
  return batch;
}

/** A 32-bit seed from (seed, index): neighbouring indices get unrelated streams. */
function mix(seed: number, index: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index >>> 0, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  return (h ^ (h >>> 15)) >>> 0;
}

export interface RinalmoMlmSourceOptions extends MlmMaskingOptions {
  batchSize: number;
  seed?: number;
}

/**
 * Training batches: each epoch is a seeded permutation of the training sequences, cut into
 * batches; `batch(i)` depends only on (seed, i). Shaped like the shared trainer's `BatchSource`.
 */
export class RinalmoMlmSource {
  private readonly seed: number;
  private readonly perEpoch: number;
  private order: { epoch: number; indices: number[] } | null = null;

  constructor(
    readonly corpus: NucleotideCorpus,
    readonly opts: RinalmoMlmSourceOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1)
      throw new RangeError(`RinalmoMlmSource: batchSize must be a positive integer, got ${opts.batchSize}`);
    this.seed = opts.seed ?? 0;
    this.perEpoch = Math.max(1, Math.floor(corpus.train.length / opts.batchSize));
  }

  batch(index: number): RinalmoMlmBatch {
    if (!Number.isInteger(index) || index < 0)
      throw new RangeError(`RinalmoMlmSource: batch index must be a non-negative integer, got ${index}`);
    const epoch = Math.floor(index / this.perEpoch);
    if (this.order?.epoch !== epoch) {
      this.order = { epoch, indices: seededRandom(mix(this.seed, -1 - epoch)).shuffle([...this.corpus.train.keys()]) };
    }
    const start = (index % this.perEpoch) * this.opts.batchSize;
    const picked = this.order.indices.slice(start, start + this.opts.batchSize).map((i) => this.corpus.train[i]!);
    return rinalmoMlmBatch(picked, seededRandom(mix(this.seed, index)), this.opts);
  }

  tokens(batch: RinalmoMlmBatch): number {
    return batch.attentionMask.reduce((n, v) => n + v, 0);
  }

  /**
   * The validation set as fixed batches: the same masking on every call (seeded by `seed` only),
   * so validation losses are comparable across a run. `limit` caps the sequences used.
   */
  validationBatches(opts: { batchSize?: number; limit?: number } = {}): RinalmoMlmBatch[] {
    const size = opts.batchSize ?? this.opts.batchSize;
    const sequences = this.corpus.validation.slice(0, opts.limit ?? this.corpus.validation.length);
    const rng = seededRandom(mix(this.seed, 0x7fffffff));
    const out: RinalmoMlmBatch[] = [];
    for (let i = 0; i < sequences.length; i += size)
      out.push(rinalmoMlmBatch(sequences.slice(i, i + size), rng, this.opts));
    return out;
  }
}

/** The batch's ids and targets as i32 tensors [batch, length]. */
export function rinalmoBatchTensors(batch: RinalmoMlmBatch): { ids: T.Tensor; targets: T.Tensor } {
  return {
    ids: T.tensor(batch.ids, { shape: batch.shape, dtype: 'i32' }),
    targets: T.tensor(batch.targets, { shape: batch.shape, dtype: 'i32' }),
  };
}

/**
 * Masked-token cross-entropy (mean over all selected positions of all batches) and accuracy
 * (argmax = original token), without gradients; the model is evaluated in eval mode and its
 * training flag restored.
 */
export async function evaluateRinalmoMlm(
  model: RinalmoModel,
  batches: readonly RinalmoMlmBatch[],
): Promise<{ loss: number; accuracy: number; selected: number }> {
  const wasTraining = model.training;
  model.eval();
  let [lossSum, correct, selected] = [0, 0, 0];
  try {
    for (const batch of batches) {
      const [loss, hits] = noGrad(() =>
        T.tidy(() => {
          const { ids, targets } = rinalmoBatchTensors(batch);
          const logits = model.forward(ids).logits;
          if (!logits) throw new Error('evaluateRinalmoMlm: the model has no MLM head');
          const xe = rinalmoMlmLoss(logits, targets);
          return [xe, T.sum(T.cast(T.eq(T.argmax(logits, -1), targets), 'f32'))];
        }),
      );
      lossSum += (await loss.item()) * batch.selected;
      correct += await hits.item();
      selected += batch.selected;
      loss.dispose();
      hits.dispose();
    }
  } finally {
    model.train(wasTraining);
  }
  return { loss: lossSum / selected, accuracy: correct / selected, selected };
}
