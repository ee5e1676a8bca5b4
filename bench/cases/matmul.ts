/**
 * Matmul: square 256–2048 (quick: 256, 512), batched [8,128,64]×[8,64,128], skinny
 * [1,1024]×[1024,1024] and [4096,64]×[64,64], transposed operands (Aᵀ·B, A·Bᵀ at 512; quick 256),
 * against the FMA ceiling, the peers (up to 1024³: tfjs needs ~30 s per 2048³ call here), and the
 * CPU oracle at 256³. GFLOP/s = 2·batch·M·N·K / time.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { compare, errorFigure, makeFigure } from '../lib/figure.js';
import { type MatmulParams, matmulInputs, matmulShapes } from '../lib/inputs.js';
import { logFigure, measureOurs } from '../lib/measure.js';
import { samplePositions } from '../lib/prng.js';
import { type MatmulShape, matmulAt } from '../lib/ref.js';
import { PEER_ENGINES, type BenchCase, type CaseContext, type PeerEngine } from '../lib/types.js';

interface Spec {
  label: string;
  shape: MatmulShape;
  /** Peers that run this case (time: tfjs needs ~30 s per 2048³ call here). */
  peers: readonly PeerEngine[];
  cpu?: boolean;
}

function specs(quick: boolean): Spec[] {
  const all = PEER_ENGINES;
  const sq = (n: number, peers: readonly PeerEngine[], cpu = false): Spec => ({
    label: `matmul ${n}×${n}×${n}`,
    shape: { batch: 1, M: n, K: n, N: n },
    peers,
    cpu,
  });
  // Quick runs: tfjs only at 256³ (it needs seconds per call here).
  const jaxOnly: readonly PeerEngine[] = ['jax-js'];
  const out: Spec[] = [sq(256, all, true), sq(512, quick ? jaxOnly : all)];
  if (!quick) out.push(sq(1024, all), sq(2048, []));
  const t = quick ? 256 : 512;
  out.push(
    {
      label: 'batched [8,128,64]×[8,64,128]',
      shape: { batch: 8, M: 128, K: 64, N: 128 },
      peers: quick ? jaxOnly : all,
      cpu: !quick,
    },
    { label: 'skinny [1,1024]×[1024,1024]', shape: { batch: 1, M: 1, K: 1024, N: 1024 }, peers: quick ? [] : all },
    { label: 'skinny [4096,64]×[64,64]', shape: { batch: 1, M: 4096, K: 64, N: 64 }, peers: quick ? [] : all },
    {
      label: `Aᵀ·B ${t}³ (A stored [K,M])`,
      shape: { batch: 1, M: t, K: t, N: t, transA: true },
      peers: quick ? [] : all,
    },
    {
      label: `A·Bᵀ ${t}³ (B stored [N,K])`,
      shape: { batch: 1, M: t, K: t, N: t, transB: true },
      peers: quick ? [] : all,
    },
  );
  return out;
}

function params(s: MatmulShape, k: number): MatmulParams {
  return { ...s, seed: 100 + 10 * k, positions: samplePositions(s.batch * s.M * s.N, 256, 7 + k) };
}

export const matmulCase: BenchCase = {
  name: 'matmul',
  title: 'Matmul',
  async run(ctx: CaseContext) {
    const list = specs(ctx.quick);
    for (const [k, spec] of list.entries()) {
      const p = params(spec.shape, k);
      const flops = 2 * p.batch * p.M * p.N * p.K;
      const inputs = matmulInputs(p);
      const shapes = matmulShapes(p);
      const want = matmulAt(inputs.a, inputs.b, p, p.positions);
      const opFor = (a: Tensor, b: Tensor) => {
        return T.matmul(p.transA ? T.transpose(a, -1, -2) : a, p.transB ? T.transpose(b, -1, -2) : b);
      };
      for (const device of spec.cpu ? (['gpu', 'cpu'] as const) : (['gpu'] as const)) {
        await measureOurs(ctx, {
          group: 'matmul',
          case: spec.label,
          engine: device === 'cpu' ? 'rnagrad-cpu' : 'rnagrad',
          cpu: device === 'cpu',
          flops,
          setup: () => ({
            a: T.tensor(inputs.a, { shape: shapes.a, device }),
            b: T.tensor(inputs.b, { shape: shapes.b, device }),
            out: null as Tensor | null,
          }),
          run(s) {
            s.out?.dispose();
            s.out = opFor(s.a, s.b);
          },
          async check(s) {
            const got = await s.out!.data();
            return compare(
              p.positions.map((i) => got[i]!),
              want,
              'float64 JS reference (256 sampled entries)',
              { atol: 1e-3, rtol: 1e-3 },
            );
          },
          dispose(s) {
            s.out?.dispose();
            s.a.dispose();
            s.b.dispose();
          },
        });
      }
      for (const engine of spec.peers) {
        if (!ctx.peers.has(engine)) continue;
        await ctx.peer({ engine, kind: 'matmul', params: p as unknown as Record<string, unknown> }, (r) => {
          if (r.error || !r.ms) return errorFigure('matmul', spec.label, engine, r.error ?? 'no result', 'GFLOP/s');
          const check = compare(r.outputs?.out ?? [], want, 'float64 JS reference (256 sampled entries)', {
            atol: 1e-3,
            rtol: 1e-3,
          });
          return makeFigure(ctx.ceilings, {
            group: 'matmul',
            case: spec.label,
            engine,
            ms: r.ms,
            flops,
            coldMs: r.coldMs,
            check,
          });
        });
      }
    }
    void logFigure;
  },
};
