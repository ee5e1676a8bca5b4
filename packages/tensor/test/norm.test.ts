/** LayerNorm and RMSNorm (nn.ts): GPU vs the float64 CPU oracle, and the oracle's backward vs central differences. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import { addLayerNorm, layerNorm, layerNormBackward, rmsNorm, rmsNormBackward } from '../src/norm.js';
import {
  assertClose,
  assertPairClose,
  both,
  disposePairs,
  numericGrad,
  pair,
  type Pair,
  valuesFor,
  weighted,
} from './helpers.js';

/** Shapes [..., C] of rank 1–3 with C from 1 to 7, or a longer row now and then. */
const normShapeArb = fc
  .tuple(
    fc.array(fc.integer({ min: 1, max: 6 }), { maxLength: 2 }),
    fc.oneof(fc.integer({ min: 1, max: 7 }), fc.constantFrom(64, 130, 1024)),
  )
  .map(([lead, C]) => [...lead, C]);

/** x as a contiguous pair or as a transposed view (when rank ≥ 2). */
function input(shape: number[], seed: number, transposed: boolean): { x: Pair; base: Pair } {
  if (!transposed || shape.length < 2) {
    const x = pair(shape, valuesFor(shape, seed, -3, 5));
    return { x, base: x };
  }
  const swapped = [...shape.slice(0, -2), shape[shape.length - 1]!, shape[shape.length - 2]!];
  const base = pair(swapped, valuesFor(swapped, seed, -3, 5));
  return { x: both((t) => T.transpose(t, -1, -2), base), base };
}

