/**
 * RiNALMo, the nucleotide encoder of Penić et al. (../shared/reference/models.md part B), with the
 * quirks of the official code reproduced exactly, because pretrained weights only reproduce with
 * them:
 * - token dropout is always on (also at inference): rows of <mask> tokens are zeroed and the
 *   embedding is scaled by 0.88 / (1 − observed <mask> ratio per sequence, pads not counted);
 * - the attention sub-layer's residual adds to the *normalised* input: x = LN(x) + attn(LN(x));
 * - the FFN is SwiGLU with a learnable scalar β and biases, (u · σ(βu)) ⊙ v → Linear;
 * - the MLM head is Linear → erf-GELU → LayerNorm → Linear.
 * Parameter names are those of the official `state_dict` (`transformer.blocks.3.mh_attn.Wqkv.weight`,
 * `transformer.blocks.3.transition.0.beta`, …), so official checkpoints map one-to-one.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { isGradEnabled } from '@rnagrad/autograd';
import { Module } from './module.js';
import { Dropout, Embedding, LayerNorm, Linear } from './layers.js';
import { MultiHeadAttention } from './attention.js';
import { BlockList } from './helm.js';

export interface RinalmoConfig {
  /** Embedding width d. */
  dim: number;
  /** Transformer blocks. */
  layers: number;
  /** Attention heads (d / heads must be even for RoPE). */
  heads: number;
  /** SwiGLU hidden width; default int(8d/3) as in the official config. */
  ffnDim?: number;
  /** Vocabulary rows (22: the official alphabet). */
  vocabSize: number;
  /** Residual dropout after attention and after the FFN (0.1). */
  dropout: number;
  /** Dropout on the attention probabilities (0.1). */
  attentionDropout: number;
  /** Dropout inside the FFN, between SwiGLU and the output Linear (0.0). */
  transitionDropout: number;
  /** Build the MLM head (`lm_mask_head.*`); fine-tuned checkpoints may carry only the encoder. */
  mlmHead: boolean;
}

const BASE = { vocabSize: 22, dropout: 0.1, attentionDropout: 0.1, transitionDropout: 0, mlmHead: true } as const;

/** The official sizes (models.md B1) plus tiny ones for tests; all with 20 heads except the tiny. */
export const RINALMO_CONFIGS = {
  nano: { ...BASE, dim: 320, layers: 6, heads: 20 },
  micro: { ...BASE, dim: 480, layers: 12, heads: 20 },
  mega: { ...BASE, dim: 640, layers: 30, heads: 20 },
  giga: { ...BASE, dim: 1280, layers: 33, heads: 20 },
  tiny: { ...BASE, dim: 40, layers: 2, heads: 4 },
  pico: { ...BASE, dim: 16, layers: 1, heads: 2 },
} as const satisfies Record<string, RinalmoConfig>;

export type RinalmoSize = keyof typeof RINALMO_CONFIGS;

/** Token ids of the official alphabet the model relies on. */
export const RINALMO_TOKENS = { cls: 0, pad: 1, eos: 2, unk: 3, mask: 4 } as const;

/** Fraction of tokens that training replaces by <mask> (15% selected × 80%): the token dropout rescale. */
const TRAIN_MASK_RATIO = 0.15 * 0.8;

/** SwiGLU width of the official config: int(2/3 · 4d). */
export function rinalmoFfnDim(dim: number): number {
  return Math.floor((8 * dim) / 3);
}

/** A config by name or overrides, validated. */
export function rinalmoConfig(
  config: RinalmoSize | (Partial<RinalmoConfig> & Pick<RinalmoConfig, 'dim' | 'layers' | 'heads'>),
): Required<RinalmoConfig> {
  const merged = typeof config === 'string' ? RINALMO_CONFIGS[config] : { ...BASE, ...config };
  if (!merged)
    throw new RangeError(
      `RiNALMo: unknown config "${String(config)}" (known: ${Object.keys(RINALMO_CONFIGS).join(', ')})`,
    );
  const full: Required<RinalmoConfig> = { ffnDim: rinalmoFfnDim(merged.dim), ...merged };
  for (const key of ['dim', 'layers', 'heads', 'ffnDim', 'vocabSize'] as const) {
    if (!Number.isInteger(full[key]) || full[key] < 1)
      throw new RangeError(`RiNALMo: ${key} must be a positive integer, got ${full[key]}`);
  }
  if (full.vocabSize <= RINALMO_TOKENS.mask)
    throw new RangeError(`RiNALMo: vocabSize ${full.vocabSize} has no room for <mask> (id 4)`);
  return full;
}

