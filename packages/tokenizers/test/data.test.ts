import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CodonTokenizer, NucleotideTokenizer, translateCds } from '@rnagrad/tokenizers';
import { readCsvColumnFile, readFastaFile } from '@rnagrad/tokenizers/node';

// The curated data sets live beside the repository (../shared/data); skip when they are absent.
const DATA = fileURLToPath(new URL('../../../../shared/data/', import.meta.url));
const ECOLI = `${DATA}ecoli_cds/ecoli_k12_cds_expression.csv`;
const NCRNA = `${DATA}ncrna_pretrain/ncrna_rfam14_ncypred.fasta`;

(existsSync(ECOLI) ? test : test.skip)('E. coli CDS: first records tokenize into whole, framed codons', async () => {
  const tokenizer = new CodonTokenizer({ remainder: 'error' });
  let count = 0;
  for await (const { value, lineNumber } of readCsvColumnFile(ECOLI, 'sequence')) {
    const ids = tokenizer.encode(value);
    assert.is(ids.length, value.length / 3 + 2, `line ${lineNumber}`);
    assert.is(ids[0], tokenizer.clsId);
    assert.is(ids[ids.length - 1], tokenizer.eosId);
    assert.ok(!ids.includes(tokenizer.unkId));
    assert.is(tokenizer.decode(ids), value);
    assert.ok(translateCds(value).endsWith('*'));
    if (count === 0) assert.is(translateCds(value), 'MKRISTTITTTITITTGNGAG*'); // thrL leader peptide
    if (++count === 25) break;
  }
  assert.is(count, 25);
});

(existsSync(NCRNA) ? test : test.skip)('ncRNA FASTA: first records tokenize without <unk>', async () => {
  const tokenizer = new NucleotideTokenizer({ strict: true });
  let count = 0;
  for await (const record of readFastaFile(NCRNA, { alphabet: 'ACGUTN' })) {
    if (count === 0) assert.equal([record.id, record.description], ['ncypred_21355', 'Riboswitch']);
    const ids = tokenizer.encode(record.sequence);
    assert.is(ids.length, record.sequence.length + 2);
    assert.is(tokenizer.decode(ids), record.sequence.replaceAll('U', 'T'));
    if (++count === 50) break;
  }
  assert.is(count, 50);
});

(existsSync(ECOLI) ? test : test.skip)('a missing CSV column names the file and the header', async () => {
  try {
    for await (const _ of readCsvColumnFile(ECOLI, 'seq')) assert.unreachable('no rows expected');
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.match(
      (error as Error).message,
      new RegExp(
        "^CSV line 1: no column named 'seq'; the header has: gene_name, median_exp, sequence " +
          '\\(.*ecoli_k12_cds_expression\\.csv\\)$',
      ),
    );
  }
});

test.run();
