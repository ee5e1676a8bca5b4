/**
 * Sequence files for the commands: FASTA (.fa/.fasta/.fna/.ffn, or any file starting with '>'),
 * CSV (.csv, a named column) or plain text (one sequence per line; '#' lines are comments).
 * Gzipped files (.gz) are read too. Errors name the file and line.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  CodonTokenizer,
  NucleotideTokenizer,
  ParseError,
  normalizeCodingSequence,
  parseCsv,
  parseFasta,
} from '@rnagrad/tokenizers';
import { UsageError } from './args.js';

export interface NamedSequence {
  name: string;
  sequence: string;
}

export interface ReadOptions {
  /** CSV: the column holding sequences. */
  column: string;
  /** CSV: the column holding names (default: the first of gene_name, name, id; else the row number). */
  nameColumn?: string;
}

function readText(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new UsageError(
      `cannot read ${path}: ${
        (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
      }`,
    );
  }
  if (path.endsWith('.gz')) {
    try {
      bytes = gunzipSync(bytes);
    } catch {
      throw new UsageError(`${path}: not a valid gzip file`);
    }
  }
  const text = bytes.toString('utf8');
  if (text.includes('\u0000')) throw new UsageError(`${path}: a binary file, not FASTA, CSV or plain sequences`);
  return text;
}

function sequenceFormat(path: string, text: string): 'fasta' | 'csv' | 'plain' {
  const name = basename(path).replace(/\.gz$/, '').toLowerCase();
  if (/\.(fa|fasta|fna|ffn|fas)$/.test(name) || text.trimStart().startsWith('>')) return 'fasta';
  if (name.endsWith('.csv')) return 'csv';
  return 'plain';
}

/** Reads named sequences from a file, unchecked; an empty file or a file with no sequence is an error. */
function readRecords(path: string, opts: ReadOptions): NamedSequence[] {
  const text = readText(path);
  if (text.trim() === '') throw new UsageError(`${path}: no sequences found (the file is empty)`);
  const format = sequenceFormat(path, text);
  let out: NamedSequence[];
  try {
    if (format === 'fasta') {
      if (!text.trimStart().startsWith('>'))
        throw new UsageError(`${path}: not FASTA (the first line must start with '>')`);
      out = parseFasta(text, { sourceName: path }).map((r) => ({ name: r.id, sequence: r.sequence }));
    } else if (format === 'csv') {
      const { columns, rows } = parseCsv(text, { sourceName: path });
      if (!columns.includes(opts.column))
        throw new UsageError(
          `${path}: no column "${opts.column}" (columns: ${columns.join(', ')}); choose one with --column`,
        );
      const nameColumn = opts.nameColumn ?? ['gene_name', 'name', 'id'].find((c) => columns.includes(c));
      if (opts.nameColumn && !columns.includes(opts.nameColumn))
        throw new UsageError(`${path}: no column "${opts.nameColumn}" (columns: ${columns.join(', ')})`);
      out = rows.map((r, i) => ({
        name: nameColumn ? r.fields[nameColumn]! : `row${i + 1}`,
        sequence: r.fields[opts.column]!,
      }));
    } else {
      out = text
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line && !line.startsWith('#'))
        .map((sequence, i) => ({ name: `seq${i + 1}`, sequence }));
    }
  } catch (err) {
    if (err instanceof ParseError) throw new UsageError(err.message);
    throw err;
  }
  if (out.length === 0) throw new UsageError(`${path}: no sequences found`);
  return out;
}

/** Reads coding sequences (A, C, G, T/U, N) from a file; each must hold at least one codon. */
export function readSequences(path: string, opts: ReadOptions): NamedSequence[] {
  const out = readRecords(path, opts);
  out.forEach((s, i) => {
    if (!/^[ACGTUNacgtun\s-]*$/.test(s.sequence)) {
      const bad = /[^ACGTUNacgtun\s-]/.exec(s.sequence)![0];
      throw new UsageError(`${path}: sequence ${i + 1} (${s.name}) holds "${bad}", not a nucleotide (A, C, G, T/U, N)`);
    }
    if (normalizeCodingSequence(s.sequence).length < 3)
      throw new UsageError(`${path}: sequence ${i + 1} (${s.name}) is shorter than one codon`);
  });
  return out;
}

/** Codon token ids with <cls>/<eos> for each sequence (a trailing partial codon is dropped). */
export function encodeCodons(seqs: readonly NamedSequence[]): Int32Array[] {
  const tokenizer = new CodonTokenizer({ remainder: 'drop' });
  return seqs.map((s) => tokenizer.encode(s.sequence));
}

/**
 * RiNALMo's tokens (<cls> … <eos>, U read as T) for each sequence of a file. Characters outside its
 * alphabet (A C G T/U, the IUPAC codes R Y K M S W B D H V N, I, -) are an error naming the
 * sequence and position, rather than the silent <unk> of the official tokenizer.
 */
export function readNucleotides(path: string, opts: ReadOptions): { records: NamedSequence[]; tokens: Int32Array[] } {
  const records = readRecords(path, opts);
  const tokenizer = new NucleotideTokenizer({ strict: true });
  const tokens = records.map((r, i) => {
    if (r.sequence.trim() === '') throw new UsageError(`${path}: sequence ${i + 1} (${r.name}) is empty`);
    try {
      return tokenizer.encode(r.sequence);
    } catch (err) {
      const detail = (err as Error).message.replace(/^unexpected character/, 'holds');
      throw new UsageError(
        `${path}: sequence ${i + 1} (${r.name}) ${detail}: not a nucleotide (A, C, G, T/U, IUPAC codes, I, -)`,
      );
    }
  });
  return { records, tokens };
}
