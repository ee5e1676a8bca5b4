/**
 * Downstream data sets: ArchiveII rows (pairs vs dot-bracket cross-check, family from the id,
 * length filter), leave-one-family-out splits, nRC with and without the train/test duplicates,
 * regression CSVs and the train-only standardiser; the shared files when they are present.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basePairs, formatCt, parseCsv, partnersFromDotBracket } from '@rnagrad/tokenizers';
import {
  NRC_CLASSES,
  archiveIIFamily,
  archiveIIRecords,
  fitStandardizer,
  leaveOneFamilyOut,
  nrcDataset,
  regressionDataset,
  standardize,
  unstandardize,
} from '../src/index.js';
import { archiveIIPath, loadArchiveII, loadNrc, loadRegressionCsv, nrcPath } from '../src/node/downstream-data-file.js';

const ARCHIVE_HEADER = 'id,family,length,in_3864_subset,pseudoknotted,sequence,structure,pairs';
const archiveRows = (lines: string[]) => parseCsv([ARCHIVE_HEADER, ...lines].join('\n')).rows;

test('ArchiveII rows: pairs column checked against dot-bracket, family from the id, length filter', () => {
  const records = archiveIIRecords(
    archiveRows([
      '5s_A,5s,9,1,0,GGGAAACCC,(((...))),1-9;2-8;3-7',
      'tRNA_b-1,tRNA,8,1,1,GGAACCUU,([..)]..,1-5;2-6',
      'srp_long,srp,12,0,0,ACGUACGUACGU,............,',
    ]),
    { maxLength: 10 },
  );
  assert.equal(
    records.map((r) => [r.id, r.family, basePairs(r.partners)]),
    [
      [
        '5s_A',
        '5s',
        [
          [0, 8],
          [1, 7],
          [2, 6],
        ],
      ],
      [
        'tRNA_b-1',
        'tRNA',
        [
          [0, 4],
          [1, 5],
        ],
      ],
    ],
  );
  assert.throws(
    () => archiveIIRecords(archiveRows(['5s_A,5s,9,1,0,GGGAAACCC,(((...))),1-9;2-8'])),
    /line 2 \(5s_A\): the pairs and structure columns disagree/,
  );
  assert.throws(
    () => archiveIIRecords(archiveRows(['5s_A,srp,9,1,0,GGGAAACCC,(((...))),1-9;2-8;3-7'])),
    /family column "srp" differs from the id's prefix "5s"/,
  );
  assert.throws(
    () => archiveIIRecords(archiveRows(['5s_A,5s,8,1,0,GGGAAACCC,(((...))),1-9;2-8;3-7'])),
    /length column says 8 but the sequence has 9/,
  );
  assert.throws(
    () => archiveIIRecords(archiveRows(['5s_A,5s,9,1,0,GGGAAACCC,(((...))),1-9;2-x'])),
    /malformed pair "2-x"/,
  );
  assert.throws(
    () => archiveIIRecords(archiveRows(['5s_A,5s,9,1,0,GGGAAACCC,(((...))),1-9;1-8'])),
    /base 0 is in two pairs/,
  );
  assert.throws(
    () => archiveIIRecords(parseCsv('id,sequence\na,ACGU').rows, { source: 'x.csv' }),
    /x\.csv: missing column\(s\) family, length, structure, pairs/,
  );
  assert.is(archiveIIFamily('dir/16s_E.coli_domain2.ct'), '16s');
});

test('leave one family out: test is the family, duplicates of test sequences leave train, seeded validation', () => {
  const record = (id: string, sequence: string) => ({
    id,
    family: archiveIIFamily(id),
    sequence,
    partners: new Int32Array(sequence.length).fill(-1),
  });
  const records = [
    record('5s_a', 'ACGU'),
    record('5s_b', 'GGCC'),
    ...Array.from({ length: 20 }, (_, i) => record(`srp_${i}`, `AC${'G'.repeat(i)}`)),
    record('tRNA_x', 'ACGU'),
  ];
  const split = leaveOneFamilyOut(records, '5s', { validationFraction: 0.1, seed: 3 });
  assert.equal(
    split.test.map((r) => r.id),
    ['5s_a', '5s_b'],
  );
  assert.is(split.droppedDuplicates, 1);
  assert.is(split.validation.length, 2);
  assert.is(split.train.length, 18);
  assert.not.ok([...split.train, ...split.validation].some((r) => r.family === '5s' || r.sequence === 'ACGU'));
  assert.equal(
    leaveOneFamilyOut(records, '5s', { validationFraction: 0.1, seed: 3 }).validation.map((r) => r.id),
    split.validation.map((r) => r.id),
  );
  assert.throws(() => leaveOneFamilyOut(records, '23s'), /no family "23s" \(families: 5s, srp, tRNA\)/);
});

test('ArchiveII from a folder of .ct files; missing files are named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rnagrad-archive-'));
  writeFileSync(
    join(dir, 'tRNA_yeast.ct'),
    formatCt([{ id: 'x', sequence: 'ggGAAACCC', partners: partnersFromDotBracket('(((...)))') }]),
  );
  writeFileSync(
    join(dir, '5s_x.ct'),
    formatCt([{ id: 'y', sequence: 'GAAAAC', partners: partnersFromDotBracket('(....)') }]),
  );
  const records = await loadArchiveII(dir);
  assert.equal(
    records.map((r) => [r.id, r.family, r.sequence]),
    [
      ['5s_x', '5s', 'GAAAAC'],
      ['tRNA_yeast', 'tRNA', 'GGGAAACCC'],
    ],
  );
  assert.equal(
    (await loadArchiveII(dir, { maxLength: 6 })).map((r) => r.id),
    ['5s_x'],
  );
  await loadArchiveII(join(dir, 'nope.csv')).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /nope\.csv: no such file/),
  );
  await loadNrc(join(dir, 'nrc.csv')).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /nrc\.csv: no such file \(the nRC CSV/),
  );
});

test('nRC rows: class ids in README order, seeded validation, test duplicates dropped on request', () => {
  const rows = parseCsv(
    ['id,label,split,sequence', 'a,tRNA,train,ACGU', 'b,IRES,train,GGGG', 'c,tRNA,test,acgu', 'd,miRNA,test,CCCC'].join(
      '\n',
    ),
  ).rows;
  const all = nrcDataset(rows, { validationFraction: 0 });
  assert.equal(
    all.test.map((r) => [r.id, r.sequence, NRC_CLASSES[r.label]]),
    [
      ['c', 'ACGU', 'tRNA'],
      ['d', 'CCCC', 'miRNA'],
    ],
  );
  assert.is(all.droppedDuplicates, 0);
  const clean = nrcDataset(rows, { dropTestDuplicates: true, validationFraction: 0.5 });
  assert.equal(
    clean.test.map((r) => r.id),
    ['d'],
  );
  assert.is(clean.droppedDuplicates, 1);
  assert.is(clean.train.length + clean.validation.length, 2);
  const bad = parseCsv('id,label,split,sequence\na,tRNAx,train,ACGU').rows;
  assert.throws(() => nrcDataset(bad), /nrc_13class\.csv line 2: unknown class "tRNAx"/);
});

test('regression CSV: split column or seeded split, finite values, train-only standardiser', async () => {
  const withSplit = parseCsv('sequence,value,split\nACGU,1,train\nGGCC,3,train\nAAAA,2,valid\nUUUU,5,test').rows;
  const data = regressionDataset(withSplit);
  assert.equal([data.train.length, data.validation.length, data.test.length], [2, 1, 1]);
  const scaler = fitStandardizer(data.train.map((r) => r.value));
  assert.equal(scaler, { mean: 2, std: 1 });
  assert.is(standardize(scaler, 5), 3);
  assert.is(unstandardize(scaler, 3), 5);
  assert.throws(() => fitStandardizer([2, 2]), /all 2 training targets equal 2/);
  const seeded = regressionDataset(
    parseCsv(['seq,y', ...Array.from({ length: 20 }, (_, i) => `A${'C'.repeat(i)},${i}`)].join('\n')).rows,
    { sequenceColumn: 'seq', valueColumn: 'y' },
  );
  assert.equal([seeded.train.length, seeded.validation.length, seeded.test.length], [16, 2, 2]);
  assert.throws(
    () => regressionDataset(parseCsv('sequence,value\nACGU,abc\nAC,1').rows),
    /line 2: value "abc" is not a finite number/,
  );
  assert.throws(() => regressionDataset(parseCsv('sequence,value\nACGU,').rows), /value "" is not a finite number/);
  assert.throws(
    () => regressionDataset(parseCsv('seq,value\nACGU,1').rows, { source: 'r.csv' }),
    /r\.csv: missing column\(s\) sequence/,
  );
  assert.throws(
    () => regressionDataset(parseCsv('sequence,value,split\nA,1,train\nC,2,holdout').rows),
    /split must be train, validation or test, got "holdout"/,
  );
  const dir = mkdtempSync(join(tmpdir(), 'rnagrad-regression-'));
  writeFileSync(join(dir, 'r.csv'), 'sequence,value\nACGU,1\nGGCC,3\n');
  assert.is((await loadRegressionCsv(join(dir, 'r.csv'), { validationFraction: 0, testFraction: 0 })).train.length, 2);
});

test('the shared ArchiveII and nRC files, when present', async () => {
  if (existsSync(archiveIIPath())) {
    const records = await loadArchiveII();
    assert.is(records.length, 3865); // ≤ 512 nt (the README's 3,864-entry subset is < 512)
    assert.equal([...new Set(records.map((r) => r.family))].sort(), [
      '16s',
      '23s',
      '5s',
      'RNaseP',
      'grp1',
      'srp',
      'tRNA',
      'telomerase',
      'tmRNA',
    ]);
    const split = leaveOneFamilyOut(records, 'tRNA');
    assert.is(split.test.length, 557);
  }
  if (existsSync(nrcPath())) {
    const nrc = await loadNrc(undefined, { dropTestDuplicates: true });
    assert.is(nrc.droppedDuplicates, 347);
    assert.is(nrc.test.length, 2600 - 347);
    assert.is(nrc.train.length + nrc.validation.length, 6320);
  }
});

test.run();
