/**
 * instanceNorm (instance-norm.ts): GPU vs the float64 oracle, the oracle vs a direct formula and central differences.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
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

/** [B, L, C] or [B, H, W, C], sizes 1–7 (L = 1 and size-1 dims common), or a longer L now and then. */
const shapeArb = fc.oneof(
  fc
    .tuple(
      fc.integer({ min: 1, max: 3 }),
      fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 9 }), fc.constant(300)),
      fc.integer({ min: 1, max: 7 }),
    )
    .map((s) => [...s]),
  fc
    .tuple(
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 5 }),
    )
    .map((s) => [...s]),
);

/** Per (b, c) over the spatial positions, float64, written from the definition. */
function direct(x: Float64Array, shape: number[], eps: number): { y: number[]; mean: number[]; rstd: number[] } {
  const B = shape[0]!;
  const C = shape[shape.length - 1]!;
  const N = x.length / (B * C);
  const y = new Array<number>(x.length);
  const mean: number[] = [];
  const rstd: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const at = (n: number) => (b * N + n) * C + c;
      let s = 0;
      for (let n = 0; n < N; n++) s += x[at(n)]!;
      const mu = s / N;
      let q = 0;
      for (let n = 0; n < N; n++) q += (x[at(n)]! - mu) ** 2;
      const r = 1 / Math.sqrt(q / N + eps);
      for (let n = 0; n < N; n++) y[at(n)] = (x[at(n)]! - mu) * r;
      mean.push(mu);
      rstd.push(r);
    }
  }
  return { y, mean, rstd };
}

/** The saved statistics of an instanceNorm call, taken from what it records. */
function withStats(x: T.Tensor): { y: T.Tensor; mean: T.Tensor; rstd: T.Tensor } {
  const prev = T.hooks.record;
  let saved: { mean: T.Tensor; rstd: T.Tensor } | null = null;
  T.hooks.record = (_op, _ins, out, attrs) => {
    saved = attrs.saved as { mean: T.Tensor; rstd: T.Tensor };
    out.gradNode = {};
  };
  const xr = x.view(x.shape, x.strides);
  xr.requiresGrad = true;
  try {
    const y = T.instanceNorm(xr);
    return { y, ...saved! };
  } finally {
    T.hooks.record = prev;
    xr.dispose();
  }
}

test(
  'instanceNorm forward and backward match the oracle, and the oracle the definition (1-D, 2-D, L = 1, ' + 'views)',
  async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.nat(), fc.boolean(), async (shape, seed, transposed) => {
        // A view that is not contiguous: batch and the first spatial axis swapped.
        const base = pair(
          transposed ? [shape[1]!, shape[0]!, ...shape.slice(2)] : shape,
          valuesFor(shape, seed, -3, 5),
        );
        const x: Pair = transposed ? both((t) => T.transpose(t, 0, 1), base) : base;
        const sg = withStats(x.g);
        const sc = withStats(x.c);
        const what = `instanceNorm([${shape}], view ${transposed})`;
        await assertPairClose({ g: sg.y, c: sc.y }, what, 1e-4, 2e-5);
        await assertPairClose({ g: sg.mean, c: sc.mean }, `${what} mean`, 1e-5, 1e-6);
        await assertPairClose({ g: sg.rstd, c: sc.rstd }, `${what} rstd`, 1e-4, 1e-6);
        const want = direct(await x.c.dataF64(), shape, 1e-5);
        assertClose(await sc.y.dataF64(), want.y, `${what} oracle vs definition`, 1e-12, 1e-12);
        assertClose(await sc.rstd.dataF64(), want.rstd, `${what} oracle rstd vs definition`, 1e-12, 1e-12);
        const dy = pair(shape, valuesFor(shape, seed + 1));
        const dx = {
          g: T.instanceNormBackward(dy.g, x.g, sg.mean, sg.rstd),
          c: T.instanceNormBackward(dy.c, x.c, sc.mean, sc.rstd),
        };
        // dx = rstd·(dy − mean(dy) − x̂·mean(dy·x̂)) cancels when a group saturates (x̂ ≈ ±1, e.g. two
        // positions): f32 rounding then scales with rstd·|dy| (|dy| ≤ 4), not with dx.
        const scale = 4 * Math.max(...want.rstd);
        await assertPairClose(dx, `${what} dx`, 2e-4, 5e-5 + 4e-6 * scale);
        if (x.c.size <= 60) {
          const xc = T.clone(x.c);
          const numeric = await numericGrad(xc, () => weighted(T.instanceNorm(xc), dy.c));
          // The oracle's dx from exact (float64) statistics.
          const exact = (v: number[]) => {
            const t = T.empty([shape[0]!, shape[shape.length - 1]!], 'f32', 'cpu');
            t.storage.data!.set(v);
            return t;
          };
          const [m, r] = [exact(want.mean), exact(want.rstd)];
          const ref = T.instanceNormBackward(dy.c, xc, m, r);
          assertClose(await ref.dataF64(), numeric, `${what} dx vs central differences`, 1e-5, 1e-7);
          [xc, m, r, ref].forEach((t) => t.dispose());
        }
        [sg.mean, sg.rstd, sc.mean, sc.rstd].forEach((t) => t.dispose());
        disposePairs(x, dy, dx, { g: sg.y, c: sc.y });
        if (base !== x) disposePairs(base);
      }),
      { numRuns: 30 },
    );
  },
);

test('instanceNorm: a NaN poisons only its own (batch, channel); a constant channel gives 0', async () => {
  for (const device of ['gpu', 'cpu'] as const) {
    // [1, 3, 2]: channel 0 = [1, NaN, 3], channel 1 = [5, 5, 5]
    const x = T.tensor([1, 5, NaN, 5, 3, 5], { shape: [1, 3, 2], device });
    const y = await T.instanceNorm(x).dataF64();
    assertClose(y, [NaN, 0, NaN, 0, NaN, 0], `${device} instanceNorm`);
    x.dispose();
  }
});

test('instanceNorm: bad shapes get errors that name the op and the shapes', () => {
  assert.throws(
    () => T.instanceNorm(T.zeros([4, 3])),
    /instanceNorm: input must be \[batch, \.\.\.spatial, channels\].*got \[4, 3\]/,
  );
  assert.throws(
    () => T.instanceNorm(T.zeros([2, 0, 3])),
    /instanceNorm: needs at least one spatial element, got \[2, 0, 3\]/,
  );
  assert.throws(
    () => T.instanceNormBackward(T.zeros([2, 4, 3]), T.zeros([2, 5, 3]), T.zeros([2, 3]), T.zeros([2, 3])),
    /instanceNormBackward: shapes \[2, 4, 3\] and \[2, 5, 3\] must be equal/,
  );
  assert.throws(
    () => T.instanceNormBackward(T.zeros([2, 4, 3]), T.zeros([2, 4, 3]), T.zeros([3, 2]), T.zeros([2, 3])),
    /instanceNormBackward: mean must be \[2, 3\], got \[3, 2\]/,
  );
});

test.run();
