/**
 * Attention, B 1, H 4, D 32, L 128–2048, causal and not: forward, and forward + backward (dq, dk,
 * dv for a given output gradient). rnagrad's fused tiled ("flash") kernels vs rnagrad's composed
 * path (matmul → masked softmax → matmul, L×L scores) vs the peers' composed attention.
 *
 * FLOPs are the model's: 4·B·H·L²·D forward (q·kᵀ and p·v), 12·B·H·L²·D forward + backward,
 * halved when causal; kernels that recompute (flash backward) do more work than this counts.
 * Outputs and gradients of 16 sampled rows are checked against a float64 JS reference.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { compare, errorFigure, makeFigure, mergeChecks } from '../lib/figure.js';
import { type AttentionParams, attentionInputs, pickRows } from '../lib/inputs.js';
import { measureOurs } from '../lib/measure.js';
import { samplePositions } from '../lib/prng.js';
import { type AttentionRef, attentionAt } from '../lib/ref.js';
import { PEER_ENGINES, type BenchCase, type CaseContext, type Check, type PeerEngine } from '../lib/types.js';

const B = 1;
const H = 4;
const D = 32;

interface Config {
  L: number;
  causal: boolean;
  grad: boolean;
  /** Peers that run this one too (composed attention; tfjs needs ~0.6 s per L=256 fwd+bwd here, ×16 at L=1024). */
  peers: readonly PeerEngine[];
}

function configs(quick: boolean): Config[] {
  const out: Config[] = [];
  if (quick) {
    out.push(
      { L: 256, causal: false, grad: false, peers: ['jax-js'] },
      { L: 256, causal: false, grad: true, peers: PEER_ENGINES },
      { L: 256, causal: true, grad: true, peers: ['jax-js'] },
      { L: 1024, causal: false, grad: true, peers: [] },
      { L: 1024, causal: true, grad: true, peers: [] },
    );
    return out;
  }
  for (const L of [128, 256, 512, 1024, 2048]) {
    for (const causal of [false, true]) {
      for (const grad of [false, true])
        out.push({ L, causal, grad, peers: L === 256 || (L === 1024 && grad && !causal) ? PEER_ENGINES : [] });
    }
  }
  return out;
}

const label = (L: number, causal: boolean, grad: boolean) =>
  `attention ${grad ? 'fwd+bwd' : 'fwd'} L=${L}${causal ? ' causal' : ''}`;

function checkAgainst(ref: AttentionRef, got: Record<string, ArrayLike<number>>, grad: boolean): Check {
  const tol = { atol: 2e-4, rtol: 2e-3 };
  const against = 'float64 JS reference (16 sampled rows)';
  if (!grad) return compare(got.out ?? [], ref.out, against, tol);
  return mergeChecks(
    (['dq', 'dk', 'dv'] as const).map((k) => compare(got[k] ?? [], ref[k], k, tol)),
    against,
  );
}

interface AttnGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}
type AttnOpts = { causal: boolean };
/** A forward that returns what its backward needs, and that backward. */
interface AttentionImpl {
  forward(q: Tensor, k: Tensor, v: Tensor, opts: AttnOpts): { out: Tensor; saved: Tensor[] };
  backward(
    dOut: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    fwd: { out: Tensor; saved: Tensor[] },
    opts: AttnOpts,
  ): AttnGrads;
}

const IMPLS: Record<'rnagrad' | 'rnagrad-composed', AttentionImpl> = {
  rnagrad: {
    forward(q, k, v, opts) {
      const r = T.attentionForward(q, k, v, opts);
      return { out: r.out, saved: [r.logsumexp] };
    },
    backward: (dOut, q, k, v, fwd, opts) => T.attentionBackward(dOut, q, k, v, fwd.out, fwd.saved[0]!, opts),
  },
  'rnagrad-composed': {
    forward(q, k, v, opts) {
      const r = T.composedAttentionForward(q, k, v, opts);
      return { out: r.out, saved: [r.probs] };
    },
    backward: (dOut, q, k, v, fwd, opts) => T.composedAttentionBackward(dOut, q, k, v, fwd.saved[0]!, opts),
  },
};

interface AttnState {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  dOut: Tensor;
  fwd: { out: Tensor; saved: Tensor[] } | null;
  grads: AttnGrads | null;
}

