/**
 * Attention ops: fused tiled ("flash") multi-head attention with key-padding and causal masks,
 * rotary position embedding (rotate-half RoPE), and the unfused composed reference (matmul →
 * masked softmax → matmul) that tests and benchmarks compare the fused kernels with.
 *
 * Shapes: q, k, v are [batch, heads, length, headDim], read in place through their strides (copied
 * only when the head dim is not unit-stride); the output is [batch, heads, length, headDim] stored
 * token-major ([batch, length, heads, headDim] memory), so merging heads back into [batch, length,
 * heads·headDim] is a view. `attentionQkv` takes a QKV projection's output [batch, length, 3, heads,
 * headDim] and returns [batch, length, heads, headDim]: no head-split copies forward, and its
 * gradient is one [batch, length, 3, heads, headDim] tensor written by the kernels. `keyPaddingMask`
 * is [batch, length] i32/bool with 1 = token, 0 = padding (masked as a key). Query rows whose keys
 * are all masked (a fully padded sequence, or causal row 0 on a padded first key) output zeros and
 * get zero gradients.
 *
 * Autograd: `attention` records 'attention' with attrs { causal, scale, dropout, saved } where
 * `saved = { out, logsumexp, keyPaddingMask }` are fresh handles that belong to the graph node when
 * autograd takes the op (the rule calls `attentionBackward(g, q, k, v, saved.out,
 * saved.logsumexp, …)` and then `releaseAttentionSaved(attrs)`); otherwise they are disposed at
 * once. `attentionQkv` records 'attentionQkv' the same way (its rule calls `attentionQkvBackward`).
 * `rope` records 'rope' with attrs { base, positionOffset }; its rule is `ropeBackward(g, attrs)`.
 */
import {
  type AttentionDropout,
  ELEMENTWISE_OPS,
  attentionBackwardCpu,
  attentionBackwardGpu,
  attentionForwardCpu,
  attentionForwardGpu,
  elementwiseCpu,
  elementwiseGpu,
  matmulCpu,
  matmulGpu,
  ropeCpu,
  ropeGpu,
} from '@rnagrad/kernels-wgsl';
import * as ops from './ops.js';
import { deviceOf, empty, launch, record, takeCounters } from './ops.js';
import { keep, tidy, type Tensor } from './tensor.js';
import { runtime } from './runtime.js';
import { softmax, softmaxBackward } from './softmax.js';
import { untracked } from './op.js';

export interface AttentionOpts {
  /** [batch, length] i32/bool: 1 = real token, 0 = padding (masked as a key). */
  keyPaddingMask?: Tensor | null;
  /** Query i attends only keys j ≤ i. */
  causal?: boolean;
  /** Multiplies q·k before the softmax (default 1/√headDim). */
  scale?: number;
  /**
   * Dropout rate on the attention probabilities (default 0; pass 0 at inference). The mask is
   * never stored: the backward regenerates it from the counter RNG.
   */
  dropout?: number;
  /** Fixes the dropout stream (default: the next counters of the global generator, see manualSeed). */
  seed?: number;
}

/** The backward's options: the forward's, with the dropout stream the forward drew. */
export interface AttentionBackwardOpts {
  keyPaddingMask?: Tensor | null;
  causal?: boolean;
  scale?: number;
  dropout?: AttentionDropout | null;
}

/** What `attention` records: the backward's inputs beyond q, k, v. */
export interface AttentionAttrs {
  causal: boolean;
  scale: number;
  dropout: AttentionDropout | null;
  saved?: { out: Tensor; logsumexp: Tensor; keyPaddingMask: Tensor | null } | null;
}

