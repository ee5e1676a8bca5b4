/**
 * Every op @rnagrad/tensor records has a gradient rule that passes gradcheck on the float64 CPU
 * oracle (ops added outside the core test their own rules: @rnagrad/models' hxe-rule.test.ts).
 * The case table is typed against `CoreOp`, so a newly recorded op without a case
 * does not compile (as one without a rule does not); each case also checks that it recorded the
 * op it is named after.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import type { CoreOp, Tensor } from '@rnagrad/tensor';
import { gradcheck, noGrad, requireGrad } from '../src/index.js';

await T.init({ quiet: true });

function values(n: number, seed: number, lo: number, hi: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => lo + ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * (hi - lo));
}
/** CPU tensor with values in [lo, hi) (default [-2, 2)). */
const x = (shape: number[], seed: number, lo = -2, hi = 2) =>
  T.tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
    { shape, device: 'cpu' },
  );
/** Values in [0.5, 2): away from the kinks and poles of abs, relu, log, sqrt, division… */
const positive = (shape: number[], seed: number) => x(shape, seed, 0.5, 2);
const ints = (vals: number[], shape = [vals.length]) => T.tensor(Int32Array.from(vals), { shape, device: 'cpu' });

type Case = [fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[]];
const unary = (fn: (a: Tensor) => Tensor, input = x([2, 3], 1)): Case => [fn, [input]];
const binary = (fn: (a: Tensor, b: Tensor) => Tensor, a = x([2, 3], 2), b = x([3], 3)): Case => [fn, [a, b]];

const CASES: { [K in CoreOp]: () => Case } = {
  copy: () => unary(T.clone),
  castF32: () => unary((a) => T.cast(a, 'f32')),
  add: () => binary(T.add),
  sub: () => binary(T.sub),
  mul: () => binary(T.mul),
  div: () => binary(T.div, x([2, 3], 4), positive([3], 5)),
  pow: () => binary(T.pow, positive([2, 3], 6), x([3], 7)),
  maximum: () => binary(T.maximum, x([2, 3], 8), x([2, 3], 9)),
  minimum: () => binary(T.minimum, x([2, 3], 10), x([2, 3], 11)),
  neg: () => unary(T.neg),
  abs: () => unary(T.abs, positive([2, 3], 12).mul(-1)),
  square: () => unary(T.square),
  // Piecewise constant: the rule gives 0, and so do central differences away from the steps.
  sign: () => unary(T.sign, positive([2, 3], 13)),
  floor: () => unary(T.floor, x([5], 14, 0.1, 0.9)),
  ceil: () => unary(T.ceil, x([5], 15, 0.1, 0.9)),
  relu: () => unary(T.relu, T.tensor([-1.5, -0.5, 0.5, 1.5], { device: 'cpu' })),
  exp: () => unary(T.exp),
  log: () => unary(T.log, positive([2, 3], 16)),
  sqrt: () => unary(T.sqrt, positive([2, 3], 17)),
  rsqrt: () => unary(T.rsqrt, positive([2, 3], 18)),
  reciprocal: () => unary(T.reciprocal, positive([2, 3], 19)),
  sin: () => unary(T.sin),
  cos: () => unary(T.cos),
  tanh: () => unary(T.tanh),
  sigmoid: () => unary(T.sigmoid),
  erf: () => unary(T.erf),
  gelu: () => unary(T.gelu),
  geluTanh: () => unary(T.geluTanh),
  silu: () => unary(T.silu),
  elu: () => unary((a) => T.elu(a, 0.7), T.tensor([-2.5, -0.3, -1e-3, 0.2, 1.5, 3], { device: 'cpu' })),
  where: () => binary((a, b) => T.where(T.gt(a, 0), a, b), x([2, 3], 20), x([2, 3], 21)),

  sum: () => unary((a) => T.sum(a, 1)),
  mean: () => unary((a) => T.mean(a, [0], true)),
  prod: () => unary((a) => T.prod(a, 1), positive([2, 3], 22)),
  max: () => unary((a) => T.max(a, 1)),
  min: () => unary((a) => T.min(a, 0)),
  view: () => unary((a) => T.reshape(a, [3, 2])),
  permute: () => unary((a) => T.permute(a, [2, 0, 1]), x([2, 3, 2], 23)),
  expand: () => unary((a) => T.expand(a, [2, 4, 3]), x([4, 1], 24)),
  slice: () => unary((a) => T.slice(a, 1, 0, 5, 2), x([2, 5], 25)),
  concat: () => binary((a, b) => T.concat([a, b], 0), x([2, 3], 26), x([1, 3], 27)),
  gather: () => unary((a) => T.gather(a, 1, ints([2, 0, 2, 1, 1, 1], [2, 3])), x([2, 4], 28)),
  indexSelect: () => unary((a) => T.indexSelect(a, 0, ints([1, 1, 0])), x([2, 3], 29)),

  softmax: () => unary((a) => T.softmax(a, -1), x([3, 4], 30)),
  logSoftmax: () => unary((a) => T.logSoftmax(a, 0), x([3, 4], 31)),
  crossEntropy: () => unary((a) => T.crossEntropy(a, ints([2, -100, 0]), { labelSmoothing: 0.1 }), x([3, 4], 32)),
  layerNorm: () => [(a, w, b) => T.layerNorm(a, w, b), [x([3, 5], 33), x([5], 34), x([5], 35)]],
  rmsNorm: () => binary((a, w) => T.rmsNorm(a, w), x([3, 5], 36), x([5], 37)),
  embedding: () => unary((t) => T.embedding(t, ints([1, 3, 1, 0], [2, 2])), x([4, 3], 38)),
  indexAdd: () => binary((a, s) => T.indexAdd(a, 0, ints([2, 0, 2]), s), x([3, 2], 39), x([3, 2], 40)),
  dropout: () => unary((a) => T.dropout(a, 0.3, true, { seed: 3 }), x([4, 4], 41)),
  swiglu: () => [(u, v, b) => T.swiglu(u, v, b), [x([2, 3], 42), x([2, 3], 43), x([1], 44, 0.5, 1.5)]],
  matmul: () => [
    (a, b, bias) => T.matmul(a, b, { bias, activation: 'gelu' }),
    [x([2, 3, 4], 45), x([4, 5], 46), x([5], 47)],
  ],
  attention: () => [
    (q, k, v) => T.attention(q, k, v, { causal: true }),
    [x([1, 2, 3, 4], 48), x([1, 2, 3, 4], 49), x([1, 2, 3, 4], 50)],
  ],
  // A [2, 3, 3, 2, 4] view of a [2, 3, 2, 3, 4] tensor: strided q/k/v parts.
  attentionQkv: () =>
    unary((a) => T.attentionQkv(T.permute(a, [0, 1, 3, 2, 4]), { causal: true }), x([2, 3, 2, 3, 4], 52)),
  rope: () => unary((a) => T.rope(a, { positionOffset: 2 }), x([1, 2, 3, 4], 51)),
  conv1d: () => [(a, w, b) => T.conv1d(a, w, b, { padding: 'same' }), [x([2, 5, 3], 53), x([4, 3, 3], 54), x([4], 55)]],
  conv2d: () => [
    (a, w, b) => T.conv2d(a, w, b, { padding: [1, 0] }),
    [x([2, 3, 4, 2], 56), x([3, 2, 3, 2], 57), x([3], 58)],
  ],
  instanceNorm: () => unary((a) => T.instanceNorm(a), x([2, 3, 2, 3], 59)),
};