async function ours(
  ctx: CaseContext,
  engine: 'rnagrad' | 'rnagrad-composed',
  p: AttentionParams,
  ref: AttentionRef,
  flops: number,
  fresh: boolean,
): Promise<void> {
  const impl = IMPLS[engine];
  const name = label(p.L, p.causal, p.grad);
  const inp = attentionInputs(p);
  const shape = [p.B, p.H, p.L, p.D];
  const opts = { causal: p.causal };
  const free = (s: AttnState) => {
    if (s.fwd) for (const t of [s.fwd.out, ...s.fwd.saved]) t.dispose();
    if (s.grads) for (const t of [s.grads.dq, s.grads.dk, s.grads.dv]) t.dispose();
    s.fwd = null;
    s.grads = null;
  };
  await measureOurs<AttnState>(ctx, {
    group: 'attention',
    case: name,
    engine,
    flops,
    fresh,
    note: engine === 'rnagrad' ? 'fused tiled (flash) kernels' : 'rnagrad composed: matmul → masked softmax → matmul',
    setup: () => ({
      q: T.tensor(inp.q, { shape }),
      k: T.tensor(inp.k, { shape }),
      v: T.tensor(inp.v, { shape }),
      dOut: T.tensor(inp.dOut, { shape }),
      fwd: null,
      grads: null,
    }),
    run(s) {
      free(s);
      s.fwd = impl.forward(s.q, s.k, s.v, opts);
      if (p.grad) s.grads = impl.backward(s.dOut, s.q, s.k, s.v, s.fwd, opts);
    },
    async check(s) {
      const got: Record<string, ArrayLike<number>> = {};
      if (p.grad) for (const k of ['dq', 'dk', 'dv'] as const) got[k] = pickRows(await s.grads![k].data(), p.rows, p.D);
      else got.out = pickRows(await s.fwd!.out.data(), p.rows, p.D);
      return checkAgainst(ref, got, p.grad);
    },
    dispose(s) {
      free(s);
      for (const t of [s.q, s.k, s.v, s.dOut]) t.dispose();
    },
  });
}

export const attentionCase: BenchCase = {
  name: 'attention',
  title: 'Attention (flash vs composed)',
  async run(ctx) {
    // A new runtime (cold pipelines) only for the first config of each kernel set: shapes travel
    // in uniforms, so the compile cost does not depend on L.
    const compiled = new Set<string>();
    const refs = new Map<string, { ref: AttentionRef; rows: number[]; seed: number }>();
    for (const cfg of configs(ctx.quick)) {
      const { L, causal, grad } = cfg;
      const key = `${L}:${causal}`;
      if (!refs.has(key)) {
        const rows = samplePositions(B * H * L, 16, L + (causal ? 1 : 0));
        const base: AttentionParams = { B, H, L, D, causal, seed: 500 + L, grad: true, rows };
        const inp = attentionInputs(base);
        const t0 = performance.now();
        refs.set(key, { ref: attentionAt(inp.q, inp.k, inp.v, inp.dOut, base, rows), rows, seed: base.seed });
        if (L >= 1024)
          ctx.log(
            `  (float64 reference for L=${L}${causal ? ' causal' : ''}: ` +
              `${((performance.now() - t0) / 1000).toFixed(1)} s)`,
          );
      }
      const { ref, rows, seed } = refs.get(key)!;
      const p: AttentionParams = { B, H, L, D, causal, seed, grad, rows };
      const flops = (grad ? 12 : 4) * B * H * L * L * D * (causal ? 0.5 : 1);
      for (const engine of ['rnagrad', 'rnagrad-composed'] as const) {
        const kind = `${engine}:${grad}`;
        await ours(ctx, engine, p, ref, flops, !compiled.has(kind));
        compiled.add(kind);
      }
      for (const engine of cfg.peers) {
        if (!ctx.peers.has(engine)) continue;
        const name = label(L, causal, grad);
        await ctx.peer({ engine, kind: 'attention', params: p as unknown as Record<string, unknown> }, (r) => {
          if (r.error || !r.ms) return errorFigure('attention', name, engine, r.error ?? 'no result', 'GFLOP/s');
          return makeFigure(ctx.ceilings, {
            group: 'attention',
            case: name,
            engine,
            ms: r.ms,
            flops,
            coldMs: r.coldMs,
            check: checkAgainst(ref, r.outputs ?? {}, grad),
            note: 'composed: matmul → mask → softmax → matmul',
          });
        });
      }
    }
  },
};
