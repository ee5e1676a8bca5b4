/**
 * Convolutions and the pair map of RiNALMo's secondary-structure head:
 *  - conv1d [B, L, 64] → 64 channels, K = 5 'same' (a TextCNN / ResNet1D layer), forward and
 *    forward + backward (dx, dweight, dbias) through autograd;
 *  - conv2d 3×3 'same' over a [1, H, W, 32] map → 32 channels, forward and forward + backward;
 *  - Linear(2d → 64) over the outer concatenation [B, L, L, 2d] of [B, L, d], materialised
 *    (outerConcat then linear) vs `pairwiseLinear` (two [B, L, 64] matmuls and a broadcast add).
 * GFLOP/s count 2 flops per multiply-add of the direct computation (the same count for both pair
 * routes, so their figures compare the time for the same result). Checked against the CPU oracle.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { backward, requireGrad } from '@rnagrad/autograd';
import { compare, mergeChecks } from '../lib/figure.js';
import { measureOurs } from '../lib/measure.js';
import { normal } from '../lib/prng.js';
import type { BenchCase, CaseContext } from '../lib/types.js';

type Inputs = { x: Tensor; w: Tensor; b: Tensor; dy: Tensor; y: Tensor | null };

/** Forward and forward + backward of one convolution, checked against the CPU oracle. */
async function convFigures(
  ctx: CaseContext,
  name: string,
  xShape: number[],
  wShape: number[],
  conv: (x: Tensor, w: Tensor, b: Tensor) => Tensor,
): Promise<void> {
  const size = (s: number[]) => s.reduce((a, v) => a * v, 1);
  const x = normal(size(xShape), 91, 1);
  const w = normal(size(wShape), 92, 1 / Math.sqrt(size(wShape.slice(1))));
  const b = normal(wShape[0]!, 93, 0.1);
  const outShape = [...xShape.slice(0, -1), wShape[0]!];
  const dy = normal(size(outShape), 94, 1);
  const make = (device: 'gpu' | 'cpu', grad: boolean): Inputs => ({
    x: requireGrad(T.tensor(x, { shape: xShape, device }), grad),
    w: requireGrad(T.tensor(w, { shape: wShape, device }), grad),
    b: requireGrad(T.tensor(b, { device }), grad),
    dy: T.tensor(dy, { shape: outShape, device }),
    y: null,
  });
  const clear = (s: Inputs) => {
    for (const t of [s.x, s.w, s.b]) {
      t.grad?.dispose();
      t.grad = null;
    }
    s.y?.dispose();
    s.y = null;
  };
  const dispose = (s: Inputs) => {
    clear(s);
    for (const t of [s.x, s.w, s.b, s.dy]) t.dispose();
  };
  const ref = make('cpu', true);
  ref.y = conv(ref.x, ref.w, ref.b);
  backward(ref.y, ref.dy);
  const want = {
    y: await ref.y.data(),
    dx: await ref.x.grad!.data(),
    dw: await ref.w.grad!.data(),
    db: await ref.b.grad!.data(),
  };
  dispose(ref);
  const macs = size(outShape) * size(wShape.slice(1));
  const shape = `x [${xShape}] w [${wShape}]`;
  await measureOurs(ctx, {
    group: 'conv',
    case: `${name} fwd ${shape}`,
    flops: 2 * macs,
    setup: () => make('gpu', false),
    run(s) {
      s.y?.dispose();
      s.y = conv(s.x, s.w, s.b);
    },
    check: async (s) =>
      compare(await s.y!.data(), want.y, 'rnagrad CPU oracle (float64), every value', { atol: 1e-4, rtol: 1e-3 }),
    dispose,
  });
  await measureOurs(ctx, {
    group: 'conv',
    case: `${name} fwd+bwd ${shape}`,
    flops: 6 * macs,
    setup: () => make('gpu', true),
    run(s) {
      clear(s);
      s.y = conv(s.x, s.w, s.b);
      backward(s.y, s.dy);
    },
    async check(s) {
      return mergeChecks(
        [
          compare(await s.y!.data(), want.y, 'y', { atol: 1e-4, rtol: 1e-3 }),
          compare(await s.x.grad!.data(), want.dx, 'dx', { atol: 1e-3, rtol: 1e-3 }),
          compare(await s.w.grad!.data(), want.dw, 'dweight', { atol: 1e-2, rtol: 1e-3 }),
          compare(await s.b.grad!.data(), want.db, 'dbias', { atol: 1e-2, rtol: 1e-3 }),
        ],
        'rnagrad CPU oracle (float64), every value',
      );
    },
    dispose,
  });
}

async function pairFigures(ctx: CaseContext, B: number, L: number, d: number, h: number): Promise<void> {
  const x = normal(B * L * d, 95, 1);
  const w = normal(h * 2 * d, 96, 1 / Math.sqrt(2 * d));
  const b = normal(h, 97, 0.1);
  const make = (device: 'gpu' | 'cpu') => ({
    x: T.tensor(x, { shape: [B, L, d], device }),
    w: T.tensor(w, { shape: [h, 2 * d], device }),
    b: T.tensor(b, { device }),
    y: null as Tensor | null,
  });
  type S = ReturnType<typeof make>;
  const dispose = (s: S) => [s.x, s.w, s.b, s.y].forEach((t) => t?.dispose());
  const materialised = (s: S) => T.tidy(() => T.linear(T.outerConcat(s.x), s.w, s.b));
  const ref = make('cpu');
  ref.y = T.pairwiseLinear(ref.x, ref.w, ref.b);
  const want = await ref.y.data();
  dispose(ref);
  const flops = 2 * B * L * L * h * 2 * d;
  for (const [route, fn] of [
    ['outerConcat + linear', materialised],
    ['pairwiseLinear', (s: S) => T.pairwiseLinear(s.x, s.w, s.b)],
  ] as const) {
    await measureOurs(ctx, {
      group: 'conv',
      case: `pair map [${B},${L},${d}] → [${B},${L},${L},${h}]: ${route}`,
      flops,
      setup: () => make('gpu'),
      run(s) {
        s.y?.dispose();
        s.y = fn(s);
      },
      check: async (s) =>
        compare(await s.y!.data(), want, 'rnagrad CPU oracle (float64), every value', { atol: 1e-4, rtol: 1e-3 }),
      dispose,
    });
  }
}

export const convCase: BenchCase = {
  name: 'conv',
  title: 'Convolutions and the pair map',
  async run(ctx) {
    const q = ctx.quick;
    await convFigures(ctx, 'conv1d K5', [q ? 2 : 4, q ? 128 : 256, 64], [64, 64, 5], (x, w, b) =>
      T.conv1d(x, w, b, { padding: 'same' }),
    );
    await convFigures(ctx, 'conv2d 3×3', [1, q ? 24 : 48, q ? 24 : 48, 32], [32, 32, 3, 3], (x, w, b) =>
      T.conv2d(x, w, b, { padding: 'same' }),
    );
    await pairFigures(ctx, 1, q ? 48 : 96, 64, 64);
  },
};
