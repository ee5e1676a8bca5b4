/**
 * One AdamW step (PyTorch semantics) over 1,053,184 parameters in 4 tensors, in place. GB/s
 * counts param, grad, m, v read and param, m, v written (7 × 4 bytes per parameter). The first
 * step is checked against the CPU oracle.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { compare, mergeChecks } from '../lib/figure.js';
import { measureOurs } from '../lib/measure.js';
import { normal } from '../lib/prng.js';
import type { BenchCase } from '../lib/types.js';

const SIZES = [786432, 262144, 4096, 512];

export const adamwCase: BenchCase = {
  name: 'adamw',
  title: 'AdamW',
  async run(ctx) {
    const total = SIZES.reduce((a, b) => a + b, 0);
    const values = SIZES.map((n, k) => ({ p: normal(n, 90 + k, 0.1), g: normal(n, 95 + k, 0.01) }));
    const make = (device: 'gpu' | 'cpu') => ({
      p: values.map((v) => T.tensor(v.p, { device })),
      g: values.map((v) => T.tensor(v.g, { device })),
      m: SIZES.map((n) => T.zeros([n], { device })),
      v: SIZES.map((n) => T.zeros([n], { device })),
      step: 0,
    });
    type S = ReturnType<typeof make>;
    const step = (s: S) =>
      T.adamwStep(s.p, s.g, s.m, s.v, {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weightDecay: 0.01,
        step: ++s.step,
      });
    const dispose = (s: S) => [...s.p, ...s.g, ...s.m, ...s.v].forEach((t: Tensor) => t.dispose());
    const ref = make('cpu');
    step(ref);
    const want = await Promise.all(ref.p.map((t) => t.data()));
    dispose(ref);
    await measureOurs(ctx, {
      group: 'adamw',
      case: `AdamW step, ${(total / 1e6).toFixed(2)}M params (4 tensors)`,
      bytes: 7 * 4 * total,
      setup: () => make('gpu'),
      run: step,
      async check(s) {
        // After the cold call, which was step 1.
        const got = await Promise.all(s.p.map((t) => t.data()));
        return mergeChecks(
          got.map((g, k) => compare(g, want[k]!, `param ${k}`, { atol: 1e-6, rtol: 1e-4 })),
          'rnagrad CPU oracle (float64), every parameter after step 1',
        );
      },
      dispose,
    });
  },
};
