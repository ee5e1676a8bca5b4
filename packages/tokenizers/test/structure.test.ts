import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  ParseError,
  type SecondaryStructure,
  basePairs,
  dotBracketFromPartners,
  formatBpseq,
  formatCt,
  formatDotBracket,
  parseBpseq,
  parseCt,
  parseDotBracket,
  partnersFromDotBracket,
  partnersFromPairs,
} from '../src/index.js';
import { readStructureFile } from '../src/node.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A random structure: a random matching on a random subset of bases, so pseudoknots of any depth occur. */
const structure: fc.Arbitrary<SecondaryStructure> = fc.integer({ min: 0, max: 70 }).chain((n) =>
  fc
    .record({
      id: fc.stringMatching(/^[A-Za-z0-9_.-]{0,10}$/),
      sequence: fc.stringMatching(new RegExp(`^[ACGUN]{${n}}$`)),
      paired: fc.shuffledSubarray([...Array(n).keys()]),
    })
    .map(({ id, sequence, paired }) => {
      const pairs: [number, number][] = [];
      for (let k = 0; k + 1 < paired.length; k += 2) pairs.push([paired[k]!, paired[k + 1]!]);
      return { id, sequence, partners: partnersFromPairs(n, pairs) };
    }),
);

const plain = (s: SecondaryStructure) => ({ id: s.id, sequence: s.sequence, partners: Array.from(s.partners) });

function parseErrorOf(run: () => unknown): ParseError {
  try {
    run();
  } catch (error) {
    assert.instance(error, ParseError);
    return error as ParseError;
  }
  assert.unreachable('should have thrown');
  throw new Error('unreachable');
}

test('dot-bracket with nested pairs and a pseudoknot', () => {
  const partners = partnersFromDotBracket('((..[[..))..]]');
  assert.equal(basePairs(partners), [
    [0, 9],
    [1, 8],
    [4, 13],
    [5, 12],
  ]);
  assert.is(dotBracketFromPartners(partners), '((..[[..))..]]');
  assert.is(dotBracketFromPartners(partnersFromDotBracket('<<..Aa..>>')), '((..()..))');
  assert.is(dotBracketFromPartners(partnersFromDotBracket('<<..A>>a')), '((..[))]');
  // Three mutually crossing pairs need three pages; {} then <> then Aa.
  assert.is(
    dotBracketFromPartners(
      partnersFromPairs(8, [
        [0, 4],
        [1, 5],
        [2, 6],
        [3, 7],
      ]),
    ),
    '([{<)]}>',
  );
  assert.is(
    dotBracketFromPartners(
      partnersFromPairs(10, [
        [0, 5],
        [1, 6],
        [2, 7],
        [3, 8],
        [4, 9],
      ]),
    ),
    '([{<A)]}>a',
  );
});

test('dot-bracket errors name the column', () => {
  assert.throws(() => partnersFromDotBracket('(..))'), /unmatched '\)' at column 5/);
  assert.throws(() => partnersFromDotBracket('((..)'), /unclosed '\(' at column 1/);
  assert.throws(() => partnersFromDotBracket('(.*.)'), /unexpected character "\*" at column 3/);
  assert.throws(() => partnersFromDotBracket('([)]a'), /unmatched 'a' at column 5/);
  // 31 mutually crossing pairs need 31 pages: one more than the 30 symbol pairs.
  const crossing = partnersFromPairs(
    62,
    Array.from({ length: 31 }, (_, k) => [k, k + 31] as [number, number]),
  );
  assert.throws(() => dotBracketFromPartners(crossing), /more than 30 bracket pages/);
});

