/**
 * Codon corpora and batches for HELM pre-training: the packaged E. coli K-12 CDS set, a
 * deterministic train/validation split, and masked-LM / causal-LM batches.
 */
import { CodonTokenizer, parseCsv, seededRandom, type SeededRandom } from '@rnagrad/tokenizers';

export interface CodonCorpus {
  /** Codon ids per gene, without <cls>/<eos> (batching adds the framing). */
  train: Int32Array[];
  validation: Int32Array[];
  names: { train: string[]; validation: string[] };
}

/**
 * A stable hash of the gene name decides its split, independent of file order: FNV-1a, then MurmurHash3's
 * finaliser, without which names that differ only in their last characters (gene0 … gene79) hash close together
 * and land on the same side.
 */
function nameHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Named coding sequences → codon ids, split ~90/10 into train/validation by a hash of the name. Small sets are
 * never split lopsided by chance: one sequence is for training, and from two on, with a fraction strictly between
 * 0 and 1, each side holds at least one (the smallest hash held out, the largest kept).
 */
export function codonCorpus(
  records: readonly { name: string; sequence: string }[],
  opts: { validationFraction?: number } = {},
): CodonCorpus {
  const fraction = opts.validationFraction ?? 0.1;
  const tokenizer = new CodonTokenizer({ remainder: 'drop' });
  const hashes = records.map(({ name }) => nameHash(name) / 2 ** 32);
  const held = hashes.map((h) => h < fraction);
  if (records.length === 1) held[0] = false;
  else if (records.length >= 2 && fraction > 0 && fraction < 1) {
    // Index loops, not Math.min(...hashes): a spread of a large corpus overflows the argument limit.
    const extreme = (better: (a: number, b: number) => boolean) =>
      hashes.reduce((best, h, i) => (better(h, hashes[best]!) ? i : best), 0);
    if (!held.includes(true)) held[extreme((a, b) => a < b)] = true;
    if (!held.includes(false)) held[extreme((a, b) => a > b)] = false;
  }
  const corpus: CodonCorpus = { train: [], validation: [], names: { train: [], validation: [] } };
  records.forEach(({ name, sequence }, i) => {
    const split = held[i] ? 'validation' : 'train';
    corpus[split].push(tokenizer.encode(sequence, { addSpecialTokens: false }));
    corpus.names[split].push(name);
  });
  return corpus;
}

/** Parses a CSV with `gene_name` and `sequence` columns into a codon corpus. */
export function codonCorpusFromCsv(
  text: string,
  opts: { validationFraction?: number; sourceName?: string } = {},
): CodonCorpus {
  const { columns, rows } = parseCsv(text, { sourceName: opts.sourceName });
  for (const needed of ['gene_name', 'sequence']) {
    if (!columns.includes(needed))
      throw new Error(`${opts.sourceName ?? 'CSV'}: missing column "${needed}" (columns: ${columns.join(', ')})`);
  }
  return codonCorpus(
    rows.map((r) => ({ name: r.fields.gene_name!, sequence: r.fields.sequence! })),
    opts,
  );
}

/** Where and how to read a codon corpus CSV: plain or gzip-compressed bytes, or a URL to fetch. */
export interface CorpusSource {
  /** The file's bytes (gzip is recognised by its magic number). */
  bytes?: Uint8Array;
  /** Fetched with `fetch` (in Node, the Node entry also reads `file:` URLs). */
  url?: string | URL;
  validationFraction?: number;
}

export const ECOLI_CDS_FILE = 'ecoli_k12_cds.csv.gz';

/** Parses corpus bytes (CSV, or gzip-compressed CSV) with `codonCorpusFromCsv`. */
export async function codonCorpusFromBytes(
  bytes: Uint8Array,
  opts: { validationFraction?: number; sourceName?: string } = {},
): Promise<CodonCorpus> {
  const gzipped = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  let text: string;
  try {
    text = gzipped
      ? await new Response(
          new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip')),
        ).text()
      : new TextDecoder().decode(bytes);
  } catch (err) {
    throw new Error(`${opts.sourceName ?? 'corpus'}: cannot decompress the gzip data: ${(err as Error).message}`);
  }
  return codonCorpusFromCsv(text, opts);
}

