/**
 * HELM's codon language model: a GPT-2 stack (pre-LN blocks, fused QKV, tanh-GELU MLP, final LN,
 * untied LM head) over HELM's 70 codon tokens, trained as a masked LM (bidirectional) or a causal
 * LM. Parameter names follow Hugging Face GPT-2 (`transformer.h.0.attn.c_attn.weight`, Conv1D
 * weights stored [in, out]) plus `lm_head.weight` [vocab, d], as in HELM's fork.
 * Facts: ../shared/reference/models.md A4–A5.
 *
 * One deliberate fix over the reference code: padding is masked with the real `<pad>` id of the
 * HXE vocabulary (4); HELM's code masked id 1, so its models attended to padding.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { Module } from './module.js';
import { Conv1D, Dropout, Embedding, LayerNorm, Linear } from './layers.js';

export interface HelmConfig {
  vocabSize: number;
  dModel: number;
  layers: number;
  heads: number;
  /** MLP width (HELM: 4·d). */
  dFF: number;
  maxPositions: number;
  /** 'mlm': bidirectional attention; 'clm': causal. */
  objective: 'mlm' | 'clm';
  dropout: number;
  layerNormEps: number;
  /**
   * Initial position embeddings: 'normal' (GPT-2's random init) or 'sinusoidal' (the Transformer's
   * sin/cos table, scaled to the token embeddings' size). Still learned either way; the sinusoidal start
   * makes relative offsets linear in every position at once, so attention to neighbouring codons is
   * learnable within a short run where 1,026 random vectors are not (measured: experiments/helm-hxe-vs-xe).
   */
  positionInit: 'normal' | 'sinusoidal';
}

/**
 * Receives named intermediate tensors of a forward pass, for teaching views ("look inside"). With a
 * recorder the attention also computes its probabilities explicitly (the fused kernel never holds
 * the L×L matrix); without one the forward is unchanged.
 */
export type Recorder = (name: string, value: Tensor) => void;

/**
 * softmax(scale·q·kᵀ) with padded keys (and, causal, later keys) masked: [B, H, L, L], the matrix
 * the fused attention kernel applies to v without storing it.
 */
export function attentionProbabilities(
  q: Tensor,
  k: Tensor,
  opts: { keyPaddingMask?: Tensor; causal: boolean },
): Tensor {
  const [B, , L, hd] = q.shape as [number, number, number, number];
  let scores = T.mul(T.matmul(q, k.transpose(-2, -1)), 1 / Math.sqrt(hd));
  // A large finite negative, not −∞, so a fully masked row (a padded query) stays finite.
  const blocked = -1e9;
  if (opts.keyPaddingMask) scores = T.where(T.eq(opts.keyPaddingMask, 0).reshape([B, 1, 1, L]), blocked, scores);
  if (opts.causal) {
    const later = new Int32Array(L * L).map((_, i) => Number(i % L > Math.floor(i / L)));
    scores = T.where(T.ne(T.tensor(later, { shape: [L, L], dtype: 'i32' }), 0), blocked, scores);
  }
  return T.softmax(scores, -1);
}

export const HELM_DEFAULTS: HelmConfig = {
  vocabSize: 70,
  dModel: 640,
  layers: 10,
  heads: 4,
  dFF: 2560,
  maxPositions: 2048,
  objective: 'mlm',
  dropout: 0,
  layerNormEps: 1e-5,
  positionInit: 'normal',
};

/** sin/cos position table [positions, d] (Vaswani et al.), each entry scaled by `scale`. */
export function sinusoidalPositions(positions: number, d: number, scale: number): Float32Array {
  const out = new Float32Array(positions * d);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < d; i++) {
      const angle = p / 10000 ** ((2 * Math.floor(i / 2)) / d);
      out[p * d + i] = scale * (i % 2 === 0 ? Math.sin(angle) : Math.cos(angle));
    }
  }
  return out;
}

