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
  forward(x: Tensor, keyPaddingMask: Tensor | undefined): Tensor {
    const [B, L, D] = x.shape as [number, number, number];
    const H = this.cfg.heads;
    const qkv = this.c_attn.forward(x).reshape([B, L, 3, H, D / H]).permute([2, 0, 3, 1, 4]);
    const [q, k, v] = [0, 1, 2].map((i) => qkv.narrow(0, i, 1).squeeze(0)) as [Tensor, Tensor, Tensor];
    const out = T.attention(q, k, v, { keyPaddingMask, causal: this.cfg.objective === 'clm' });
    return this.c_proj.forward(out.permute([0, 2, 1, 3]).reshape([B, L, D]));
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
  forward(x: Tensor): Tensor {
    return this.c_proj.forward(this.c_fc.forward(x, 'geluTanh'));
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
  forward(x: Tensor, keyPaddingMask: Tensor | undefined): Tensor {
    const a = T.add(x, this.drop.forward(this.attn.forward(this.ln_1.forward(x), keyPaddingMask)));
    return T.add(a, this.drop.forward(this.mlp.forward(this.ln_2.forward(a))));
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
      const table = T.tensor(sinusoidalPositions(cfg.maxPositions, cfg.dModel, 0.02 * Math.SQRT2), { shape: [cfg.maxPositions, cfg.dModel] });
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
  hiddenStates(ids: Tensor, opts: { attentionMask?: Tensor; positions?: Tensor; layer?: number } = {}): Tensor {
    if (ids.rank !== 2 || ids.dtype !== 'i32') throw new TypeError(`HelmModel: ids must be i32 [batch, length], got ${ids.dtype} [${ids.shape.join(', ')}]`);
    const L = ids.shape[1]!;
    const { layers, maxPositions } = this.cfg;
    const layer = opts.layer === undefined || opts.layer === -1 ? layers : opts.layer;
    if (!Number.isInteger(layer) || layer < 0 || layer > layers) throw new RangeError(`HelmModel: layer ${opts.layer} is out of range 0..${layers} (or −1 for the last)`);
    if (L > maxPositions) throw new RangeError(`HelmModel: length ${L} exceeds maxPositions ${maxPositions}`);
    const t = this.transformer;
    let x = T.add(t.wte.forward(ids), t.wpe.forward(opts.positions ?? this.positions(L)));
    for (const block of t.h.slice(0, layer)) x = block.forward(x, opts.attentionMask);
    return layer === layers ? t.ln_f.forward(x) : x;
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