/**
 * The E. coli K-12 CDS corpus that ships in this package (data/ecoli_k12_cds.csv.gz), from its bytes
 * or a URL where it is served — in a browser, e.g. from a bundler's asset URL. In Node, the Node entry
 * (what plain Node gets for '@rnagrad/models') also reads the packaged file when no source is given.
 */
export async function loadEcoliCds(source: CorpusSource = {}): Promise<CodonCorpus> {
  const opts = { validationFraction: source.validationFraction, sourceName: ECOLI_CDS_FILE };
  if (source.bytes) return codonCorpusFromBytes(source.bytes, opts);
  if (source.url === undefined) {
    throw new Error(
      'loadEcoliCds: give { url } or { bytes } of @rnagrad/models/data/ecoli_k12_cds.csv.gz — ' +
        'reading the packaged file ' +
        "without them needs Node and the Node entry ('@rnagrad/models' in plain Node, or '@rnagrad/models/node').",
    );
  }
  let response: Response;
  try {
    response = await fetch(source.url);
  } catch (err) {
    throw new Error(`loadEcoliCds: cannot fetch ${String(source.url)}: ${(err as Error).message}`);
  }
  if (!response.ok)
    throw new Error(`loadEcoliCds: fetching ${String(source.url)} gave HTTP ${response.status} ${response.statusText}`);
  return codonCorpusFromBytes(new Uint8Array(await response.arrayBuffer()), {
    ...opts,
    sourceName: String(source.url),
  });
}

export interface LmBatch {
  /** i32 [batch, length] inputs. */
  ids: Int32Array;
  /** i32 [batch, length] targets; -100 where no loss is taken. */
  targets: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
  /** i32 [batch, length] position ids: a window keeps its offset in the gene. */
  positions: Int32Array;
  shape: [number, number];
}

export const IGNORE_INDEX = -100;
export const CODON_TOKENS = { cls: 0, eos: 2, mask: 3, pad: 4, unk: 5, firstCodon: 6 } as const;

/**
 * A window of `length` tokens of the whole gene <cls> codons <eos> (cut to `maxPositions`
 * tokens), from the start (as HELM truncates) or at a random offset that keeps its place in the
 * gene as position ids, so every position up to the gene length gets trained.
 */
function window(
  codons: Int32Array,
  length: number,
  opts: BatchOptions,
  rng: SeededRandom,
): { tokens: Int32Array; offset: number } {
  const total = Math.min(codons.length + 2, opts.maxPositions ?? Infinity);
  // A start drawn from [−(length−1), total−1] and clamped: the first positions (<cls>, the 5′ end
  // that generation starts from) are covered as often as mid-gene ones (at most twice as often
  // near the ends), where a start uniform over the valid range would starve them.
  const start =
    (opts.crop ?? 'random') === 'random' && total > length
      ? Math.min(total - length, Math.max(0, rng.intBetween(1 - length, total - 1)))
      : 0;
  const end = Math.min(total, start + length);
  const tokens = new Int32Array(end - start);
  for (let i = start; i < end; i++)
    tokens[i - start] = i === 0 ? CODON_TOKENS.cls : i === codons.length + 1 ? CODON_TOKENS.eos : codons[i - 1]!;
  return { tokens, offset: start };
}

export interface BatchOptions {
  /** Tokens per row (rows are right-padded to it). */
  length: number;
  crop?: 'start' | 'random';
  /** The model's position limit: genes are cut to this many tokens (default: no limit). */
  maxPositions?: number;
  /** Masked-LM probability (HELM: 0.15, always replaced by <mask>, no 80/10/10). */
  maskProbability?: number;
}

