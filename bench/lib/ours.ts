/**
 * rnagrad's ops as the bench uses them, found at run time: matmul/linear (packages/tensor/src/
 * linalg.ts) and attention (flash and composed) are being written alongside this bench, so
 * each is looked up (from @rnagrad/tensor's index first, else its source file) and a missing one
 * turns its cases into reported errors instead of stopping the run.
 *
 * Autograd rules that the training step needs ('matmul', 'attention') are taken from
 * @rnagrad/autograd's table; if a rule is not registered there yet, the bench registers one built
 * on the op's own exported backward function and says so in the results.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { RULES, registerRule } from '@rnagrad/autograd';

type Fn = (...args: never[]) => unknown;
type Mod = Record<string, unknown>;

export interface MatmulOpts {
  bias?: Tensor;
  activation?: 'none' | 'relu' | 'gelu' | 'geluTanh';
}
export interface AttnOpts {
  causal?: boolean;
  scale?: number;
}
export interface AttnGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

export interface OurOps {
  matmul: ((a: Tensor, b: Tensor, opts?: MatmulOpts) => Tensor) | null;
  /** Flash attention: forward returning what its backward needs, and the backward. */
  flash: {
    forward(q: Tensor, k: Tensor, v: Tensor, opts: AttnOpts): { out: Tensor; saved: Tensor[] };
    backward(dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, fwd: { out: Tensor; saved: Tensor[] }, opts: AttnOpts): AttnGrads;
    /** The recorded op (autograd) for models. */
    op: (q: Tensor, k: Tensor, v: Tensor, opts: AttnOpts) => Tensor;
  } | null;
  composed: {
    forward(q: Tensor, k: Tensor, v: Tensor, opts: AttnOpts): { out: Tensor; saved: Tensor[] };
    backward(dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, fwd: { out: Tensor; saved: Tensor[] }, opts: AttnOpts): AttnGrads;
  } | null;
  /** What is missing or patched, for the results. */
  notes: string[];
  /** Frees module-level caches that hold GPU tensors (call before destroying the runtime). */
  releaseCaches(): void;
}

async function tryImport(rel: string): Promise<Mod | null> {
  try {
    return (await import(new URL(rel, import.meta.url).href)) as Mod;
  } catch (err) {
    return null;
  }
}

function pickFn(name: string, ...mods: (Mod | null)[]): Fn | null {
  for (const m of mods) if (m && typeof m[name] === 'function') return m[name] as Fn;
  return null;
}

let cached: OurOps | null = null;

