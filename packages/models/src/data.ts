/**
 * Codon corpora and batches for HELM pre-training: the bundled E. coli K-12 CDS set, a
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

/** The bundled E. coli K-12 CDS corpus (Node: reads packages/models/data/ecoli_k12_cds.csv.gz). */
export async function loadEcoliCds(opts: { validationFraction?: number } = {}): Promise<CodonCorpus> {
  const { readFile } = await import('node:fs/promises');
  const { gunzipSync } = await import('node:zlib');
  const path = new URL('../data/ecoli_k12_cds.csv.gz', import.meta.url);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new Error(`loadEcoliCds: cannot read the bundled corpus at ${path.pathname}: ${(err as Error).message}`);
  }
  return codonCorpusFromCsv(gunzipSync(bytes).toString('utf8'), { ...opts, sourceName: 'ecoli_k12_cds.csv' });
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
