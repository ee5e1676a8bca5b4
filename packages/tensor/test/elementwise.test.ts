import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import {
  assertPairClose,
  both,
  broadcastPairArb,
  disposePairs,
  fcOptions,
  pair,
  shapeArb,
  valuesFor,
  viewOf,
} from './helpers.js';

type Unary = (x: T.Tensor) => T.Tensor;
const UNARY: [string, Unary, number, number][] = [
  ['neg', T.neg, -4, 4],
  ['abs', T.abs, -4, 4],
  ['square', T.square, -4, 4],
  ['sign', T.sign, -4, 4],
  ['relu', T.relu, -4, 4],
  ['exp', T.exp, -4, 4],
  ['log', T.log, 0.01, 8],
  ['sqrt', T.sqrt, 0, 8],
  ['rsqrt', T.rsqrt, 0.05, 8],
  ['reciprocal', T.reciprocal, 0.1, 4],
  ['sin', T.sin, -4, 4],
  ['cos', T.cos, -4, 4],
  ['tanh', T.tanh, -20, 20],
  ['sigmoid', T.sigmoid, -20, 20],
  ['floor', T.floor, -4, 4],
  ['ceil', T.ceil, -4, 4],
  ['erf', T.erf, -4, 4],
  ['gelu', T.gelu, -6, 6],
  ['geluTanh', T.geluTanh, -6, 6],
  ['silu', T.silu, -8, 8],
];

for (const [name, fn, lo, hi] of UNARY) {
  test(`${name} matches the oracle on random shapes and views`, async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb({ allowEmpty: true }), fc.nat(), fc.nat(5), async (shape, seed, kind) => {
        const base = pair(shape, valuesFor(shape, seed, lo, hi));
        const x = viewOf(base, kind);
        const y = both(fn, x);
        // Vulkan allows ~2^-11 absolute error for sin/cos/exp-based functions on some drivers.
        await assertPairClose(y, `${name}([${shape}])`, 2e-5, 2e-5);
        disposePairs(base, x, y);
      }),
      { numRuns: 12 },
    );
  });
}

type Binary = (a: T.TensorLike, b: T.TensorLike) => T.Tensor;
const BINARY: [string, Binary, number, number][] = [
  ['add', T.add, -4, 4],
  ['sub', T.sub, -4, 4],
  ['mul', T.mul, -4, 4],
  ['div', T.div, 0.5, 4],
  ['pow', T.pow, 0.1, 3],
  ['maximum', T.maximum, -4, 4],
  ['minimum', T.minimum, -4, 4],
  ['eq', T.eq, -2, 2],
  ['ne', T.ne, -2, 2],
  ['lt', T.lt, -2, 2],
  ['le', T.le, -2, 2],
  ['gt', T.gt, -2, 2],
  ['ge', T.ge, -2, 2],
];

for (const [name, fn, lo, hi] of BINARY) {
  const integers = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'].includes(name);
  test(`${name} broadcasts and matches the oracle`, async () => {
    await fc.assert(
      fc.asyncProperty(broadcastPairArb, fc.nat(), async ([sa, sb], seed) => {
        const a = pair(sa!, valuesFor(sa!, seed, lo, hi, integers));
        const b = pair(sb!, valuesFor(sb!, seed + 7, lo, hi, integers));
        const y = both((x, z) => fn(x, z), a, b);
        await assertPairClose(y, `${name}([${sa}], [${sb}])`, 1e-5, 1e-6);
        disposePairs(a, b, y);
      }),
      fcOptions,
    );
  });
}

test('binary ops take numbers on either side, and integer tensors stay integer', async () => {
  const a = pair([2, 3], [1, -2, 3, -4, 5, -6], 'i32');
  const cases: [string, (x: T.Tensor) => T.Tensor, T.DType][] = [
    ['x + 2', (x) => T.add(x, 2), 'i32'],
    ['10 - x', (x) => T.sub(10, x), 'i32'],
    ['x * 0.5', (x) => T.mul(x, 0.5), 'f32'],
    ['x / 2 (truncating)', (x) => T.div(x, 2), 'i32'],
    ['x / 0 (integer → 0)', (x) => T.div(x, 0), 'i32'],
  ];
  for (const [what, fn, dtype] of cases) {
    const y = both(fn, a);
    assert.is(y.g.dtype, dtype, what);
    await assertPairClose(y, what);
    disposePairs(y);
  }
  assert.equal(Array.from(await T.div(a.g, 2).data()), [0, -1, 1, -2, 2, -3]);
  disposePairs(a);
});

test('where selects with broadcasting; casts convert dtypes', async () => {
  await fc.assert(
    fc.asyncProperty(broadcastPairArb, fc.nat(), async ([sa, sb], seed) => {
      const cond = both((x) => T.gt(x, 0), pair(sa!, valuesFor(sa!, seed)));
      const a = pair(sb!, valuesFor(sb!, seed + 1));
      const y = both((c, x) => T.where(c, x, -1), cond, a);
      await assertPairClose(y, `where([${sa}], [${sb}], -1)`);
      const asInt = both((x) => T.cast(x, 'i32'), a);
      await assertPairClose(asInt, 'cast f32→i32 truncates');
      const asBool = both((x) => T.cast(x, 'bool'), asInt);
      await assertPairClose(asBool, 'cast i32→bool');
      disposePairs(cond, a, y, asInt, asBool);
    }),
    fcOptions,
  );
});

test('logical ops on booleans', async () => {
  const a = pair([4], [1, 0, 1, 0], 'bool');
  const b = pair([4], [1, 1, 0, 0], 'bool');
  const and = both(T.logicalAnd, a, b);
  const or = both(T.logicalOr, a, b);
  const not = both(T.logicalNot, a);
  assert.equal(Array.from(await and.g.data()), [1, 0, 0, 0]);
  assert.equal(Array.from(await or.g.data()), [1, 1, 1, 0]);
  assert.equal(Array.from(await not.g.data()), [0, 1, 0, 1]);
  await assertPairClose(and, 'and');
  disposePairs(a, b, and, or, not);
});

test('tanh and sigmoid saturate without NaN at huge inputs', async () => {
  const x = T.tensor([-1e30, -100, 100, 1e30]);
  assert.equal(Array.from(await T.tanh(x).data()), [-1, -1, 1, 1]);
  assert.equal(Array.from(await T.sigmoid(x).data()), [0, 0, 1, 1]);
});

test('assign writes into a strided view in place', async () => {
  const base = pair([3, 4], valuesFor([3, 4], 3));
  const col = both((t) => T.slice(t, 1, 1, 3), base);
  T.assign(col.g, 7);
  T.assign(col.c, 7);
  await assertPairClose(base, 'assign into columns 1..2');
  const v = await base.g.dataF64();
  assert.is(v[1], 7);
  assert.is(v[6], 7);
  disposePairs(base, col);
});

test.run();