export interface RopeOpts {
  /** Frequency base (default 10000). */
  base?: number;
  /** Position of the first element along the length axis (default 0). */
  positionOffset?: number;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** `t` if contiguous, else an unrecorded contiguous copy (caller disposes copies: see `release`). */
function contiguousOf(op: string, t: Tensor): Tensor {
  t.assertAlive(op);
  if (t.isContiguous) return t;
  const out = empty(t.shape, t.dtype, t.device);
  launch(op, t.device, {
    gpu: (at, queue) => elementwiseGpu(queue, ELEMENTWISE_OPS.copy, at(out), [at(t)]),
    cpu: (at) => elementwiseCpu(ELEMENTWISE_OPS.copy, at(out), [at(t)]),
  });
  return out;
}

/** `t` when its head dim is unit-stride (the kernels read the other strides), else a contiguous copy. */
function rowsOf(op: string, t: Tensor): Tensor {
  t.assertAlive(op);
  return t.shape[3]! <= 1 || t.strides[3] === 1 ? t : contiguousOf(op, t);
}

/** An uninitialised [B, H, L, D] tensor stored as [B, L, H, D] (heads of a token side by side). */
function emptyTokenMajor(shape: readonly number[], device: Tensor['device']): Tensor {
  const [B, H, L, D] = shape as [number, number, number, number];
  const base = empty([B, L, H, D], 'f32', device);
  const out = base.view([B, H, L, D], [L * H * D, D, H * D, 1], 0);
  base.dispose();
  return out;
}

/** [B, L, H, D] of a [B, L, 3, H, D] QKV tensor (throws on another shape). */
function qkvDims(op: string, qkv: Tensor): [number, number, number, number] {
  qkv.assertAlive(op);
  if (qkv.rank !== 5 || qkv.shape[2] !== 3)
    throw new RangeError(`${op}: qkv must be [batch, length, 3, heads, headDim], got [${qkv.shape.join(', ')}]`);
  const [B, L, , H, D] = qkv.shape as [number, number, number, number, number];
  return [B, L, H, D];
}

/** q, k, v of a [B, L, 3, H, D] QKV tensor as [B, H, L, D] views (unrecorded: the caller disposes them). */
function splitQkv(op: string, qkv: Tensor): [Tensor, Tensor, Tensor] {
  const [B, L, H, D] = qkvDims(op, qkv);
  const [sB, sL, sP, sH, sD] = qkv.strides as [number, number, number, number, number];
  return [0, 1, 2].map((p) => qkv.view([B, H, L, D], [sB, sH, sL, sD], qkv.offset + p * sP)) as [
    Tensor,
    Tensor,
    Tensor,
  ];
}

/** [B, L, H, D] (any strides) as the [B, H, L, D] view the kernels take (unrecorded). */
function headsView(t: Tensor): Tensor {
  const [B, L, H, D] = t.shape as [number, number, number, number];
  return t.view([B, H, L, D], [t.strides[0]!, t.strides[2]!, t.strides[1]!, t.strides[3]!]);
}

function release(copies: Tensor[], originals: Tensor[]): void {
  copies.forEach((c, k) => c !== originals[k] && c.dispose());
}

function requireF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts)
    if (t.dtype !== 'f32') throw new TypeError(`${op}: expected f32 tensors, got ${t.dtype} [${t.shape.join(', ')}]`);
}

function checkQkv(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null | undefined,
): [number, number, number, number] {
  requireF32(op, q, k, v);
  if (q.rank !== 4)
    throw new RangeError(`${op}: q must be [batch, heads, length, headDim], got [${q.shape.join(', ')}]`);
  for (const t of [k, v]) {
    if (t.rank !== 4 || t.shape.some((s, d) => s !== q.shape[d])) {
      throw new RangeError(
        `${op}: q [${q.shape.join(', ')}], k [${k.shape.join(', ')}] and v [${v.shape.join(', ')}] must have the ` +
          `same shape`,
      );
    }
  }
  const [B, H, L, D] = q.shape as [number, number, number, number];
  if (mask) {
    if (mask.dtype === 'f32')
      throw new TypeError(`${op}: keyPaddingMask must be i32 or bool (1 = token, 0 = padding), got f32`);
    if (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== L) {
      throw new RangeError(
        `${op}: keyPaddingMask must be [batch, length] = [${B}, ${L}], got [${mask.shape.join(', ')}]`,
      );
    }
  }
  return [B, H, L, D];
}

// ---------------------------------------------------------------------------------------------
// Fused attention

