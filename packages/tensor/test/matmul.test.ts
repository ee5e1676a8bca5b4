/**
 * matmul / linear (linalg.ts): GPU vs the float64 CPU oracle on random shapes (odd sizes, size-1
 * dims, batch broadcasting, transposed views, 1-D operands, bias, every activation), PyTorch shape
 * rules and error messages, what is saved for autograd, and the backward helper vs central
 * differences.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import { type MatmulActivation, linear, matmul, matmulBackward, type MatmulAttrs } from '../src/linalg.js';
import { type Pair, assertClose, assertPairClose, both, disposePairs, pair, valuesFor } from './helpers.js';

const ACTS: MatmulActivation[] = ['none', 'relu', 'gelu', 'geluTanh'];

/**
 * A pair holding `shape`, optionally stored transposed (last two dims) and viewed back: a strided, non-contiguous
 * operand.
 */
function operand(shape: number[], seed: number, transposed: boolean): { base: Pair; view: Pair } {
  if (!transposed || shape.length < 2) {
    const base = pair(shape, valuesFor(shape, seed, -2, 2));
    return { base, view: both((t) => t.view(t.shape, t.strides), base) };
  }
  const r = shape.length;
  const phys = [...shape.slice(0, r - 2), shape[r - 1]!, shape[r - 2]!];
  const base = pair(phys, valuesFor(phys, seed, -2, 2));
  return { base, view: both((t) => T.transpose(t, -2, -1), base) };
}

/** GPU vs CPU, with an f32-accumulation tolerance that grows with K. */
async function assertMatmulClose(p: Pair, what: string, k: number): Promise<void> {
  await assertPairClose(p, what, 2e-5, 1e-5 * Math.max(4, k));
}

const dimArb = fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 10, max: 70 }));
const batchArb = fc.constantFrom<[number[], number[]]>(
  [[], []],
  [[3], [3]],
  [[2, 1], [3]],
  [[1], [2]],
  [[4], []],
  [[], [2, 3]],
  [
    [2, 1, 2],
    [1, 3, 1],
  ],
);

test(
  'matmul matches the oracle on random shapes, broadcast batches, transposed views, bias and ' + 'activations',
  async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          m: dimArb,
          n: dimArb,
          k: dimArb,
          batch: batchArb,
          transA: fc.boolean(),
          transB: fc.boolean(),
          vec: fc.constantFrom('none', 'none', 'a', 'b', 'both'),
          bias: fc.constantFrom('none', 'row', 'full', 'col'),
          activation: fc.constantFrom(...ACTS),
          seed: fc.nat(1000),
        }),
        async (r) => {
          const aShape = r.vec === 'a' || r.vec === 'both' ? [r.k] : [...r.batch[0], r.m, r.k];
          const bShape = r.vec === 'b' || r.vec === 'both' ? [r.k] : [...r.batch[1], r.k, r.n];
          const A = operand(aShape, r.seed, r.transA);
          const B = operand(bShape, r.seed + 1, r.transB);
          const probe = matmul(A.view.c, B.view.c);
          const resultShape = [...probe.shape];
          probe.dispose();
          const biasShape =
            r.bias === 'row' && !(r.vec === 'b' || r.vec === 'both')
              ? [r.n]
              : r.bias === 'full'
                ? resultShape
                : r.bias === 'col' && resultShape.length >= 1
                  ? [...resultShape.slice(0, -1), 1]
                  : null;
          const bias = biasShape ? pair(biasShape, valuesFor(biasShape, r.seed + 2, -1, 1)) : null;
          const y = bias
            ? both((a, b, c) => matmul(a, b, { bias: c, activation: r.activation }), A.view, B.view, bias)
            : both((a, b) => matmul(a, b, { activation: r.activation }), A.view, B.view);
          assert.equal(y.g.shape, resultShape);
          await assertMatmulClose(y, `${JSON.stringify(r)} -> [${resultShape}]`, r.k);
          disposePairs(A.base, A.view, B.base, B.view, y, ...(bias ? [bias] : []));
        },
      ),
      { numRuns: 40 },
    );
  },
);

test('PyTorch shape rules: vectors promoted and squeezed, batch dims broadcast', () => {
  const shapeOf = (a: number[], b: number[]) => {
    const x = T.zeros(a, { device: 'cpu' });
    const y = T.zeros(b, { device: 'cpu' });
    const z = matmul(x, y);
    const s = [...z.shape];
    for (const t of [x, y, z]) t.dispose();
    return s;
  };
  assert.equal(shapeOf([3], [3]), []);
  assert.equal(shapeOf([3], [3, 4]), [4]);
  assert.equal(shapeOf([2, 3], [3]), [2]);
  assert.equal(shapeOf([5, 2, 3], [3]), [5, 2]);
  assert.equal(shapeOf([3], [5, 3, 4]), [5, 4]);
  assert.equal(shapeOf([2, 1, 4, 3], [5, 3, 6]), [2, 5, 4, 6]);
  assert.equal(shapeOf([0, 3], [3, 4]), [0, 4]);
  assert.equal(shapeOf([2, 0], [0, 4]), [2, 4]);
});

