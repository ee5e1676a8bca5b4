/**
 * One training step of the GPT-2-style model of shared/reference/peers-swiftshader.md (lib/gpt2.ts)
 * written with rnagrad's own ops and autograd: embedding, LayerNorm, matmul with fused bias (and
 * tanh-GELU for the MLP's first layer), flash attention (causal), cross-entropy, backward, AdamW.
 *
 * The initial weights and the batches are built once (seeded Float32Arrays) and handed to every
 * engine; each engine runs the same number of steps, reading the loss after each. Step 1 is the
 * cold step (shader compiles included); the later steps are timed. Per-step losses must agree with
 * every peer's to 1e-3: equal losses prove the engines computed the same step.
 *
 * Also reported for rnagrad: the JavaScript share of a step (time from the step's start until every
 * op is encoded, over the time until the GPU has finished and the loss is read), GPU memory held by
 * live tensors (runtime().stats().liveBytes) after the forward pass and between steps, and the
 * dispatches, submits and newly created bind groups per step, and the JavaScript cost per dispatch
 * (encode time ÷ dispatches).
 */
import { join } from 'node:path';
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { requireGrad } from '@rnagrad/autograd';
import { errorFigure } from '../lib/figure.js';
import {
  GPT2,
  compareLosses,
  initParams,
  makeBatches,
  paramSpecs,
  parameterCount,
  writeGpt2Data,
} from '../lib/gpt2.js';
import { logFigure } from '../lib/measure.js';
import { startProfile } from '../lib/profile.js';
import { type Spread, fmt, rate, spread, timeIt } from '../lib/stats.js';
import { PEER_ENGINES, type BenchCase, type CaseContext, type Check, type Engine, type Figure } from '../lib/types.js';

const LOSS_TOL = 1e-3;
const c = GPT2;
const TOKENS = c.B * c.T;
const GROUP = 'train';
const CASE =
  `GPT-2-style training step (${c.layers} layers, d ${c.d}, ${c.heads} heads, T ${c.T}, B ${c.B}, ` +
  `vocab ${c.vocab}, AdamW)`;

/** Reference figure of jax-js on this machine (peers-swiftshader.md), for the ≥ 2× target. */
export const JAX_REFERENCE_TOKENS_PER_S = 446;

export function trainFigure(
  engine: Engine,
  ms: Spread,
  extra: Record<string, unknown>,
  coldMs: number | undefined,
  check?: Check,
  note?: string,
): Figure {
  return {
    group: GROUP,
    case: CASE,
    engine,
    ms,
    unit: 'tokens/s',
    value: rate(ms, TOKENS * 1000),
    coldMs,
    check,
    note,
    extra,
  };
}

function lossCheck(ours: number[], theirs: number[], against: string): Check {
  const r = compareLosses(ours, theirs, LOSS_TOL);
  return {
    ok: r.ok,
    maxErr: r.maxDiff / LOSS_TOL,
    tol: 1,
    count: r.steps,
    against,
    note:
      `per-step losses over ${r.steps} steps, max |Δ| ${r.maxDiff.toExponential(2)} (tolerance ${LOSS_TOL})` +
      `${
        r.ok
          ? ''
          : ` — LOSS MISMATCH: ours [${ours.map((x) => x.toFixed(4)).join(', ')}] vs ` +
            `[${theirs.map((x) => x.toFixed(4)).join(', ')}]`
      }`,
  };
}

interface Model {
  params: Tensor[];
  m: Tensor[];
  v: Tensor[];
  data: { tokens: Tensor; targets: Tensor }[];
  dispose(): void;
}

