import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { type FastaRecord, ParseError, parseFasta, readFasta } from '../src/index.js';

async function collect(source: Parameters<typeof readFasta>[0], options = {}): Promise<FastaRecord[]> {
  const records: FastaRecord[] = [];
  for await (const record of readFasta(source, options)) records.push(record);
  return records;
}

const SAMPLE = '>seq1 first record\nACGU\nacgu\n\n>seq2\n  AC GU \t\n>empty\n>seq3 last\nNNN';

test('parses ids, descriptions, multi-line sequences, blank lines and inner whitespace', () => {
  assert.equal(parseFasta(SAMPLE), [
    { id: 'seq1', description: 'first record', sequence: 'ACGUacgu', lineNumber: 1 },
    { id: 'seq2', description: '', sequence: 'ACGU', lineNumber: 5 },
    { id: 'empty', description: '', sequence: '', lineNumber: 7 },
    { id: 'seq3', description: 'last', sequence: 'NNN', lineNumber: 8 },
  ]);
});

test('Windows line endings give the same records', async () => {
  const crlf = SAMPLE.replaceAll('\n', '\r\n') + '\r\n';
  assert.equal(parseFasta(crlf), parseFasta(SAMPLE));
  assert.equal(await collect(crlf), parseFasta(SAMPLE));
});

test('empty input and a byte-order mark', async () => {
  assert.equal(parseFasta(''), []);
  assert.equal(await collect([]), []);
  assert.equal(parseFasta('\uFEFF>a\nAC'), [{ id: 'a', description: '', sequence: 'AC', lineNumber: 1 }]);
});

test('sequence before a header is an error with the line number', () => {
  const text = '\n\nACGU\n>a\nAC';
  try {
    parseFasta(text);
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.instance(error, ParseError);
    assert.is((error as ParseError).lineNumber, 3);
    assert.is((error as Error).message, "FASTA line 3: sequence data before any '>' header");
  }
  assert.throws(() => parseFasta('>a\nAC\n>\nAC'), /FASTA line 3: empty header/);
});

test('optional alphabet check names line and column', async () => {
  const text = '>a\nACGU\r\nAC XU\n';
  assert.throws(
    () => parseFasta(text, { alphabet: 'ACGTUN' }),
    /FASTA line 3: unexpected character "X" at column 4 in record 'a'/,
  );
  assert.equal(parseFasta('>a\nacgun\n', { alphabet: 'ACGTUN' })[0]!.sequence, 'acgun');
  await collect(text, { alphabet: 'ACGTUN', sourceName: 'x.fa' }).then(
    () => assert.unreachable('should have thrown'),
    (error: Error) =>
      assert.is(error.message, 'FASTA line 3: unexpected character "X" at column 4 in record \'a\' (x.fa)'),
  );
});

test('property: any chunking of text or UTF-8 bytes streams the same records', async () => {
  const record = fc.record({
    id: fc.stringMatching(/^[A-Za-z0-9_|.]{1,12}$/),
    lines: fc.array(fc.stringMatching(/^[ACGUN]{1,70}$/), { maxLength: 4 }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(record, { maxLength: 6 }),
      fc.constantFrom('\n', '\r\n'),
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
      fc.boolean(),
      async (records, newline, sizes, asBytes) => {
        const text = records.map((r) => [`>${r.id}`, ...r.lines].join(newline)).join(newline) + newline;
        const chunks: (string | Uint8Array)[] = [];
        const bytes = new TextEncoder().encode(text);
        for (let start = 0, k = 0; start < text.length; k++) {
          const size = sizes[k % sizes.length]!;
          chunks.push(asBytes ? bytes.subarray(start, start + size) : text.slice(start, start + size));
          start += size;
        }
        const expected = records.map((r) => r.lines.join(''));
        assert.equal(
          (await collect(chunks)).map((r) => r.sequence),
          expected,
        );
        assert.equal(
          parseFasta(text).map((r) => r.id),
          records.map((r) => r.id),
        );
      },
    ),
    { numRuns: 150 },
  );
});

test.run();
