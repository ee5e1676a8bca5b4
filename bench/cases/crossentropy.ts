/**
 * Fused cross-entropy forward + backward on [16384, 70] logits (mean over non-ignored rows, every
 * 11th row ignored), through autograd: loss = crossEntropy(logits, targets); loss.backward().
 * GB/s counts logits read twice (forward, backward) + dlogits written once + targets twice.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { requireGrad } from '@rnagrad/autograd';
import { compare, mergeChecks } from '../lib/figure.js';
import { measureOurs } from '../lib/measure.js';
import { integers, uniform } from '../lib/prng.js';
import type { BenchCase } from '../lib/types.js';

export const N = 16384;
export const C = 70;

export function lossInputs(): { logits: Float32Array; targets: Int32Array } {
  const logits = uniform(N * C, 71, -5, 5);
  const targets = integers(N, C, 72);
  for (let i = 0; i < N; i += 11) targets[i] = -100;
  return { logits, targets };
}

/** Loss and dlogits of one fwd+bwd on the CPU oracle. */
export async function cpuLoss(
  fn: (logits: Tensor, targets: Tensor) => Tensor,
  inp: { logits: Float32Array; targets: Int32Array },
): Promise<{ loss: number; grad: Float32Array | Int32Array | Uint8Array }> {
  const logits = requireGrad(T.tensor(inp.logits, { shape: [N, C], device: 'cpu' }));
  const targets = T.tensor(inp.targets, { dtype: 'i32', device: 'cpu' });
  const loss = fn(logits, targets);
  loss.backward();
  const out = { loss: await loss.item(), grad: await logits.grad!.data() };
  for (const t of [loss, logits, targets]) t.dispose();
  return out;
}

export interface LossState {
  logits: Tensor;
  targets: Tensor;
  loss: Tensor | null;
}

export function lossCase(
  fn: (logits: Tensor, targets: Tensor) => Tensor,
  inp: { logits: Float32Array; targets: Int32Array },
  ref: { loss: number; grad: ArrayLike<number> },
) {
  return {
    setup: (): LossState => ({
      logits: requireGrad(T.tensor(inp.logits, { shape: [N, C] })),
      targets: T.tensor(inp.targets, { dtype: 'i32' }),
      loss: null,
    }),
    run(s: LossState) {
      s.logits.grad?.dispose();
      s.logits.grad = null;
      s.loss?.dispose();
      s.loss = fn(s.logits, s.targets);
      s.loss.backward();
    },
    async check(s: LossState) {
      const loss = await s.loss!.item();
      const grad = await s.logits.grad!.data();
      return mergeChecks(
        [compare([loss], [ref.loss], 'loss'), compare(grad, ref.grad, 'dlogits', { atol: 1e-7, rtol: 1e-3 })],
        'rnagrad CPU oracle (float64): loss and every dlogit',
      );
    },
    dispose(s: LossState) {
      for (const t of [s.loss, s.logits, s.targets]) t?.dispose();
    },
  };
}

export const crossEntropyCase: BenchCase = {
  name: 'ce',
  title: 'Cross-entropy',
  async run(ctx) {
    const inp = lossInputs();
    const fn = (logits: Tensor, targets: Tensor) => T.crossEntropy(logits, targets);
    const ref = await cpuLoss(fn, inp);
    await measureOurs(ctx, {
      group: 'loss',
      case: `cross-entropy fwd+bwd [${N},${C}]`,
      bytes: 3 * N * C * 4 + 2 * N * 4,
      ...lossCase(fn, inp, ref),
    });
  },
};