test('values of small cases, K = 0, and the dot product of two vectors', async () => {
  const a = T.tensor([
    [1, 2],
    [3, 4],
  ]);
  const b = T.tensor([
    [5, 6],
    [7, 8],
  ]);
  assert.equal(Array.from(await matmul(a, b).data()), [19, 22, 43, 50]);
  assert.equal(
    Array.from(await matmul(a, b, { bias: T.tensor([1, -100]), activation: 'relu' }).data()),
    [20, 0, 44, 0],
  );
  const v = T.tensor([1, 2, 3]);
  const d = matmul(v, v);
  assert.equal(d.shape, []);
  assert.is(await d.item(), 14);
  const e = matmul(T.zeros([2, 0]), T.zeros([0, 3]), { bias: T.tensor([1, 2, 3]) });
  assert.equal(Array.from(await e.data()), [1, 2, 3, 1, 2, 3]);
});

test('each activation with a bias, on both devices, at sizes that are not tile multiples', async () => {
  for (const activation of ACTS) {
    const a = pair([3, 33, 47], valuesFor([3, 33, 47], 5, -1, 1));
    const b = pair([47, 65], valuesFor([47, 65], 6, -1, 1));
    const bias = pair([65], valuesFor([65], 7, -1, 1));
    const y = both((x, w, c) => matmul(x, w, { bias: c, activation }), a, b, bias);
    await assertMatmulClose(y, activation, 47);
    disposePairs(a, b, bias, y);
  }
});

test('large K (split-K path) and tiny outputs with long K (workgroup-per-output path)', async () => {
  const cases: [number[], number[]][] = [
    [
      [7, 1500],
      [1500, 9],
    ],
    [
      [1, 2000],
      [2000, 1],
    ],
    [[2000], [2000]],
    [
      [2, 3, 600],
      [600, 2],
    ],
  ];
  for (const [sa, sb] of cases) {
    const a = pair(sa, valuesFor(sa, 11, -1, 1));
    const b = pair(sb, valuesFor(sb, 12, -1, 1));
    const y = both((x, w) => matmul(x, w, { activation: 'gelu' }), a, b);
    await assertMatmulClose(y, `[${sa}] @ [${sb}]`, sa[sa.length - 1]!);
    disposePairs(a, b, y);
  }
});

test('linear uses the [out, in] weight through a transposed view and matches matmul(x, weightᵀ) + bias', async () => {
  const x = pair([2, 3, 5], valuesFor([2, 3, 5], 1));
  const w = pair([4, 5], valuesFor([4, 5], 2));
  const bias = pair([4], valuesFor([4], 3));
  const y = both((a, b, c) => linear(a, b, c), x, w, bias);
  assert.equal(y.g.shape, [2, 3, 4]);
  await assertMatmulClose(y, 'linear', 5);
  const ref = both((a, b, c) => T.add(matmul(a, T.transpose(b, 0, 1)), c), x, w, bias);
  await assertPairClose({ g: y.g, c: ref.c }, 'linear vs matmul + add', 1e-5, 1e-5);
  const v = both((a, b) => linear(a, b), pair([5], valuesFor([5], 4)), w);
  assert.equal(v.g.shape, [4]);
  await assertMatmulClose(v, 'linear of a vector', 5);
  const g = both((a, b, c) => linear(a, b, c, 'geluTanh'), x, w, bias);
  await assertMatmulClose(g, 'linear + geluTanh', 5);
  disposePairs(x, w, bias, y, ref, v, g);
});

