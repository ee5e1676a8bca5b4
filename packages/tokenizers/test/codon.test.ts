import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  CODON_VOCAB,
  CODONS,
  CodonTokenizer,
  GENETIC_CODE,
  codonToAminoAcid,
  normalizeCodingSequence,
  translateCds,
} from '../src/index.js';

const tokenizer = new CodonTokenizer();
const base = fc.constantFrom('A', 'C', 'G', 'T');

test('known ids of the HXE vocabulary', () => {
  assert.is(tokenizer.vocabSize, 70);
  assert.equal(CODON_VOCAB.slice(0, 6), ['<cls>', '<distill_token>', '<eos>', '<mask>', '<pad>', '<unk>']);
  const known: Record<string, number> = { AAA: 6, ATG: 20, GCT: 45, TAA: 54, TAG: 56, TGA: 62, TTT: 69 };
  for (const [codon, id] of Object.entries(known)) {
    assert.is(tokenizer.tokenToId(codon), id, codon);
    assert.is(tokenizer.idToToken(id), codon);
  }
  assert.equal(
    [tokenizer.clsId, tokenizer.distillId, tokenizer.eosId, tokenizer.maskId, tokenizer.padId, tokenizer.unkId],
    [0, 1, 2, 3, 4, 5],
  );
});

test('id order is the ASCII sort of the labels (the HXE class order)', () => {
  assert.equal([...CODON_VOCAB].sort(), [...CODON_VOCAB]);
  assert.is(new Set(CODON_VOCAB).size, 70);
});

test('property: codon id = 6 + 16a + 4b + c with A,C,G,T = 0..3', () => {
  fc.assert(
    fc.property(base, base, base, (a, b, c) => {
      const index = (n: string): number => 'ACGT'.indexOf(n);
      const expected = 6 + 16 * index(a) + 4 * index(b) + index(c);
      assert.equal([...tokenizer.encode(a + b + c, { addSpecialTokens: false })], [expected]);
    }),
  );
});

test('clean-up: strip, remove gaps, upper-case, U→T; N codons are <unk>', () => {
  assert.equal([...tokenizer.encode('  aug-GCU\n')], [0, 20, 45, 2]);
  assert.equal([...tokenizer.encode('ATG NNN GCT')], [0, 20, 5, 45, 2]);
  assert.equal([...tokenizer.encode('ATGAXG')], [0, 20, 5, 2]);
  assert.is(normalizeCodingSequence(' a-u g\t'), 'ATG');
  assert.equal([...tokenizer.encode('')], [0, 2]);
});

test('remainder drop (default) discards trailing 1-2 nucleotides silently', () => {
  assert.equal([...tokenizer.encode('ATGGC')], [0, 20, 2]);
  assert.equal([...tokenizer.encode('AT')], [0, 2]);
});

test('remainder warn reports once per tokenizer', () => {
  const messages: string[] = [];
  const warning = new CodonTokenizer({ remainder: 'warn', warn: (m) => messages.push(m) });
  assert.equal([...warning.encode('ATGGC')], [0, 20, 2]);
  warning.encode('ATGG');
  warning.encode('ATG');
  assert.is(messages.length, 1);
  assert.match(messages[0]!, /sequence length 5 .* 2 trailing nucleotides dropped/);
});

test('remainder error names the sequence length', () => {
  const strict = new CodonTokenizer({ remainder: 'error' });
  assert.throws(() => strict.encode('ATGG'), /sequence length 4 .*not a multiple of 3: 1 trailing nucleotide$/);
  assert.throws(() => strict.encodeBatch(['ATG', 'ATGGC']), /sequence 1: sequence length 5/);
  assert.equal([...strict.encode('ATG-GCT')], [0, 20, 45, 2]);
});

test('truncation: hard by default (loses EOS like HELM), keepEos and error on request', () => {
  const cds = 'ATGGCTGCTTAA';
  assert.equal([...tokenizer.encode(cds, { maxLength: 4 })], [0, 20, 45, 45]);
  assert.equal([...tokenizer.encode(cds, { maxLength: 4, truncation: 'keepEos' })], [0, 20, 45, 2]);
  assert.throws(() => tokenizer.encode(cds, { maxLength: 4, truncation: 'error' }), /6 tokens/);
});

test('batch pads with <pad> = 4 and masks it', () => {
  const batch = tokenizer.encodeBatch(['ATGTAA', 'ATG'], { padTo: 5 });
  assert.equal(batch.shape, [2, 5]);
  assert.equal([...batch.ids], [0, 20, 54, 2, 4, 0, 20, 2, 4, 4]);
  assert.equal([...batch.attentionMask], [1, 1, 1, 1, 0, 1, 1, 1, 0, 0]);
});

test('decode to a codon string', () => {
  const ids = tokenizer.encode('atgNNNtaa');
  assert.is(tokenizer.decode(ids), 'ATG<unk>TAA');
  assert.is(tokenizer.decode(ids, { separator: ' ' }), 'ATG <unk> TAA');
  assert.is(
    tokenizer.decode([0, 20, 3, 2, 4, 1], { skipSpecialTokens: false }),
    '<cls>ATG<mask><eos><pad><distill_token>',
  );
  assert.is(tokenizer.decode([0, 20, 3, 2, 4, 1]), 'ATG<mask>');
});

test('property: decode(encode(s)) round-trips whole codons', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...CODONS), { maxLength: 100 }), fc.boolean(), (codons, rna) => {
      const dna = codons.join('');
      const input = rna ? dna.toLowerCase().replaceAll('t', 'u') : dna;
      const ids = tokenizer.encode(input);
      assert.is(ids.length, codons.length + 2);
      assert.is(tokenizer.decode(ids), dna);
    }),
  );
});

test('genetic code: 64 codons, 3 stops, 61 sense, 20 amino acids', () => {
  assert.is(Object.keys(GENETIC_CODE).length, 64);
  const values = Object.values(GENETIC_CODE);
  assert.is(values.filter((aa) => aa === '*').length, 3);
  assert.is(new Set(values.filter((aa) => aa !== '*')).size, 20);
  assert.is(codonToAminoAcid('ATG'), 'M');
  assert.is(codonToAminoAcid('ugg'), 'W');
  assert.is(codonToAminoAcid('TGA'), '*');
  assert.is(codonToAminoAcid('GCN'), 'X');
  assert.throws(() => codonToAminoAcid('AT'), /3 nucleotides/);
});

test('translate a CDS', () => {
  assert.is(
    translateCds('ATGAAACGCATTAGCACCACCATTACCACCACCATCACCATTACCACAGGTAACGGTGCGGGCTGA'),
    'MKRISTTITTTITITTGNGAG*',
  );
  assert.is(translateCds('AUG-NNN-UAA'), 'MX*');
  assert.is(translateCds('ATGGC'), 'M');
  assert.throws(() => translateCds('ATGGC', { remainder: 'error' }), /sequence length 5/);
});

test.run();