/**
 * The forward without recording: the output, the per-row natural-log logsumexp of the scaled,
 * masked scores ([batch, heads, length]; −inf for rows with no key) and the dropout stream used
 * (null without dropout), which `attentionBackward` takes.
 */
export function attentionForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOpts = {},
): { out: Tensor; logsumexp: Tensor; dropout: AttentionDropout | null } {
  const op = 'attention';
  const mask = opts.keyPaddingMask ?? null;
  const device = deviceOf(op, mask ? [q, k, v, mask] : [q, k, v]);
  const [B, H, L, D] = checkQkv(op, q, k, v, mask);
  const causal = opts.causal ?? false;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const rate = opts.dropout ?? 0;
  if (!(rate >= 0 && rate < 1)) throw new RangeError(`${op}: dropout must be in [0, 1), got ${rate}`);
  // One counter per (batch·head, query, key) pair: the stream the backward regenerates.
  const dropout = rate > 0 ? { p: rate, ...takeCounters(B * H * L * L, opts.seed) } : null;
  const inputs = [q, k, v];
  const [qc, kc, vc] = inputs.map((t) => rowsOf(op, t)) as [Tensor, Tensor, Tensor];
  const out = emptyTokenMajor(q.shape, device);
  const lse = empty([B, H, L], 'f32', device);
  launch(op, device, {
    gpu: (at, queue) =>
      attentionForwardGpu(queue, {
        q: at(qc),
        k: at(kc),
        v: at(vc),
        out: at(out),
        lse: at(lse),
        keyPaddingMask: mask && at(mask),
        causal,
        scale,
        dropout,
      }),
    cpu: (at) =>
      attentionForwardCpu({
        q: at(qc),
        k: at(kc),
        v: at(vc),
        out: at(out),
        lse: at(lse),
        keyPaddingMask: mask && at(mask),
        causal,
        scale,
        dropout,
      }),
  });
  release([qc, kc, vc], inputs);
  return { out, logsumexp: lse, dropout };
}

/**
 * softmax(scale·q·kᵀ + masks)·v per batch and head, without materialising the L×L scores.
 * Records 'attention' (see the file comment for what it saves).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOpts = {}): Tensor {
  const { out, logsumexp, dropout } = attentionForward(q, k, v, opts);
  const mask = opts.keyPaddingMask ?? null;
  const saved = { out: out.detach(), logsumexp, keyPaddingMask: mask ? mask.detach() : null };
  return record(
    'attention',
    [q, k, v],
    out,
    { causal: opts.causal ?? false, scale: opts.scale ?? 1 / Math.sqrt(q.shape[3]!), dropout },
    saved,
  );
}

/** Disposes what `attention` saved for its backward (idempotent). */
export function releaseAttentionSaved(attrs: AttentionAttrs): void {
  const s = attrs.saved;
  if (!s) return;
  s.out.dispose();
  s.logsumexp.dispose();
  s.keyPaddingMask?.dispose();
  attrs.saved = null;
}

/**
 * Gradients of `attention` from the output gradient `dOut`, given the forward's output and
 * logsumexp (on the GPU they are used; the CPU reference recomputes them). Deterministic.
 */
export function attentionBackward(
  dOut: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  logsumexp: Tensor,
  opts: AttentionBackwardOpts = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const device = deviceOf('attentionBackward', [q]);
  const grads = {
    dq: empty(q.shape, 'f32', device),
    dk: empty(q.shape, 'f32', device),
    dv: empty(q.shape, 'f32', device),
  };
  attentionBackwardInto('attentionBackward', grads, dOut, q, k, v, out, logsumexp, opts);
  return grads;
}

