/** conv1d / conv2d (conv.ts): GPU vs the float64 CPU oracle, forward and backward; oracle vs central differences. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import {
  assertClose,
  assertPairClose,
  both,
  collectGarbage,
  disposePairs,
  numericGrad,
  pair,
  type Pair,
  valuesFor,
  weighted,
} from './helpers.js';

type Padding = 'same' | 'valid' | number | [number, number];

interface Case {
  x: number[];
  w: number[];
  padding: Padding;
  hasBias: boolean;
  transposed: boolean;
  seed: number;
}

const paddingArb = fc.oneof(
  fc.constant<Padding>('same'),
  fc.constant<Padding>('valid'),
  fc.integer({ min: 0, max: 2 }),
  fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
);

/** [B, L, Cin] with L = 1 and odd sizes common, K 1–5 (even K too), Cout 1–9; padding chosen to fit. */
const conv1dCaseArb = fc
  .record({
    B: fc.integer({ min: 1, max: 3 }),
    L: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 13 })),
    Cin: fc.integer({ min: 1, max: 6 }),
    Cout: fc.integer({ min: 1, max: 9 }),
    K: fc.integer({ min: 1, max: 5 }),
    padding: paddingArb,
    hasBias: fc.boolean(),
    transposed: fc.boolean(),
    seed: fc.nat(),
  })
  .map(({ B, L, Cin, Cout, K, padding, ...rest }): Case => {
    const pad =
      typeof padding === 'number'
        ? 2 * padding
        : Array.isArray(padding)
          ? padding[0] + padding[1]
          : padding === 'same'
            ? K - 1
            : 0;
    return { x: [B, Math.max(L, K - pad), Cin], w: [Cout, Cin, K], padding, ...rest };
  });

const conv2dCaseArb = fc
  .record({
    B: fc.integer({ min: 1, max: 2 }),
    H: fc.integer({ min: 1, max: 6 }),
    W: fc.integer({ min: 1, max: 7 }),
    Cin: fc.integer({ min: 1, max: 5 }),
    Cout: fc.integer({ min: 1, max: 9 }),
    k: fc.constantFrom(1, 3, 5),
    same: fc.boolean(),
    hasBias: fc.boolean(),
    transposed: fc.boolean(),
    seed: fc.nat(),
  })
  .map(({ B, H, W, Cin, Cout, k, same, ...rest }): Case => {
    const size = (s: number) => (same ? s : Math.max(s, k));
    return { x: [B, size(H), size(W), Cin], w: [Cout, Cin, k, k], padding: same ? 'same' : 'valid', ...rest };
  });

/** x as a contiguous pair or as a view that is not contiguous (batch and the first spatial axis swapped). */
function input(shape: number[], seed: number, transposed: boolean): { x: Pair; base: Pair } {
  if (!transposed) {
    const x = pair(shape, valuesFor(shape, seed));
    return { x, base: x };
  }
  const swapped = [shape[1]!, shape[0]!, ...shape.slice(2)];
  const base = pair(swapped, valuesFor(swapped, seed));
  return { x: both((t) => T.transpose(t, 0, 1), base), base };
}

const convOf = (rank: number) =>
  (rank === 3 ? T.conv1d : T.conv2d) as (
    x: T.Tensor,
    w: T.Tensor,
    b: T.Tensor | null,
    o: { padding: Padding },
  ) => T.Tensor;
const backwardOf = (rank: number) => (rank === 3 ? T.conv1dBackward : T.conv2dBackward);

