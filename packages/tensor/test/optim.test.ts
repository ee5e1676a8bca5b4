/** adamwStep, gradNorm and clipGradNorm (nn.ts): GPU vs the float64 CPU oracle and closed forms. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import { adamwStep, clipGradNorm, gradNorm } from '../src/optim.js';
import { assertClose, assertPairClose, disposePairs, pair, type Pair, shapeArb, valuesFor } from './helpers.js';

test('adamwStep matches the oracle over several steps (odd sizes, per-parameter weight decay)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(shapeArb({ maxRank: 3 }), { minLength: 1, maxLength: 6 }),
      fc.nat(),
      async (shapes, seed) => {
        const params = shapes.map((s, k) => pair(s, valuesFor(s, seed + k, -1, 1)));
        const ms = shapes.map((s) => pair(s, new Array(s.reduce((a, b) => a * b, 1)).fill(0)));
        const vs = shapes.map((s) => pair(s, new Array(s.reduce((a, b) => a * b, 1)).fill(0)));
        const weightDecay = shapes.map((_, k) => (k % 2 ? 0 : 0.05));
        for (let step = 1; step <= 3; step++) {
          const grads = shapes.map((s, k) => pair(s, valuesFor(s, seed * 7 + step * 13 + k, -0.5, 0.5)));
          const opts = { lr: 3e-3, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay, step };
          for (const side of ['g', 'c'] as const)
            adamwStep(
              params.map((p) => p[side]),
              grads.map((p) => p[side]),
              ms.map((p) => p[side]),
              vs.map((p) => p[side]),
              opts,
            );
          disposePairs(...grads);
        }
        for (const [k, p] of params.entries()) {
          await assertPairClose(p, `param #${k} [${shapes[k]}]`, 2e-5, 1e-6);
          await assertPairClose(ms[k]!, `m #${k}`, 2e-5, 1e-7);
          await assertPairClose(vs[k]!, `v #${k}`, 2e-5, 1e-9);
        }
        disposePairs(...params, ...ms, ...vs);
      },
    ),
    { numRuns: 15 },
  );
});

test('adamwStep follows the AdamW formula (decoupled decay, bias correction)', async () => {
  // Step 1 and 2 by hand for one element: p=1, g=0.2 then -0.1, lr 0.1, betas (0.9, 0.999), wd 0.5.
  for (const device of ['gpu', 'cpu'] as const) {
    const p = T.tensor([1], { device });
    const m = T.tensor([0], { device });
    const v = T.tensor([0], { device });
    let pe = 1;
    let me = 0;
    let ve = 0;
    for (const [step, gv] of [
      [1, 0.2],
      [2, -0.1],
    ] as const) {
      const g = T.tensor([gv], { device });
      adamwStep([p], [g], [m], [v], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5, step });
      g.dispose();
      const gf = Math.fround(gv);
      me = 0.9 * me + 0.1 * gf;
      ve = 0.999 * ve + 0.001 * gf * gf;
      pe =
        pe * (1 - 0.1 * 0.5) - ((0.1 / (1 - 0.9 ** step)) * me) / (Math.sqrt(ve) / Math.sqrt(1 - 0.999 ** step) + 1e-8);
    }
    assertClose(await p.dataF64(), [pe], `${device} param`, 1e-6);
    assertClose(await m.dataF64(), [me], `${device} m`, 1e-6);
    assertClose(await v.dataF64(), [ve], `${device} v`, 1e-5);
    [p, m, v].forEach((t) => t.dispose());
  }
});

test('adamwStep rejects views and mismatched lists', () => {
  const a = T.zeros([2, 3]);
  const t = T.transpose(a, 0, 1);
  assert.throws(() => adamwStep([t], [t], [t], [t], { lr: 1, step: 1 }), /contiguous/);
  assert.throws(() => adamwStep([a], [], [a], [a], { lr: 1, step: 1 }), /same length/);
  assert.throws(() => adamwStep([a], [a], [a], [a], { lr: 1, step: 0 }), /step/);
  t.dispose();
  a.dispose();
});

test('gradNorm and clipGradNorm match the oracle; clipping happens on the GPU without readback', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(shapeArb({ maxRank: 3, allowEmpty: true }), { minLength: 1, maxLength: 20 }),
      fc.nat(),
      fc.constantFrom(0.1, 1, 1e6),
      async (shapes, seed, ratio) => {
        const grads: Pair[] = shapes.map((s, k) => pair(s, valuesFor(s, seed + k, -2, 2)));
        const n = { g: gradNorm(grads.map((p) => p.g)), c: gradNorm(grads.map((p) => p.c)) };
        await assertPairClose(n, `gradNorm of ${shapes.length} tensors`, 1e-5, 1e-6);
        const maxNorm = (await n.c.item()) * ratio + 1e-3;
        const before = {
          g: clipGradNorm(
            grads.map((p) => p.g),
            maxNorm,
          ),
          c: clipGradNorm(
            grads.map((p) => p.c),
            maxNorm,
          ),
        };
        assert.equal(before.g.shape, []);
        await assertPairClose(before, 'norm returned by clipGradNorm', 1e-5, 1e-6);
        for (const [k, p] of grads.entries()) await assertPairClose(p, `clipped grad #${k}`, 1e-5, 1e-6);
        const after = await gradNorm(grads.map((p) => p.c)).item();
        assert.ok(after <= maxNorm * (1 + 1e-9), `clipped norm ${after} ≤ ${maxNorm}`);
        disposePairs(...grads, n, before);
      },
    ),
    { numRuns: 20 },
  );
});

test.run();