export function buildModel(
  device: 'gpu' | 'cpu',
  init: Float32Array[],
  batches: ReturnType<typeof makeBatches>,
): Model {
  const specs = paramSpecs(c);
  const params = specs.map((s, k) => requireGrad(T.tensor(init[k]!, { shape: s.shape, device })));
  const m = specs.map((s) => T.zeros(s.shape, { device }));
  const v = specs.map((s) => T.zeros(s.shape, { device }));
  const data = batches.map((b) => ({
    tokens: T.tensor(b.tokens, { shape: [c.B, c.T], dtype: 'i32', device }),
    targets: T.tensor(b.targets, { dtype: 'i32', device }),
  }));
  return {
    params,
    m,
    v,
    data,
    dispose() {
      for (const t of [...params, ...m, ...v, ...data.flatMap((d) => [d.tokens, d.targets])]) t.dispose();
    },
  };
}

type Matmul = (a: Tensor, b: Tensor, opts?: { bias?: Tensor; activation?: 'geluTanh' }) => Tensor;
/** Attention over the fused QKV projection [B, L, 3, heads, Dh] → [B, L, heads, Dh]. */
type Attention = (qkv: Tensor, opts: { causal: boolean }) => Tensor;

/**
 * The model's loss for one batch (recorded for autograd). Activations are kept as [B·T, d] rows
 * so every Linear is one 2-D matmul (its weight gradient one matmul too, no batched partials).
 */
function forward(
  model: Model,
  tokens: Tensor,
  targets: Tensor,
  matmul: Matmul,
  attention: Attention,
  onActivations?: () => void,
): Tensor {
  const names = paramSpecs(c).map((s) => s.name);
  const P = (name: string) => model.params[names.indexOf(name)]!;
  const { B, T: L, d, heads, vocab } = c;
  const Dh = d / heads;
  const rows = B * L;
  let x = T.reshape(T.add(T.embedding(P('wte'), tokens), P('wpe')), [rows, d]);
  // Pre-LN blocks; each residual add and the LayerNorm after it run as one kernel (addLayerNorm).
  let normed = T.layerNorm(x, P('h.0.ln1.w'), P('h.0.ln1.b'), c.lnEps);
  for (let l = 0; l < c.layers; l++) {
    const n = (s: string) => P(`h.${l}.${s}`);
    const qkv = matmul(normed, n('attn.qkv.w'), { bias: n('attn.qkv.b') });
    // qkv's last axis is (q|k|v, head, headDim): the attention kernels read the heads in place.
    const a = T.reshape(attention(T.reshape(qkv, [B, L, 3, heads, Dh]), { causal: true }), [rows, d]);
    const attnOut = matmul(a, n('attn.proj.w'), { bias: n('attn.proj.b') });
    ({ sum: x, y: normed } = T.addLayerNorm(x, attnOut, n('ln2.w'), n('ln2.b'), c.lnEps));
    const h = matmul(normed, n('mlp.fc.w'), { bias: n('mlp.fc.b'), activation: 'geluTanh' });
    const next = l + 1 < c.layers ? `h.${l + 1}.ln1` : 'lnf';
    const mlpOut = matmul(h, n('mlp.proj.w'), { bias: n('mlp.proj.b') });
    ({ sum: x, y: normed } = T.addLayerNorm(x, mlpOut, P(`${next}.w`), P(`${next}.b`), c.lnEps));
  }
  const logits = matmul(normed, T.transpose(P('wte'), 0, 1));
  const loss = T.crossEntropy(logits, targets);
  void vocab;
  onActivations?.();
  return loss;
}

/** Encodes one full step (forward, backward, AdamW) and returns the loss tensor (not yet read). */
export function encodeStep(
  model: Model,
  step: number,
  matmul: Matmul,
  attention: Attention,
  onActivations?: () => void,
): Tensor {
  const batch = model.data[(step - 1) % model.data.length]!;
  const loss = T.tidy(() => {
    const l = forward(model, batch.tokens, batch.targets, matmul, attention, onActivations);
    l.backward();
    return l;
  });
  T.adamwStep(
    model.params,
    model.params.map((p) => p.grad!),
    model.m,
    model.v,
    { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay, step },
  );
  for (const p of model.params) {
    p.grad?.dispose();
    p.grad = null;
  }
  return loss;
}

