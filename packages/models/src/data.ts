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

/** FNV-1a: a stable hash of the gene name decides its split, independent of file order. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Parses a CSV with `gene_name` and `sequence` columns into codon ids split ~90/10 by name hash. */
export function codonCorpusFromCsv(text: string, opts: { validationFraction?: number; sourceName?: string } = {}): CodonCorpus {
  const fraction = opts.validationFraction ?? 0.1;
  const { columns, rows } = parseCsv(text, { sourceName: opts.sourceName });
  for (const needed of ['gene_name', 'sequence']) {
    if (!columns.includes(needed)) throw new Error(`${opts.sourceName ?? 'CSV'}: missing column "${needed}" (columns: ${columns.join(', ')})`);
  }
  const tokenizer = new CodonTokenizer({ remainder: 'drop' });
  const corpus: CodonCorpus = { train: [], validation: [], names: { train: [], validation: [] } };
  for (const row of rows) {
    const name = row.fields.gene_name!;
    const ids = tokenizer.encode(row.fields.sequence!, { addSpecialTokens: false });
    const split = fnv1a(name) / 2 ** 32 < fraction ? 'validation' : 'train';
    corpus[split].push(ids);
    corpus.names[split].push(name);
  }
  return corpus;
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
export async function codonCorpusFromBytes(bytes: Uint8Array, opts: { validationFraction?: number; sourceName?: string } = {}): Promise<CodonCorpus> {
  const gzipped = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  let text: string;
  try {
    text = gzipped ? await new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'))).text() : new TextDecoder().decode(bytes);
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
      'loadEcoliCds: give { url } or { bytes } of @rnagrad/models/data/ecoli_k12_cds.csv.gz — reading the packaged file ' +
        "without them needs Node and the Node entry ('@rnagrad/models' in plain Node, or '@rnagrad/models/node').",
    );
  }
  let response: Response;
  try {
    response = await fetch(source.url);
  } catch (err) {
    throw new Error(`loadEcoliCds: cannot fetch ${String(source.url)}: ${(err as Error).message}`);
  }
  if (!response.ok) throw new Error(`loadEcoliCds: fetching ${String(source.url)} gave HTTP ${response.status} ${response.statusText}`);
  return codonCorpusFromBytes(new Uint8Array(await response.arrayBuffer()), { ...opts, sourceName: String(source.url) });
}

export interface LmBatch {
  /** i32 [batch, length] inputs. */
  ids: Int32Array;
  /** i32 [batch, length] targets; -100 where no loss is taken. */
  targets: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
  shape: [number, number];
}

export const IGNORE_INDEX = -100;
const TOKENS = { cls: 0, eos: 2, mask: 3, pad: 4 };

/**
 * A window of `length - 2` codons framed by <cls> … <eos>: from the start (HELM truncates to the
 * first tokens) or at a random offset (more varied data from a small corpus).
 */
function frame(codons: Int32Array, length: number, crop: 'start' | 'random', rng: SeededRandom): number[] {
  const body = length - 2;
  const start = crop === 'random' && codons.length > body ? rng.intBetween(0, codons.length - body) : 0;
  const window = codons.subarray(start, start + body);
  return [TOKENS.cls, ...window, ...(start + body >= codons.length ? [TOKENS.eos] : [])];
}

export interface BatchOptions {
  /** Tokens per row including <cls>/<eos> (rows are right-padded to it). */
  length: number;
  crop?: 'start' | 'random';
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
  const B = seqs.length;
  const batch = emptyBatch(B, length);
  seqs.forEach((codons, b) => {
    const row = frame(codons, length, opts.crop ?? 'random', rng);
    const codonPositions: number[] = [];
    row.forEach((tok, i) => {
      batch.ids[b * length + i] = tok;
      batch.attentionMask[b * length + i] = 1;
      if (tok >= 6) codonPositions.push(i);
    });
    let masked = 0;
    for (const i of codonPositions) {
      if (rng.next() < p) {
        batch.targets[b * length + i] = batch.ids[b * length + i]!;
        batch.ids[b * length + i] = TOKENS.mask;
        masked++;
      }
    }
    if (masked === 0 && codonPositions.length) {
      const i = codonPositions[rng.intBetween(0, codonPositions.length - 1)]!;
      batch.targets[b * length + i] = batch.ids[b * length + i]!;
      batch.ids[b * length + i] = TOKENS.mask;
    }
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
    const row = frame(codons, length + 1, opts.crop ?? 'random', rng);
    for (let i = 0; i < length; i++) {
      if (i < row.length) {
        batch.ids[b * length + i] = row[i]!;
        batch.attentionMask[b * length + i] = 1;
      }
      if (i + 1 < row.length) batch.targets[b * length + i] = row[i + 1]!;
    }
  });
  return batch;
}

function emptyBatch(B: number, L: number): LmBatch {
  return {
    ids: new Int32Array(B * L).fill(TOKENS.pad),
    targets: new Int32Array(B * L).fill(IGNORE_INDEX),
    attentionMask: new Int32Array(B * L),
    shape: [B, L],
  };
}

/** Endless seeded sampling of `batchSize` sequences at a time. */
export function sampler(seqs: readonly Int32Array[], batchSize: number, seed: number): { rng: SeededRandom; next(): Int32Array[] } {
  if (seqs.length === 0) throw new RangeError('sampler: the corpus is empty');
  const rng = seededRandom(seed);
  let order: number[] = [];
  return {
    rng,
    next() {
      const out: Int32Array[] = [];
      while (out.length < batchSize) {
        if (order.length === 0) order = rng.shuffle(seqs.map((_, i) => i));
        out.push(seqs[order.pop()!]!);
      }
      return out;
    },
  };
}
