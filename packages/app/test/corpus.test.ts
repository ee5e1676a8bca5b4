import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NucleotideTokenizer } from '@rnagrad/tokenizers';
import * as T from '@rnagrad/tensor';
import { RinalmoModel, codonCorpus, rinalmoTask, train } from '@rnagrad/models';
import { bundledCorpus, checkCodingSequence, parseUpload, uploadCorpus } from '../src/corpus.js';

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

test('uploadCorpus splits the records into train and validation by name, for codons and nucleotides alike', () => {
  const text = Array.from(
    { length: 80 },
    (_, i) => `>${i}gene\nATGAAACGCATTAGCACCACCATTACCACCACCATCACCATTACCACAGGTAACGGTGCGGGCTGA${'GU'.repeat(i % 3)}`,
  ).join('\n');
  const { codons, nucleotides, validationFromTrain } = uploadCorpus('many.fa', text);
  assert.is(codons.train.length + codons.validation.length, 80);
  assert.ok(codons.train.length > 40 && codons.train[0]!.length >= 22);
  assert.ok(codons.validation.length > 0 && !validationFromTrain);
  assert.is(nucleotides.train.length, codons.train.length);
  assert.equal(nucleotides.validationIds, codons.names.validation);
  // Nucleotides keep what the codons drop (a trailing partial codon); U is read as T.
  const decode = (ids: Int32Array) => new NucleotideTokenizer().decode(ids);
  codons.names.validation.forEach((name, i) =>
    assert.is(decode(nucleotides.validation[i]!).length, 66 + 2 * (parseInt(name) % 3), name),
  );
  assert.match(decode(nucleotides.train[0]!), /^ATGAAACGC[ACGT]+$/);
});

test('a small upload with an empty validation split validates the nucleotide model on the training sequences', () => {
  // A name the hash puts in the training split (one in validation is refused: nothing left to train on).
  const name = ['a', 'b', 'c', 'd', 'e'].find((n) => codonCorpus([{ name: n, sequence: 'ATG' }]).train.length)!;
  const { codons, nucleotides, validationFromTrain } = uploadCorpus('one.fa', `>${name}\nAUGAAACGC\n`);
  assert.is(codons.validation.length, 0);
  assert.ok(validationFromTrain);
  assert.equal(nucleotides.validation, nucleotides.train);
  assert.equal(Array.from(nucleotides.train[0]!), Array.from(new NucleotideTokenizer().encode('ATGAAACGC')));
});

test('RiNALMo trains on a one-sequence upload (nothing to hold out): validated on the training set', async () => {
  await T.init({ quiet: true });
  const { nucleotides, validationFromTrain } = uploadCorpus(
    'mine.fasta',
    `>mine\nAUGAAACGCAUUAGCACC${'GGU'.repeat(9)}UGA`,
  );
  assert.ok(validationFromTrain);
  const twelve = Array.from({ length: 12 }, (_, i) => `>mine${i}\nAUGAAACGCAUUAGCACC${'GGU'.repeat(i)}UGA`).join('\n');
  assert.not.ok(uploadCorpus('mine.fasta', twelve).validationFromTrain, 'twelve sequences: one held out at least');
  T.manualSeed(1);
  const model = new RinalmoModel('pico');
  const options = {
    steps: 3,
    batchSize: 4,
    maxLength: 24,
    validationBatches: 1,
    evalEvery: 1,
    warmupSteps: 0,
    seed: 2,
  };
  const { history } = await train(rinalmoTask(model, nucleotides, options), options);
  model.dispose();
  assert.is(history.steps.length, 3);
  assert.is(history.evaluations.length, 4);
  for (const e of history.evaluations) assert.ok(Number.isFinite(e.metrics.crossEntropy), JSON.stringify(e));
});

test('the bundled codon corpus read as nucleotides gives back each sequence letter for letter', () => {
  const records = [
    { name: 'thrL', sequence: 'ATGAAACGCATTAGCACCACCATTACCACCACCATCACCATTACCACAGGTAACGGTGCGGGCTGA' },
    { name: 'thrA', sequence: 'ATGCGAGTGTTGAAGTTCGGCGGTACATCAGTGGCAAATGCAGAACGTTTTCTGTGA' },
    ...Array.from({ length: 30 }, (_, i) => ({ name: `g${i}`, sequence: `ATG${'GCT'.repeat(i + 1)}TAA` })),
  ];
  const corpus = bundledCorpus('bundled', codonCorpus(records));
  const tokenizer = new NucleotideTokenizer();
  for (const split of ['train', 'validation'] as const) {
    corpus.codons.names[split].forEach((name, i) => {
      const original = records.find((r) => r.name === name)!.sequence;
      assert.equal(Array.from(corpus.nucleotides[split][i]!), Array.from(tokenizer.encode(original)), name);
    });
  }
  assert.ok(corpus.nucleotides.validation.length > 0 && !corpus.validationFromTrain);
});

test.run();
