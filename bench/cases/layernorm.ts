/**
 * LayerNorm over the last dim of [4096, 256] with weight and bias: forward, and forward +
 * backward (dx, dweight, dbias) through autograd. GB/s: forward = x read + y written; backward
 * adds x and dy read + dx written.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { backward, requireGrad } from '@rnagrad/autograd';
import { compare, mergeChecks } from '../lib/figure.js';
import { measureOurs } from '../lib/measure.js';
import { normal, uniform } from '../lib/prng.js';
import type { BenchCase } from '../lib/types.js';

const R = 4096;
const C = 256;

export const layerNormCase: BenchCase = {
  name: 'layernorm',
  title: 'LayerNorm',
  async run(ctx) {
    const x = uniform(R * C, 81, -3, 3);
    const w = normal(C, 82, 1);
    const b = normal(C, 83, 1);
    const dy = normal(R * C, 84, 1);
    const make = (device: 'gpu' | 'cpu', grad = true) => ({
      x: requireGrad(T.tensor(x, { shape: [R, C], device }), grad),
      w: requireGrad(T.tensor(w, { device }), grad),
      b: requireGrad(T.tensor(b, { device }), grad),
      dy: T.tensor(dy, { shape: [R, C], device }),
      y: null as Tensor | null,
    });
    type S = ReturnType<typeof make>;
    const clear = (s: S) => {
      for (const t of [s.x, s.w, s.b]) {
        t.grad?.dispose();
        t.grad = null;
      }
      s.y?.dispose();
    };
    const dispose = (s: S) => {
      clear(s);
      for (const t of [s.x, s.w, s.b, s.dy]) t.dispose();
    };
    // CPU oracle reference
    const ref = make('cpu');
    ref.y = T.layerNorm(ref.x, ref.w, ref.b);
    backward(ref.y, ref.dy);
    const want = {
      y: await ref.y.data(),
      dx: await ref.x.grad!.data(),
      dw: await ref.w.grad!.data(),
      db: await ref.b.grad!.data(),
    };
    dispose(ref);
    const against = 'rnagrad CPU oracle (float64), every value';
    await measureOurs(ctx, {
      group: 'layernorm',
      case: `LayerNorm fwd [${R},${C}]`,
      bytes: 2 * R * C * 4,
      setup: () => make('gpu', false),
      run(s) {
        s.y?.dispose();
        s.y = T.layerNorm(s.x, s.w, s.b);
      },
      check: async (s) => compare(await s.y!.data(), want.y, against, { atol: 1e-5, rtol: 1e-3 }),
      dispose,
    });
    await measureOurs(ctx, {
      group: 'layernorm',
      case: `LayerNorm fwd+bwd [${R},${C}]`,
      bytes: 5 * R * C * 4,
      setup: () => make('gpu'),
      run(s) {
        clear(s);
        s.y = T.layerNorm(s.x, s.w, s.b);
        backward(s.y, s.dy);
      },
      async check(s) {
        return mergeChecks(
          [
            compare(await s.y!.data(), want.y, 'y', { atol: 1e-5, rtol: 1e-3 }),
            compare(await s.x.grad!.data(), want.dx, 'dx', { atol: 1e-4, rtol: 1e-3 }),
            compare(await s.w.grad!.data(), want.dw, 'dweight', { atol: 1e-3, rtol: 1e-3 }),
            compare(await s.b.grad!.data(), want.db, 'dbias', { atol: 1e-3, rtol: 1e-3 }),
          ],
          against,
        );
      },
      dispose,
    });
  },
};
