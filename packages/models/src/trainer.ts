/**
 * The one training loop for every model: a model, a loss, a batch source and options. It does
 * gradient accumulation, AdamW with parameter groups, a warm-up + cosine schedule, global-norm
 * clipping, periodic evaluation, early stopping on a metric, frozen parameters and a gradual
 * unfreeze schedule, and hands out snapshots that continue a run bit for bit.
 *
 * Everything random is a pure function of (seed, step): batch b of the run is `source.batch(b)`
 * and the GPU stream is reseeded from (seed, step) before each step. So a snapshot needs only the
 * step, the weights, the optimiser moments and the source's own state, and a resumed run computes
 * the same numbers as one that never stopped. Browser-safe: files and signals live in `node/`.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { noGrad, requireGrad, zeroGrad } from '@rnagrad/autograd';
import type { Module } from './module.js';
import { mixSeed } from './data.js';
import { AdamW, type AdamWState, cosineSchedule } from './optim.js';

export interface BatchSource<B> {
  /** The micro-batch with this global index: a pure function of the index, so runs resume exactly. */
  batch(index: number): B;
  /** Real (non-pad) tokens in a batch, for tokens/s. */
  tokens(batch: B): number;
  /** Extra state to keep in a checkpoint (e.g. the longest position trained so far). */
  state?(): Record<string, unknown>;
  restore?(state: Record<string, unknown>): void;
}

/**
 * Forward + loss of one micro-batch: a scalar with a gradient path to the parameters, optionally
 * with extra scalars to log (computed without gradients, e.g. plain cross-entropy beside HXE).
 */
export type LossFunction<M extends Module, B> = (
  model: M,
  batch: B,
) => Tensor | { loss: Tensor; metrics: Record<string, Tensor> };

export interface EarlyStopping {
  /** A key of the evaluation's result, e.g. 'crossEntropy'. */
  metric: string;
  mode: 'min' | 'max';
  /** Evaluations without an improvement of more than `minDelta` before stopping. */
  patience: number;
  minDelta?: number;
}

/** From `atStep` on (steps done), the parameters matching `patterns` train. */
export interface UnfreezeStage {
  atStep: number;
  patterns: string[];
}

export interface TrainerOptions {
  /** Optimiser updates in the whole run (a resumed run continues to it). */
  steps: number;
  /** Micro-batches per update (gradient accumulation); the loss is their mean. */
  accumulate: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  betas: [number, number];
  eps: number;
  /** Global gradient-norm clip (0 or Infinity: off). */
  maxGradNorm: number;
  seed: number;
  /** Evaluate every this many steps, before the first and at the end (0: never). */
  evalEvery: number;
  /** Ask for a snapshot every this many steps (and always at the end). 0: only at the end. */
  checkpointEvery: number;
  earlyStopping?: EarlyStopping;
  /** Parameters (name patterns, see `matchesPattern`) that do not train … */
  freeze: string[];
  /** … until their stage: gradual unfreezing for fine-tuning. */
  unfreeze: UnfreezeStage[];
}

export const TRAINER_DEFAULTS: TrainerOptions = {
  steps: 200,
  accumulate: 1,
  lr: 3e-3,
  minLr: 3e-4,
  warmupSteps: 20,
  weightDecay: 0.01,
  betas: [0.9, 0.999],
  eps: 1e-8,
  maxGradNorm: 1,
  seed: 42,
  evalEvery: 50,
  checkpointEvery: 0,
  freeze: [],
  unfreeze: [],
};

export interface StepEntry {
  /** Updates done, this one included (1 for the first). */
  step: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping (NaN when clipping is off). */
  gradNorm: number;
  tokens: number;
  /** Wall time of the step including the loss readback. */
  ms: number;
  /** The loss function's extra scalars, averaged over the micro-batches. */
  metrics?: Record<string, number>;
}

export interface EvalEntry {
  /** Updates done when evaluated (0: before training). */
  step: number;
  metrics: Record<string, number>;
}

export interface TrainHistory {
  steps: StepEntry[];
  evaluations: EvalEntry[];
}

/** Everything a checkpoint must hold to continue the run exactly. */
export interface TrainerSnapshot {
  step: number;
  optimizer: AdamWState;
  history: TrainHistory;
  earlyStopping: { best: number | null; bestStep: number; badEvaluations: number };
  source: Record<string, unknown>;
  reason: 'interval' | 'end' | 'early-stop' | 'interrupt';
}

export interface TrainerHooks {
  /**
   * Before the first step the trainer traces one step and compiles its GPU pipelines concurrently
   * (`compileAhead`); this sees (0, m), then each pipeline done. Not called when all are compiled.
   */
  onCompile?(done: number, total: number): void;
  onStep?(entry: StepEntry): void;
  onEvaluation?(entry: EvalEntry): void;
  /** Called with a snapshot to save; the run waits for it. */
  onSnapshot?(snapshot: TrainerSnapshot): Promise<void>;
  /** Polled after each step: true stops the run after a final snapshot (e.g. on Ctrl-C). */
  shouldStop?(): boolean;
}