/** `attentionBackward` writing into given [B, H, L, D] gradient tensors (any unit-head-dim strides). */
function attentionBackwardInto(
  op: string,
  { dq, dk, dv }: { dq: Tensor; dk: Tensor; dv: Tensor },
  dOut: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  logsumexp: Tensor,
  opts: AttentionBackwardOpts,
): void {
  const mask = opts.keyPaddingMask ?? null;
  const device = deviceOf(op, mask ? [dOut, q, k, v, out, logsumexp, mask] : [dOut, q, k, v, out, logsumexp]);
  const [B, H, L, D] = checkQkv(op, q, k, v, mask);
  requireF32(op, dOut, out, logsumexp);
  for (const t of [dOut, out]) {
    if (t.rank !== 4 || t.shape.some((s, d) => s !== q.shape[d]))
      throw new RangeError(`${op}: dOut and out must be [${q.shape.join(', ')}], got [${t.shape.join(', ')}]`);
  }
  if (logsumexp.size !== B * H * L)
    throw new RangeError(`${op}: logsumexp must be [${B}, ${H}, ${L}], got [${logsumexp.shape.join(', ')}]`);
  const causal = opts.causal ?? false;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const inputs = [q, k, v, out, dOut, logsumexp];
  const [qc, kc, vc, oc, gc, lc] = inputs.map((t) => (t === logsumexp ? contiguousOf(op, t) : rowsOf(op, t))) as [
    Tensor,
    Tensor,
    Tensor,
    Tensor,
    Tensor,
    Tensor,
  ];
  const dropout = opts.dropout ?? null;
  launch(op, device, {
    gpu: (at, queue) => {
      const stats = empty([2 * B * H * L], 'f32', 'gpu');
      attentionBackwardGpu(queue, {
        q: at(qc),
        k: at(kc),
        v: at(vc),
        out: at(oc),
        lse: at(lc),
        dOut: at(gc),
        dq: at(dq),
        dk: at(dk),
        dv: at(dv),
        stats: at(stats),
        keyPaddingMask: mask && at(mask),
        causal,
        scale,
        dropout,
      });
      stats.dispose();
    },
    cpu: (at) =>
      attentionBackwardCpu({
        q: at(qc),
        k: at(kc),
        v: at(vc),
        dOut: at(gc),
        dq: at(dq),
        dk: at(dk),
        dv: at(dv),
        keyPaddingMask: mask && at(mask),
        causal,
        scale,
        dropout,
      }),
  });
  release([qc, kc, vc, oc, gc, lc], inputs);
}

/**
 * Attention over a QKV projection's output qkv [batch, length, 3, heads, headDim] (any strides with
 * a unit-stride head dim): the [batch, length, heads, headDim] output, contiguous. Same options and
 * result as `attention` on the split heads, without copying them. Records 'attentionQkv'.
 */
export function attentionQkv(qkv: Tensor, opts: AttentionOpts = {}): Tensor {
  const views = splitQkv('attentionQkv', qkv);
  let result: ReturnType<typeof attentionForward>;
  try {
    result = attentionForward(...views, opts);
  } finally {
    views.forEach((t) => t.dispose());
  }
  const { out, logsumexp, dropout } = result;
  const [B, H, L, D] = out.shape as [number, number, number, number];
  const merged = out.view([B, L, H, D]);
  out.dispose();
  const mask = opts.keyPaddingMask ?? null;
  const saved = { out: merged.detach(), logsumexp, keyPaddingMask: mask ? mask.detach() : null };
  const attrs = { causal: opts.causal ?? false, scale: opts.scale ?? 1 / Math.sqrt(D), dropout };
  return record('attentionQkv', [qkv], merged, attrs, saved);
}

/**
 * The gradient of `attentionQkv`: one contiguous [batch, length, 3, heads, headDim] tensor, the
 * kernels writing dq, dk, dv straight into their parts. `dOut` and `out` are [batch, length, heads,
 * headDim].
 */
export function attentionQkvBackward(
  dOut: Tensor,
  qkv: Tensor,
  out: Tensor,
  logsumexp: Tensor,
  opts: AttentionBackwardOpts = {},
): Tensor {
  const op = 'attentionQkvBackward';
  const [B, L, H, D] = qkvDims(op, qkv);
  for (const t of [dOut, out]) {
    if (t.rank !== 4 || t.shape.some((s, d) => s !== [B, L, H, D][d]))
      throw new RangeError(`${op}: dOut and out must be [batch, length, heads, headDim], got [${t.shape.join(', ')}]`);
  }
  const dqkv = empty(qkv.shape, 'f32', deviceOf(op, [qkv]));
  const [q, k, v] = splitQkv(op, qkv);
  const [dq, dk, dv] = splitQkv(op, dqkv);
  const [g, o] = [headsView(dOut), headsView(out)];
  try {
    attentionBackwardInto(op, { dq, dk, dv }, g, q, k, v, o, logsumexp, opts);
  } catch (e) {
    dqkv.dispose();
    throw e;
  } finally {
    [q, k, v, dq, dk, dv, g, o].forEach((t) => t.dispose());
  }
  return dqkv;
}

