/**
 * TensorFlow.js with its WebGPU backend (@tensorflow/tfjs-backend-webgpu; gradients from
 * @tensorflow/tfjs, whose Node bundle registers them), in Node on npm `webgpu`'s navigator.gpu.
 *
 * Sync: tfjs batches dispatches in one open compute pass and submits every 15 dispatches; to wait
 * for completion without a readback we end the open pass, submit, then await
 * `queue.onSubmittedWorkDone()` (submitting with the pass still open would drop work).
 */
import type * as TfNs from '@tensorflow/tfjs';
import { type Gpt2Config, GPT2, paramSpecs, readGpt2Data } from '../lib/gpt2.js';
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
import { once, timeIt } from '../lib/stats.js';
import type { PeerResult, PeerTask } from '../lib/types.js';
import { packageVersion } from '../lib/versions.js';
import { type Gpt2Params, type Gpt2PeerExtra, type Prepared, runPrepared } from './common.js';

type Tf = typeof TfNs;
type Tensor = TfNs.Tensor;

interface WebGpuBackendLike {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export async function createTfjs(): Promise<{
  version: string;
  run(task: PeerTask, quick: boolean): Promise<PeerResult>;
}> {
  const tf: Tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend did not initialise');
  await tf.ready();
  const version =
    `${packageVersion('@tensorflow/tfjs-backend-webgpu') ?? '?'} ` +
    `(tfjs ${packageVersion('@tensorflow/tfjs') ?? '?'})`;
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const sync = async () => {
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
    await backend.device.queue.onSubmittedWorkDone();
  };
  const f32 = (data: Float32Array, shape: number[]) => tf.tensor(data, shape, 'float32');

  /** Runs `fn` in a tidy scope, keeps its outputs until the next call, syncs. */
  function runner(fn: () => Tensor[]) {
    let outs: Tensor[] = [];
    return {
      async run() {
        tf.dispose(outs);
        outs = tf.tidy(fn);
        await sync();
      },
      outs: () => outs,
      dispose: () => tf.dispose(outs),
    };
  }

  function matmul(p: MatmulParams): Prepared {
    const { a, b } = matmulInputs(p);
    const s = matmulShapes(p);
    const A = f32(a, s.a);
    const B = f32(b, s.b);
    const r = runner(() => [tf.matMul(A, B, !!p.transA, !!p.transB)]);
    return {
      run: r.run,
      async read() {
        return { out: pick((await r.outs()[0]!.data()) as Float32Array, p.positions) };
      },
      dispose() {
        r.dispose();
        tf.dispose([A, B]);
      },
    };
  }

  function softmax(p: SoftmaxParams): Prepared {
    const X = f32(softmaxInput(p), [p.R, p.C]);
    const r = runner(() => [tf.softmax(X, -1)]);
    return {
      run: r.run,
      async read() {
        return { out: pickRows((await r.outs()[0]!.data()) as Float32Array, p.rows, p.C) };
      },
      dispose() {
        r.dispose();
        X.dispose();
      },
    };
  }

  function composedAttention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null, D: number): Tensor {
    let s = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D));
    if (bias) s = tf.add(s, bias);
    return tf.matMul(tf.softmax(s, -1), v);
  }

  function causalBias(L: number): Tensor {
    const bias = new Float32Array(L * L);
    for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) bias[i * L + j] = -1e30;
    return f32(bias, [L, L]);
  }

  function attention(p: AttentionParams): Prepared {
    const inp = attentionInputs(p);
    const shape = [p.B, p.H, p.L, p.D];
    const [Q, K, V, G] = [inp.q, inp.k, inp.v, inp.dOut].map((x) => f32(x, shape)) as [Tensor, Tensor, Tensor, Tensor];
    const bias = p.causal ? causalBias(p.L) : null;
    const attn = (q: Tensor, k: Tensor, v: Tensor) => composedAttention(q, k, v, bias, p.D);
    const r = runner(() =>
      p.grad ? tf.grads((q: Tensor, k: Tensor, v: Tensor) => attn(q, k, v))([Q, K, V], G) : [attn(Q, K, V)],
    );
    return {
      run: r.run,
      async read() {
        const names = p.grad ? ['dq', 'dk', 'dv'] : ['out'];
        const res: Record<string, number[]> = {};
        for (let i = 0; i < names.length; i++)
          res[names[i]!] = pickRows((await r.outs()[i]!.data()) as Float32Array, p.rows, p.D);
        return res;
      },
      dispose() {
        r.dispose();
        tf.dispose([Q, K, V, G]);
        bias?.dispose();
      },
    };
  }

  async function gpt2(task: PeerTask): Promise<PeerResult> {
    const prm = task.params as unknown as Gpt2Params;
    const c: Gpt2Config = GPT2;
    const { params: init, batches } = readGpt2Data(prm.dataPath);
    const specs = paramSpecs(c);
    const vars = specs.map((s, k) => tf.variable(f32(init[k]!, s.shape), true, `gpt2/${s.name}`));
    const ms = specs.map((s) => tf.variable(tf.zeros(s.shape), false));
    const vs = specs.map((s) => tf.variable(tf.zeros(s.shape), false));
    const P = (name: string) => vars[specs.findIndex((s) => s.name === name)]!;
    const { B, T, d, heads, vocab } = c;
    const Dh = d / heads;
    const bias = causalBias(T);
    const data = batches.map(
      (b) => [tf.tensor(b.tokens, [B, T], 'int32'), tf.tensor(b.targets, [B * T], 'int32')] as const,
    );

    const layerNorm = (x: Tensor, w: Tensor, b: Tensor) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, c.lnEps))), w), b);
    };
    const geluTanh = (x: Tensor) =>
      tf.mul(
        tf.mul(x, 0.5),
        tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))),
      );
    const linear = (x: Tensor, w: Tensor, b: Tensor) => tf.add(tf.matMul(tf.reshape(x, [-1, x.shape.at(-1)!]), w), b);

    let peakBytes = 0;
    const memoryBytes = () => {
      const m = tf.memory() as { numBytes: number; numBytesInGPU?: number };
      return m.numBytesInGPU ?? m.numBytes;
    };
    const lossFn = (tokens: Tensor, targets: Tensor) => {
      let x: Tensor = tf.add(tf.reshape(tf.gather(P('wte'), tf.reshape(tokens, [B * T])), [B, T, d]), P('wpe'));
      for (let l = 0; l < c.layers; l++) {
        const n = (s: string) => P(`h.${l}.${s}`);
        const qkv = tf.reshape(linear(layerNorm(x, n('ln1.w'), n('ln1.b')), n('attn.qkv.w'), n('attn.qkv.b')), [
          B,
          T,
          3 * d,
        ]);
        const [q, k, v] = tf
          .split(qkv, 3, -1)
          .map((a) => tf.transpose(tf.reshape(a, [B, T, heads, Dh]), [0, 2, 1, 3])) as [Tensor, Tensor, Tensor];
        const a = tf.reshape(tf.transpose(composedAttention(q, k, v, bias, Dh), [0, 2, 1, 3]), [B, T, d]);
        x = tf.add(x, tf.reshape(linear(a, n('attn.proj.w'), n('attn.proj.b')), [B, T, d]));
        const h = geluTanh(linear(layerNorm(x, n('ln2.w'), n('ln2.b')), n('mlp.fc.w'), n('mlp.fc.b')));
        x = tf.add(x, tf.reshape(linear(h, n('mlp.proj.w'), n('mlp.proj.b')), [B, T, d]));
      }
      x = layerNorm(x, P('lnf.w'), P('lnf.b'));
      const logits = tf.matMul(tf.reshape(x, [B * T, d]), P('wte'), false, true);
      const logp = tf.logSoftmax(logits, -1);
      const loss = tf.neg(tf.mean(tf.sum(tf.mul(logp, tf.oneHot(targets, vocab)), -1))) as TfNs.Scalar;
      // Everything the backward needs is alive here: the forward's peak.
      peakBytes = Math.max(peakBytes, memoryBytes());
      return loss;
    };

    let t = 0;
    const step = async (): Promise<number> => {
      t++;
      const [tokens, targets] = data[(t - 1) % data.length]!;
      const { value, grads } = tf.variableGrads(() => lossFn(tokens, targets), vars);
      const c1 = 1 - c.beta1 ** t;
      const c2 = 1 - c.beta2 ** t;
      tf.tidy(() => {
        vars.forEach((p, k) => {
          const g = grads[p.name]!;
          const m = tf.add(tf.mul(ms[k]!, c.beta1), tf.mul(g, 1 - c.beta1));
          const v = tf.add(tf.mul(vs[k]!, c.beta2), tf.mul(tf.square(g), 1 - c.beta2));
          const upd = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), c.eps));
          p.assign(tf.sub(tf.mul(p, 1 - c.lr * c.weightDecay), tf.mul(upd, c.lr)));
          ms[k]!.assign(m);
          vs[k]!.assign(v);
        });
      });
      tf.dispose(grads);
      await sync();
      const loss = (await value.data())[0]!;
      value.dispose();
      return loss;
    };
    const losses: number[] = [];
    const firstStepMs = await once(async () => {
      losses.push(await step());
    });
    const timed = await timeIt(
      task.id,
      async () => {
        losses.push(await step());
      },
      { warmup: 0, samples: Math.max(1, prm.checkSteps - 1) },
    );
    tf.dispose([...vars, ...ms, ...vs, bias, ...data.flat()]);
    const extra: Gpt2PeerExtra = {
      losses,
      firstStepMs,
      memoryBytes: peakBytes,
      memoryNote: 'tf.memory().numBytesInGPU at the end of the forward pass',
    };
    return { id: task.id, ms: timed.ms, coldMs: firstStepMs, extra: extra as unknown as Record<string, unknown> };
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
