/**
 * Node-only helpers: the same readers as the core entry, fed from a file path. Kept apart so the
 * main entry never imports `node:fs` and stays usable in browsers.
 */
import { createReadStream } from 'node:fs';
import { type CsvOptions, type CsvRow, type CsvValue, readCsv, readCsvColumn } from './csv.js';
import { type FastaOptions, type FastaRecord, readFasta } from './fasta.js';

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