class Attention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  constructor(readonly cfg: HelmConfig) {
    super();
    this.c_attn = this.module('c_attn', new Conv1D(cfg.dModel, 3 * cfg.dModel));
    // GPT-2 scales residual projections by 1/√(2·layers) at init.
    this.c_proj = this.module('c_proj', new Conv1D(cfg.dModel, cfg.dModel, 0.02 / Math.sqrt(2 * cfg.layers)));
  }
  forward(x: Tensor, keyPaddingMask: Tensor | undefined, record?: Recorder): Tensor {
    const [B, L, D] = x.shape as [number, number, number];
    const H = this.cfg.heads;
    const causal = this.cfg.objective === 'clm';
    const fused = this.c_attn.forward(x);
    const qkv5 = fused.reshape([B, L, 3, H, D / H]);
    // The attention kernels read the heads in place and write [B, L, H, D/H]: no copies (backward
    // too). Inspection records q, k, v and the per-head output, so it splits the heads explicitly.
    if (!record) return this.c_proj.forward(T.attentionQkv(qkv5, { keyPaddingMask, causal }).reshape([B, L, D]));
    const qkv = qkv5.permute([2, 0, 3, 1, 4]);
    const [q, k, v] = [0, 1, 2].map((i) => qkv.narrow(0, i, 1).squeeze(0)) as [Tensor, Tensor, Tensor];
    const out = T.attention(q, k, v, { keyPaddingMask, causal });
    const merged = out.permute([0, 2, 1, 3]).reshape([B, L, D]);
    const projected = this.c_proj.forward(merged);
    for (const [name, t] of [
      ['c_attn', fused],
      ['q', q],
      ['k', k],
      ['v', v],
    ] as const)
      record(name, t);
    record('probs', attentionProbabilities(q, k, { keyPaddingMask, causal }));
    for (const [name, t] of [
      ['heads', out],
      ['merged', merged],
      ['c_proj', projected],
    ] as const)
      record(name, t);
    return projected;
  }
}

class Mlp extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  constructor(cfg: HelmConfig) {
    super();
    this.c_fc = this.module('c_fc', new Conv1D(cfg.dModel, cfg.dFF));
    this.c_proj = this.module('c_proj', new Conv1D(cfg.dFF, cfg.dModel, 0.02 / Math.sqrt(2 * cfg.layers)));
  }
  forward(x: Tensor, record?: Recorder): Tensor {
    const hidden = this.c_fc.forward(x, 'geluTanh');
    const out = this.c_proj.forward(hidden);
    record?.('c_fc', hidden);
    record?.('c_proj', out);
    return out;
  }
}

class Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: Mlp;
  readonly drop: Dropout;
  constructor(cfg: HelmConfig) {
    super();
    this.ln_1 = this.module('ln_1', new LayerNorm(cfg.dModel, { eps: cfg.layerNormEps }));
    this.attn = this.module('attn', new Attention(cfg));
    this.ln_2 = this.module('ln_2', new LayerNorm(cfg.dModel, { eps: cfg.layerNormEps }));
    this.mlp = this.module('mlp', new Mlp(cfg));
    this.drop = this.module('drop', new Dropout(cfg.dropout));
  }
  forward(x: Tensor, keyPaddingMask: Tensor | undefined, record?: Recorder): Tensor {
    const under = (prefix: string) => record && ((name: string, t: Tensor) => record(`${prefix}.${name}`, t));
    const normed = this.ln_1.forward(x);
    record?.('ln_1', normed);
    const { sum: a, y: normed2 } = this.ln_2.addForward(
      x,
      this.drop.forward(this.attn.forward(normed, keyPaddingMask, under('attn'))),
    );
    record?.('residual_1', a);
    record?.('ln_2', normed2);
    const out = T.add(a, this.drop.forward(this.mlp.forward(normed2, under('mlp'))));
    record?.('residual_2', out);
    return out;
  }
}

class Transformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: Block[];
  readonly ln_f: LayerNorm;
  constructor(cfg: HelmConfig) {
    super();
    this.wte = this.module('wte', new Embedding(cfg.vocabSize, cfg.dModel));
    this.wpe = this.module('wpe', new Embedding(cfg.maxPositions, cfg.dModel, 0.01));
    if (cfg.positionInit === 'sinusoidal') {
      // RMS of a sin/cos entry is 1/√2: scaled to the token embeddings' std (0.02).
      const table = T.tensor(sinusoidalPositions(cfg.maxPositions, cfg.dModel, 0.02 * Math.SQRT2), {
        shape: [cfg.maxPositions, cfg.dModel],
      });
      T.assign(this.wpe.weight, table);
      table.dispose();
    } else if (cfg.positionInit !== 'normal') {
      throw new RangeError(`HelmModel: positionInit must be 'normal' or 'sinusoidal', got ${String(cfg.positionInit)}`);
    }
    this.h = this.module('h', new BlockList(Array.from({ length: cfg.layers }, () => new Block(cfg)))).items;
    this.ln_f = this.module('ln_f', new LayerNorm(cfg.dModel, { eps: cfg.layerNormEps }));
  }
}

/** A list of modules named 0, 1, 2, … like PyTorch's ModuleList. */
export class BlockList<M extends Module> extends Module {
  constructor(readonly items: M[]) {
    super();
    items.forEach((m, i) => this.module(String(i), m));
  }
}

export class HelmModel extends Module {
  readonly cfg: HelmConfig;
  readonly transformer: Transformer;
  readonly lm_head: Linear;
  private positionCache = new Map<number, Tensor>();

  constructor(config: Partial<HelmConfig> = {}) {
    super();
    this.cfg = { ...HELM_DEFAULTS, ...config };
    const { dModel, heads } = this.cfg;
    if (dModel % heads !== 0) throw new RangeError(`HelmModel: dModel ${dModel} is not divisible by heads ${heads}`);
    this.transformer = this.module('transformer', new Transformer(this.cfg));
    this.lm_head = this.module('lm_head', new Linear(dModel, this.cfg.vocabSize, { bias: false, std: 0.02 }));
  }

  /**
   * ids: i32 [batch, length]; attentionMask: 1 for real tokens (pads are masked as keys);
   * positions: i32 [batch, length] position ids (default 0..length−1, a window keeps its offset).
   * Returns logits [batch, length, vocab].
   */
  forward(ids: Tensor, attentionMask?: Tensor, positions?: Tensor): Tensor {
    return this.lm_head.forward(this.hiddenStates(ids, { attentionMask, positions }));
  }

  /**
   * Hidden states [batch, length, dModel] after `layer` blocks: 0 is the embedding sum, 1..layers
   * a block's output; the default (−1 or `layers`) is the final one after `ln_f`, which the LM head reads.
   */
  hiddenStates(
    ids: Tensor,
    opts: { attentionMask?: Tensor; positions?: Tensor; layer?: number; record?: Recorder } = {},
  ): Tensor {
    if (ids.rank !== 2 || ids.dtype !== 'i32')
      throw new TypeError(`HelmModel: ids must be i32 [batch, length], got ${ids.dtype} [${ids.shape.join(', ')}]`);
    const L = ids.shape[1]!;
    const { layers, maxPositions } = this.cfg;
    const layer = opts.layer === undefined || opts.layer === -1 ? layers : opts.layer;
    if (!Number.isInteger(layer) || layer < 0 || layer > layers)
      throw new RangeError(`HelmModel: layer ${opts.layer} is out of range 0..${layers} (or −1 for the last)`);
    if (L > maxPositions) throw new RangeError(`HelmModel: length ${L} exceeds maxPositions ${maxPositions}`);
    const t = this.transformer;
    const { record } = opts;
    const tokens = t.wte.forward(ids);
    const places = t.wpe.forward(opts.positions ?? this.positions(L));
    let x = T.add(tokens, places);
    record?.('transformer.wte', tokens);
    record?.('transformer.wpe', places);
    record?.('transformer.embeddings', x);
    t.h.slice(0, layer).forEach((block, i) => {
      x = block.forward(x, opts.attentionMask, record && ((name, v) => record(`transformer.h.${i}.${name}`, v)));
    });
    if (layer !== layers) return x;
    const final = t.ln_f.forward(x);
    record?.('transformer.ln_f', final);
    return final;
  }

  private positions(length: number): Tensor {
    let p = this.positionCache.get(length);
    if (!p) {
      p = T.keep(T.arange(length));
      this.positionCache.set(length, p);
    }
    return p;
  }

  override dispose(): void {
    for (const p of this.positionCache.values()) p.dispose();
    this.positionCache.clear();
    super.dispose();
  }
}
