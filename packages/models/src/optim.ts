/** AdamW with its moment buffers, global-norm clipping, and a warmup + cosine learning-rate schedule. */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this value before each step (off when undefined). */
  maxGradNorm?: number;
}

export class AdamW {
  readonly params: Tensor[];
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  step = 0;

  constructor(params: Tensor[], readonly opts: AdamWOptions) {
    this.params = params;
    this.m = params.map((p) => T.keep(T.zerosLike(p)));
    this.v = params.map((p) => T.keep(T.zerosLike(p)));
  }

  /** One update with the gradients in `.grad` (parameters without a gradient are skipped). */
  update(lr = this.opts.lr): void {
    this.step++;
    const live = this.params.map((p, i) => [p, i] as const).filter(([p]) => p.grad);
    const grads = live.map(([p]) => p.grad!);
    if (this.opts.maxGradNorm !== undefined) T.clipGradNorm(grads, this.opts.maxGradNorm).dispose();
    T.adamwStep(
      live.map(([p]) => p),
      grads,
      live.map(([, i]) => this.m[i]!),
      live.map(([, i]) => this.v[i]!),
      { lr, beta1: this.opts.betas?.[0] ?? 0.9, beta2: this.opts.betas?.[1] ?? 0.999, eps: this.opts.eps ?? 1e-8, weightDecay: this.opts.weightDecay ?? 0.01, step: this.step },
    );
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** Linear warmup to `maxLr`, then cosine decay to `minLr` at `totalSteps`. */
export function cosineSchedule(step: number, opts: { maxLr: number; minLr: number; warmupSteps: number; totalSteps: number }): number {
  if (step < opts.warmupSteps) return (opts.maxLr * (step + 1)) / opts.warmupSteps;
  const progress = Math.min(1, (step - opts.warmupSteps) / Math.max(1, opts.totalSteps - opts.warmupSteps));
  return opts.minLr + 0.5 * (opts.maxLr - opts.minLr) * (1 + Math.cos(Math.PI * progress));
}