async function checkCase(c: Case, what: string): Promise<void> {
  const conv = convOf(c.x.length);
  const { x, base } = input(c.x, c.seed, c.transposed);
  const w = pair(c.w, valuesFor(c.w, c.seed + 1, -1, 1));
  const b = c.hasBias ? pair([c.w[0]!], valuesFor([c.w[0]!], c.seed + 2)) : null;
  const y = {
    g: conv(x.g, w.g, b?.g ?? null, { padding: c.padding }),
    c: conv(x.c, w.c, b?.c ?? null, { padding: c.padding }),
  };
  const name =
    `${what}(x [${c.x}], w [${c.w}], padding ${JSON.stringify(c.padding)}, bias ${c.hasBias}, ` +
    `view ${c.transposed})`;
  // Sums of up to Cin·K products of values ≤ 4: absolute tolerance scaled to the terms.
  const terms = c.w.slice(1).reduce((a, s) => a * s, 1);
  await assertPairClose(y, `${name} forward`, 1e-4, 2e-6 * terms);
  const dy = pair(y.c.shape, valuesFor(y.c.shape, c.seed + 3));
  const backward = backwardOf(c.x.length);
  const padding = c.x.length === 3 ? T.conv1dPadding(c.padding, c.w[2]!) : T.conv2dPadding(c.padding, c.w[2]!, c.w[3]!);
  const needs = { input: true, weight: true, bias: c.hasBias };
  const gg = backward(dy.g, x.g, w.g, padding, needs);
  const gc = backward(dy.c, x.c, w.c, padding, needs);
  await assertPairClose({ g: gg.dx!, c: gc.dx! }, `${name} dx`, 1e-4, 2e-6 * c.w[0]! * terms);
  const pixels = y.c.size / c.w[0]!;
  await assertPairClose({ g: gg.dweight!, c: gc.dweight! }, `${name} dweight`, 1e-4, 4e-6 * pixels);
  assert.is(!!gg.dbias, c.hasBias);
  if (c.hasBias) await assertPairClose({ g: gg.dbias!, c: gc.dbias! }, `${name} dbias`, 1e-4, 4e-6 * pixels);
  // The oracle vs central differences, on small cases.
  if (x.c.size * w.c.size <= 2000) {
    const xc = T.clone(x.c);
    const wc = T.clone(w.c);
    const bc = b ? T.clone(b.c) : null;
    const loss = () => weighted(conv(xc, wc, bc, { padding: c.padding }), dy.c);
    assertClose(await gc.dx!.dataF64(), await numericGrad(xc, loss), `${name} dx vs central differences`, 1e-5, 1e-7);
    assertClose(
      await gc.dweight!.dataF64(),
      await numericGrad(wc, loss),
      `${name} dweight vs central differences`,
      1e-5,
      1e-7,
    );
    if (bc)
      assertClose(
        await gc.dbias!.dataF64(),
        await numericGrad(bc, loss),
        `${name} dbias vs central differences`,
        1e-5,
        1e-7,
      );
    [xc, wc, bc].forEach((t) => t?.dispose());
  }
  for (const t of [...Object.values(gg), ...Object.values(gc)]) t?.dispose();
  disposePairs(x, w, y, dy, ...(b ? [b] : []));
  if (base !== x) disposePairs(base);
}

test('conv1d forward and backward match the oracle (L = 1, odd and even K, every padding, views)', async () => {
  await fc.assert(
    fc.asyncProperty(conv1dCaseArb, (c) => checkCase(c, 'conv1d')),
    { numRuns: 40 },
  );
});

test('conv2d forward and backward match the oracle (1×1, 3×3, 5×5, same and valid, views)', async () => {
  await fc.assert(
    fc.asyncProperty(conv2dCaseArb, (c) => checkCase(c, 'conv2d')),
    { numRuns: 25 },
  );
});

test('conv1d on longer sequences: weight gradient split over pixel chunks, wide channel tiles', async () => {
  await checkCase(
    { x: [3, 157, 10], w: [12, 10, 5], padding: 'same', hasBias: true, transposed: false, seed: 7 },
    'conv1d',
  );
  await checkCase(
    { x: [1, 300, 3], w: [2, 3, 3], padding: 'valid', hasBias: false, transposed: true, seed: 8 },
    'conv1d',
  );
});

test('conv2d 3×3 on a 19×21 map with 11 → 13 channels (chunked weight gradient)', async () => {
  await checkCase(
    { x: [2, 19, 21, 11], w: [13, 11, 3, 3], padding: 'same', hasBias: true, transposed: false, seed: 9 },
    'conv2d',
  );
});

test('conv1d, conv2d and their gradients read and write operands at nonzero offsets', async () => {
  // Contiguous tensors that start inside their storage: the second half of a batch, a weight slice.
  for (const [xs, ws] of [
    [
      [2, 9, 3],
      [4, 3, 3],
    ],
    [
      [2, 5, 6, 2],
      [3, 2, 3, 3],
    ],
  ] as const) {
    const conv = convOf(xs.length);
    const xb = pair([2 * xs[0]!, ...xs.slice(1)], valuesFor([2 * xs[0]!, ...xs.slice(1)], 3));
    const wb = pair([ws[0]! + 1, ...ws.slice(1)], valuesFor([ws[0]! + 1, ...ws.slice(1)], 4, -1, 1));
    const x = both((t) => T.narrow(t, 0, xs[0]!, xs[0]!), xb);
    const w = both((t) => T.narrow(t, 0, 1, ws[0]!), wb);
    const y = both((a, b) => conv(a, b, null, { padding: 'same' }), x, w);
    await assertPairClose(y, `conv [${xs}] at an offset`, 1e-4, 1e-4);
    const dyb = pair([2, ...y.c.shape], valuesFor([2, ...y.c.shape], 5));
    const dy = both((t) => T.squeeze(T.narrow(t, 0, 1, 1), 0), dyb);
    const pad = xs.length === 3 ? T.conv1dPadding('same', ws[2]!) : T.conv2dPadding('same', ws[2]!, ws[3]!);
    const gg = backwardOf(xs.length)(dy.g, x.g, w.g, pad, { bias: true });
    const gc = backwardOf(xs.length)(dy.c, x.c, w.c, pad, { bias: true });
    for (const k of ['dx', 'dweight', 'dbias'] as const)
      await assertPairClose({ g: gg[k]!, c: gc[k]! }, `conv [${xs}] ${k} at an offset`, 1e-4, 1e-4);
    for (const t of [...Object.values(gg), ...Object.values(gc)]) t?.dispose();
    disposePairs(xb, wb, x, w, y, dyb, dy);
  }
});

