/**
 * softmax, log-softmax and the fused cross-entropy (nn.ts): GPU vs the float64 CPU oracle, and the oracle's backward vs
 * central differences.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import {
  crossEntropy,
  crossEntropyBackward,
  logSoftmax,
  logSoftmaxBackward,
  softmax,
  softmaxBackward,
} from '../src/softmax.js';
import {
  assertClose,
  assertPairClose,
  both,
  disposePairs,
  numericGrad,
  pair,
  shapeArb,
  valuesFor,
  viewOf,
  weighted,
} from './helpers.js';

for (const [name, fwd, bwd] of [
  ['softmax', softmax, softmaxBackward],
  ['logSoftmax', logSoftmax, logSoftmaxBackward],
] as const) {
  test(`${name} forward matches the oracle on random shapes, dims and views`, async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeArb({ allowEmpty: true }),
        fc.nat(),
        fc.nat(5),
        fc.integer({ min: -4, max: 3 }),
        async (shape, seed, kind, dimRaw) => {
          const base = pair(shape, valuesFor(shape, seed, -8, 8));
          const x = viewOf(base, kind);
          const dim = x.c.rank === 0 ? -1 : ((dimRaw % x.c.rank) + x.c.rank) % x.c.rank;
          const y = both((t) => fwd(t, dim), x);
          await assertPairClose(y, `${name}([${x.c.shape}], dim ${dim})`, 2e-5, 2e-6);
          disposePairs(base, x, y);
        },
      ),
      { numRuns: 40 },
    );
  });

  test(`${name} backward matches the oracle; the oracle matches central differences`, async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb({ maxRank: 3 }), fc.nat(), fc.nat(5), async (shape, seed, kind) => {
        const base = pair(shape, valuesFor(shape, seed, -3, 3));
        const x = viewOf(base, kind);
        const dim = x.c.rank === 0 ? -1 : seed % x.c.rank;
        const y = both((t) => fwd(t, dim), x);
        const dy = pair(y.c.shape, valuesFor(y.c.shape, seed + 1));
        const dx = both((a, b) => bwd(a, b, dim), y, dy);
        await assertPairClose(dx, `${name}Backward([${x.c.shape}], dim ${dim})`, 1e-4, 1e-5);
        if (x.c.size <= 60) {
          const xc = T.clone(x.c); // a contiguous CPU copy to perturb
          const numeric = await numericGrad(xc, () => weighted(fwd(xc, dim), dy.c));
          assertClose(await dx.c.dataF64(), numeric, `${name}Backward vs central differences`, 1e-5, 1e-6);
          xc.dispose();
        }
        disposePairs(base, x, y, dy, dx);
      }),
      { numRuns: 25 },
    );
  });
}

test('softmax: rows of length 1 give 1; large logits stay finite; masked (-inf) entries give 0', async () => {
  const one = pair([5, 1], valuesFor([5, 1], 3));
  const y1 = both((t) => softmax(t), one);
  assert.equal(Array.from(await y1.g.dataF64()), [1, 1, 1, 1, 1]);
  const big = pair([3, 6], [1e4, -1e4, 3e4, 0, 1, 2, -3e4, -3e4, -3e4, -3e4, -3e4, -3e4 + 1, 80, 90, 100, 88, 89, 87]);
  const y2 = both((t) => softmax(t), big);
  const l2 = both((t) => logSoftmax(t), big);
  await assertPairClose(y2, 'large softmax', 1e-5, 1e-7);
  await assertPairClose(l2, 'large logSoftmax', 1e-5, 1e-3);
  assert.ok((await y2.g.dataF64()).every(Number.isFinite));
  const masked = pair([2, 4], [-Infinity, -Infinity, 0, 0, 1, -Infinity, 2, 3]);
  const y3 = both((t) => softmax(t), masked);
  await assertPairClose(y3, 'masked softmax');
  const g3 = await y3.g.dataF64();
  assert.is(g3[0], 0);
  assert.ok(Math.abs(g3[2]! - 0.5) < 1e-6);
  disposePairs(one, y1, big, y2, l2, masked, y3);
});

// ---------------------------------------------------------------------------------------------
// Cross-entropy

/** logits [..., C] and targets with ~1/4 ignored rows (ignoreIndex -100 or 1). */
function ceCase(lead: number[], C: number, seed: number, scale = 5, ignoreIndex = -100) {
  const logits = pair([...lead, C], valuesFor([...lead, C], seed, -scale, scale));
  const tv = valuesFor(lead, seed + 1, 0, C - 1, true).map((t, i) => (i % 4 === 3 ? ignoreIndex : t));
  const targets = pair(lead, tv, 'i32');
  return { logits, targets, tv };
}

