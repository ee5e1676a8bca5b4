/**
 * AdamW with parameter groups (no weight decay on biases, norms and embeddings, as PyTorch users
 * configure it), global-norm clipping, a state that checkpoints can save and restore exactly, and
 * a warm-up + cosine learning-rate schedule.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  /** Decoupled decay for the parameters that take it (default 0.01). */
  weightDecay?: number;
  /** Clip the global gradient norm to this value before each step (off when undefined). */
  maxGradNorm?: number;
  /** Which parameters get no weight decay (default: `isNoDecayParameter`). */
  noDecay?: (name: string, param: Tensor) => boolean;
}

/** Biases, LayerNorm weights (every rank-1 tensor) and embedding tables take no weight decay. */
export function isNoDecayParameter(name: string, param: Tensor): boolean {
  const owner = name.split('.').at(-2) ?? '';
  return param.rank <= 1 || owner === 'wte' || owner === 'wpe' || /embed/i.test(owner);
}

/** What a checkpoint needs to continue an AdamW run bit for bit. */
export interface AdamWState {
  /** Updates taken per parameter (a parameter frozen for a while has taken fewer). */
  steps: number[];
  m: Tensor[];
  v: Tensor[];
}

export class AdamW {
  readonly names: string[];
  readonly params: Tensor[];
  readonly decay: number[];
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  private readonly steps: number[];

  constructor(
    namedParams: [string, Tensor][],
    readonly opts: AdamWOptions,
  ) {
    this.names = namedParams.map(([n]) => n);
    this.params = namedParams.map(([, p]) => p);
    const noDecay = opts.noDecay ?? isNoDecayParameter;
    this.decay = namedParams.map(([n, p]) => (noDecay(n, p) ? 0 : (opts.weightDecay ?? 0.01)));
    this.m = this.params.map((p) => T.keep(T.zerosLike(p)));
    this.v = this.params.map((p) => T.keep(T.zerosLike(p)));
    this.steps = this.params.map(() => 0);
  }

  /**
   * One update with the gradients in `.grad`; parameters without a gradient (frozen) are skipped
   * and keep their step count, so bias correction matches PyTorch's per-parameter state.
   * Returns the global gradient norm before clipping (a GPU scalar) when clipping is on.
   */
  update(lr = this.opts.lr): Tensor | null {
    const live = this.params.map((_, i) => i).filter((i) => this.params[i]!.grad);
    if (live.length === 0) return null;
    const norm =
      this.opts.maxGradNorm !== undefined
        ? T.clipGradNorm(
            live.map((i) => this.params[i]!.grad!),
            this.opts.maxGradNorm,
          )
        : null;
    for (const i of live) this.steps[i]!++;
    // One multi-tensor step per distinct step count (a single group unless unfreezing happened).
    for (const step of new Set(live.map((i) => this.steps[i]!))) {
      const group = live.filter((i) => this.steps[i] === step);
      T.adamwStep(
        group.map((i) => this.params[i]!),
        group.map((i) => this.params[i]!.grad!),
        group.map((i) => this.m[i]!),
        group.map((i) => this.v[i]!),
        {
          lr,
          beta1: this.opts.betas?.[0] ?? 0.9,
          beta2: this.opts.betas?.[1] ?? 0.999,
          eps: this.opts.eps ?? 1e-8,
          weightDecay: group.map((i) => this.decay[i]!),
          step,
        },
      );
    }
    return norm;
  }

  /** The moments and step counts (views of the live buffers: save them before the next update). */
  state(): AdamWState {
    return { steps: [...this.steps], m: this.m, v: this.v };
  }

  /** Puts the step counts back to `state().steps` of before: an update that was only traced did not happen. */
  restoreStepCounts(steps: readonly number[]): void {
    if (steps.length !== this.steps.length)
      throw new Error(`AdamW.restoreStepCounts: ${steps.length} counts for ${this.steps.length} parameters`);
    this.steps.splice(0, steps.length, ...steps);
  }

  /** Restores a saved state; shapes must match the parameters. */
  loadState(state: AdamWState): void {
    const n = this.params.length;
    if (state.steps.length !== n || state.m.length !== n || state.v.length !== n) {
      throw new Error(`AdamW.loadState: the state has ${state.m.length} moment pairs for ${n} parameters`);
    }
    this.params.forEach((p, i) => {
      for (const t of [state.m[i]!, state.v[i]!]) {
        if (t.shape.join() !== p.shape.join())
          throw new Error(
            `AdamW.loadState: moment of ${this.names[i]} is [${t.shape.join(', ')}], the parameter ` +
              `[${p.shape.join(', ')}]`,
          );
      }
      T.assign(this.m[i]!, state.m[i]!);
      T.assign(this.v[i]!, state.v[i]!);
      this.steps[i] = state.steps[i]!;
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** Linear warmup to `maxLr`, then cosine decay to `minLr` at `totalSteps`. */
export function cosineSchedule(
  step: number,
  opts: { maxLr: number; minLr: number; warmupSteps: number; totalSteps: number },
): number {
  if (step < opts.warmupSteps) return (opts.maxLr * (step + 1)) / opts.warmupSteps;
  const progress = Math.min(1, (step - opts.warmupSteps) / Math.max(1, opts.totalSteps - opts.warmupSteps));
  return opts.minLr + 0.5 * (opts.maxLr - opts.minLr) * (1 + Math.cos(Math.PI * progress));
}