export async function ourOps(): Promise<OurOps> {
  if (cached) return cached;
  const notes: string[] = [];
  const index = T as unknown as Mod;
  const linalg = await tryImport('../../packages/tensor/src/linalg.ts');
  const attn = await tryImport('../../packages/tensor/src/attention.ts');

  const matmul = pickFn('matmul', index, linalg) as OurOps['matmul'];
  const matmulBackward = pickFn('matmulBackward', index, linalg);
  if (!matmul) notes.push('matmul: packages/tensor/src/linalg.ts not available; matmul cases and the training step cannot run');
  if (matmul && !RULES.matmul) {
    if (matmulBackward) {
      registerRule('matmul', {
        save: ['inputs'],
        backward(g, ctx) {
          const [a, b, bias] = ctx.inputs as Tensor[];
          const mb = matmulBackward as unknown as (g: Tensor, a: Tensor, b: Tensor, bias: Tensor | null, attrs: unknown, needs: readonly boolean[]) => (Tensor | null)[];
          return mb(g, a!, b!, bias ?? null, ctx.attrs, ctx.needs);
        },
      });
      notes.push("autograd: no 'matmul' rule registered yet; the bench registered one that calls linalg's matmulBackward");
    } else notes.push("autograd: no 'matmul' rule and no matmulBackward; the training step cannot run");
  }

  // Flash attention: the newer API (attentionForward → { out, logsumexp }) or the recorded op.
  const attentionForward = pickFn('attentionForward', index, attn) as ((q: Tensor, k: Tensor, v: Tensor, o: AttnOpts) => { out: Tensor; logsumexp: Tensor }) | null;
  const attentionBackward = pickFn('attentionBackward', index, attn) as
    | ((dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, o: AttnOpts) => AttnGrads)
    | null;
  const attentionOp = pickFn('attention', index, attn) as ((q: Tensor, k: Tensor, v: Tensor, o: AttnOpts) => Tensor) | null;
  const releaseSaved = pickFn('releaseAttentionSaved', index, attn) as ((attrs: unknown) => void) | null;
  let flash: OurOps['flash'] = null;
  if (attentionForward && attentionBackward && attentionOp) {
    flash = {
      forward(q, k, v, opts) {
        const r = attentionForward(q, k, v, opts);
        return { out: r.out, saved: [r.logsumexp] };
      },
      backward: (dOut, q, k, v, fwd, opts) => attentionBackward(dOut, q, k, v, fwd.out, fwd.saved[0]!, opts),
      op: attentionOp,
    };
  } else notes.push('attention: packages/tensor/src/attention.ts lacks attentionForward/attentionBackward/attention; flash attention cases cannot run');
  if (attentionOp && attentionBackward && !RULES.attention) {
    registerRule('attention', {
      save: ['inputs'],
      backward(g, ctx) {
        const [q, k, v] = ctx.inputs as Tensor[];
        const attrs = ctx.attrs as { causal: boolean; scale: number; saved?: { out: Tensor; logsumexp: Tensor } | null };
        if (!attrs.saved) throw new Error('attention: nothing saved for the backward');
        const r = attentionBackward(g, q!, k!, v!, attrs.saved.out, attrs.saved.logsumexp, { causal: attrs.causal, scale: attrs.scale });
        releaseSaved?.(attrs);
        return [ctx.needs[0] ? r.dq : (r.dq.dispose(), null), ctx.needs[1] ? r.dk : (r.dk.dispose(), null), ctx.needs[2] ? r.dv : (r.dv.dispose(), null)];
      },
    });
    notes.push("autograd: no 'attention' rule registered yet; the bench registered one that calls attentionBackward");
  }

  // Composed: newer API (composedAttentionForward → { out, probs }; backward takes probs) or older.
  const cf = pickFn('composedAttentionForward', index, attn) as ((q: Tensor, k: Tensor, v: Tensor, o: AttnOpts) => { out: Tensor; probs: Tensor }) | null;
  const cb = pickFn('composedAttentionBackward', index, attn) as Fn | null;
  const c = pickFn('composedAttention', index, attn) as ((q: Tensor, k: Tensor, v: Tensor, o: AttnOpts) => Tensor) | null;
  let composed: OurOps['composed'] = null;
  if (cf && cb) {
    const back = cb as unknown as (dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, probs: Tensor, o: AttnOpts) => AttnGrads;
    composed = {
      forward(q, k, v, opts) {
        const r = cf(q, k, v, opts);
        return { out: r.out, saved: [r.probs] };
      },
      backward: (dOut, q, k, v, fwd, opts) => back(dOut, q, k, v, fwd.saved[0]!, opts),
    };
  } else if (c && cb) {
    const back = cb as unknown as (dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, o: AttnOpts) => AttnGrads;
    composed = { forward: (q, k, v, opts) => ({ out: c(q, k, v, opts), saved: [] }), backward: (dOut, q, k, v, _f, opts) => back(dOut, q, k, v, opts) };
    notes.push('composed attention: older API (backward recomputes the probabilities)');
  } else notes.push('attention: no composed attention in packages/tensor/src/attention.ts');

  const releasers = ['releaseComposedAttentionCache'].map((n) => pickFn(n, index, attn)).filter((f): f is Fn => f !== null);
  const releaseCaches = () => {
    for (const f of releasers) (f as unknown as () => void)();
  };
  cached = { matmul, flash, composed, notes, releaseCaches };
  return cached;
}