test('crossEntropy matches the oracle and -logSoftmax at the target, for every reduction', async () => {
  await fc.assert(
    fc.asyncProperty(
      shapeArb({ maxRank: 2 }),
      fc.integer({ min: 1, max: 40 }),
      fc.nat(),
      fc.constantFrom('mean', 'sum', 'none'),
      fc.constantFrom(0, 0.1),
      fc.boolean(),
      async (lead, C, seed, reduction, labelSmoothing, big) => {
        const { logits, targets, tv } = ceCase(lead, C, seed, big ? 3e3 : 5);
        const opts = { reduction, labelSmoothing } as const;
        const loss = both((x, t) => crossEntropy(x, t, opts), logits, targets);
        await assertPairClose(
          loss,
          `crossEntropy([${lead}, ${C}], ${reduction}, ε=${labelSmoothing})`,
          2e-5,
          big ? 2e-3 : 2e-5,
        );
        // independent check on the CPU: from logSoftmax
        const lsm = await logSoftmax(logits.c).dataF64();
        let total = 0;
        let count = 0;
        const rows: number[] = [];
        tv.forEach((t, r) => {
          if (t === -100) return rows.push(0);
          let smooth = 0;
          for (let k = 0; k < C; k++) smooth -= lsm[r * C + k]! / C;
          const l = (1 - labelSmoothing) * -lsm[r * C + t]! + labelSmoothing * smooth;
          rows.push(l);
          total += l;
          count++;
        });
        const expected = reduction === 'none' ? rows : reduction === 'sum' ? [total] : [total / count];
        const got = await loss.c.dataF64();
        if (reduction === 'mean' && count === 0) assert.ok(Number.isNaN(got[0]!));
        else assertClose(got, expected, 'crossEntropy vs logSoftmax', 1e-9, big ? 1e-6 : 1e-9);
        disposePairs(logits, targets, loss);
      },
    ),
    { numRuns: 40 },
  );
});

test('crossEntropyBackward matches the oracle; the oracle matches central differences', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 2 }),
      fc.integer({ min: 1, max: 9 }),
      fc.nat(),
      fc.constantFrom('mean', 'sum', 'none'),
      fc.constantFrom(0, 0.2),
      async (lead, C, seed, reduction, labelSmoothing) => {
        const { logits, targets, tv } = ceCase(lead, C, seed, 4, 1);
        const opts = { reduction, labelSmoothing, ignoreIndex: 1 } as const;
        // the forward's saved logsumexp: logsumexp = x - logSoftmax(x) at any column
        const lse = both((x) => {
          const l = logSoftmax(x);
          const first = T.narrow(x, -1, 0, 1);
          const lf = T.narrow(l, -1, 0, 1);
          const d = T.sub(first, lf);
          const r = T.reshape(d, lead);
          [l, first, lf, d].forEach((t) => t.dispose());
          return r;
        }, logits);
        const dshape = reduction === 'none' ? lead : [];
        const dloss = pair(dshape, valuesFor(dshape, seed + 5, 0.5, 2));
        const dx = both((x, t, s, d) => crossEntropyBackward(x, t, s, d, opts), logits, targets, lse, dloss);
        await assertPairClose(dx, `crossEntropyBackward([${lead}, ${C}], ${reduction})`, 1e-4, 1e-6);
        // (with every row ignored the mean loss is NaN and has no derivative to compare)
        if (reduction === 'mean' && tv.every((t) => t === 1)) return disposePairs(logits, targets, lse, dloss, dx);
        const xc = T.clone(logits.c);
        const numeric = await numericGrad(xc, async () => {
          const l = crossEntropy(xc, targets.c, opts);
          return weighted(l, dloss.c);
        });
        assertClose(await dx.c.dataF64(), numeric, 'crossEntropyBackward vs central differences', 1e-5, 1e-7);
        xc.dispose();
        disposePairs(logits, targets, lse, dloss, dx);
      },
    ),
    { numRuns: 30 },
  );
});

test('crossEntropy: all rows ignored gives NaN for mean, 0 for sum; the gradient is 0', async () => {
  const logits = pair([3, 4], valuesFor([3, 4], 9));
  const targets = pair([3], [-100, -100, -100], 'i32');
  const mean = both((x, t) => crossEntropy(x, t), logits, targets);
  const sum = both((x, t) => crossEntropy(x, t, { reduction: 'sum' }), logits, targets);
  assert.ok(Number.isNaN(await mean.g.item()));
  assert.is(await sum.g.item(), 0);
  const lse = pair([3], [1, 1, 1]);
  const one = pair([], [1]);
  const dx = both((x, t, s, d) => crossEntropyBackward(x, t, s, d, { reduction: 'sum' }), logits, targets, lse, one);
  assert.ok((await dx.g.dataF64()).every((v) => v === 0));
  disposePairs(logits, targets, mean, sum, lse, one, dx);
});

test('ops record their names and saved tensors for autograd, and free saved tensors when not taken', async () => {
  const calls: { op: string; attrs: Record<string, unknown> }[] = [];
  const prev = T.hooks.record;
  T.hooks.record = (op, _inputs, output, attrs) => {
    calls.push({ op, attrs });
    output.gradNode = {}; // "taken"
  };
  const x = T.tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  x.requiresGrad = true;
  const t = T.tensor([2, -100], { dtype: 'i32' });
  const before = T.liveTensorCount();
  const y = softmax(x);
  const l = crossEntropy(x, t);
  assert.equal(
    calls.map((c) => c.op),
    ['softmax', 'crossEntropy'],
  );
  assert.equal(calls[0]!.attrs, { dim: 1 });
  const saved = calls[1]!.attrs.saved as Record<string, T.Tensor>;
  assert.equal(Object.keys(saved).sort(), ['count', 'lse', 'targets']);
  assert.is(await saved.count!.item(), 1);
  T.hooks.record = null;
  for (const s of Object.values(saved)) s.dispose();
  y.dispose();
  l.dispose();
  assert.is(T.liveTensorCount(), before, 'no leaked tensors when taken and released');
  // not taken (no autograd): saved tensors are freed at once
  const l2 = crossEntropy(x, t);
  l2.dispose();
  assert.is(T.liveTensorCount(), before, 'no leaked tensors when not recorded');
  T.hooks.record = prev;
  x.dispose();
  t.dispose();
});

test.run();
