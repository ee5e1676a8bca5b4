import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { accuracy, auroc, averageRanks, pearson, spearman } from '../src/index.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

// Expected values from SciPy 1.17 (scipy.stats.spearmanr / pearsonr / rankdata / mannwhitneyu).
const x = [1, 2, 2, 3, 5, 5, 5, 8, 0.5, -1];
const y = [2, 1, 4, 4, 3, 9, 9, 7, 0, 0];

test('averageRanks: tied values share the mean rank (scipy rankdata)', () => {
  assert.equal([...averageRanks(x)], [3, 4.5, 4.5, 6, 8, 8, 8, 10, 2, 1]);
});

test('spearman and pearson equal SciPy on data with ties', () => {
  close(spearman(x, y), 0.8416311415311708);
  close(pearson(x, y), 0.7985057245332016);
  close(spearman([3, 1, 2], [30, 10, 20]), 1);
  close(spearman([1, 2, 3], [3, 2, 1]), -1);
});

test('constant inputs, NaN and too few values give NaN (as SciPy); unequal lengths throw', () => {
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
  assert.ok(Number.isNaN(pearson([1, 2, 3], [4, 4, 4])));
  assert.ok(Number.isNaN(spearman([1, NaN, 3], [1, 2, 3])));
  assert.ok(Number.isNaN(pearson([1], [2])));
  assert.throws(() => spearman([1, 2], [1, 2, 3]), /differ in length \(2 vs 3\)/);
});

test('auroc is the Mann–Whitney statistic with ties counting one half', () => {
  // SciPy: mannwhitneyu(pos, neg).statistic / (4 · 4) = 0.8125.
  close(auroc([0, 0, 1, 1, 1, 1, 0, 0], [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.2, 0.4]), 0.8125);
  close(auroc([0, 1], [0.5, 0.5]), 0.5);
  close(auroc([1, 1, 0], [3, 2, 1]), 1);
  assert.ok(Number.isNaN(auroc([1, 1, 1], [0.1, 0.2, 0.3])), 'one class only');
  assert.throws(() => auroc([0, 2], [0.1, 0.2]), /labels must be 0 or 1, got 2 at index 1/);
});

test('auroc equals the pairwise count on random scores with ties', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 5 })), {
        minLength: 2,
        maxLength: 40,
      }),
      (rows) => {
        const labels = rows.map((r) => r[0]);
        const scores = rows.map((r) => r[1]);
        let pairs = 0;
        let wins = 0;
        for (const [li, si] of rows)
          for (const [lj, sj] of rows)
            if (li === 1 && lj === 0) {
              pairs++;
              wins += si > sj ? 1 : si === sj ? 0.5 : 0;
            }
        const got = auroc(labels, scores);
        return pairs === 0 ? Number.isNaN(got) : Math.abs(got - wins / pairs) < 1e-12;
      },
    ),
  );
});

test('spearman is 1 under any strictly increasing transform and symmetric', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: -1000, max: 1000 }), { minLength: 2, maxLength: 30 }), (v) => {
      return (
        Math.abs(
          spearman(
            v,
            v.map((t) => Math.exp(t / 100)),
          ) - 1,
        ) < 1e-12
      );
    }),
  );
  close(spearman(y, x), spearman(x, y));
});

test('accuracy counts equal entries', () => {
  close(accuracy([0, 1, 1, 0], [0, 1, 0, 0]), 0.75);
  assert.ok(Number.isNaN(accuracy([], [])));
});

test.run();