for (const op of Object.keys(CASES) as CoreOp[]) {
  test(`${op}: recorded, and its rule passes gradcheck on the float64 oracle`, async () => {
    const [fn, inputs] = CASES[op]();
    const recorded = new Set<string>();
    const install = T.hooks.record!;
    T.hooks.record = (name, ins, out, attrs) => {
      recorded.add(name);
      install(name, ins, out, attrs);
    };
    try {
      const r = await gradcheck(fn, inputs);
      assert.ok(r.ok, `${op}: ${r.detail} (score ${r.worst.toFixed(2)})`);
    } finally {
      T.hooks.record = install;
    }
    assert.ok(recorded.has(op), `the case for ${op} recorded [${[...recorded].join(', ')}], not ${op}`);
    for (const t of inputs) t.dispose();
  });
}

test('noGrad: nothing is recorded, and matmul with an activation writes no pre-activation', () => {
  const gpu = (shape: number[], seed: number) =>
    requireGrad(T.tensor(values(shape[0]! * shape[1]!, seed, -1, 1), { shape }));
  const a = gpu([4, 8], 60);
  const w = gpu([6, 8], 61);
  const pool = T.runtime().pool;
  const acquired = () => pool.stats().allocations + pool.stats().reuses;
  const buffers = () => {
    const before = acquired();
    const y = T.linear(a, w, null, 'gelu');
    const n = acquired() - before;
    const taken = y.gradNode !== null && y.gradNode !== undefined;
    y.dispose();
    return { n, taken };
  };
  const tracked = buffers();
  const untracked = noGrad(buffers);
  assert.equal(tracked, { n: 2, taken: true }, 'with grad: output and pre-activation');
  assert.equal(untracked, { n: 1, taken: false }, 'under noGrad: the output only');
});

test.run();