// ---------------------------------------------------------------------------------------------
// RoPE

function ropeImpl(op: string, x: Tensor, opts: RopeOpts, inverse: boolean): Tensor {
  const device = deviceOf(op, [x]);
  requireF32(op, x);
  if (x.rank < 2) throw new RangeError(`${op}: input must be [..., length, headDim], got [${x.shape.join(', ')}]`);
  const out = empty(x.shape, 'f32', device);
  const ropts = { base: opts.base ?? 10000, positionOffset: opts.positionOffset ?? 0, inverse };
  launch(op, device, {
    gpu: (at, queue) => {
      const xc = contiguousOf(op, x);
      ropeGpu(queue, at(out), at(xc), ropts);
      release([xc], [x]);
    },
    cpu: (at) => ropeCpu(at(out), at(x), ropts),
  });
  return out;
}

/**
 * Rotary position embedding (GPT-NeoX rotate-half over the full last dim) of x [..., length,
 * headDim]: position = index along dim −2 + positionOffset. Records 'rope' with attrs
 * { base, positionOffset }.
 */
export function rope(x: Tensor, opts: RopeOpts = {}): Tensor {
  const out = ropeImpl('rope', x, opts, false);
  return record('rope', [x], out, { base: opts.base ?? 10000, positionOffset: opts.positionOffset ?? 0 });
}

/** The gradient of `rope`: the inverse rotation of `dy`. */
export function ropeBackward(dy: Tensor, attrs: RopeOpts = {}): Tensor {
  return ropeImpl('ropeBackward', dy, attrs, true);
}

// ---------------------------------------------------------------------------------------------
// The composed (unfused) reference

/**
 * a [B,H,M,K] × b [B,H,K,N] (any strides: transposes are views) → contiguous [B,H,M,N], times alpha.
 * Unrecorded; the project's matmul kernel (kernels-wgsl matmul/) and its float64 reference.
 */
function bmm(op: string, a: Tensor, b: Tensor, alpha = 1, bias: Tensor | null = null): Tensor {
  const [B, H, M] = a.shape as [number, number, number, number];
  const N = b.shape[3]!;
  const out = empty([B, H, M, N], 'f32', a.device);
  launch(op, a.device, {
    gpu: (at, queue) => matmulGpu(queue, at(out), at(a), at(b), bias ? { bias: at(bias) } : {}),
    cpu: (at) => matmulCpu(at(out), at(a), at(b), bias ? { bias: at(bias) } : {}),
  });
  if (alpha === 1) return out;
  const scaled = ops.mul(out, alpha);
  out.dispose();
  return scaled;
}

/**
 * Causal biases by (device, length): built once, like a model's registered causal-mask buffer.
 * GPU entries remember their runtime: after destroyRuntime() + init() they are rebuilt on the new device.
 */
const causalBiases = new Map<string, { bias: Tensor; owner: unknown }>();

/** Frees the composed path's cached causal biases. */
export function releaseComposedAttentionCache(): void {
  for (const { bias } of causalBiases.values()) bias.dispose();
  causalBiases.clear();
}

function currentOwner(device: 'gpu' | 'cpu'): unknown {
  return device === 'gpu' ? runtime() : null;
}

