/**
 * Softmax over the rows of [1024, 1024] (GB/s = 1 read + 1 write of 4 MiB, as in
 * shared/reference/peers-swiftshader.md), rnagrad vs the peers and the CPU oracle.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { compare, errorFigure, makeFigure } from '../lib/figure.js';
import { type SoftmaxParams, pickRows, softmaxInput } from '../lib/inputs.js';
import { measureOurs } from '../lib/measure.js';
import { samplePositions } from '../lib/prng.js';
import { softmaxRows } from '../lib/ref.js';
import { PEER_ENGINES, type BenchCase } from '../lib/types.js';

export const softmaxCase: BenchCase = {
  name: 'softmax',
  title: 'Softmax',
  async run(ctx) {
    const p: SoftmaxParams = { R: 1024, C: 1024, seed: 31, rows: samplePositions(1024, 16, 3) };
    const label = 'softmax [1024,1024]';
    const x = softmaxInput(p);
    const want = softmaxRows(x, p.C, p.rows);
    const bytes = 2 * p.R * p.C * 4;
    const against = 'float64 JS reference (16 rows)';
    const tol = { atol: 1e-6, rtol: 1e-3 };
    for (const device of ['gpu', 'cpu'] as const) {
      await measureOurs(ctx, {
        group: 'softmax',
        case: label,
        engine: device === 'cpu' ? 'rnagrad-cpu' : 'rnagrad',
        cpu: device === 'cpu',
        bytes,
        setup: () => ({ x: T.tensor(x, { shape: [p.R, p.C], device }), y: null as Tensor | null }),
        run(s) {
          s.y?.dispose();
          s.y = T.softmax(s.x, -1);
        },
        check: async (s) => compare(pickRows(await s.y!.data(), p.rows, p.C), want, against, tol),
        dispose(s) {
          s.y?.dispose();
          s.x.dispose();
        },
      });
    }
    for (const engine of PEER_ENGINES) {
      if (!ctx.peers.has(engine)) continue;
      await ctx.peer({ engine, kind: 'softmax', params: p as unknown as Record<string, unknown> }, (r) => {
        if (r.error || !r.ms) return errorFigure('softmax', label, engine, r.error ?? 'no result', 'GB/s');
        return makeFigure(ctx.ceilings, {
          group: 'softmax',
          case: label,
          engine,
          ms: r.ms,
          bytes,
          coldMs: r.coldMs,
          check: compare(r.outputs?.out ?? [], want, against, tol),
        });
      });
    }
  },
};
