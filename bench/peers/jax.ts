/**
 * jax-js (@jax-js/jax) on its WebGPU device, in Node: matmul, softmax, composed attention
 * (matmul → causal mask → softmax → matmul, under `jit`) with its gradient through `vjp`, and the
 * GPT-2-style training step (`valueAndGrad` + AdamW, each under `jit`). Sync = `blockUntilReady()`.
 *
 * jax-js moves ownership into every call: an array used twice is passed as `.ref` the first time.
 */
import type * as JaxNs from '@jax-js/jax';
import { type Gpt2Config, GPT2, numel, paramSpecs, readGpt2Data } from '../lib/gpt2.js';
import {
  type AttentionParams,
  type MatmulParams,
  type SoftmaxParams,
  attentionInputs,
  matmulInputs,
  matmulShapes,
  pick,
  pickRows,
  softmaxInput,
} from '../lib/inputs.js';
import { once } from '../lib/stats.js';
import type { PeerResult, PeerTask } from '../lib/types.js';
import { type Gpt2Params, type Gpt2PeerExtra, type Prepared, runPrepared } from './common.js';
import { timeIt } from '../lib/stats.js';
import { packageVersion } from '../lib/versions.js';

type Jax = typeof JaxNs;
type Arr = JaxNs.Array;

export async function createJax(): Promise<{
  version: string;
  run(task: PeerTask, quick: boolean): Promise<PeerResult>;
}> {
  const jax: Jax = await import('@jax-js/jax');
  const devices = await jax.init('webgpu');
  if (!devices.includes('webgpu')) throw new Error(`jax-js: no webgpu device (got ${devices.join(', ') || 'none'})`);
  jax.defaultDevice('webgpu');
  const version = packageVersion('@jax-js/jax') ?? 'unknown';
  const np = jax.numpy;

  const f32 = (data: Float32Array, shape: number[]) => np.array(data).reshape(shape);
  const sync = async (x: Arr | Arr[]) => {
    await jax.blockUntilReady(x);
  };

  function matmul(p: MatmulParams): Prepared {
    const { a, b } = matmulInputs(p);
    const s = matmulShapes(p);
    const A = f32(a, s.a);
    const B = f32(b, s.b);
    const f = jax.jit((x: Arr, y: Arr) =>
      np.matmul(p.transA ? np.swapaxes(x, -1, -2) : x, p.transB ? np.swapaxes(y, -1, -2) : y),
    );
    let out: Arr | null = null;
    return {
      async run() {
        out?.dispose();
        out = f(A.ref, B.ref);
        await sync(out);
      },
      async read() {
        const data = await out!.ref.data();
        return { out: pick(data as Float32Array, p.positions) };
      },
      dispose() {
        out?.dispose();
        A.dispose();
        B.dispose();
        f.dispose();
      },
    };
  }

  function softmax(p: SoftmaxParams): Prepared {
    const X = f32(softmaxInput(p), [p.R, p.C]);
    const f = jax.jit((x: Arr) => jax.nn.softmax(x, -1));
    let out: Arr | null = null;
    return {
      async run() {
        out?.dispose();
        out = f(X.ref);
        await sync(out);
      },
      async read() {
        return { out: pickRows((await out!.ref.data()) as Float32Array, p.rows, p.C) };
      },
      dispose() {
        out?.dispose();
        X.dispose();
        f.dispose();
      },
    };
  }

  /** scores = q·kᵀ/√D (+ −1e30 above the diagonal if causal) → softmax → ·v; q, k, v [B, H, L, D]. */
  function composedAttention(q: Arr, k: Arr, v: Arr, bias: Arr | null, D: number): Arr {
    let s = np.matmul(q, np.swapaxes(k, -1, -2)).mul(1 / Math.sqrt(D));
    if (bias) s = s.add(bias);
    return np.matmul(jax.nn.softmax(s, -1), v);
  }

  function causalBias(L: number): Arr {
    const bias = new Float32Array(L * L);
    for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) bias[i * L + j] = -1e30;
    return f32(bias, [L, L]);
  }

  function attention(p: AttentionParams): Prepared {
    const inp = attentionInputs(p);
    const shape = [p.B, p.H, p.L, p.D];
    const [Q, K, V, G] = [inp.q, inp.k, inp.v, inp.dOut].map((x) => f32(x, shape)) as [Arr, Arr, Arr, Arr];
    // The causal bias is an argument (jit takes no null arguments): zeros when not causal.
    const bias = p.causal ? causalBias(p.L) : np.zeros([p.L, p.L]);
    const fwd = jax.jit((q: Arr, k: Arr, v: Arr, b: Arr) =>
      composedAttention(q, k, v, p.causal ? b : (b.dispose(), null), p.D),
    );
    // Gradient of <out, dOut> w.r.t. q, k, v: the vjp of the attention with cotangent dOut.
    const loss = (q: Arr, k: Arr, v: Arr, g: Arr, b: Arr) =>
      composedAttention(q, k, v, p.causal ? b : (b.dispose(), null), p.D)
        .mul(g)
        .sum();
    const bwd = jax.jit((q: Arr, k: Arr, v: Arr, g: Arr, b: Arr) => {
      const [value, grads] = jax.valueAndGrad(loss, { argnums: [0, 1, 2] })(q, k, v, g, b);
      value.dispose();
      return grads;
    });
    let outs: Arr[] = [];
    return {
      async run() {
        for (const o of outs) o.dispose();
        if (p.grad) outs = bwd(Q.ref, K.ref, V.ref, G.ref, bias.ref) as Arr[];
        else outs = [fwd(Q.ref, K.ref, V.ref, bias.ref)];
        await sync(outs);
      },
      async read() {
        const names = p.grad ? ['dq', 'dk', 'dv'] : ['out'];
        const res: Record<string, number[]> = {};
        for (let i = 0; i < names.length; i++)
          res[names[i]!] = pickRows((await outs[i]!.ref.data()) as Float32Array, p.rows, p.D);
        return res;
      },
      dispose() {
        for (const o of outs) o.dispose();
        for (const a of [Q, K, V, G, bias]) a.dispose();
        fwd.dispose();
        bwd.dispose();
      },
    };
  }

  async function gpt2(task: PeerTask): Promise<PeerResult> {
    const prm = task.params as unknown as Gpt2Params;
    const c: Gpt2Config = GPT2;
    const { params: init, batches } = readGpt2Data(prm.dataPath);
    const specs = paramSpecs(c);
    const names = specs.map((s) => s.name);
    type Params = Arr[];
    let params: Params = specs.map((s, k) => f32(init[k]!, s.shape));
    let m: Params = specs.map((s) => np.zeros(s.shape));
    let v: Params = specs.map((s) => np.zeros(s.shape));
    const { B, T, d, heads, vocab } = c;
    const Dh = d / heads;
    const idx = (name: string) => names.indexOf(name);

    const layerNorm = (x: Arr, w: Arr, b: Arr) => {
      const mu = x.ref.mean(-1, { keepdims: true });
      const xc = x.sub(mu);
      const variance = np.square(xc.ref).mean(-1, { keepdims: true });
      return xc
        .div(np.sqrt(variance.add(c.lnEps)))
        .mul(w)
        .add(b);
    };

    const lossFn = (ps: Params, tokens: Arr, targets: Arr, bias: Arr) => {
      const P = (name: string) => ps[idx(name)]!;
      const wte = P('wte');
      // Embedding lookup as one-hot · wte: jax-js cannot jit the scatter that the gradient of
      // np.take needs ("routine primitive scatter input is not imm"), and a jitted step is its fast path.
      let x = np
        .matmul(jax.nn.oneHot(tokens.reshape([B * T]), vocab), wte.ref)
        .reshape([B, T, d])
        .add(P('wpe'));
      for (let l = 0; l < c.layers; l++) {
        const n = (s: string) => P(`h.${l}.${s}`);
        const h = layerNorm(x.ref, n('ln1.w'), n('ln1.b'));
        const qkv = np.matmul(h, n('attn.qkv.w')).add(n('attn.qkv.b'));
        const r = qkv.reshape([B, T, 3, heads, Dh]).transpose([2, 0, 3, 1, 4]);
        const [q, k, vv] = np.split(r, 3, 0).map((a) => a.reshape([B, heads, T, Dh])) as [Arr, Arr, Arr];
        const a = composedAttention(q, k, vv, bias.ref, Dh).transpose([0, 2, 1, 3]).reshape([B, T, d]);
        x = x.add(np.matmul(a, n('attn.proj.w')).add(n('attn.proj.b')));
        const h2 = layerNorm(x.ref, n('ln2.w'), n('ln2.b'));
        const mlp = jax.nn.gelu(np.matmul(h2, n('mlp.fc.w')).add(n('mlp.fc.b')), { approximate: true });
        x = x.add(np.matmul(mlp, n('mlp.proj.w')).add(n('mlp.proj.b')));
      }
      bias.dispose();
      x = layerNorm(x, P('lnf.w'), P('lnf.b'));
      const logits = np.matmul(x.reshape([B * T, d]), wte.transpose());
      const logp = jax.nn.logSoftmax(logits, -1);
      return logp.mul(jax.nn.oneHot(targets, vocab)).sum(-1).mean().neg();
    };

    const stepFn = jax.jit(
      (ps: Params, ms: Params, vs: Params, tokens: Arr, targets: Arr, bias: Arr, c1: Arr, c2: Arr) => {
        const [loss, grads] = jax.valueAndGrad(lossFn)(
          ps.map((p) => p.ref),
          tokens,
          targets,
          bias,
        );
        const newP: Arr[] = [];
        const newM: Arr[] = [];
        const newV: Arr[] = [];
        for (let k = 0; k < ps.length; k++) {
          const g = (grads as Arr[])[k]!;
          const mk = ms[k]!.mul(c.beta1).add(g.ref.mul(1 - c.beta1));
          const vk = vs[k]!.mul(c.beta2).add(np.square(g).mul(1 - c.beta2));
          const upd = mk.ref.div(c1.ref).div(np.sqrt(vk.ref.div(c2.ref)).add(c.eps));
          newP.push(ps[k]!.mul(1 - c.lr * c.weightDecay).sub(upd.mul(c.lr)));
          newM.push(mk);
          newV.push(vk);
        }
        c1.dispose();
        c2.dispose();
        return [loss, newP, newM, newV] as [Arr, Arr[], Arr[], Arr[]];
      },
    );

    const L = T;
    const biasData = new Float32Array(L * L);
    for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) biasData[i * L + j] = -1e30;
    const bias = f32(biasData, [L, L]);
    const tokenArrays = batches.map(
      (b) =>
        [
          np.array(b.tokens, { dtype: np.int32 }).reshape([B, T]),
          np.array(b.targets, { dtype: np.int32 }).reshape([B * T]),
        ] as [Arr, Arr],
    );
    let t = 0;
    let lastLoss: Arr | null = null;
    const step = async (): Promise<number> => {
      t++;
      const [tok, tgt] = tokenArrays[(t - 1) % tokenArrays.length]!;
      const c1 = np.array([1 - c.beta1 ** t]).reshape([]);
      const c2 = np.array([1 - c.beta2 ** t]).reshape([]);
      const [loss, p2, m2, v2] = stepFn(params, m, v, tok.ref, tgt.ref, bias.ref, c1, c2);
      params = p2;
      m = m2;
      v = v2;
      lastLoss?.dispose();
      lastLoss = loss;
      await sync(params);
      return (await loss.ref.data())[0] as number;
    };
    const losses: number[] = [];
    const firstStepMs = await once(async () => {
      losses.push(await step());
    });
    const { ms } = await timeIt(
      task.id,
      async () => {
        losses.push(await step());
      },
      { warmup: 0, samples: Math.max(1, prm.checkSteps - 1) },
    );
    for (const a of [...params, ...m, ...v, bias, ...tokenArrays.flat()]) a.dispose();
    (lastLoss as Arr | null)?.dispose();
    stepFn.dispose();
    const extra: Gpt2PeerExtra = { losses, firstStepMs, memoryNote: 'jax-js exposes no GPU memory counter' };
    void numel;
    return { id: task.id, ms, coldMs: firstStepMs, extra: extra as unknown as Record<string, unknown> };
  }

  return {
    version,
    async run(task: PeerTask, quick: boolean): Promise<PeerResult> {
      switch (task.kind) {
        case 'matmul':
          return runPrepared(task, matmul(task.params as unknown as MatmulParams), quick);
        case 'softmax':
          return runPrepared(task, softmax(task.params as unknown as SoftmaxParams), quick);
        case 'attention':
          return runPrepared(task, attention(task.params as unknown as AttentionParams), quick);
        case 'gpt2':
          return gpt2(task);
      }
    },
  };
}