function causalBias(L: number, device: 'gpu' | 'cpu'): Tensor {
  const key = `${device}:${L}`;
  const owner = currentOwner(device);
  const cached = causalBiases.get(key);
  let bias = cached && cached.owner === owner ? cached.bias : undefined;
  if (!bias || bias.isDisposed) {
    if (causalBiases.size >= 4) releaseComposedAttentionCache();
    bias = keep(
      tidy(() => {
        const i = ops.reshape(ops.arange(0, L, 1, { device }), [L, 1]);
        const j = ops.reshape(ops.arange(0, L, 1, { device }), [1, L]);
        return ops.where(ops.le(j, i), ops.zeros([1], { device }), -1e30);
      }),
    );
    causalBiases.set(key, { bias, owner });
  }
  return bias;
}

/**
 * Probabilities P [B,H,L,L] of the composed path: softmax(scale·q·kᵀ + bias), where the bias is
 * −1e30 on padded keys and (causal) future keys; rows with no key at all are zeroed.
 */
function composedProbs(op: string, q: Tensor, k: Tensor, mask: Tensor | null, causal: boolean, scale: number): Tensor {
  const [B, , L] = q.shape as [number, number, number, number];
  return untracked(() =>
    tidy(() => {
      // The mask bias is added in the matmul's epilogue; q is scaled (L·d work), not the scores.
      let bias: Tensor | null = causal ? causalBias(L, q.device) : null;
      if (mask) {
        const pad = ops.reshape(ops.where(ops.ne(mask, 0), ops.zeros([1], { device: q.device }), -1e30), [B, 1, 1, L]);
        bias = bias ? ops.add(bias, pad) : pad;
      }
      const s = bmm(op, scale === 1 ? q : ops.mul(q, scale), ops.transpose(k, -1, -2), 1, bias);
      const p = softmax(s, -1);
      // Only a padding mask can leave a row without keys (causal row i always has key 0 otherwise).
      if (!mask) return p;
      const rowOk = ops.cast(ops.gt(ops.max(s, -1, true), -1e29), 'f32');
      return ops.mul(p, rowOk);
    }),
  );
}

/**
 * The unfused reference forward, also returning the probabilities P [B, H, L, L] its backward
 * needs (what an autograd graph over the plain ops would save). Unrecorded.
 */
export function composedAttentionForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOpts = {},
): { out: Tensor; probs: Tensor } {
  const op = 'composedAttention';
  const mask = opts.keyPaddingMask ?? null;
  deviceOf(op, mask ? [q, k, v, mask] : [q, k, v]);
  if (opts.dropout) throw new RangeError(`${op}: dropout is not supported by the composed reference (use attention)`);
  const D = checkQkv(op, q, k, v, mask)[3];
  const probs = composedProbs(op, q, k, mask, opts.causal ?? false, opts.scale ?? 1 / Math.sqrt(D));
  const out = untracked(() => bmm(op, probs, v));
  return { out, probs };
}

/**
 * The unfused reference: scores = scale·q·kᵀ (+ −1e30 on masked keys / future keys) → softmax →
 * (zero rows with no key) → ·v. Materialises [B, H, L, L]; for tests and benchmarks. Unrecorded.
 */
export function composedAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOpts = {}): Tensor {
  const { out, probs } = composedAttentionForward(q, k, v, opts);
  probs.dispose();
  return out;
}

/**
 * Gradients of the composed path through the same plain ops, from the forward's probabilities
 * (dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale·dS·K, dK = scale·dSᵀ·Q).
 */
export function composedAttentionBackward(
  dOut: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  probs: Tensor,
  opts: AttentionOpts = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const op = 'composedAttentionBackward';
  const mask = opts.keyPaddingMask ?? null;
  deviceOf(op, mask ? [dOut, q, k, v, probs, mask] : [dOut, q, k, v, probs]);
  const D = checkQkv(op, q, k, v, mask)[3];
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  return untracked(() =>
    tidy(() => {
      const dv = bmm(op, ops.transpose(probs, -1, -2), dOut);
      const dp = bmm(op, dOut, ops.transpose(v, -1, -2));
      const ds = softmaxBackward(probs, dp, -1);
      const dq = bmm(op, ds, k, scale);
      const dk = bmm(op, ops.transpose(ds, -1, -2), q, scale);
      return { dq, dk, dv };
    }),
  );
}
