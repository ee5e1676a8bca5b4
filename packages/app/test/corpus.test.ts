import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkCodingSequence, parseUpload, uploadCorpus } from '../src/corpus.js';

test('FASTA and CSV uploads give named, normalised coding sequences', () => {
  assert.equal(parseUpload('a.fa', '>g1 first\natg aaa\nCGU-TAA\n>g2\nATGCCCTGA\n'), [
    { name: 'g1', sequence: 'ATGAAACGTTAA' },
    { name: 'g2', sequence: 'ATGCCCTGA' },
  ]);
  assert.equal(parseUpload('b.csv', 'gene_name,sequence\nthrL,ATGAAACGC\n"x,y",atgtaa\n'), [
    { name: 'thrL', sequence: 'ATGAAACGC' },
    { name: 'x,y', sequence: 'ATGTAA' },
  ]);
  assert.equal(
    parseUpload('c.csv', 'sequence,score\nATGAAA,1\n').map((r) => r.name),
    ['row 1'],
  );
});

test('bad uploads are errors that name the file, the record and the problem', () => {
  const cases: [string, string, RegExp][] = [
    ['empty.fa', '', /empty\.fa: the file is empty/],
    ['blank.fa', ' \n\n', /the file is empty/],
    ['notes.txt', 'hello world\n', /notes\.txt: not FASTA .* and not CSV/],
    ['x.csv', 'name,seq\na,ATG\n', /no "sequence" column \(columns: name, seq\)/],
    ['x.fa', '>a\nATGXAA\n', /x\.fa: a: invalid character "X" at position 4/],
    ['x.fa', '>a\n>b\nATG\n', /x\.fa: a: the sequence is empty/],
    ['x.fa', '>a\nAT\n', /x\.fa: a: 2 nucleotides, less than one codon/],
    ['x.csv', 'sequence\n', /no sequences found/],
  ];
  for (const [name, text, pattern] of cases)
    assert.throws(() => parseUpload(name, text), pattern, `${name}: ${JSON.stringify(text)}`);
  assert.throws(
    () => checkCodingSequence('ATG AAA ÄÄÄ', 'look inside'),
    /look inside: invalid character "Ä" at position 7/,
  );
});

test('uploadCorpus splits the records into train and validation by name', () => {
  const text = Array.from(
    { length: 40 },
    (_, i) => `>gene${i}\nATGAAACGCATTAGCACCACCATTACCACCACCATCACCATTACCACAGGTAACGGTGCGGGCTGA`,
  ).join('\n');
  const corpus = uploadCorpus('many.fa', text);
  assert.is(corpus.train.length + corpus.validation.length, 40);
  assert.ok(corpus.train.length > 20 && corpus.train[0]!.length === 22);
});

test.run();
