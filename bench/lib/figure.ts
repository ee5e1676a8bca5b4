/** Building figures: throughput from time, fraction of the right ceiling, error figures. */
import type { Ceilings } from './ceilings.js';
import { type Spread, rate } from './stats.js';
import type { Check, Engine, Figure } from './types.js';

export interface FigureInput {
  group: string;
  case: string;
  engine: Engine;
  ms: Spread;
  /** FLOPs per call → GFLOP/s against the FMA ceiling. */
  flops?: number;
  /** Bytes moved per call (minimum: each input read once, each output written once) → GB/s against the copy ceiling. */
  bytes?: number;
  coldMs?: number;
  check?: Check;
  note?: string;
  extra?: Record<string, unknown>;
}

export function makeFigure(c: Ceilings, f: FigureInput): Figure {
  const base = {
    group: f.group,
    case: f.case,
    engine: f.engine,
    ms: f.ms,
    coldMs: f.coldMs,
    check: f.check,
    note: f.note,
    extra: f.extra,
  };
  if (f.flops !== undefined) {
    const value = rate(f.ms, f.flops / 1e6);
    return { ...base, unit: 'GFLOP/s', value, flops: f.flops, ceiling: 'fma', ofCeiling: value.median / c.fmaGflops };
  }
  if (f.bytes !== undefined) {
    const value = rate(f.ms, f.bytes / 1e6);
    return { ...base, unit: 'GB/s', value, bytes: f.bytes, ceiling: 'copy', ofCeiling: value.median / c.copyGbps };
  }
  return { ...base, unit: 'ms', value: f.ms };
}

export function errorFigure(
  group: string,
  kase: string,
  engine: Engine,
  error: unknown,
  unit: Figure['unit'] = 'ms',
): Figure {
  const message = error instanceof Error ? error.message : String(error);
  return { group, case: kase, engine, unit, error: message.split('\n').slice(0, 3).join(' ').slice(0, 400) };
}

/**
 * Compares `got` with `want` (float64 reference): error per value = |got − want| / (atol + rtol·|want|)
 * normalised so that ≤ 1 passes. Returns the worst value as `maxErr` (in units of the tolerance).
 */
export function compare(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  against: string,
  tol: { atol?: number; rtol?: number } = {},
): Check {
  const atol = tol.atol ?? 1e-4;
  const rtol = tol.rtol ?? 1e-3;
  if (got.length !== want.length)
    return { ok: false, maxErr: Infinity, tol: 1, count: 0, against, note: `length ${got.length} ≠ ${want.length}` };
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i]! - want[i]!) / (atol + rtol * Math.abs(want[i]!));
    if (!(e <= worst)) {
      worst = Number.isNaN(e) ? Infinity : e;
      worstAt = i;
    }
  }
  const ok = worst <= 1;
  return {
    ok,
    maxErr: worst,
    tol: 1,
    count: got.length,
    against,
    note: ok
      ? `atol ${atol}, rtol ${rtol}`
      : `worst at #${worstAt}: got ${got[worstAt]}, want ${want[worstAt]} (atol ${atol}, rtol ${rtol})`,
  };
}

/** Merges checks of several outputs into one. */
export function mergeChecks(checks: Check[], against: string): Check {
  const ok = checks.every((c) => c.ok);
  const worst = checks.reduce((a, b) => (b.maxErr > a.maxErr ? b : a), checks[0]!);
  return {
    ok,
    maxErr: worst.maxErr,
    tol: 1,
    count: checks.reduce((n, c) => n + c.count, 0),
    against,
    note: ok
      ? worst.note
      : checks
          .filter((c) => !c.ok)
          .map((c) => c.note)
          .join('; '),
  };
}
