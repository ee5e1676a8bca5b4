/**
 * ELU (elementwise 'elu' and its backward helper 'eluBackward'): GPU vs the float64 oracle, PyTorch's special values.
 */
import { test } from 'uvu';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import { assertClose, assertPairClose, both, disposePairs, pair, shapeArb, valuesFor, viewOf } from './helpers.js';

test('elu forward and backward match the oracle on random shapes, views and alphas', async () => {
  await fc.assert(
    fc.asyncProperty(
      shapeArb({ allowEmpty: true }),
      fc.nat(),
      fc.nat(5),
      fc.constantFrom(1, 0.5, 1.7),
      async (shape, seed, kind, alpha) => {
        const base = pair(shape, valuesFor(shape, seed, -6, 3));
        const x = viewOf(base, kind);
        const y = both((t) => T.elu(t, alpha), x);
        await assertPairClose(y, `elu([${shape}], ${alpha})`, 2e-6, 1e-7);
        const dy = pair(x.c.shape, valuesFor(x.c.shape, seed + 1));
        const dx = both((t, g) => T.map('eluBackward', [t, g, alpha]), x, dy);
        await assertPairClose(dx, `eluBackward([${shape}], ${alpha})`, 2e-6, 1e-7);
        disposePairs(base, x, y, dy, dx);
      },
    ),
    { numRuns: 25 },
  );
});

test('elu keeps relative accuracy near 0 (expm1, not exp − 1)', async () => {
  const vals = [-1e-7, -3e-5, -1e-3, -0.01, -0.2, -0.34, -0.69, -0.71, -1, -20, -100];
  const x = pair([vals.length], vals);
  const y = both((t) => T.elu(t), x);
  const want = (await x.c.dataF64()).map((v) => Math.expm1(v));
  assertClose(await y.g.dataF64(), want, 'elu near 0 (GPU)', 4e-7, 0);
  disposePairs(x, y);
});

test('elu NaN and ±inf as PyTorch: forward NaN stays NaN; the gradient at NaN passes dy on, at −inf is 0', async () => {
  // torch.nn.functional.elu(x, alpha) and x.grad for dy = 1 (torch 1.13).
  const x = [NaN, -1, 0, 2, -Infinity, Infinity];
  const cases: [number, number[], number[]][] = [
    [1, [NaN, Math.expm1(-1), 0, 2, -1, Infinity], [1, Math.exp(-1), 1, 1, 0, 1]],
    [0.5, [NaN, 0.5 * Math.expm1(-1), 0, 2, -0.5, Infinity], [1, 0.5 * Math.exp(-1), 0.5, 1, 0, 1]],
  ];
  for (const device of ['gpu', 'cpu'] as const) {
    for (const [alpha, fwd, grad] of cases) {
      const t = T.tensor(x, { device });
      const ones = T.ones([x.length], { device });
      const y = T.elu(t, alpha);
      const dx = T.map('eluBackward', [t, ones, alpha]);
      assertClose(await y.dataF64(), fwd, `${device} elu(alpha ${alpha})`, 1e-6, 1e-7);
      assertClose(await dx.dataF64(), grad, `${device} eluBackward(alpha ${alpha})`, 1e-6, 1e-7);
      [t, ones, y, dx].forEach((v) => v.dispose());
    }
  }
});

test.run();
