/** Node: the nucleotide MLM corpus from a FASTA file (by default the shared ncRNA pretraining set). */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readFastaFile } from '@rnagrad/tokenizers/node';
import { type FastaRecord } from '@rnagrad/tokenizers';
import { type NucleotideCorpus, nucleotideCorpus } from '../rinalmo-data.js';

/**
 * ../shared/data/ncrna_pretrain next to the repository (13,603 Rfam ncRNAs; Rfam CC0, not copied
 * into the repository), or `$RNAGRAD_DATA/ncrna_pretrain/…` when that is set.
 */
export function ncrnaPretrainPath(): string {
  const root = process.env.RNAGRAD_DATA ?? fileURLToPath(new URL('../../../../../shared/data', import.meta.url));
  return `${root}/ncrna_pretrain/ncrna_rfam14_ncypred.fasta`;
}

/** Reads a FASTA file into a corpus with a fixed validation split (every `validationEvery`-th record). */
export async function loadNucleotideCorpus(
  path = ncrnaPretrainPath(),
  opts: { validationEvery?: number } = {},
): Promise<NucleotideCorpus> {
  if (!existsSync(path))
    throw new Error(
      `${path}: no such file (the ncRNA corpus is in ../shared/data/ncrna_pretrain, or set RNAGRAD_DATA)`,
    );
  const records: FastaRecord[] = [];
  for await (const record of readFastaFile(path)) records.push(record);
  return nucleotideCorpus(records, { ...opts, source: path });
}
