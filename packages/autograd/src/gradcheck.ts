/**
 * Gradient check by central differences on the float64 CPU oracle: the analytic gradient from
 * `backward()` of L = Σ f(x)·r (r a fixed random projection, so every output element matters)
 * against (L(x+ε) − L(x−ε)) / 2ε, element by element.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { backward, noGrad, requireGrad } from './tape.js';

export interface GradcheckResult {
  ok: boolean;
  /** Largest |analytic − numeric| / (atol + rtol·|numeric|) over all elements (≤ 1 passes). */
  worst: number;
  /** Where the worst element is, as "input k, element i: analytic a vs numeric n". */
  detail: string;
}

/**
 * `inputs` must be CPU f32 tensors (float64 inside); `fn` maps them to one tensor.
 * Pass `wrt` to check only some inputs (e.g. not integer targets).
 */
export async function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; atol?: number; rtol?: number; wrt?: number[] } = {},
): Promise<GradcheckResult> {
  const { eps = 1e-6, atol = 1e-5, rtol = 1e-4 } = opts;
  const wrt = opts.wrt ?? inputs.map((_, k) => k).filter((k) => inputs[k]!.dtype === 'f32');
  for (const k of wrt) {
    if (inputs[k]!.device !== 'cpu') throw new Error('gradcheck: inputs must be on the CPU (the float64 oracle)');
    if (!inputs[k]!.isContiguous) throw new Error('gradcheck: inputs must be contiguous');
  }
  const probe = noGrad(() => fn(...inputs));
  const weights = T.rand(probe.shape, { device: 'cpu', seed: 1234 }).add(0.5);
  probe.dispose();
  const objective = () => noGrad(() => T.tidy(() => T.sum(T.mul(fn(...inputs), weights)))).item();

  for (const k of wrt) {
    inputs[k]!.grad?.dispose();
    inputs[k]!.grad = null;
    requireGrad(inputs[k]!);
  }
  const loss = T.sum(T.mul(fn(...inputs), weights));
  backward(loss);
  loss.dispose();

  let worst = 0;
  let detail = 'no elements';
  for (const k of wrt) {
    const x = inputs[k]!;
    const analytic = x.grad ? await x.grad.dataF64() : new Float64Array(x.size);
    const values = x.storage.data!;
    for (let i = 0; i < x.size; i++) {
      const at = x.offset + i;
      const saved = values[at]!;
      values[at] = saved + eps;
      const plus = await objective();
      values[at] = saved - eps;
      const minus = await objective();
      values[at] = saved;
      const numeric = (plus - minus) / (2 * eps);
      const score = Math.abs(analytic[i]! - numeric) / (atol + rtol * Math.abs(numeric));
      if (score > worst || Number.isNaN(score)) {
        worst = Number.isNaN(score) ? Infinity : score;
        detail = `input ${k}, element ${i}: analytic ${analytic[i]} vs numeric ${numeric}`;
      }
    }
    requireGrad(x, false);
  }
  weights.dispose();
  return { ok: worst <= 1, worst, detail };
}
