/** Measuring one of rnagrad's cases: cold first call, check, warm-up, timed samples. */
import * as T from '@rnagrad/tensor';
import { errorFigure, makeFigure } from './figure.js';
import { type TimeOptions, adaptive, fmt, once, timeIt } from './stats.js';

export { adaptive };
import type { CaseContext, Check, Engine, Figure } from './types.js';

export interface OurCase<S> {
  group: string;
  case: string;
  engine?: Engine;
  /** Builds inputs (after a fresh runtime unless `fresh: false`). */
  setup(): Promise<S> | S;
  /** Encodes one call (keeping its outputs in the state, freeing the previous ones). */
  run(state: S): void;
  /** Checks the outputs of the last call. */
  check?(state: S): Promise<Check>;
  dispose?(state: S): void;
  flops?: number;
  bytes?: number;
  /** Default true (full runs): a new runtime so `coldMs` includes compiling every pipeline the case uses. */
  fresh?: boolean;
  /** CPU oracle: no GPU sync. */
  cpu?: boolean;
  note?: string;
  extra?: (state: S) => Record<string, unknown>;
  timing?: TimeOptions;
}

export function logFigure(ctx: CaseContext, f: Figure): void {
  if (f.error) {
    ctx.log(`  ${f.case.padEnd(44)} ${f.engine.padEnd(16)} FAILED: ${f.error}`);
    return;
  }
  const v = f.value!;
  const ceil = f.ofCeiling !== undefined ? ` ${(100 * f.ofCeiling).toFixed(1)}% of ${f.ceiling}` : '';
  const check = f.check ? (f.check.ok ? ' ✓' : ` ✗ WRONG (${f.check.note ?? ''})`) : '';
  const cold = f.coldMs !== undefined ? ` cold ${fmt(f.coldMs)} ms` : '';
  const ms = f.unit !== 'ms' ? ` [${fmt(f.ms!.median)} ms]` : '';
  ctx.log(
    `  ${f.case.padEnd(44)} ${f.engine.padEnd(16)} ${fmt(v.median).padStart(7)} ${f.unit} (p10–p90 ${fmt(v.p10)}–` +
      `${fmt(v.p90)}, n ${v.n})${ms}${ceil}${cold}${check}`,
  );
}

export async function measureOurs<S>(ctx: CaseContext, c: OurCase<S>): Promise<Figure> {
  const engine = c.engine ?? 'rnagrad';
  let state: S | undefined;
  try {
    // Quick runs skip the new runtimes: on a software adapter compiling every pipeline again for
    // every case is most of a quick run's time. Cold figures come from full runs.
    const fresh = c.fresh !== false && !c.cpu && !ctx.quick;
    if (fresh) await ctx.fresh();
    state = await c.setup();
    const s = state;
    const sync = c.cpu ? async () => {} : () => T.runtime().sync();
    await sync();
    const call = async () => {
      c.run(s);
      await sync();
    };
    const coldMs = await once(call);
    const check = c.check ? await c.check(s) : undefined;
    const warm = await once(call);
    const { ms } = await timeIt(`${c.case} ${engine}`, call, c.timing ?? adaptive(warm, ctx.quick));
    // Without a new runtime the first call found its pipelines compiled: not a cold figure.
    const cold = fresh || c.cpu ? coldMs : undefined;
    const fig = makeFigure(ctx.ceilings, {
      group: c.group,
      case: c.case,
      engine,
      ms,
      flops: c.flops,
      bytes: c.bytes,
      coldMs: cold,
      check,
      note: c.note,
      extra: c.extra?.(s),
    });
    ctx.add(fig);
    logFigure(ctx, fig);
    return fig;
  } catch (err) {
    const fig = errorFigure(
      c.group,
      c.case,
      engine,
      err,
      c.flops !== undefined ? 'GFLOP/s' : c.bytes !== undefined ? 'GB/s' : 'ms',
    );
    ctx.add(fig);
    logFigure(ctx, fig);
    return fig;
  } finally {
    try {
      if (state !== undefined) c.dispose?.(state);
    } catch {
      // the runtime may already be gone
    }
  }
}
