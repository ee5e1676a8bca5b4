import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import { assertPairClose, both, disposePairs, pair, shapeArb, valuesFor, viewOf } from './helpers.js';

const axesArb = fc.tuple(
  shapeArb({ maxRank: 4 }),
  fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  fc.boolean(),
  fc.nat(),
  fc.nat(5),
);

for (const op of ['sum', 'mean', 'prod', 'max', 'min'] as const) {
  test(`${op} over random axes (keepdim on/off, strided views) matches the oracle`, async () => {
    await fc.assert(
      fc.asyncProperty(axesArb, async ([shape, pick, keepdim, seed, kind]) => {
        const base = pair(shape, valuesFor(shape, seed, op === 'prod' ? 0.5 : -4, op === 'prod' ? 1.5 : 4));
        const x = viewOf(base, kind);
        const axes = x.c.shape.map((_, d) => d).filter((d) => pick[d]);
        const y = both((t) => T[op](t, axes, keepdim), x);
        await assertPairClose(y, `${op}([${x.c.shape}], axes [${axes}], keepdim ${keepdim})`, 1e-5, 1e-5);
        disposePairs(base, x, y);
      }),
      { numRuns: 25 },
    );
  });
}

for (const op of ['argmax', 'argmin'] as const) {
  test(`${op} along each axis and flattened, first index on ties`, async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeArb({ maxRank: 3 }),
        fc.nat(),
        fc.nat(3),
        fc.boolean(),
        async (shape, seed, axisPick, keepdim) => {
          // Few distinct integers, so ties are frequent.
          const x = pair(shape, valuesFor(shape, seed, -2, 2, true));
          const axis =
            shape.length === 0
              ? undefined
              : axisPick % (shape.length + 1) === shape.length
                ? undefined
                : axisPick % (shape.length + 1);
          const y = both((t) => T[op](t, axis, keepdim && axis !== undefined), x);
          await assertPairClose(y, `${op}([${shape}], axis ${axis})`);
          assert.is(y.g.dtype, 'i32');
          disposePairs(x, y);
        },
      ),
      { numRuns: 25 },
    );
  });
}

test('long rows use the workgroup schedule and stay accurate', async () => {
  const shape = [3, 5000];
  const x = pair(shape, valuesFor(shape, 11));
  for (const op of ['sum', 'mean', 'max', 'argmax'] as const) {
    const y = both((t) => T[op](t, 1), x);
    await assertPairClose(y, `${op} over rows of 5000`, 1e-5, 1e-4);
    disposePairs(y);
  }
  disposePairs(x);
});

test('integer and boolean reductions', async () => {
  const x = pair([2, 3], [1, 2, 3, 4, 5, 6], 'i32');
  const s = both((t) => T.sum(t, 1), x);
  assert.is(s.g.dtype, 'i32');
  assert.equal(Array.from(await s.g.data()), [6, 15]);
  const m = both((t) => T.mean(t), x);
  assert.is(m.g.dtype, 'f32');
  assert.is(await m.g.item(), 3.5);
  const b = both((t) => T.sum(T.gt(t, 2)), x);
  assert.is(await b.g.item(), 4);
  disposePairs(x, s, m, b);
});

test('reductions of empty tensors: sum is 0, max refuses with a clear error', async () => {
  const x = T.zeros([0, 3]);
  assert.equal(Array.from(await T.sum(x, 0).data()), [0, 0, 0]);
  assert.throws(() => T.max(x, 0), /max: cannot reduce zero elements \(shape \[0, 3\]/);
  x.dispose();
});

test('sumTo reverses broadcasting', async () => {
  const x = pair([2, 3, 4], valuesFor([2, 3, 4], 5));
  for (const target of [[3, 4], [1, 4], [3, 1], [2, 1, 4], []]) {
    const y = both((t) => T.sumTo(t, target), x);
    assert.equal(y.g.shape, target);
    await assertPairClose(y, `sumTo [${target}]`, 1e-5, 1e-5);
    disposePairs(y);
  }
  disposePairs(x);
});

test.run();
