import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { NucleotideTokenizer, RINALMO_VOCAB } from '../src/index.js';

const tokenizer = new NucleotideTokenizer();
const LETTERS = RINALMO_VOCAB.filter((token) => token.length === 1);

test('vocabulary has RiNALMo ids in order', () => {
  assert.equal(tokenizer.vocabSize, 22);
  assert.equal([...RINALMO_VOCAB.slice(0, 5)], ['<cls>', '<pad>', '<eos>', '<unk>', '<mask>']);
  const expected = 'ACGTIRYKMSWBDHVN-';
  for (let i = 0; i < expected.length; i++) assert.is(tokenizer.tokenToId(expected[i]!), 5 + i);
  assert.is(tokenizer.tokenToId('A'), 5);
  assert.is(tokenizer.tokenToId('T'), 8);
  assert.is(tokenizer.tokenToId('N'), 20);
  assert.is(tokenizer.tokenToId('-'), 21);
  assert.is(tokenizer.idToToken(4), '<mask>');
  assert.equal([tokenizer.clsId, tokenizer.padId, tokenizer.eosId, tokenizer.unkId, tokenizer.maskId], [0, 1, 2, 3, 4]);
  assert.throws(() => tokenizer.tokenToId('U'), /not in the RiNALMo vocabulary/);
  assert.throws(() => tokenizer.idToToken(22), /outside the vocabulary/);
});

test('encode frames with CLS/EOS, reads U as T and folds case', () => {
  assert.equal([...tokenizer.encode('ACGU')], [0, 5, 6, 7, 8, 2]);
  assert.equal([...tokenizer.encode('acgu')], [0, 5, 6, 7, 8, 2]);
  assert.equal([...tokenizer.encode('ACGT', { addSpecialTokens: false })], [5, 6, 7, 8]);
  assert.equal([...tokenizer.encode('n-i')], [0, 20, 21, 9, 2]);
});

test('empty sequence is just the framing', () => {
  assert.equal([...tokenizer.encode('')], [0, 2]);
  assert.equal([...tokenizer.encode('', { addSpecialTokens: false })], []);
});

test('whitespace is removed, other unknown characters become <unk>', () => {
  assert.equal([...tokenizer.encode(' AC\tG\r\nU ')], [0, 5, 6, 7, 8, 2]);
  assert.equal([...tokenizer.encode('AXZ*é')], [0, 5, 3, 3, 3, 3, 2]);
});

test('strict mode names the character and its position', () => {
  const strict = new NucleotideTokenizer({ strict: true });
  assert.equal([...strict.encode('ac gu')], [0, 5, 6, 7, 8, 2]);
  assert.throws(() => strict.encode('ACGX'), /unexpected character "X" at position 3/);
  assert.throws(() => strict.encodeBatch(['ACG', 'A.C']), /sequence 1: unexpected character "\." at position 1/);
});

test('truncation policies', () => {
  const ids = tokenizer.encode('ACGTACGT');
  assert.is(ids.length, 10);
  assert.equal([...tokenizer.encode('ACGTACGT', { maxLength: 4 })], [0, 5, 6, 7]);
  assert.equal([...tokenizer.encode('ACGTACGT', { maxLength: 4, truncation: 'keepEos' })], [0, 5, 6, 2]);
  assert.throws(
    () => tokenizer.encode('ACGTACGT', { maxLength: 4, truncation: 'error' }),
    /10 tokens, more than maxLength 4/,
  );
  assert.equal([...tokenizer.encode('AC', { maxLength: 4, truncation: 'error' })], [0, 5, 6, 2]);
  assert.throws(() => tokenizer.encode('ACGT', { maxLength: 0 }), /maxLength must be a positive integer/);
});

test('batch encode pads right to the longest row with a mask', () => {
  const batch = tokenizer.encodeBatch(['ACG', 'U', '']);
  assert.equal(batch.shape, [3, 5]);
  assert.equal([...batch.ids], [0, 5, 6, 7, 2, 0, 8, 2, 1, 1, 0, 2, 1, 1, 1]);
  assert.equal([...batch.attentionMask], [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0]);
  assert.equal([...batch.lengths], [5, 3, 2]);
});

test('batch encode pads to a fixed length and refuses rows that do not fit', () => {
  const batch = tokenizer.encodeBatch(['AC'], { padTo: 6 });
  assert.equal(batch.shape, [1, 6]);
  assert.equal([...batch.ids], [0, 5, 6, 2, 1, 1]);
  assert.throws(() => tokenizer.encodeBatch(['ACGTACGT'], { padTo: 6 }), /longer than padTo 6; set maxLength/);
  const cut = tokenizer.encodeBatch(['ACGTACGT', 'A'], { padTo: 6, maxLength: 6, truncation: 'keepEos' });
  assert.equal([...cut.ids], [0, 5, 6, 7, 8, 2, 0, 5, 2, 1, 1, 1]);
  assert.equal(tokenizer.encodeBatch([]).shape, [0, 0]);
});

test('decode skips framing but keeps <unk>/<mask> positions', () => {
  assert.is(tokenizer.decode(tokenizer.encode('acgun')), 'ACGTN');
  assert.is(tokenizer.decode([0, 5, 4, 3, 2, 1]), 'A<mask><unk>');
  assert.is(tokenizer.decode([0, 5, 2, 1], { skipSpecialTokens: false }), '<cls>A<eos><pad>');
});

test('property: decode(encode(s)) is s upper-cased with U as T', () => {
  const letter = fc.constantFrom(...LETTERS, 'U', ...LETTERS.map((l) => l.toLowerCase()), 'u');
  fc.assert(
    fc.property(fc.array(letter, { maxLength: 200 }), (letters) => {
      const sequence = letters.join('');
      const ids = tokenizer.encode(sequence);
      assert.is(ids.length, sequence.length + 2);
      assert.is(tokenizer.decode(ids), sequence.toUpperCase().replaceAll('U', 'T'));
    }),
  );
});

test('property: each letter maps to its index in the vocabulary', () => {
  fc.assert(
    fc.property(fc.constantFrom(...LETTERS), (letter) => {
      assert.equal([...tokenizer.encode(letter, { addSpecialTokens: false })], [RINALMO_VOCAB.indexOf(letter)]);
    }),
  );
});

test('property: batch rows equal single encodes, padding is masked', () => {
  const sequence = fc.array(fc.constantFrom('A', 'C', 'G', 'U', 'N', 'x'), { maxLength: 30 }).map((a) => a.join(''));
  fc.assert(
    fc.property(fc.array(sequence, { minLength: 1, maxLength: 8 }), (sequences) => {
      const batch = tokenizer.encodeBatch(sequences);
      const [rows, length] = batch.shape;
      assert.is(rows, sequences.length);
      sequences.forEach((sequence, r) => {
        const single = tokenizer.encode(sequence);
        const row = batch.ids.subarray(r * length, (r + 1) * length);
        assert.equal([...row.subarray(0, single.length)], [...single]);
        assert.ok(row.subarray(single.length).every((id) => id === tokenizer.padId));
        const mask = batch.attentionMask.subarray(r * length, (r + 1) * length);
        assert.is(
          mask.reduce((a, b) => a + b, 0),
          single.length,
        );
      });
    }),
  );
});

test.run();