export interface TrainResult {
  history: TrainHistory;
  step: number;
  stopped: 'completed' | 'early-stop' | 'interrupt';
}

export interface TrainSetup<M extends Module, B> {
  model: M;
  loss: LossFunction<M, B>;
  source: BatchSource<B>;
  /** Validation metrics of the model (called in eval mode, without gradients). */
  evaluate?: (model: M) => Promise<Record<string, number>>;
}

/**
 * `pattern` names a parameter or a module: "transformer.h.0" matches every parameter below it,
 * "*" matches any run of characters ("transformer.h.*.ln_1").
 */
export function matchesPattern(name: string, pattern: string): boolean {
  if (pattern.includes('*')) {
    const re = new RegExp(
      `^${pattern
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}(\\..*)?$`,
    );
    return re.test(name);
  }
  return name === pattern || name.startsWith(`${pattern}.`);
}

/** Checks that every pattern names at least one parameter (a typo would silently train everything). */
export function checkPatterns(names: readonly string[], patterns: readonly string[], what: string): void {
  for (const pattern of patterns) {
    if (!names.some((n) => matchesPattern(n, pattern)))
      throw new Error(`${what}: "${pattern}" matches no parameter (e.g. ${names.slice(0, 3).join(', ')}, …)`);
  }
}

/**
 * ULMFiT-style gradual unfreezing: everything but `groups[0]` starts frozen and group k joins at
 * step k·every. Groups run from the output (head) to the input (embeddings).
 */
export function gradualUnfreeze(groups: string[][], every: number): { freeze: string[]; unfreeze: UnfreezeStage[] } {
  return {
    freeze: groups.slice(1).flat(),
    unfreeze: groups.slice(1).map((patterns, k) => ({ atStep: (k + 1) * every, patterns })),
  };
}

