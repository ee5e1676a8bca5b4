/**
 * The GPT-2-style training-step benchmark model, as plain data shared by every engine
 * (shared/reference/peers-swiftshader.md): 2 layers, d 128, 4 heads, T 64, B 8, vocab 256,
 * pre-LN blocks, fused QKV Linear with bias, causal attention, tanh-GELU MLP ×4, final LN, LM head
 * tied to the token embedding, dropout 0, AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight
 * decay 0.01 on every parameter): 437,760 parameters.
 *
 * Linear weights are stored [in, out] (y = x·W + b, Hugging Face GPT-2's Conv1D layout) in every
 * engine. The initial weights and the batches are built once here (seeded) and handed to every
 * engine as the same Float32Array / Int32Array values.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { integers, normal, rng } from './prng.js';

export interface Gpt2Config {
  layers: number;
  d: number;
  heads: number;
  T: number;
  B: number;
  vocab: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  lnEps: number;
}

export const GPT2: Gpt2Config = {
  layers: 2,
  d: 128,
  heads: 4,
  T: 64,
  B: 8,
  vocab: 256,
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  lnEps: 1e-5,
};

export interface ParamSpec {
  name: string;
  shape: number[];
}

/** Parameters in a fixed order (the order of the flat init file and of every engine's list). */
export function paramSpecs(c: Gpt2Config = GPT2): ParamSpec[] {
  const { d, vocab, T } = c;
  const out: ParamSpec[] = [
    { name: 'wte', shape: [vocab, d] },
    { name: 'wpe', shape: [T, d] },
  ];
  for (let l = 0; l < c.layers; l++) {
    const p = `h.${l}.`;
    out.push(
      { name: `${p}ln1.w`, shape: [d] },
      { name: `${p}ln1.b`, shape: [d] },
      { name: `${p}attn.qkv.w`, shape: [d, 3 * d] },
      { name: `${p}attn.qkv.b`, shape: [3 * d] },
      { name: `${p}attn.proj.w`, shape: [d, d] },
      { name: `${p}attn.proj.b`, shape: [d] },
      { name: `${p}ln2.w`, shape: [d] },
      { name: `${p}ln2.b`, shape: [d] },
      { name: `${p}mlp.fc.w`, shape: [d, 4 * d] },
      { name: `${p}mlp.fc.b`, shape: [4 * d] },
      { name: `${p}mlp.proj.w`, shape: [4 * d, d] },
      { name: `${p}mlp.proj.b`, shape: [d] },
    );
  }
  out.push({ name: 'lnf.w', shape: [d] }, { name: 'lnf.b', shape: [d] });
  return out;
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function parameterCount(c: Gpt2Config = GPT2): number {
  return paramSpecs(c).reduce((n, p) => n + numel(p.shape), 0);
}

/**
 * GPT-2 initialisation: N(0, 0.02) for embeddings and weights, N(0, 0.02/√(2·layers)) for the two
 * residual projections; LayerNorm weight 1; biases get small N(0, 0.01) values (instead of zeros)
 * so that a dropped bias would change the losses.
 */
export function initParams(c: Gpt2Config = GPT2, seed = 1234): Float32Array[] {
  return paramSpecs(c).map((p, k) => {
    const n = numel(p.shape);
    if (p.name.endsWith('ln1.w') || p.name.endsWith('ln2.w') || p.name === 'lnf.w') return new Float32Array(n).fill(1);
    if (p.name.endsWith('ln1.b') || p.name.endsWith('ln2.b') || p.name === 'lnf.b') return new Float32Array(n);
    if (p.name.endsWith('.b')) return normal(n, seed + k, 0.01);
    const std = p.name.endsWith('proj.w') ? 0.02 / Math.sqrt(2 * c.layers) : 0.02;
    return normal(n, seed + k, std);
  });
}

export interface Batch {
  /** [B, T] token ids. */
  tokens: Int32Array;
  /** [B, T] next-token targets. */
  targets: Int32Array;
}

/**
 * `count` batches cut from a seeded Markov-chain "text" over the vocabulary (each token has a few
 * likely successors), so the loss falls visibly within a few steps.
 */
export function makeBatches(count: number, c: Gpt2Config = GPT2, seed = 99): Batch[] {
  const { vocab, B, T } = c;
  const succ = integers(vocab * 4, vocab, seed);
  const r = rng(seed + 1);
  const len = count * B * (T + 1) + 1;
  const text = new Int32Array(len);
  text[0] = 0;
  for (let i = 1; i < len; i++) {
    const u = r();
    text[i] = u < 0.9 ? succ[text[i - 1]! * 4 + Math.floor(r() * 4)]! : Math.floor(r() * vocab);
  }
  const out: Batch[] = [];
  for (let s = 0; s < count; s++) {
    const tokens = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const start = (s * B + b) * (T + 1);
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = text[start + t]!;
        targets[b * T + t] = text[start + t + 1]!;
      }
    }
    out.push({ tokens, targets });
  }
  return out;
}

/** Writes params and batches to one binary file (what the peer processes read). */
export function writeGpt2Data(path: string, params: Float32Array[], batches: Batch[]): void {
  const header = JSON.stringify({
    params: params.map((p) => p.length),
    batches: batches.length,
    tokensPerBatch: batches[0]?.tokens.length ?? 0,
  });
  const parts: Uint8Array[] = [];
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(h.length);
  parts.push(len, h);
  for (const p of params) parts.push(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  for (const b of batches) parts.push(new Uint8Array(b.tokens.buffer), new Uint8Array(b.targets.buffer));
  writeFileSync(path, Buffer.concat(parts));
}

export function readGpt2Data(path: string): { params: Float32Array[]; batches: Batch[] } {
  const buf = readFileSync(path);
  const hlen = buf.readUInt32LE(0);
  const header = JSON.parse(buf.subarray(4, 4 + hlen).toString('utf8')) as {
    params: number[];
    batches: number;
    tokensPerBatch: number;
  };
  let off = 4 + hlen;
  const take = (n: number) => {
    const bytes = buf.subarray(off, off + n * 4);
    off += n * 4;
    return new Uint8Array(bytes).buffer; // copy: aligned
  };
  const params = header.params.map((n) => new Float32Array(take(n)));
  const batches: Batch[] = [];
  for (let s = 0; s < header.batches; s++) {
    batches.push({
      tokens: new Int32Array(take(header.tokensPerBatch)),
      targets: new Int32Array(take(header.tokensPerBatch)),
    });
  }
  return { params, batches };
}

/** Losses agree when every step's |Δ| ≤ tol (default 1e-3, the 3-decimal agreement the peers showed). */
export function compareLosses(
  ours: readonly number[],
  theirs: readonly number[],
  tol = 2e-3,
): { ok: boolean; maxDiff: number; steps: number } {
  const n = Math.min(ours.length, theirs.length);
  let maxDiff = 0;
  for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - theirs[i]!));
  if (Number.isNaN(maxDiff) || n === 0) return { ok: false, maxDiff: NaN, steps: n };
  return { ok: maxDiff <= tol, maxDiff, steps: n };
}