/** 'matmul:direct:4x4:…' → 'matmul' (+ the config kind), 'elementwise:add:f32' → 'elementwise:add'. */
function kernelFamily(key: string): string {
  const parts = key.split(':');
  if (parts[0] === 'elementwise' || parts[0] === 'reduce' || parts[0] === 'matmul') return parts.slice(0, 2).join(':');
  return parts[0]!;
}

async function runOurs(
  ctx: CaseContext,
  init: Float32Array[],
  batches: ReturnType<typeof makeBatches>,
  steps: number,
): Promise<{ losses: number[]; figure: Figure; samples: number[] } | null> {
  const matmul: Matmul = T.matmul;
  const attention: Attention = T.attentionQkv;
  let model: Model | null = null;
  try {
    if (!ctx.quick) await ctx.fresh();
    model = buildModel('gpu', init, batches);
    const rt = T.runtime();
    await rt.sync();
    const losses: number[] = [];
    const encodeMs: number[] = [];
    const shares: number[] = [];
    let liveAfterForward = 0;
    let step = 0;
    const before = rt.stats();
    const perStep = { dispatches: 0, submits: 0, bindGroups: 0 };
    const one = async () => {
      step++;
      const s0 = rt.stats();
      const t0 = performance.now();
      const loss = encodeStep(model!, step, matmul, attention, () => {
        liveAfterForward = Math.max(liveAfterForward, rt.stats().liveBytes);
      });
      const t1 = performance.now();
      await rt.sync();
      losses.push(await loss.item());
      const t2 = performance.now();
      loss.dispose();
      const s1 = rt.stats();
      perStep.dispatches = s1.dispatches - s0.dispatches;
      perStep.submits = s1.submits - s0.submits;
      perStep.bindGroups = s1.bindGroupsCreated - s0.bindGroupsCreated;
      encodeMs.push(t1 - t0);
      shares.push((t1 - t0) / (t2 - t0));
    };
    const t0 = performance.now();
    // Cold start as the trainer does it: the step traced and its pipelines compiled ahead, then run.
    const ahead = await T.compileAhead(() => void encodeStep(model!, 1, matmul, attention));
    await one();
    const coldMs = performance.now() - t0;
    const { ms, samples } = await timeIt('train rnagrad', one, { warmup: 0, samples: Math.max(1, steps - 1) });
    // One more step with a timestamp query around every dispatch: where the GPU time goes.
    let profile: Record<string, unknown> | undefined;
    const prof = startProfile(rt);
    if (prof) {
      const s0 = step;
      const t = performance.now();
      step++;
      const loss = encodeStep(model, step, matmul, attention);
      const r = await prof.stop();
      const wall = performance.now() - t;
      loss.dispose();
      void s0;
      const groups = new Map<string, number>();
      for (const k of r.kernels) groups.set(kernelFamily(k.key), (groups.get(kernelFamily(k.key)) ?? 0) + k.ms);
      profile = {
        gpuMs: r.totalMs,
        wallMs: wall,
        dispatches: r.dispatches,
        families: [...groups].sort((a, b) => b[1] - a[1]).map(([family, ms]) => ({ family, ms })),
        kernels: r.kernels.slice(0, 25),
      };
      ctx.log(
        `    profiled step (one pass per dispatch): GPU ${fmt(r.totalMs)} ms in ${r.dispatches} dispatches; by ` +
          `kernel family: ${[...groups]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 8)
            .map(([f, m]) => `${f} ${fmt(m)} ms`)
            .join(', ')}`,
      );
    }
    const all = spread([...encodeMs.slice(1)]);
    const share = spread(shares.slice(1));
    const stats = rt.stats();
    const extra = {
      losses,
      msPerStep: ms,
      encodeMs: all,
      jsShare: share,
      liveBytesAfterForward: liveAfterForward,
      liveBytesBetweenSteps: stats.liveBytes,
      pooledBytes: stats.pooledBytes,
      // JavaScript per dispatch: the encode time of a warm step over the GPU dispatches it encodes.
      usPerDispatch: perStep.dispatches > 0 ? (1000 * all.median) / perStep.dispatches : undefined,
      dispatchesPerStep: perStep.dispatches,
      submitsPerStep: perStep.submits,
      bindGroupsPerStep: perStep.bindGroups,
      pipelines: stats.pipelinesCreated,
      parameters: parameterCount(c),
      tokensPerStep: TOKENS,
      firstStepMs: coldMs,
      compileAheadMs: ahead.ms,
      allocationsDuringRun: stats.allocations - before.allocations,
      profile,
    };
    const fig = trainFigure('rnagrad', ms, extra, ctx.quick ? undefined : coldMs, undefined, 'rnagrad ops + autograd');
    ctx.add(fig);
    logFigure(ctx, fig);
    ctx.log(
      `    ${fmt(ms.median)} ms/step; JS share of a step ${(100 * share.median).toFixed(0)}% ` +
        `(encode ${fmt(all.median)} ms = ${fmt(extra.usPerDispatch)} µs per dispatch); live GPU memory ` +
        `${(liveAfterForward / 2 ** 20).toFixed(1)} MiB after forward, ` +
        `${(stats.liveBytes / 2 ** 20).toFixed(1)} MiB between steps; ${perStep.dispatches} dispatches, ` +
        `${perStep.submits} submits, ${perStep.bindGroups} new bind groups per step`,
    );
    ctx.log(`    losses: ${losses.map((l) => l.toFixed(4)).join(', ')}`);
    return { losses, figure: fig, samples };
  } catch (err) {
    const f = errorFigure(GROUP, CASE, 'rnagrad', err, 'tokens/s');
    ctx.add(f);
    logFigure(ctx, f);
    return null;
  } finally {
    try {
      model?.dispose();
    } catch {
      // runtime gone
    }
  }
}