/** RiNALMo's SwiGLU: `linear` (u), `linear_gate` (v), both with bias, and the scalar `beta` (init 1). */
export class SwiGLU extends Module {
  readonly linear: Linear;
  readonly linear_gate: Linear;
  readonly beta: Tensor;
  constructor(dim: number, hidden: number) {
    super();
    this.linear = this.module('linear', new Linear(dim, hidden));
    this.linear_gate = this.module('linear_gate', new Linear(dim, hidden));
    this.beta = this.param('beta', T.ones([1]));
  }
  forward(x: Tensor): Tensor {
    return T.swiglu(this.linear.forward(x), this.linear_gate.forward(x), this.beta);
  }
}

/** `transition` = Sequential(SwiGLU, Dropout, Linear): children named 0, 1 and 2 as in PyTorch. */
class Transition extends Module {
  readonly swiglu: SwiGLU;
  readonly drop: Dropout;
  readonly out: Linear;
  constructor(dim: number, hidden: number, p: number) {
    super();
    this.swiglu = this.module('0', new SwiGLU(dim, hidden));
    this.drop = this.module('1', new Dropout(p));
    this.out = this.module('2', new Linear(hidden, dim));
  }
  forward(x: Tensor): Tensor {
    return this.out.forward(this.drop.forward(this.swiglu.forward(x)));
  }
}

export class RinalmoBlock extends Module {
  readonly mh_attn: MultiHeadAttention;
  readonly attn_layer_norm: LayerNorm;
  readonly transition: Transition;
  readonly out_layer_norm: LayerNorm;
  private readonly residualDropout: Dropout;

  constructor(cfg: Required<RinalmoConfig>) {
    super();
    this.mh_attn = this.module(
      'mh_attn',
      new MultiHeadAttention({ dim: cfg.dim, heads: cfg.heads, dropout: cfg.attentionDropout }),
    );
    this.attn_layer_norm = this.module('attn_layer_norm', new LayerNorm(cfg.dim));
    this.transition = this.module('transition', new Transition(cfg.dim, cfg.ffnDim, cfg.transitionDropout));
    this.out_layer_norm = this.module('out_layer_norm', new LayerNorm(cfg.dim));
    this.residualDropout = this.module('residual_dropout', new Dropout(cfg.dropout));
  }

  /** x [B, L, d]; isToken bool/i32 [B, L] (1 = token, 0 = pad). */
  forward(x: Tensor, isToken: Tensor): Tensor {
    const h = this.attn_layer_norm.forward(x);
    // The official quirk: the residual is the normalised h, not the block input x.
    const afterAttention = T.add(h, this.residualDropout.forward(this.mh_attn.forward(h, isToken)));
    const ffn = this.transition.forward(this.out_layer_norm.forward(afterAttention));
    return T.add(afterAttention, this.residualDropout.forward(ffn));
  }
}

class RinalmoTransformer extends Module {
  readonly blocks: BlockList<RinalmoBlock>;
  readonly final_layer_norm: LayerNorm;
  constructor(cfg: Required<RinalmoConfig>) {
    super();
    this.blocks = this.module('blocks', new BlockList(Array.from({ length: cfg.layers }, () => new RinalmoBlock(cfg))));
    this.final_layer_norm = this.module('final_layer_norm', new LayerNorm(cfg.dim));
  }
}

/** `lm_mask_head`: Linear(d, d) → erf-GELU → LayerNorm → Linear(d, vocab). */
class MaskedLmHead extends Module {
  readonly linear1: Linear;
  readonly layer_norm: LayerNorm;
  readonly linear2: Linear;
  constructor(dim: number, vocab: number) {
    super();
    this.linear1 = this.module('linear1', new Linear(dim, dim));
    this.layer_norm = this.module('layer_norm', new LayerNorm(dim));
    this.linear2 = this.module('linear2', new Linear(dim, vocab));
  }
  forward(x: Tensor): Tensor {
    return this.linear2.forward(this.layer_norm.forward(T.gelu(this.linear1.forward(x))));
  }
}

