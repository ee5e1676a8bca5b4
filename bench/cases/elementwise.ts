/**
 * The plain ops a training step is made of besides the fused kernels (they dominate its GPU time
 * in the profile, see the train case): a binary add, a transposing copy (contiguous()), and a sum
 * over the rows of a [512, 384] matrix (a bias gradient). GB/s against the copy ceiling.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { compare } from '../lib/figure.js';
import { measureOurs } from '../lib/measure.js';
import { uniform } from '../lib/prng.js';
import type { BenchCase } from '../lib/types.js';

export const elementwiseCase: BenchCase = {
  name: 'elementwise',
  title: 'Elementwise and reductions',
  async run(ctx) {
    const n = 1024;
    const a = uniform(n * n, 61);
    const b = uniform(n * n, 62);
    const g = uniform(512 * 384, 63);
    const colSum = new Float64Array(384);
    for (let i = 0; i < 512; i++) for (let j = 0; j < 384; j++) colSum[j] += g[i * 384 + j]!;
    const cases: {
      name: string;
      bytes: number;
      shapes: [number[], number[] | null];
      data: [Float32Array, Float32Array | null];
      fn: (x: Tensor, y: Tensor | null) => Tensor;
      want: (out: ArrayLike<number>) => [number[], number[]];
    }[] = [
      {
        name: `add [${n},${n}] + [${n},${n}]`,
        bytes: 3 * n * n * 4,
        shapes: [
          [n, n],
          [n, n],
        ],
        data: [a, b],
        fn: (x, y) => T.add(x, y!),
        want: (out) => [[0, 1, n * n - 1].map((i) => out[i]!), [0, 1, n * n - 1].map((i) => a[i]! + b[i]!)],
      },
      {
        name: `transpose copy [${n},${n}] (contiguous of a transposed view)`,
        bytes: 2 * n * n * 4,
        shapes: [[n, n], null],
        data: [a, null],
        fn: (x) => T.contiguous(T.transpose(x, 0, 1)),
        want: (out) => [[1, n, n * n - 2].map((i) => out[i]!), [n, 1, n * n - 1 - n].map((i) => a[i]!)],
      },
      {
        name: 'sum over rows [512,384] → [384]',
        bytes: (512 * 384 + 384) * 4,
        shapes: [[512, 384], null],
        data: [g, null],
        fn: (x) => T.sum(x, 0),
        want: (out) => [Array.from(out), Array.from(colSum)],
      },
    ];
    for (const c of cases) {
      await measureOurs(ctx, {
        group: 'elementwise',
        case: c.name,
        bytes: c.bytes,
        setup: () => ({
          x: T.tensor(c.data[0], { shape: c.shapes[0] }),
          y: c.data[1] ? T.tensor(c.data[1], { shape: c.shapes[1]! }) : null,
          out: null as Tensor | null,
        }),
        run(s) {
          s.out?.dispose();
          s.out = c.fn(s.x, s.y);
        },
        async check(s) {
          const [got, want] = c.want(await s.out!.data());
          return compare(got, want, 'float64 JS reference', { atol: 1e-4, rtol: 1e-4 });
        },
        dispose(s) {
          for (const t of [s.x, s.y, s.out]) t?.dispose();
        },
      });
    }
  },
};