/**
 * rnagrad's steps again after the peers ran (same weights and batches, from step 1: one untimed
 * step, then the timed ones), pooled with the first pass's samples into the figure.
 */
async function secondPass(
  ctx: CaseContext,
  init: Float32Array[],
  batches: ReturnType<typeof makeBatches>,
  steps: number,
  first: { losses: number[]; figure: Figure; samples: number[] },
): Promise<void> {
  if (!T.hasRuntime()) await T.init({ quiet: true });
  const model = buildModel('gpu', init, batches);
  try {
    const rt = T.runtime();
    const losses: number[] = [];
    let step = 0;
    const one = async () => {
      step++;
      const loss = encodeStep(model, step, T.matmul, T.attentionQkv);
      await rt.sync();
      losses.push(await loss.item());
      loss.dispose();
    };
    await one();
    const { samples } = await timeIt('train rnagrad (after peers)', one, {
      warmup: 0,
      samples: Math.max(1, steps - 1),
    });
    const all = [...first.samples, ...samples];
    const ms = spread(all);
    const f = first.figure;
    f.ms = ms;
    f.value = rate(ms, TOKENS * 1000);
    f.extra = {
      ...f.extra,
      msPerStep: ms,
      msPerStepBeforePeers: spread(first.samples),
      msPerStepAfterPeers: spread(samples),
      lossesAfterPeers: losses,
    };
    const same = losses.every((l, i) => l === first.losses[i]);
    ctx.log(
      `  rnagrad training step after the peers: ${fmt(spread(samples).median)} ms/step (before: ` +
        `${fmt(spread(first.samples).median)}); pooled ${fmt(ms.median)} ms/step = ${fmt(f.value.median)} tokens/s; ` +
        `losses ${
          same
            ? 'identical to the first pass'
            : `differ from the first pass: ${losses.map((l) => l.toFixed(5)).join(', ')}`
        }`,
    );
  } finally {
    model.dispose();
  }
}

