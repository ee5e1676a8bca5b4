/**
 * Node-only helpers: the same readers as the core entry, fed from a file path. Kept apart so the
 * main entry never imports `node:fs` and stays usable in browsers.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { type CsvOptions, type CsvRow, type CsvValue, readCsv, readCsvColumn } from './csv.js';
import { type FastaOptions, type FastaRecord, readFasta } from './fasta.js';
import { type SecondaryStructure, parseBpseq, parseCt, parseDotBracket } from './structure.js';

/** Streams FASTA records from a file; error messages name the file unless `sourceName` is given. */
export function readFastaFile(path: string, options: FastaOptions = {}): AsyncGenerator<FastaRecord> {
  return readFasta(createReadStream(path), { sourceName: path, ...options });
}

/** Streams CSV rows from a file; error messages name the file unless `sourceName` is given. */
export function readCsvFile(path: string, options: CsvOptions = {}): AsyncGenerator<CsvRow> {
  return readCsv(createReadStream(path), { sourceName: path, ...options });
}

/** Streams one CSV column from a file; a missing column is an error listing the header. */
export function readCsvColumnFile(path: string, column: string, options: CsvOptions = {}): AsyncGenerator<CsvValue> {
  return readCsvColumn(createReadStream(path), column, { sourceName: path, ...options });
}

const STRUCTURE_READERS: Record<string, (text: string, path: string) => SecondaryStructure[]> = {
  ct: (text, path) => parseCt(text, { sourceName: path }),
  bpseq: (text, path) => [parseBpseq(text, { sourceName: path })],
  db: (text, path) => parseDotBracket(text, { sourceName: path }),
};
const STRUCTURE_EXTENSIONS: Record<string, keyof typeof STRUCTURE_READERS> = {
  ct: 'ct',
  bpseq: 'bpseq',
  db: 'db',
  dbn: 'db',
  dot: 'db',
  st: 'db',
  fold: 'db',
};

/**
 * Secondary structures from a file, the format chosen by its extension: `.ct`, `.bpseq`, or
 * dot-bracket (`.db`, `.dbn`, `.dot`, `.st`, `.fold`). A BPSEQ file holds one structure.
 */
export function readStructureFile(path: string): SecondaryStructure[] {
  const extension = /\.([A-Za-z]+)$/.exec(path)?.[1]?.toLowerCase() ?? '';
  const format = STRUCTURE_EXTENSIONS[extension];
  if (!format)
    throw new Error(
      `${path}: unknown structure format ".${extension}" (use .ct, .bpseq, .db, .dbn, .dot, .st or .fold)`,
    );
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  return STRUCTURE_READERS[format]!(readFileSync(path, 'utf8'), path);
}