export interface RinalmoOutput {
  /** Final-LayerNorm output [B, L, d]; rows at <pad> positions are exactly 0. */
  representation: Tensor;
  /** MLM logits [B, L, vocab] (rows at <pad> positions are 0); null without an MLM head. */
  logits: Tensor | null;
}

export class RinalmoModel extends Module {
  readonly cfg: Required<RinalmoConfig>;
  readonly embedding: Embedding;
  readonly transformer: RinalmoTransformer;
  readonly lm_mask_head: MaskedLmHead | null;

  constructor(config: RinalmoSize | (Partial<RinalmoConfig> & Pick<RinalmoConfig, 'dim' | 'layers' | 'heads'>)) {
    super();
    this.cfg = rinalmoConfig(config);
    const { dim, vocabSize } = this.cfg;
    this.embedding = this.module('embedding', new Embedding(vocabSize, dim, 1));
    // nn.Embedding(padding_idx=1) starts the pad row at zero and never updates it.
    T.assign(this.embedding.weight.narrow(0, RINALMO_TOKENS.pad, 1), 0);
    this.transformer = this.module('transformer', new RinalmoTransformer(this.cfg));
    this.lm_mask_head = this.cfg.mlmHead ? this.module('lm_mask_head', new MaskedLmHead(dim, vocabSize)) : null;
  }

  /**
   * tokens: i32 [B, L] in the official alphabet (<cls> … <eos>, right-padded with <pad> = 1).
   * Token dropout is applied in training and in eval mode alike, as in the official model.
   */
  forward(tokens: Tensor): RinalmoOutput {
    if (tokens.rank !== 2 || tokens.dtype !== 'i32') {
      throw new TypeError(
        `RinalmoModel: tokens must be i32 [batch, length], got ${tokens.dtype} [${tokens.shape.join(', ')}]`,
      );
    }
    const isToken = T.ne(tokens, RINALMO_TOKENS.pad); // bool [B, L]: the attention's key padding mask
    const tokenMask = T.cast(isToken, 'f32');
    const isMask = T.cast(T.eq(tokens, RINALMO_TOKENS.mask), 'f32');
    let x = T.embedding(this.embedding.weight, tokens, { paddingIdx: RINALMO_TOKENS.pad });
    // Token dropout: <mask> rows → 0, then x · (1 − 0.12) / (1 − observed mask ratio of the sequence).
    const observed = T.div(T.sum(isMask, 1, true), T.sum(tokenMask, 1, true)); // [B, 1]
    const scale = T.div(1 - TRAIN_MASK_RATIO, T.sub(1, observed));
    x = T.mul(x, T.mul(T.sub(1, isMask), scale).unsqueeze(2));
    // Without a tape (inference), each block's intermediates are freed as soon as it is done, so
    // activation memory is one block's, not the whole stack's (giga at L = 512: ~55 MiB, not ~1.8 GiB).
    const freeEarly = !isGradEnabled();
    for (const block of this.transformer.blocks.items) {
      const next = freeEarly ? T.tidy(() => block.forward(x, isToken)) : block.forward(x, isToken);
      if (freeEarly) x.dispose();
      x = next;
    }
    const keepRows = tokenMask.unsqueeze(2);
    const representation = T.mul(this.transformer.final_layer_norm.forward(x), keepRows);
    const logits = this.lm_mask_head ? T.mul(this.lm_mask_head.forward(representation), keepRows) : null;
    return { representation, logits };
  }
}

/** Mean cross-entropy over the selected positions (targets −100 elsewhere): RiNALMo's MLM loss. */
export function rinalmoMlmLoss(logits: Tensor, targets: Tensor): Tensor {
  const vocab = logits.shape[logits.rank - 1]!;
  return T.crossEntropy(logits.reshape([-1, vocab]), targets.reshape([-1]));
}