/** The same steps on the CPU oracle (float64): losses for the check, and the time for scale. */
async function runCpu(
  ctx: CaseContext,
  init: Float32Array[],
  batches: ReturnType<typeof makeBatches>,
  steps: number,
  ours: number[] | null,
): Promise<Check | undefined> {
  const model = buildModel('cpu', init, batches);
  try {
    const losses: number[] = [];
    const times: number[] = [];
    for (let s = 1; s <= steps; s++) {
      const t0 = performance.now();
      const loss = encodeStep(model, s, T.matmul, T.attentionQkv);
      losses.push(await loss.item());
      loss.dispose();
      times.push(performance.now() - t0);
    }
    const check = ours ? lossCheck(ours.slice(0, steps), losses, 'rnagrad CPU oracle (float64)') : undefined;
    const fig = trainFigure(
      'rnagrad-cpu',
      spread(times),
      { losses },
      undefined,
      undefined,
      `float64 CPU oracle, ${steps} step(s); its losses check rnagrad's GPU step`,
    );
    ctx.add(fig);
    logFigure(ctx, fig);
    if (check) ctx.log(`    rnagrad GPU vs CPU oracle losses: ${check.ok ? 'agree' : 'DISAGREE'} — ${check.note}`);
    return check;
  } catch (err) {
    const f = errorFigure(GROUP, CASE, 'rnagrad-cpu', err, 'tokens/s');
    ctx.add(f);
    logFigure(ctx, f);
    return undefined;
  } finally {
    model.dispose();
  }
}

export const trainCase: BenchCase = {
  name: 'train',
  title: 'Training step (GPT-2-style)',
  async run(ctx) {
    const steps = ctx.quick ? 3 : 6;
    const init = initParams(c);
    const batches = makeBatches(8, c);
    const dataPath = join(ctx.tmpDir, 'gpt2-init.bin');
    writeGpt2Data(dataPath, init, batches);
    ctx.log(
      `  ${parameterCount(c).toLocaleString('en-US')} parameters, ${TOKENS} tokens per step, ${steps} steps per ` +
        `engine (step 1 cold, the rest timed)`,
    );
    const run = await runOurs(ctx, init, batches, steps);
    const ours = run?.losses ?? null;
    // The float64 CPU oracle takes ~10 s a step here: full runs only.
    const cpuCheck = ctx.quick ? undefined : await runCpu(ctx, init, batches, 2, ours);
    if (run && cpuCheck) run.figure.check = cpuCheck;
    for (const engine of PEER_ENGINES) {
      if (!ctx.peers.has(engine)) continue;
      // tfjs needs ~7–25 s a step here: quick runs give it 2 steps.
      const peerSteps = ctx.quick && engine === 'tfjs-webgpu' ? 2 : steps;
      await ctx.peer(
        {
          engine,
          kind: 'gpt2',
          params: { dataPath, checkSteps: peerSteps },
          timing: { warmup: 0, samples: peerSteps - 1 },
        },
        (r) => {
          if (r.error || !r.ms) return errorFigure(GROUP, CASE, engine, r.error ?? 'no result', 'tokens/s');
          const extra = r.extra ?? {};
          const theirs = (extra.losses as number[] | undefined) ?? [];
          const check = ours ? lossCheck(ours, theirs, `rnagrad's per-step losses`) : undefined;
          if (check && !check.ok) ctx.log(`  !!! ${engine}: ${check.note}`);
          return trainFigure(engine, r.ms, extra, r.coldMs, check);
        },
      );
    }
    // rnagrad again, after the peers: the samples are pooled, so load that changed while the peers
    // ran hits every engine alike.
    if (run && ctx.peers.size > 0) {
      try {
        await secondPass(ctx, init, batches, steps, run);
      } catch (err) {
        ctx.log(`  rnagrad second pass failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  },
};