test("conv padding: 'same' keeps the length, even K pads the extra zero after (as PyTorch)", async () => {
  const x = T.tensor([1, 2, 3, 4], { shape: [1, 4, 1], device: 'cpu' });
  const w = T.tensor([1, 10], { shape: [1, 1, 2], device: 'cpu' });
  const y = T.conv1d(x, w, null, { padding: 'same' });
  // out[l] = x[l]·1 + x[l+1]·10 with x[4] = 0.
  assert.equal(Array.from(await y.dataF64()), [21, 32, 43, 4]);
  const yv = T.conv1d(x, w);
  assert.equal(yv.shape, [1, 3, 1]);
  [x, w, y, yv].forEach((t) => t.dispose());
});

test('conv: NaN and ±inf propagate as in PyTorch (NaN in the input spreads to the windows that see it)', async () => {
  const vals = [1, NaN, 2, 3, Infinity, 0, 1];
  for (const device of ['gpu', 'cpu'] as const) {
    const x = T.tensor(vals, { shape: [1, 7, 1], device });
    const w = T.tensor([1, 1, 1], { shape: [1, 1, 3], device });
    const y = await T.conv1d(x, w, null, { padding: 'same' }).dataF64();
    // windows: [0,1,NaN] [1,NaN,2] [NaN,2,3] [2,3,inf] [3,inf,0] [inf,0,1] [0,1,0]
    const want = [NaN, NaN, NaN, Infinity, Infinity, Infinity, 1];
    assertClose(y, want, `${device} conv1d`);
    x.dispose();
    w.dispose();
  }
});

test('conv: bad shapes get errors that name the op and the shapes', () => {
  const t = (shape: number[]) => T.zeros(shape);
  const cases: [() => unknown, RegExp][] = [
    [() => T.conv1d(t([2, 5]), t([4, 3, 3])), /conv1d: input must be \[batch, length, channels\], got \[2, 5\]/],
    [
      () => T.conv1d(t([2, 5, 3]), t([4, 2, 3])),
      /conv1d: weight \[4, 2, 3\] expects 2 input channels, the input \[2, 5, 3\] has 3/,
    ],
    [
      () => T.conv1d(t([2, 5, 3]), t([4, 3])),
      /conv1d: weight must be \[outChannels, inChannels, kernel\], got \[4, 3\]/,
    ],
    [() => T.conv1d(t([2, 5, 3]), t([4, 3, 3]), t([3])), /conv1d: bias must be \[4\].*got \[3\]/],
    [
      () => T.conv1d(t([2, 2, 3]), t([4, 3, 3])),
      /conv1d: kernel 3 is longer than the padded length 2 \(input \[2, 2, 3\], padding 0 \+ 0\)/,
    ],
    [() => T.conv1d(t([2, 5, 3]), t([4, 3, 3]), null, { padding: -1 }), /conv1d: padding must be/],
    [
      () => T.conv2d(t([2, 5, 5, 3]), t([4, 3, 3])),
      /conv2d: weight must be \[outChannels, inChannels, kernelH, kernelW\], got \[4, 3, 3\]/,
    ],
    [
      () => T.conv2d(t([5, 5, 3]), t([4, 3, 3, 3])),
      /conv2d: input must be \[batch, height, width, channels\], got \[5, 5, 3\]/,
    ],
    [
      () =>
        T.conv2dBackward(t([1, 4, 4, 3]), t([1, 4, 4, 3]), t([2, 3, 3, 3]), { top: 1, bottom: 1, left: 1, right: 1 }),
      /conv2dBackward: dy must be the output's shape \[1, 4, 4, 2\].*got \[1, 4, 4, 3\]/,
    ],
  ];
  for (const [fn, re] of cases) assert.throws(fn, re);
});

test(
  'conv, instanceNorm and pairwiseLinear leave no tensors or buffers behind (forward, backward, non-contiguous ' +
    'inputs)',
  async () => {
    await collectGarbage();
    const x = T.transpose(T.tensor(valuesFor([7, 2, 6], 1), { shape: [7, 2, 6] }), 0, 1); // [2, 7, 6], not contiguous
    const w = T.tensor(valuesFor([5, 6, 3], 2), { shape: [5, 6, 3] });
    const w2 = T.tensor(valuesFor([4, 12], 3), { shape: [4, 12] });
    const pool = T.runtime().pool;
    const round = async () => {
      const y = T.conv1d(x, w, null, { padding: 'same' });
      const g = T.conv1dBackward(y, x, w, T.conv1dPadding('same', 3), { bias: true });
      const n = T.instanceNorm(y);
      const p = T.pairwiseLinear(x, w2);
      await n.data();
      [y, g.dx!, g.dweight!, g.dbias!, n, p].forEach((t) => t.dispose());
    };
    await round();
    await T.runtime().sync();
    const before = { tensors: T.liveTensorCount(), bytes: pool.stats().liveBytes };
    for (let i = 0; i < 3; i++) await round();
    await T.runtime().sync();
    assert.equal({ tensors: T.liveTensorCount(), bytes: pool.stats().liveBytes }, before);
    [x, w, w2].forEach((t) => t.dispose());
  },
);

test.run();