export async function train<M extends Module, B>(
  setup: TrainSetup<M, B>,
  options: Partial<TrainerOptions> = {},
  hooks: TrainerHooks = {},
  resume?: TrainerSnapshot,
): Promise<TrainResult> {
  const opts = { ...TRAINER_DEFAULTS, ...options };
  validateOptions(opts);
  const { model, loss, source } = setup;
  const named = model.namedParameters();
  const names = named.map(([n]) => n);
  checkPatterns(names, opts.freeze, 'freeze');
  for (const stage of opts.unfreeze) checkPatterns(names, stage.patterns, 'unfreeze');
  const optimizer = new AdamW(named, {
    lr: opts.lr,
    betas: opts.betas,
    eps: opts.eps,
    weightDecay: opts.weightDecay,
    maxGradNorm: opts.maxGradNorm > 0 && Number.isFinite(opts.maxGradNorm) ? opts.maxGradNorm : undefined,
  });
  const history: TrainHistory = resume ? structuredClone(resume.history) : { steps: [], evaluations: [] };
  const stopState = resume
    ? { ...resume.earlyStopping }
    : { best: null as number | null, bestStep: 0, badEvaluations: 0 };
  let step = resume?.step ?? 0;
  if (resume) {
    optimizer.loadState(resume.optimizer);
    source.restore?.(resume.source);
  }

  const frozenAt = (s: number) =>
    new Set(
      names.filter(
        (n) =>
          opts.freeze.some((p) => matchesPattern(n, p)) &&
          !opts.unfreeze.some((u) => s >= u.atStep && u.patterns.some((p) => matchesPattern(n, p))),
      ),
    );
  const applyFreezing = (s: number) => {
    const frozen = frozenAt(s);
    for (const [n, p] of named) requireGrad(p, !frozen.has(n));
  };

  const evaluate = async () => {
    if (!setup.evaluate) return;
    model.eval();
    const entry: EvalEntry = { step, metrics: await setup.evaluate(model) };
    model.train();
    history.evaluations.push(entry);
    hooks.onEvaluation?.(entry);
    const es = opts.earlyStopping;
    if (!es) return;
    const value = entry.metrics[es.metric];
    if (value === undefined)
      throw new Error(
        `early stopping: the evaluation has no metric "${es.metric}" (it has ${Object.keys(entry.metrics).join(', ')})`,
      );
    const better =
      stopState.best === null ||
      (es.mode === 'min' ? value < stopState.best - (es.minDelta ?? 0) : value > stopState.best + (es.minDelta ?? 0));
    if (better) Object.assign(stopState, { best: value, bestStep: step, badEvaluations: 0 });
    else if (step > 0) stopState.badEvaluations++;
  };

  const snapshot = async (reason: TrainerSnapshot['reason']) => {
    if (!hooks.onSnapshot) return;
    await hooks.onSnapshot({
      step,
      optimizer: optimizer.state(),
      history,
      earlyStopping: { ...stopState },
      source: source.state?.() ?? {},
      reason,
    });
  };

  /**
   * Traces the coming step, and an evaluation-mode forward when the run evaluates (nothing runs on
   * the GPU), and compiles their pipelines ahead of need.
   */
  const compileStep = () =>
    T.compileAhead(
      () => {
        const batch = source.batch(step * opts.accumulate);
        if (setup.evaluate && opts.evalEvery > 0) {
          model.eval();
          noGrad(() => loss(model, batch));
          model.train();
        }
        applyFreezing(step);
        T.div(lossOf(loss(model, batch)), opts.accumulate).backward();
        const counts = optimizer.state().steps;
        optimizer.update(opts.lr);
        optimizer.restoreStepCounts(counts);
        zeroGrad(model.parameters());
      },
      (done, total) => {
        if (total > 0) hooks.onCompile?.(done, total);
      },
    );

  model.train();
  let stopped: TrainResult['stopped'] = 'completed';
  try {
    // On the CPU the trace would compute (and update the weights) for real.
    if (step < opts.steps && named.every(([, p]) => p.device === 'gpu')) await compileStep();
    if (opts.evalEvery > 0 && step === 0 && opts.steps > 0) await evaluate();
    while (step < opts.steps) {
      const started = performance.now();
      applyFreezing(step);
      T.manualSeed(mixSeed(opts.seed, step));
      const lr = cosineSchedule(step, {
        maxLr: opts.lr,
        minLr: opts.minLr,
        warmupSteps: opts.warmupSteps,
        totalSteps: opts.steps,
      });
      let tokens = 0;
      const parts: { loss: Tensor; metrics: [string, Tensor][] }[] = [];
      for (let k = 0; k < opts.accumulate; k++) {
        const batch = source.batch(step * opts.accumulate + k);
        tokens += source.tokens(batch);
        let names: string[] = [];
        const [l, ...extra] = T.tidy(() => {
          const out = loss(model, batch);
          const { loss: l, metrics } = out instanceof T.Tensor ? { loss: out, metrics: {} } : out;
          T.div(l, opts.accumulate).backward();
          names = Object.keys(metrics);
          return [l, ...Object.values(metrics)];
        });
        parts.push({ loss: l!, metrics: extra.map((t, i) => [names[i]!, t]) });
      }
      const norm = optimizer.update(lr);
      zeroGrad(model.parameters());
      const read = async (t: Tensor) => {
        const v = await t.item();
        t.dispose();
        return v;
      };
      let total = 0;
      const sums: Record<string, number> = {};
      for (const part of parts) {
        total += await read(part.loss);
        for (const [n, t] of part.metrics) sums[n] = (sums[n] ?? 0) + (await read(t));
      }
      const gradNorm = norm ? await read(norm) : NaN;
      const value = total / opts.accumulate;
      if (!Number.isFinite(value))
        throw new Error(`train: the loss became ${value} at step ${step + 1} (lower --lr, or check the data)`);
      step++;
      const entry: StepEntry = { step, loss: value, lr, gradNorm, tokens, ms: performance.now() - started };
      if (parts[0]!.metrics.length)
        entry.metrics = Object.fromEntries(Object.entries(sums).map(([n, v]) => [n, v / opts.accumulate]));
      history.steps.push(entry);
      hooks.onStep?.(entry);
      if (opts.evalEvery > 0 && (step % opts.evalEvery === 0 || step === opts.steps)) await evaluate();
      if (opts.earlyStopping && stopState.badEvaluations >= opts.earlyStopping.patience) {
        stopped = 'early-stop';
        break;
      }
      if (hooks.shouldStop?.()) {
        stopped = 'interrupt';
        break;
      }
      if (opts.checkpointEvery > 0 && step % opts.checkpointEvery === 0 && step < opts.steps)
        await snapshot('interval');
    }
    await snapshot(stopped === 'completed' ? 'end' : stopped);
  } finally {
    for (const [, p] of named) requireGrad(p, true);
    optimizer.dispose();
  }
  return { history, step, stopped };
}

function lossOf(out: ReturnType<LossFunction<Module, unknown>>): Tensor {
  return out instanceof T.Tensor ? out : out.loss;
}

function validateOptions(o: TrainerOptions): void {
  const int = (name: keyof TrainerOptions, min: number) => {
    const v = o[name] as number;
    if (!Number.isInteger(v) || v < min) throw new RangeError(`train: ${name} must be an integer ≥ ${min}, got ${v}`);
  };
  int('steps', 0);
  int('accumulate', 1);
  int('warmupSteps', 0);
  int('evalEvery', 0);
  int('checkpointEvery', 0);
  for (const name of ['lr', 'minLr', 'weightDecay', 'eps'] as const) {
    if (!(o[name] >= 0) || !Number.isFinite(o[name]))
      throw new RangeError(`train: ${name} must be a finite number ≥ 0, got ${o[name]}`);
  }
  if (!(o.maxGradNorm >= 0)) throw new RangeError(`train: maxGradNorm must be ≥ 0, got ${o.maxGradNorm}`);
  if (o.earlyStopping && !(Number.isInteger(o.earlyStopping.patience) && o.earlyStopping.patience >= 1)) {
    throw new RangeError(`train: earlyStopping.patience must be an integer ≥ 1, got ${o.earlyStopping.patience}`);
  }
}
