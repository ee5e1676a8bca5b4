/**
 * Embedding and its deterministic scatter-add backward, indexAdd, dropout and SwiGLU (nn.ts): GPU vs
 * the float64 CPU oracle, and the oracle's backward vs central differences.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import { dropout, dropoutBackward } from '../src/dropout.js';
import { embedding, embeddingBackward, indexAdd } from '../src/scatter.js';
import { swiglu, swigluBackward } from '../src/swiglu.js';
import {
  assertClose,
  assertPairClose,
  both,
  collectGarbage,
  disposePairs,
  numericGrad,
  pair,
  shapeArb,
  valuesFor,
  weighted,
} from './helpers.js';

test('embedding forward picks rows; backward is a deterministic scatter-add (padding row gets none)', async () => {
  await fc.assert(
    fc.asyncProperty(
      shapeArb({ maxRank: 2 }),
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 1, max: 9 }),
      fc.nat(),
      fc.boolean(),
      async (idShape, V, D, seed, pad) => {
        const table = pair([V, D], valuesFor([V, D], seed));
        const idv = valuesFor(idShape, seed + 1, 0, V - 1, true);
        const ids = pair(idShape, idv, 'i32');
        const y = both((t, i) => embedding(t, i), table, ids);
        await assertPairClose(y, `embedding([${V}, ${D}], [${idShape}])`, 0, 0);
        const tv = await table.c.dataF64();
        assertClose(
          await y.g.dataF64(),
          idv.flatMap((v) => Array.from(tv.slice(v * D, v * D + D))),
          'rows',
          0,
          0,
        );
        const paddingIdx = pad ? 0 : null;
        const dy = pair([...idShape, D], valuesFor([...idShape, D], seed + 2));
        const dt = both((i, g) => embeddingBackward(i, g, V, { paddingIdx }), ids, dy);
        await assertPairClose(dt, `embeddingBackward(V=${V}, pad=${paddingIdx})`, 1e-5, 1e-6);
        if (pad)
          assert.ok(
            (await dt.g.dataF64()).slice(0, D).every((v) => v === 0),
            'padding row gets no gradient',
          );
        if (!pad && table.c.size <= 60) {
          const tc = T.clone(table.c);
          const numeric = await numericGrad(tc, () => weighted(embedding(tc, ids.c), dy.c));
          assertClose(await dt.c.dataF64(), numeric, 'embeddingBackward vs central differences', 1e-6, 1e-8);
          tc.dispose();
        }
        disposePairs(table, ids, y, dy, dt);
      },
    ),
    { numRuns: 30 },
  );
});

test('embeddingBackward at RNA-model sizes: repeated tokens, same bits run to run', async () => {
  for (const [N, V, D] of [
    [2048, 22, 64],
    [600, 70, 12],
    [700, 5000, 8],
  ] as const) {
    const idv = valuesFor([N], N + V, 0, V - 1, true);
    const ids = pair([N], idv, 'i32');
    const dy = pair([N, D], valuesFor([N, D], 5));
    const dt = both((i, g) => embeddingBackward(i, g, V), ids, dy);
    await assertPairClose(dt, `embeddingBackward N=${N} V=${V} D=${D}`, 1e-5, 1e-5);
    const again = embeddingBackward(ids.g, dy.g, V);
    assert.equal(Array.from(await again.data()), Array.from(await dt.g.data()), 'same bits run to run');
    disposePairs(ids, dy, dt);
    again.dispose();
  }
});

test('indexAdd along any dim matches the oracle and a direct loop', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }),
      fc.nat(),
      fc.integer({ min: 0, max: 6 }),
      async (shape, seed, N) => {
        const dim = seed % shape.length;
        const x = pair(shape, valuesFor(shape, seed));
        const srcShape = shape.map((s, k) => (k === dim ? N : s));
        const src = pair(srcShape, valuesFor(srcShape, seed + 1));
        const idx = valuesFor([N], seed + 2, 0, shape[dim]! - 1, true);
        const index = pair([N], idx, 'i32');
        const y = both((a, i, s) => indexAdd(a, dim, i, s), x, index, src);
        await assertPairClose(y, `indexAdd([${shape}], dim ${dim}, N=${N})`, 1e-5, 1e-6);
        // direct loop on the CPU values
        const xv = Array.from(await x.c.dataF64());
        const sv = await src.c.dataF64();
        const strides = (s: number[]) => s.map((_, k) => s.slice(k + 1).reduce((a, b) => a * b, 1));
        const xs = strides(shape);
        const ss = strides(srcShape);
        for (let i = 0; i < sv.length; i++) {
          const coord = srcShape.map((_, k) => Math.floor(i / ss[k]!) % srcShape[k]!);
          coord[dim] = idx[coord[dim]!]!;
          xv[coord.reduce((a, c, k) => a + c * xs[k]!, 0)] += sv[i]!;
        }
        assertClose(await y.c.dataF64(), xv, 'indexAdd vs loop', 1e-12, 1e-12);
        disposePairs(x, src, index, y);
      },
    ),
    { numRuns: 30 },
  );
});

test(
  'dropout: same mask on GPU and CPU for the same seed, inverted scaling, rate ≈ p, backward reuses the ' + 'mask',
  async () => {
    const shape = [64, 33];
    const x = pair(shape, valuesFor(shape, 1, 0.5, 1.5));
    const p = 0.3;
    const y = { g: dropout(x.g, p, true, { seed: 7 }), c: dropout(x.c, p, true, { seed: 7 }) };
    await assertPairClose(y, 'dropout', 1e-6, 0);
    const yv = await y.g.dataF64();
    const xv = await x.g.dataF64();
    let zeros = 0;
    yv.forEach((v, i) => {
      if (v === 0) zeros++;
      else assert.ok(Math.abs(v - xv[i]! / (1 - p)) < 1e-5);
    });
    assert.ok(Math.abs(zeros / yv.length - p) < 0.05, `drop rate ${zeros / yv.length}`);
    // the recorded mask serves the backward
    const prev = T.hooks.record;
    let saved: Record<string, T.Tensor> = {};
    T.hooks.record = (_op, _in, out, attrs) => {
      saved = attrs.saved as Record<string, T.Tensor>;
      out.gradNode = {};
    };
    x.g.requiresGrad = true;
    const y2 = dropout(x.g, p, true, { seed: 7 });
    T.hooks.record = prev;
    x.g.requiresGrad = false;
    const dy = T.onesLike(x.g);
    const dx = dropoutBackward(dy, saved.mask!);
    assertClose(
      await dx.dataF64(),
      Array.from(yv, (v, i) => v / xv[i]!),
      'dx = mask',
      1e-5,
      1e-6,
    );
    // eval mode and p = 0: identity
    const e = dropout(x.g, p, false);
    assert.equal(Array.from(await e.dataF64()), Array.from(xv));
    [y2, dy, dx, e, saved.mask!].forEach((t) => t.dispose());
    disposePairs(x, y);
  },
);

test('swiglu (RiNALMo form, learnable β) forward/backward match the oracle and central differences', async () => {
  await fc.assert(
    fc.asyncProperty(
      shapeArb({ maxRank: 3 }),
      fc.nat(),
      fc.double({ min: -2, max: 2, noNaN: true }),
      fc.boolean(),
      async (shape, seed, betaV, betaRank1) => {
        const u = pair(shape, valuesFor(shape, seed, -4, 4));
        const v = pair(shape, valuesFor(shape, seed + 1, -2, 2));
        const beta = pair(betaRank1 ? [1] : [], [betaV]);
        const y = both((a, b, c) => swiglu(a, b, c), u, v, beta);
        await assertPairClose(y, `swiglu([${shape}], β=${betaV})`, 2e-5, 1e-6);
        const uv = await u.c.dataF64();
        const vv = await v.c.dataF64();
        const bf = Math.fround(betaV);
        assertClose(
          await y.c.dataF64(),
          Array.from(uv, (a, i) => (a / (1 + Math.exp(-bf * a))) * vv[i]!),
          'closed form',
          1e-12,
          1e-12,
        );
        const dy = pair(shape, valuesFor(shape, seed + 2));
        const gg = swigluBackward(u.g, v.g, beta.g, dy.g);
        const gc = swigluBackward(u.c, v.c, beta.c, dy.c);
        await assertPairClose({ g: gg.du, c: gc.du }, 'du', 2e-5, 1e-5);
        await assertPairClose({ g: gg.dv, c: gc.dv }, 'dv', 2e-5, 1e-5);
        await assertPairClose({ g: gg.dbeta, c: gc.dbeta }, 'dbeta', 1e-4, 1e-4);
        assert.equal(gc.dbeta.shape, beta.c.shape);
        if (u.c.size <= 30) {
          const [uc, vc, bc] = [T.clone(u.c), T.clone(v.c), T.clone(beta.c)];
          const loss = () => weighted(swiglu(uc, vc, bc), dy.c);
          assertClose(await gc.du.dataF64(), await numericGrad(uc, loss), 'du vs central differences', 1e-5, 1e-7);
          assertClose(await gc.dv.dataF64(), await numericGrad(vc, loss), 'dv vs central differences', 1e-5, 1e-7);
          assertClose(await gc.dbeta.dataF64(), await numericGrad(bc, loss), 'dβ vs central differences', 1e-5, 1e-7);
          [uc, vc, bc].forEach((t) => t.dispose());
        }
        [gg.du, gg.dv, gg.dbeta, gc.du, gc.dv, gc.dbeta].forEach((t) => t.dispose());
        disposePairs(u, v, beta, y, dy);
      },
    ),
    { numRuns: 25 },
  );
});

test('nn ops leave no tensors behind', async () => {
  await collectGarbage();
  const before = T.liveTensorCount();
  const table = T.randn([10, 4]);
  const ids = T.tensor([1, 2, 2, 9], { dtype: 'i32' });
  const e = embedding(table, ids);
  const g = embeddingBackward(ids, e, 10);
  const d = dropout(e, 0.5);
  const b = T.tensor([1]);
  const s = swiglu(e, d, b);
  const sb = swigluBackward(e, d, b, s);
  const ia = indexAdd(table, 0, ids, e);
  [table, ids, e, g, d, b, s, sb.du, sb.dv, sb.dbeta, ia].forEach((t) => t.dispose());
  await T.runtime().sync();
  assert.is(T.liveTensorCount(), before);
});

test.run();