test('dot-bracket files: headers, RNAfold energies, bpRNA .st, and located errors', () => {
  const text = '# comment\n>hairpin\nGGGAAACCC\n(((...))) (-1.20)\n>two\r\nACGUACGU\r\n........\r\n';
  assert.equal(parseDotBracket(text).map(plain), [
    { id: 'hairpin', sequence: 'GGGAAACCC', partners: [8, 7, 6, -1, -1, -1, 2, 1, 0] },
    { id: 'two', sequence: 'ACGUACGU', partners: Array(8).fill(-1) },
  ]);
  const st = '#Name: bpRNA_X_1\n#Length: 9\n#PageNumber: 1\nGGGAAACCC\n(((...)))\nSSSHHHSSS\nNNNNNNNNN\n';
  assert.equal(
    parseDotBracket(st).map((s) => s.id),
    ['bpRNA_X_1'],
  );
  assert.equal(
    parseDotBracket('ACGU\n(..)\n').map((s) => s.id),
    [''],
  );

  let error = parseErrorOf(() => parseDotBracket('>a\nGGGAAACCC\n(((...)).\n', { sourceName: 'a.db' }));
  assert.is(error.message, "dot-bracket line 3: unclosed '(' at column 1 (a.db)");
  error = parseErrorOf(() => parseDotBracket('>a\nGGGAAACCC\n(((...))\n'));
  assert.is(error.message, 'dot-bracket line 3: the structure has 8 symbols but the sequence 9 bases');
  error = parseErrorOf(() => parseDotBracket('>a\nGG1AAACCC\n'));
  assert.is(error.message, 'dot-bracket line 2: unexpected character "1" at column 3 of the sequence');
  error = parseErrorOf(() => parseDotBracket('>a\nGGGAAACCC\n'));
  assert.match(error.message, /record 'a' has a sequence but no structure line/);
  error = parseErrorOf(() => parseDotBracket('ACGU\n(..)\nACGU\n(..)\n'));
  assert.is(error.lineNumber, 3);
});

test('CT: header title, several records, reciprocity and located errors', () => {
  const ct =
    '5 ENERGY = -1.0 tiny\n1 G 0 2 5 1\n2 A 1 3 0 2\n3 A 2 4 0 3\n4 A 3 5 0 4\n5 C 4 0 1 ' +
    '5\n\n2\tb\n1\tA\t0\t2\t0\t1\n2\tU\t1\t0\t0\t2\n';
  assert.equal(parseCt(ct).map(plain), [
    { id: 'ENERGY = -1.0 tiny', sequence: 'GAAAC', partners: [4, -1, -1, -1, 0] },
    { id: 'b', sequence: 'AU', partners: [-1, -1] },
  ]);
  let error = parseErrorOf(() => parseCt('3 x\n1 G 0 2 3 1\n2 A 1 3 0 2\n3 C 2 0 2 3\n', { sourceName: 'x.ct' }));
  assert.is(error.message, 'CT line 2: base 1 pairs with 3, but base 3 is paired with 2 (x.ct)');
  error = parseErrorOf(() => parseCt('3 x\n1 G 0 2 0 1\n3 A 1 3 0 2\n'));
  assert.is(error.message, 'CT line 3: expected base index 2, got 3');
  error = parseErrorOf(() => parseCt('3 x\n1 G 0 2 0 1\n2 A 1 3 0 2\n'));
  assert.is(error.message, 'CT line 3: the header on line 1 announces 3 bases, but the input ends after 2');
  error = parseErrorOf(() => parseCt('2 x\n1 G 0 2 7 1\n2 A 1 3 0 2\n'));
  assert.is(error.message, 'CT line 2: partner 7 is outside 0…2');
  error = parseErrorOf(() => parseCt('x y\n'));
  assert.is(error.message, 'CT line 1: the header\'s base count must be an integer, got "x"');
  error = parseErrorOf(() => parseCt('1 x\n1 G 0 0\n'));
  assert.match(error.message, /CT line 2: expected 6 columns/);
});

