/**
 * The Node entry of @rnagrad/models (what plain Node gets for '@rnagrad/models', through the "node"
 * export condition, and for '@rnagrad/models/node'): the browser-safe API plus file helpers —
 * atomic checkpoint writes, checkpoint reads, and the packaged E. coli corpus read from disk.
 */
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { type DecodedCheckpoint, decodeSafetensors, encodeSafetensors } from './checkpoint.js';
import { type CodonCorpus, type CorpusSource, ECOLI_CDS_FILE, loadEcoliCds as loadEcoliCdsFrom } from './data.js';

export * from './index.js';
export * from './node/index.js';

/** Path of the packaged corpus file (data/ecoli_k12_cds.csv.gz inside the installed package). */
export const ECOLI_CDS_PATH = fileURLToPath(new URL(`../data/${ECOLI_CDS_FILE}`, import.meta.url));

/** The packaged E. coli K-12 CDS corpus: read from disk unless `bytes` or an http(s) `url` is given. */
export async function loadEcoliCds(source: CorpusSource = {}): Promise<CodonCorpus> {
  if (source.bytes) return loadEcoliCdsFrom(source);
  const url = source.url === undefined ? null : new URL(source.url);
  if (url && url.protocol !== 'file:') return loadEcoliCdsFrom(source);
  const path = url ? fileURLToPath(url) : ECOLI_CDS_PATH;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new Error(`loadEcoliCds: cannot read the corpus at ${path}: ${reason}`);
  }
  return loadEcoliCdsFrom({ bytes, validationFraction: source.validationFraction });
}

/** Writes a checkpoint file atomically: a temporary file in the same folder, then rename. */
export async function saveCheckpoint(
  path: string,
  tensors: ReadonlyMap<string, Tensor> | [string, Tensor][],
  metadata: Record<string, string> = {},
): Promise<void> {
  const bytes = await encodeSafetensors(tensors, metadata);
  await writeFileAtomic(path, bytes);
}

export async function loadCheckpoint(path: string, opts: { device?: T.Device } = {}): Promise<DecodedCheckpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new Error(`loadCheckpoint: cannot read ${path}: ${reason}`);
  }
  return decodeSafetensors(bytes, { ...opts, source: path });
}

/** Writes `data` to `path` so that readers see either the old file or the complete new one. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, data);
  const handle = await open(tmp, 'r+');
  await handle.sync();
  await handle.close();
  await rename(tmp, path);
}