for (const rms of [false, true]) {
  const name = rms ? 'rmsNorm' : 'layerNorm';
  test(`${name} forward and backward match the oracle (affine on/off, views, rows of length 1)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        normShapeArb,
        fc.nat(),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        async (shape, seed, hasW, hasB, transposed) => {
          const C = shape[shape.length - 1]!;
          const { x, base } = input(shape, seed, transposed);
          const w = hasW ? pair([C], valuesFor([C], seed + 1, 0.5, 1.5)) : null;
          const b = hasB && !rms ? pair([C], valuesFor([C], seed + 2, -1, 1)) : null;
          const y = rms
            ? { g: rmsNorm(x.g, w?.g ?? null, 1e-6), c: rmsNorm(x.c, w?.c ?? null, 1e-6) }
            : {
                g: layerNorm(x.g, w?.g ?? null, b?.g ?? null, 1e-5),
                c: layerNorm(x.c, w?.c ?? null, b?.c ?? null, 1e-5),
              };
          const what = `${name}([${shape}], w=${hasW}, b=${!!b}, T=${transposed})`;
          await assertPairClose(y, what, 1e-4, 2e-5);
          // statistics as the forward saves them, computed on the CPU
          const lead = shape.slice(0, -1);
          const xs = await x.c.dataF64();
          const meanV: number[] = [];
          const rstdV: number[] = [];
          for (let r = 0; r < xs.length / C; r++) {
            const row = xs.slice(r * C, r * C + C);
            const mu = rms ? 0 : row.reduce((a, v) => a + v, 0) / C;
            const v = row.reduce((a, t) => a + (t - mu) ** 2, 0) / C;
            meanV.push(mu);
            rstdV.push(1 / Math.sqrt(v + (rms ? 1e-6 : 1e-5)));
          }
          const mean = pair(lead, meanV);
          const rstd = pair(lead, rstdV);
          const dy = pair(shape, valuesFor(shape, seed + 3));
          type Grads = { dx: T.Tensor; dweight: T.Tensor | null; dbias?: T.Tensor | null };
          const grads: { g: Grads; c: Grads } = {
            g: rms
              ? rmsNormBackward(dy.g, x.g, rstd.g, w?.g ?? null)
              : layerNormBackward(dy.g, x.g, mean.g, rstd.g, w?.g ?? null, !!b),
            c: rms
              ? rmsNormBackward(dy.c, x.c, rstd.c, w?.c ?? null)
              : layerNormBackward(dy.c, x.c, mean.c, rstd.c, w?.c ?? null, !!b),
          };
          await assertPairClose({ g: grads.g.dx, c: grads.c.dx }, `${what} dx`, 2e-4, 5e-5);
          assert.is(!!grads.g.dweight, hasW);
          if (hasW) await assertPairClose({ g: grads.g.dweight!, c: grads.c.dweight! }, `${what} dweight`, 1e-4, 1e-4);
          if (!rms) {
            assert.is(!!grads.g.dbias, !!b);
            if (b) await assertPairClose({ g: grads.g.dbias!, c: grads.c.dbias! }, `${what} dbias`, 1e-4, 1e-4);
          }
          // the oracle's gradients vs central differences (small cases). The statistics must be exact
          // here: rows of 2 elements saturate (x̂ ≈ ±1) and dx is then a cancellation that magnifies
          // f32 rounding of rstd, so they are written into float64 storage directly.
          if (x.c.size <= 40) {
            const exact = (vals: number[]) => {
              const t = T.empty(lead, 'f32', 'cpu');
              t.storage.data!.set(vals);
              return t;
            };
            const [meanX, rstdX] = [exact(meanV), exact(rstdV)];
            const ref: Grads = rms
              ? rmsNormBackward(dy.c, x.c, rstdX, w?.c ?? null)
              : layerNormBackward(dy.c, x.c, meanX, rstdX, w?.c ?? null, !!b);
            const fwd = (xx: T.Tensor, ww: T.Tensor | null, bb: T.Tensor | null) =>
              rms ? rmsNorm(xx, ww, 1e-6) : layerNorm(xx, ww, bb, 1e-5);
            const xc = T.clone(x.c);
            const wc = w ? T.clone(w.c) : null;
            const bc = b ? T.clone(b.c) : null;
            const loss = () => weighted(fwd(xc, wc, bc), dy.c);
            assertClose(
              await ref.dx.dataF64(),
              await numericGrad(xc, loss),
              `${what} dx vs central differences`,
              1e-5,
              1e-8,
            );
            if (wc)
              assertClose(
                await ref.dweight!.dataF64(),
                await numericGrad(wc, loss),
                `${what} dweight vs central differences`,
                1e-5,
                1e-8,
              );
            if (bc)
              assertClose(
                await ref.dbias!.dataF64(),
                await numericGrad(bc, loss),
                `${what} dbias vs central differences`,
                1e-5,
                1e-8,
              );
            [xc, wc, bc, meanX, rstdX, ref.dx, ref.dweight, ref.dbias].forEach((t) => t?.dispose());
          }
          for (const t of Object.values(grads.g)) (t as T.Tensor | null)?.dispose();
          for (const t of Object.values(grads.c)) (t as T.Tensor | null)?.dispose();
          disposePairs(x, y, mean, rstd, dy, ...(w ? [w] : []), ...(b ? [b] : []));
          if (base !== x) disposePairs(base);
        },
      ),
      { numRuns: 30 },
    );
  });
}

test('addLayerNorm: sum and y on GPU match the oracle and add + layerNorm (views, rows of length 1)', async () => {
  await fc.assert(
    fc.asyncProperty(normShapeArb, fc.nat(), fc.boolean(), fc.boolean(), async (shape, seed, affine, transposed) => {
      const C = shape[shape.length - 1]!;
      const x = pair(shape, valuesFor(shape, seed, -3, 5));
      const { x: r, base } = input(shape, seed + 1, transposed);
      const w = affine ? pair([C], valuesFor([C], seed + 2, 0.5, 1.5)) : null;
      const b = affine ? pair([C], valuesFor([C], seed + 3, -1, 1)) : null;
      const what = `addLayerNorm([${shape}], affine=${affine}, T=${transposed})`;
      const fused = (['g', 'c'] as const).map((d) => addLayerNorm(x[d], r[d], w?.[d] ?? null, b?.[d] ?? null));
      await assertPairClose({ g: fused[0]!.sum, c: fused[1]!.sum }, `${what}: sum`, 1e-6, 1e-6);
      await assertPairClose({ g: fused[0]!.y, c: fused[1]!.y }, `${what}: y`, 1e-4, 2e-5);
      // The oracle's fused result equals the two ops.
      const sum = T.add(x.c, r.c);
      const y = layerNorm(sum, w?.c ?? null, b?.c ?? null, 1e-5);
      assertClose(await fused[1]!.sum.dataF64(), await sum.dataF64(), `${what}: sum vs add`, 1e-12, 1e-12);
      assertClose(await fused[1]!.y.dataF64(), await y.dataF64(), `${what}: y vs layerNorm`, 1e-12, 1e-12);
      for (const f of fused) [f.sum, f.y].forEach((t) => t.dispose());
      [sum, y].forEach((t) => t.dispose());
      disposePairs(x, r, ...(r === base ? [] : [base]), ...(w ? [w] : []), ...(b ? [b] : []));
    }),
    { numRuns: 25 },
  );
  assert.throws(() => addLayerNorm(T.zeros([2, 3]), T.zeros([2, 4])), /addLayerNorm: shapes \[2, 3\] and \[2, 4\]/);
});

test('layerNorm saves mean and rstd for autograd; the saved values equal the statistics', async () => {
  const prev = T.hooks.record;
  let attrs: Record<string, unknown> = {};
  let inputs: readonly T.Tensor[] = [];
  T.hooks.record = (_op, ins, output, a) => {
    attrs = a;
    inputs = ins;
    output.gradNode = {};
  };
  const x = T.tensor([
    [1, 2, 3, 6],
    [0, 0, 0, 0],
  ]);
  const b = T.tensor([0.5, 0, 0, 0]);
  x.requiresGrad = true;
  const y = layerNorm(x, null, b);
  T.hooks.record = prev;
  assert.is(inputs.length, 2);
  assert.equal(
    { eps: attrs.eps, hasWeight: attrs.hasWeight, hasBias: attrs.hasBias },
    { eps: 1e-5, hasWeight: false, hasBias: true },
  );
  const saved = attrs.saved as { mean: T.Tensor; rstd: T.Tensor };
  assertClose(await saved.mean.dataF64(), [3, 0], 'mean');
  assertClose(await saved.rstd.dataF64(), [1 / Math.sqrt(3.5 + 1e-5), 1 / Math.sqrt(1e-5)], 'rstd', 1e-5);
  assertClose(
    await y.dataF64(),
    [-2 / Math.sqrt(3.5 + 1e-5) + 0.5, -1 / Math.sqrt(3.5 + 1e-5), 0, 3 / Math.sqrt(3.5 + 1e-5), 0.5, 0, 0, 0],
    'y',
    1e-5,
  );
  [saved.mean, saved.rstd, x, b, y].forEach((t) => t.dispose());
});

test.run();