/**
 * Masked-LM batch, HELM-style: each real codon is replaced by <mask> with probability 0.15 and is
 * a target; everything else is ignored. At least one position per row is masked.
 */
export function mlmBatch(seqs: readonly Int32Array[], rng: SeededRandom, opts: BatchOptions): LmBatch {
  const { length } = opts;
  const p = opts.maskProbability ?? 0.15;
  const batch = emptyBatch(seqs.length, length);
  seqs.forEach((codons, b) => {
    const { tokens, offset } = window(codons, length, opts, rng);
    const codonPositions: number[] = [];
    tokens.forEach((tok, i) => {
      batch.ids[b * length + i] = tok;
      batch.attentionMask[b * length + i] = 1;
      batch.positions[b * length + i] = offset + i;
      if (tok >= CODON_TOKENS.firstCodon) codonPositions.push(i);
    });
    const maskAt = (i: number) => {
      batch.targets[b * length + i] = batch.ids[b * length + i]!;
      batch.ids[b * length + i] = CODON_TOKENS.mask;
    };
    const masked = codonPositions.filter(() => rng.next() < p);
    masked.forEach(maskAt);
    if (masked.length === 0 && codonPositions.length)
      maskAt(codonPositions[rng.intBetween(0, codonPositions.length - 1)]!);
  });
  return batch;
}

/**
 * Causal-LM batch: inputs tokens[:-1], targets tokens[1:]. Unlike HELM's code (which also learns
 * to predict padding), padded targets are ignored.
 */
export function clmBatch(seqs: readonly Int32Array[], rng: SeededRandom, opts: BatchOptions): LmBatch {
  const { length } = opts;
  const batch = emptyBatch(seqs.length, length);
  seqs.forEach((codons, b) => {
    const { tokens, offset } = window(codons, length + 1, opts, rng);
    for (let i = 0; i < length; i++) {
      if (i < tokens.length) {
        batch.ids[b * length + i] = tokens[i]!;
        batch.attentionMask[b * length + i] = 1;
        batch.positions[b * length + i] = offset + i;
      }
      if (i + 1 < tokens.length) batch.targets[b * length + i] = tokens[i + 1]!;
    }
  });
  return batch;
}

function emptyBatch(B: number, L: number): LmBatch {
  return {
    ids: new Int32Array(B * L).fill(CODON_TOKENS.pad),
    targets: new Int32Array(B * L).fill(IGNORE_INDEX),
    attentionMask: new Int32Array(B * L),
    positions: new Int32Array(B * L),
    shape: [B, L],
  };
}

/** A 32-bit seed derived from a seed and counters (murmur3's finaliser), for per-step streams. */
export function mixSeed(seed: number, ...counters: number[]): number {
  let h = Math.trunc(seed) >>> 0;
  for (const c of counters) {
    h = Math.imul(h ^ (c >>> 0), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

/**
 * Batches of `batchSize` sequences by batch index: each epoch is a fresh seeded permutation, so
 * the data order is a pure function of (seed, index) and a resumed run sees the same batches.
 */
export function sampler<I>(
  seqs: readonly I[],
  batchSize: number,
  seed: number,
): { batch(index: number): I[]; epochOf(index: number): number } {
  if (seqs.length === 0) throw new RangeError('sampler: the corpus is empty');
  let cached = { epoch: -1, order: [] as number[] };
  const orderOf = (epoch: number) => {
    if (cached.epoch !== epoch)
      cached = { epoch, order: seededRandom(mixSeed(seed, epoch)).shuffle(seqs.map((_, i) => i)) };
    return cached.order;
  };
  return {
    batch(index) {
      return Array.from({ length: batchSize }, (_, k) => {
        const slot = index * batchSize + k;
        return seqs[orderOf(Math.floor(slot / seqs.length))[slot % seqs.length]!]!;
      });
    },
    epochOf: (index) => Math.floor((index * batchSize) / seqs.length),
  };
}
