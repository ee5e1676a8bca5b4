import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { type CsvRow, type CsvValue, ParseError, parseCsv, readCsv, readCsvColumn } from '../src/index.js';

async function rows(source: Parameters<typeof readCsv>[0]): Promise<CsvRow[]> {
  const out: CsvRow[] = [];
  for await (const row of readCsv(source)) out.push(row);
  return out;
}

async function column(source: Parameters<typeof readCsv>[0], name: string): Promise<CsvValue[]> {
  const out: CsvValue[] = [];
  for await (const value of readCsvColumn(source, name)) out.push(value);
  return out;
}

test('header row, plain and quoted fields with commas, quotes and newlines', () => {
  const text = 'name,seq,note\na1,ACGU,plain\n"b,2","AC\nGU","say ""hi"""\n\nc,,""\n';
  const { columns, rows: parsed } = parseCsv(text);
  assert.equal(columns, ['name', 'seq', 'note']);
  assert.equal(parsed, [
    { fields: { name: 'a1', seq: 'ACGU', note: 'plain' }, lineNumber: 2 },
    { fields: { name: 'b,2', seq: 'AC\nGU', note: 'say "hi"' }, lineNumber: 3 },
    { fields: { name: 'c', seq: '', note: '' }, lineNumber: 6 },
  ]);
});

test('Windows line endings, tab delimiter', async () => {
  const text = 'a,b\r\n1,"x\r\ny"\r\n';
  assert.equal(await rows(text), [{ fields: { a: '1', b: 'x\ny' }, lineNumber: 2 }]);
  assert.equal(parseCsv('a\tb\n1\t2', { delimiter: '\t' }).rows[0]!.fields, { a: '1', b: '2' });
});

test('errors carry line numbers', () => {
  const cases: [string, RegExp][] = [
    ['a,b\n1,2\n1,2,3\n', /^CSV line 3: expected 2 fields as in the header, found 3$/],
    ['a,b\n1,"2\n3,4\n', /^CSV line 2: quoted field is not closed/],
    ['a,b\n1,"2"x\n', /^CSV line 2: unexpected character "x" after a closing quote \(column 6\)/],
    ['a,b\n1,2"3\n', /^CSV line 2: quote inside an unquoted field/],
    ['a,a\n', /^CSV line 1: duplicate column name 'a'/],
    ['', /^CSV line 1: input is empty/],
  ];
  for (const [text, pattern] of cases) {
    try {
      parseCsv(text);
      assert.unreachable(`should have thrown for ${JSON.stringify(text)}`);
    } catch (error) {
      assert.instance(error, ParseError);
      assert.match((error as Error).message, pattern);
    }
  }
});

test('column selection by name, with a clear error for a missing column', async () => {
  const text = 'gene_name,median_exp,sequence\nthrL,1,ATG\n\nthrA,2,"ATG\nGCT"\n';
  assert.equal(await column(text, 'sequence'), [
    { value: 'ATG', lineNumber: 2 },
    { value: 'ATG\nGCT', lineNumber: 4 },
  ]);
  try {
    await column(text, 'seq');
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.is(
      (error as Error).message,
      "CSV line 1: no column named 'seq'; the header has: gene_name, median_exp, sequence",
    );
  }
});

test('property: quoted round trip survives any chunking', async () => {
  const field = fc.string({ maxLength: 8 }).map((s) => s.replaceAll('\r', ''));
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(field, { minLength: 2, maxLength: 2 }), { maxLength: 6 }),
      fc.integer({ min: 1, max: 9 }),
      async (records, size) => {
        const quote = (value: string): string => `"${value.replaceAll('"', '""')}"`;
        const text = ['x,y', ...records.map((r) => r.map(quote).join(','))].join('\n');
        const chunks: string[] = [];
        for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
        assert.equal(
          (await rows(chunks)).map((r) => [r.fields.x, r.fields.y]),
          records,
        );
      },
    ),
    { numRuns: 150 },
  );
});

test.run();