test('BPSEQ: CRW header lines, comments and located errors', () => {
  const bpseq = 'Filename: toy.bpseq\nOrganism: none\n# toy\n1 G 4\n2 A 0\n3 A 0\n4 C 1\n';
  assert.equal(plain(parseBpseq(bpseq)), { id: 'toy', sequence: 'GAAC', partners: [3, -1, -1, 0] });
  let error = parseErrorOf(() => parseBpseq('1 G 4\n2 A 0\n3 A 0\n4 C 0\n', { sourceName: 't.bpseq' }));
  assert.is(error.message, 'BPSEQ line 1: base 1 pairs with 4, but base 4 is unpaired (t.bpseq)');
  error = parseErrorOf(() => parseBpseq('1 G 0\n2 A\n'));
  assert.is(error.message, 'BPSEQ line 2: expected 3 columns (index base partner), got 2');
  error = parseErrorOf(() => parseBpseq('1 G 0\n2 A 9\n'));
  assert.is(error.message, 'BPSEQ line 2: partner 9 is outside 0…2');
  error = parseErrorOf(() => parseBpseq('1 G 0\n2 A x\n'));
  assert.is(error.message, 'BPSEQ line 2: the partner must be an integer, got "x"');
});

test('partnersFromPairs and the writers refuse invalid structures', () => {
  assert.throws(
    () =>
      partnersFromPairs(4, [
        [0, 3],
        [3, 1],
      ]),
    /base 3 is in two pairs/,
  );
  assert.throws(() => partnersFromPairs(4, [[0, 4]]), /outside a sequence of length 4/);
  assert.throws(() => partnersFromPairs(4, [[2, 2]]), /cannot pair with itself/);
  const asymmetric = { id: 'a', sequence: 'ACGU', partners: Int32Array.from([3, -1, -1, -1]) };
  assert.throws(() => formatCt([asymmetric]), /not symmetric at base 0/);
  assert.throws(() => formatBpseq({ ...asymmetric, sequence: 'ACG' }), /3 bases but 4 partner entries/);
  assert.throws(() => formatDotBracket([{ id: 'e', sequence: '', partners: new Int32Array(0) }]), /empty sequence/);
});

test('property: dot-bracket, CT and BPSEQ round trips keep every pair, pseudoknots included', () => {
  fc.assert(
    fc.property(fc.array(structure, { minLength: 1, maxLength: 4 }), (structures) => {
      const expected = structures.map(plain);
      const withSequence = structures.filter((s) => s.sequence.length > 0);
      assert.equal(parseDotBracket(formatDotBracket(withSequence)).map(plain), withSequence.map(plain));
      assert.equal(parseCt(formatCt(structures)).map(plain), expected);
      for (const s of structures) {
        assert.equal(plain(parseBpseq(formatBpseq(s))), plain(s));
        // Reading a written dot-bracket string gives the same pairs, whatever pages it needed.
        assert.equal(Array.from(partnersFromDotBracket(dotBracketFromPartners(s.partners))), Array.from(s.partners));
      }
    }),
    { numRuns: 200 },
  );
});

test('readStructureFile picks the reader by extension and names the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rnagrad-structure-'));
  const hairpin = { id: 'h', sequence: 'GGGAAACCC', partners: partnersFromDotBracket('(((...)))') };
  writeFileSync(join(dir, 'h.ct'), formatCt([hairpin]));
  writeFileSync(join(dir, 'h.bpseq'), formatBpseq(hairpin));
  writeFileSync(join(dir, 'h.dbn'), formatDotBracket([hairpin]));
  for (const name of ['h.ct', 'h.bpseq', 'h.dbn'])
    assert.equal(readStructureFile(join(dir, name)).map(plain), [plain(hairpin)]);
  writeFileSync(join(dir, 'bad.ct'), '2 x\n1 G 0 2 2 1\n');
  assert.throws(
    () => readStructureFile(join(dir, 'bad.ct')),
    /CT line 2: the header on line 1 announces 2 bases.*bad\.ct/,
  );
  assert.throws(() => readStructureFile(join(dir, 'missing.bpseq')), /missing\.bpseq: no such file/);
  assert.throws(() => readStructureFile(join(dir, 'h.txt')), /unknown structure format "\.txt"/);
});

test.run();