test('shape, dtype and device errors name the op and both shapes', () => {
  const z = (s: number[], dtype: T.DType = 'f32', device: T.Device = 'cpu') => T.zeros(s, { dtype, device });
  assert.throws(
    () => matmul(z([2, 3]), z([4, 5])),
    (e: Error) => e instanceof RangeError && e.message === 'matmul: [2, 3] @ [4, 5]: inner dims 3 and 4 differ',
  );
  assert.throws(() => matmul(z([3]), z([4])), /matmul: \[3\] @ \[4\]: inner dims 3 and 4 differ/);
  assert.throws(
    () => matmul(z([2, 2, 3]), z([5, 3, 4])),
    /matmul: \[2, 2, 3\] @ \[5, 3, 4\]: batch dims \[2\] and \[5\] cannot be broadcast/,
  );
  assert.throws(() => matmul(z([]), z([3])), /matmul: \[\] @ \[3\]: both operands need at least 1 dim/);
  assert.throws(
    () => matmul(z([2, 3], 'i32'), z([3, 2])),
    (e: Error) => e instanceof TypeError && /matmul: only f32 tensors are supported, got i32 @ f32/.test(e.message),
  );
  assert.throws(
    () => matmul(z([2, 3]), z([3, 4]), { bias: z([3]) }),
    /matmul: \[2, 3\] @ \[3, 4\]: bias \[3\] does not broadcast to the result \[2, 4\]/,
  );
  assert.throws(
    () => matmul(z([2, 3]), z([3, 4]), { activation: 'tanh' as MatmulActivation }),
    /unknown activation "tanh"/,
  );
  assert.throws(() => matmul(z([2, 3]), z([3, 4], 'f32', 'gpu')), /matmul: tensors are on different devices/);
  assert.throws(
    () => linear(z([2, 3]), z([4, 5])),
    /linear: input \[2, 3\] must end in 5 features to match weight \[out, in\] = \[4, 5\]/,
  );
  assert.throws(() => linear(z([2, 5]), z([4, 5]), z([5])), /linear: bias must be \[4\]/);
  assert.throws(() => linear(z([2, 5]), z([20])), /linear: weight must be 2-D/);
});

test(
  'records matmul for autograd with its inputs and attrs; saves the pre-activation only when autograd takes the ' +
    'op',
  async () => {
    const a = T.tensor(valuesFor([4, 6], 1), { shape: [4, 6] });
    const b = T.tensor(valuesFor([6, 5], 2), { shape: [6, 5] });
    const bias = T.tensor(valuesFor([5], 3), { shape: [5] });
    const expectedPre = T.add(matmul(a, b), bias);
    const prev = T.hooks.record;
    let seen: { op: string; inputs: readonly T.Tensor[]; attrs: Record<string, unknown> } | null = null;
    // Without requiresGrad nothing is recorded and nothing extra stays alive.
    T.hooks.record = (op, inputs, _out, attrs) => (seen = { op, inputs, attrs });
    const before = T.liveTensorCount();
    const plain = matmul(a, b, { bias, activation: 'gelu' });
    assert.is(seen, null);
    plain.dispose();
    assert.is(T.liveTensorCount(), before);
    // With a hook that takes the op (sets gradNode), the pre-activation is saved.
    a.requiresGrad = true;
    T.hooks.record = (op, inputs, out, attrs) => {
      seen = { op, inputs, attrs };
      out.gradNode = {};
    };
    const y = matmul(a, b, { bias, activation: 'gelu' });
    const rec = seen as unknown as { op: string; inputs: readonly T.Tensor[]; attrs: MatmulAttrs };
    assert.is(rec.op, 'matmul');
    assert.equal(rec.inputs, [a, b, bias]);
    assert.is(rec.attrs.activation, 'gelu');
    assert.is(rec.attrs.hasBias, true);
    const pre = rec.attrs.saved!.preActivation;
    assertClose(await pre.dataF64(), await expectedPre.dataF64(), 'saved pre-activation', 1e-5, 1e-5);
    // A hook that declines leaves nothing behind: the pre-activation it was offered is disposed.
    T.hooks.record = (op, inputs, _out, attrs) => (seen = { op, inputs, attrs });
    const n0 = T.liveTensorCount();
    const z = matmul(a, b, { activation: 'relu' });
    assert.ok((seen as unknown as { attrs: MatmulAttrs }).attrs.saved!.preActivation.isDisposed);
    z.dispose();
    assert.is(T.liveTensorCount(), n0);
    T.hooks.record = prev;
    a.requiresGrad = false;
    for (const t of [a, b, bias, y, pre, expectedPre]) t.dispose();
  },
);

