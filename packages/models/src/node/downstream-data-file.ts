/** Node: the downstream data sets from files (by default the shared copies in ../shared/data). */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CsvRow } from '@rnagrad/tokenizers';
import { readCsvFile, readStructureFile } from '@rnagrad/tokenizers/node';
import {
  type ArchiveIIOptions,
  type ClassificationDataset,
  type RegressionCsvOptions,
  type RegressionDataset,
  type StructureRecord,
  archiveIIFromStructures,
  archiveIIRecords,
  nrcDataset,
  regressionDataset,
} from '../downstream-data.js';

/** ../shared/data next to the repository, or `$RNAGRAD_DATA` when that is set. */
export function sharedDataRoot(): string {
  return process.env.RNAGRAD_DATA ?? fileURLToPath(new URL('../../../../../shared/data', import.meta.url));
}

export const archiveIIPath = (): string => `${sharedDataRoot()}/archiveII/archiveII.csv`;
export const nrcPath = (): string => `${sharedDataRoot()}/ncrna_nrc/nrc_13class.csv`;

function mustExist(path: string, what: string): void {
  if (!existsSync(path))
    throw new Error(`${path}: no such file (${what}; pass a path, or set RNAGRAD_DATA to the folder holding it)`);
}

async function readRows(path: string): Promise<CsvRow[]> {
  const rows: CsvRow[] = [];
  for await (const row of readCsvFile(path)) rows.push(row);
  return rows;
}

/**
 * ArchiveII from `archiveII.csv` or from a folder of `.ct` files named `family_name.ct` (the
 * original layout). Sequences longer than `maxLength` (512) are left out.
 */
export async function loadArchiveII(path = archiveIIPath(), opts: ArchiveIIOptions = {}): Promise<StructureRecord[]> {
  mustExist(path, 'the ArchiveII CSV or a folder of .ct files');
  if (statSync(path).isDirectory()) {
    const files = readdirSync(path)
      .filter((f) => f.toLowerCase().endsWith('.ct'))
      .sort();
    if (files.length === 0) throw new Error(`${path}: no .ct files in this folder`);
    const structures = files.flatMap((f) =>
      readStructureFile(join(path, f)).map((s) => ({ ...s, id: f.replace(/\.ct$/i, '') })),
    );
    return archiveIIFromStructures(structures, opts);
  }
  return archiveIIRecords(await readRows(path), { ...opts, source: path });
}

/** nRC (13 classes) from `nrc_13class.csv`. */
export async function loadNrc(
  path = nrcPath(),
  opts: { dropTestDuplicates?: boolean; validationFraction?: number; seed?: number } = {},
): Promise<ClassificationDataset> {
  mustExist(path, 'the nRC CSV');
  return nrcDataset(await readRows(path), { ...opts, source: path });
}

/** Any CSV with a sequence and a value column. */
export async function loadRegressionCsv(path: string, opts: RegressionCsvOptions = {}): Promise<RegressionDataset> {
  mustExist(path, 'a CSV with sequence and value columns');
  return regressionDataset(await readRows(path), { ...opts, source: path });
}
