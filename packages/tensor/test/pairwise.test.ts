/** outerConcat and pairwiseLinear (pairwise.ts): the definition, GPU vs the oracle, and the two routes agree. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import { assertClose, assertPairClose, both, disposePairs, pair, valuesFor } from './helpers.js';

const caseArb = fc.record({
  B: fc.integer({ min: 1, max: 2 }),
  L: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 9 })),
  d: fc.integer({ min: 1, max: 7 }),
  h: fc.integer({ min: 1, max: 9 }),
  hasBias: fc.boolean(),
  seed: fc.nat(),
});

test('outerConcat: out[b, i, j] = [x[b, i] ; x[b, j]]', async () => {
  const x = T.tensor([1, 2, 3, 4, 5, 6], { shape: [1, 3, 2], device: 'cpu' });
  const p = T.outerConcat(x);
  assert.equal(p.shape, [1, 3, 3, 4]);
  const v = Array.from(await p.dataF64());
  // (i = 1, j = 2): [x1 ; x2] = [3, 4, 5, 6]; (i = 2, j = 0): [5, 6, 1, 2]
  assert.equal(v.slice((1 * 3 + 2) * 4, (1 * 3 + 2) * 4 + 4), [3, 4, 5, 6]);
  assert.equal(v.slice((2 * 3 + 0) * 4, (2 * 3 + 0) * 4 + 4), [5, 6, 1, 2]);
  [x, p].forEach((t) => t.dispose());
});

test(
  'pairwiseLinear equals Linear(outerConcat(x)) and matches the oracle (L = 1, odd sizes, bias ' + 'on/off)',
  async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ B, L, d, h, hasBias, seed }) => {
        const x = pair([B, L, d], valuesFor([B, L, d], seed));
        const w = pair([h, 2 * d], valuesFor([h, 2 * d], seed + 1, -1, 1));
        const b = hasBias ? pair([h], valuesFor([h], seed + 2)) : null;
        const what = `pairwiseLinear(x [${B}, ${L}, ${d}], w [${h}, ${2 * d}], bias ${hasBias})`;
        const fast = { g: T.pairwiseLinear(x.g, w.g, b?.g ?? null), c: T.pairwiseLinear(x.c, w.c, b?.c ?? null) };
        assert.equal(fast.c.shape, [B, L, L, h]);
        await assertPairClose(fast, what, 1e-5, 1e-5 * d);
        const full = both(
          (xx, ww, ...bb) => T.tidy(() => T.linear(T.outerConcat(xx), ww, bb[0] ?? null)),
          x,
          w,
          ...(b ? [b] : []),
        );
        assertClose(
          await fast.c.dataF64(),
          await full.c.dataF64(),
          `${what} vs the materialised map (oracle)`,
          1e-12,
          1e-12,
        );
        assertClose(
          await fast.g.dataF64(),
          await full.g.dataF64(),
          `${what} vs the materialised map (GPU)`,
          1e-5,
          1e-5 * d,
        );
        disposePairs(x, w, fast, full, ...(b ? [b] : []));
      }),
      { numRuns: 25 },
    );
  },
);

test('pairwiseLinear and outerConcat: bad shapes get errors that name the op and the shapes', () => {
  assert.throws(
    () => T.outerConcat(T.zeros([3, 4])),
    /outerConcat: input must be \[batch, length, features\], got \[3, 4\]/,
  );
  assert.throws(
    () => T.pairwiseLinear(T.zeros([1, 3, 4]), T.zeros([5, 4])),
    /pairwiseLinear: weight must be \[out, 8\] \(twice the 4 features of input \[1, 3, 4\]\), got \[5, 4\]/,
  );
  assert.throws(
    () => T.pairwiseLinear(T.zeros([1, 3, 4]), T.zeros([5, 8]), T.zeros([4])),
    /pairwiseLinear: bias must be \[5\]/,
  );
});

test.run();
