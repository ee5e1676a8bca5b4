import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { codonbertDatasetFromCsv, ecoliExpressionFromCsv } from '../src/index.js';
import { loadCodonbertDataset, loadEcoliExpression } from '../src/node.js';

const SHARED = new URL('../../../../shared/data/', import.meta.url).pathname;

const csv = (rows: string[]) => ['Sequence,Value,Dataset,Split', ...rows].join('\n');

test('CodonBERT CSV: given splits, codon ids (U read as T, a trailing remainder dropped), values', () => {
  const data = codonbertDatasetFromCsv(csv(['AUGGCU,1.5,x,train', 'AUGUAAG,-2,x,val', 'GCUGCU,0,x,test']), {
    name: 'toy',
  });
  assert.is(data.task, 'regression');
  assert.equal([...data.train[0]!.codons], [20, 45]); // ATG, GCT in HELM's sorted vocabulary
  assert.equal([...data.validation[0]!.codons], [20, 54]);
  assert.equal(data.validation[0]!.target, -2);
  assert.is(data.test.length, 1);
});

test('bad files are refused by line and column', () => {
  assert.throws(
    () => codonbertDatasetFromCsv('Sequence,Value\nAUG,1', { name: 'toy', sourceName: 'f.csv' }),
    /f\.csv: missing column "Split"/,
  );
  assert.throws(
    () => codonbertDatasetFromCsv(csv(['AUGNNN,1,x,train']), { name: 'toy', sourceName: 'f.csv' }),
    /f\.csv line 2: letter 'N' at nucleotide 4 is not A, C, G or U/,
  );
  assert.throws(
    () => codonbertDatasetFromCsv(csv(['AUGGCU,abc,x,train']), { name: 'toy' }),
    /line 2: column "Value" is not a finite number: 'abc'/,
  );
  assert.throws(
    () => codonbertDatasetFromCsv(csv(['AUGGCU,1,x,holdout']), { name: 'toy' }),
    /Split 'holdout' is not train, val or test/,
  );
  assert.throws(
    () => codonbertDatasetFromCsv(csv(['AUGGCU,1,x,train', 'AUG,2,x,val']), { name: 'toy', sourceName: 'f.csv' }),
    /f\.csv: the test split is empty/,
  );
  const ecoli = 'id,score,label,cv_fold,n_codons_no_stop,sequence\n';
  assert.throws(() => ecoliExpressionFromCsv(`${ecoli}a,5,2,1,1,AUG`, { testFold: 1 }), /label must be 0 or 1, got 2/);
  assert.throws(
    () => ecoliExpressionFromCsv(`${ecoli}a,5,1,11,1,AUG`, { testFold: 1 }),
    /cv_fold must be an integer in 1\.\.10, got 11/,
  );
  assert.throws(() => ecoliExpressionFromCsv(ecoli, { testFold: 0 }), /testFold must be an integer in 1\.\.10, got 0/);
});

test('E. coli folds: test fold, the next fold as validation, the rest train', () => {
  const rows = Array.from({ length: 10 }, (_, i) => `g${i},5,${i % 2},${i + 1},2,AUGGCU`);
  const data = ecoliExpressionFromCsv(['id,score,label,cv_fold,n_codons_no_stop,sequence', ...rows].join('\n'), {
    testFold: 10,
  });
  assert.equal([data.train.length, data.validation.length, data.test.length], [8, 1, 1]);
  assert.is(data.test[0]!.target, 1);
  assert.is(data.validation[0]!.target, 0); // fold 1 follows fold 10
});

test('Node readers: a missing path is named', async () => {
  await loadCodonbertDataset('mrfp', '/nonexistent/dir').then(
    () => assert.unreachable(),
    (err: Error) => assert.match(err.message, /\/nonexistent\/dir: cannot read the data set: no such file/),
  );
});

if (existsSync(`${SHARED}codonbert_benchmarks`)) {
  test('the shared CodonBERT files and E. coli folds read with the documented split sizes', async () => {
    const sizes = { mrfp: [1021, 219, 219], tc: [248, 53, 54], cov: [1600, 400, 400], mlos: [110, 22, 35] } as const;
    for (const [name, expected] of Object.entries(sizes)) {
      const data = await loadCodonbertDataset(name as keyof typeof sizes, `${SHARED}codonbert_benchmarks`);
      assert.equal([data.train.length, data.validation.length, data.test.length], [...expected], name);
    }
    const mrfp = await loadCodonbertDataset('mrfp', `${SHARED}codonbert_benchmarks/mRFP_Expression.csv`);
    assert.is(mrfp.train[0]!.codons.length, 226); // 678 nt
    const ecoli = await loadEcoliExpression(`${SHARED}ecoli_expression_mpepe`, { testFold: 1 });
    assert.is(ecoli.train.length + ecoli.validation.length + ecoli.test.length, 4281);
    assert.ok(ecoli.test.length >= 427 && ecoli.test.length <= 429);
  });
}

test.run();