test('matmulBackward matches central differences of sum(matmul(a, b, {bias, act}) · r)', () => {
  const cases: { a: number[]; b: number[]; bias: number[] | null; act: MatmulActivation }[] = [
    { a: [3, 4], b: [4, 2], bias: [2], act: 'none' },
    { a: [2, 3, 4], b: [4, 5], bias: [3, 5], act: 'gelu' },
    { a: [4], b: [2, 4, 3], bias: null, act: 'geluTanh' },
    { a: [2, 1, 3, 4], b: [4, 3], bias: [1], act: 'relu' },
    { a: [5], b: [5], bias: null, act: 'none' },
    { a: [2, 3], b: [1, 3, 2], bias: null, act: 'gelu' },
  ];
  for (const c of cases) {
    const dev = { device: 'cpu' as const };
    const av = valuesFor(c.a, 21, -1.5, 1.5);
    const bv = valuesFor(c.b, 22, -1.5, 1.5);
    const xv = c.bias ? valuesFor(c.bias, 23, -1, 1) : null;
    const f = (a: number[], b: number[], x: number[] | null) => {
      const y = matmul(T.tensor(a, { shape: c.a, ...dev }), T.tensor(b, { shape: c.b, ...dev }), {
        bias: x ? T.tensor(x, { shape: c.bias!, ...dev }) : undefined,
        activation: c.act,
      });
      return y;
    };
    const y0 = f(av, bv, xv);
    const rv = valuesFor(y0.shape, 24, -1, 1);
    const r = T.tensor(rv, { shape: y0.shape, ...dev });
    const loss = (a: number[], b: number[], x: number[] | null) => {
      const y = f(a, b, x);
      const d = y.storage.data!;
      let s = 0;
      const flat = Array.from({ length: y.size }, (_, i) => d[y.offset + i]!);
      for (let i = 0; i < flat.length; i++) s += flat[i]! * rv[i]!;
      return s;
    };
    // Gradients from the helper, with the pre-activation saved as autograd would.
    const a = T.tensor(av, { shape: c.a, ...dev });
    const b = T.tensor(bv, { shape: c.b, ...dev });
    const bias = xv ? T.tensor(xv, { shape: c.bias!, ...dev }) : null;
    const pre = matmul(a, b, { bias: bias ?? undefined });
    const attrs: MatmulAttrs = {
      activation: c.act,
      hasBias: !!bias,
      saved: c.act === 'none' ? null : { preActivation: pre },
    };
    const [da, db, dx] = matmulBackward(r, a, b, bias, attrs);
    assert.equal(da!.shape, c.a);
    assert.equal(db!.shape, c.b);
    if (c.bias) assert.equal(dx!.shape, c.bias);
    const eps = 1e-3;
    const numeric = (vals: number[], which: 0 | 1 | 2) =>
      vals.map((_, i) => {
        const plus = [...vals];
        const minus = [...vals];
        plus[i]! += eps;
        minus[i]! -= eps;
        const args = (v: number[]) => [which === 0 ? v : av, which === 1 ? v : bv, which === 2 ? v : xv] as const;
        return (loss(...args(plus)) - loss(...args(minus))) / (2 * eps);
      });
    const flat = (t: T.Tensor) => Array.from({ length: t.size }, (_, i) => t.storage.data![t.offset + i]!);
    // CPU tensors round inputs to f32, so perturbations of 1e-3 carry ~1e-7 relative rounding: compare at 2e-3.
    assertClose(flat(T.contiguous(da!)), numeric(av, 0), `${JSON.stringify(c)} da`, 2e-3, 2e-3);
    assertClose(flat(T.contiguous(db!)), numeric(bv, 1), `${JSON.stringify(c)} db`, 2e-3, 2e-3);
    if (xv) assertClose(flat(T.contiguous(dx!)), numeric(xv, 2), `${JSON.stringify(c)} dbias`, 2e-3, 2e-3);
  }
});

test('matmulBackward on the GPU matches the CPU', async () => {
  const mk = (s: number[], seed: number) => pair(s, valuesFor(s, seed, -1, 1));
  const a = mk([2, 7, 9], 1);
  const b = mk([9, 6], 2);
  const bias = mk([6], 3);
  const g = mk([2, 7, 6], 4);
  const pre = both((x, w, c) => matmul(x, w, { bias: c }), a, b, bias);
  const grads = (dev: 'g' | 'c') =>
    matmulBackward(g[dev], a[dev], b[dev], bias[dev], {
      activation: 'geluTanh',
      hasBias: true,
      saved: { preActivation: pre[dev] },
    });
  const [gg, cc] = [grads('g'), grads('c')];
  for (let i = 0; i < 3; i++) await assertMatmulClose({ g: gg[i]!, c: cc[i]! }, `grad ${i}`, 14);
  disposePairs(a, b, bias, g, pre);
  for (const t of [...gg, ...cc]) t?.dispose();
});

test('no tensor handles leak', () => {
  const before = T.liveTensorCount();
  const a = T.ones([3, 4]);
  const b = T.ones([4]);
  const y = matmul(a, b, { activation: 'gelu' });
  const w = T.ones([2, 4]);
  const bias = T.ones([2]);
  const l = linear(a, w, bias);
  for (const t of [a, b, y, w, bias, l]) t.dispose();
  assert.is(T.liveTensorCount(), before);
});

test.run();
