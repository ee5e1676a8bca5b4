/**
 * Timing with tinybench: warm-up, then repeated samples; every sample's function must itself end
 * with a wait on GPU completion (the caller's `sync`). Figures are the median with p10–p90 and
 * min/max of the samples.
 */
import { Bench } from 'tinybench';

export interface Spread {
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
  n: number;
}

export interface TimeOptions {
  /** Untimed calls before sampling (default 2). */
  warmup?: number;
  /** Minimum number of samples (default 5). */
  samples?: number;
  /** Keep sampling until this many ms have passed (default 0: exactly `samples`). */
  budgetMs?: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function spread(samples: readonly number[]): Spread {
  const s = [...samples].sort((a, b) => a - b);
  return {
    median: quantile(s, 0.5),
    p10: quantile(s, 0.1),
    p90: quantile(s, 0.9),
    min: s[0] ?? NaN,
    max: s.at(-1) ?? NaN,
    n: s.length,
  };
}

/** Maps a time spread (ms) to a throughput spread: `work / ms` (so p10 of time is p90 of rate). */
export function rate(ms: Spread, workPerMs: number): Spread {
  return {
    median: workPerMs / ms.median,
    p10: workPerMs / ms.p90,
    p90: workPerMs / ms.p10,
    min: workPerMs / ms.max,
    max: workPerMs / ms.min,
    n: ms.n,
  };
}

/** Samples of `fn` (ms per call, each call awaited to GPU completion by `fn` itself). */
export async function timeIt(
  name: string,
  fn: () => Promise<unknown>,
  opts: TimeOptions = {},
): Promise<{ ms: Spread; samples: number[] }> {
  const bench = new Bench({
    name,
    iterations: Math.max(1, opts.samples ?? 5),
    time: opts.budgetMs ?? 0,
    warmup: (opts.warmup ?? 2) > 0,
    warmupIterations: Math.max(1, opts.warmup ?? 2),
    warmupTime: 0,
    retainSamples: true,
    throws: true,
  });
  bench.add(name, async () => {
    await fn();
  });
  await bench.run();
  const task = bench.tasks[0]!;
  const result = task.result;
  if (result.state !== 'completed') {
    const err = 'error' in result ? (result as { error?: unknown }).error : undefined;
    throw err instanceof Error ? err : new Error(`${name}: ${result.state}${err ? ` ${String(err)}` : ''}`);
  }
  const samples = [...(result.latency.samples ?? [])];
  return { ms: spread(samples), samples };
}

/**
 * Sampling plan from the duration of one warm call: many samples for fast kernels, a few for
 * slow ones, so a full run stays within its time.
 */
export function adaptive(warmMs: number, quick: boolean): TimeOptions {
  if (warmMs < 20) return { warmup: 2, samples: quick ? 8 : 15, budgetMs: quick ? 300 : 1000 };
  if (warmMs < 200) return { warmup: 1, samples: quick ? 5 : 9, budgetMs: quick ? 600 : 2000 };
  if (warmMs < 2000) return { warmup: 0, samples: quick ? 3 : 5 };
  return { warmup: 0, samples: quick ? 2 : 3 };
}

/** Wall time of one awaited call (for cold, first-call figures). */
export async function once(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export function fmt(x: number | undefined | null, digits = 3): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(Math.max(0, digits - 3));
  if (a >= 10) return x.toFixed(Math.max(0, digits - 2));
  if (a >= 1) return x.toFixed(Math.max(0, digits - 1));
  return x.toPrecision(digits);
}
