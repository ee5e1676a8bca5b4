/**
 * Multi-head self-attention in RiNALMo's layout (../shared/reference/models.md B2, B5): one fused
 * bias-free projection `Wqkv.weight` [3d, d] (PyTorch Linear layout [out, in]; rows q | k | v, each
 * head-major H × headDim), rotate-half RoPE on q and k over the full head dim (base 10000,
 * positions 0..L−1), softmax(q·kᵀ/√headDim) with padded keys masked, then `out_proj.weight` [d, d].
 *
 * Parameter names are exactly those under `transformer.blocks.{i}.mh_attn.` in an official RiNALMo
 * state dict, so a block's attention loads with `loadStateDict` after stripping that prefix. The
 * checkpoint may also hold `mh_attn.rotary_emb.inv_freq` [headDim/2]: it is a buffer derived from
 * the base and head dim, not a parameter, and is recomputed by the RoPE kernel — loaders must drop
 * it before the (strict) load, as MultiMolecule's converter does.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { Module } from './module.js';
import { Linear } from './layers.js';

export interface MultiHeadAttentionOptions {
  /** Model width d (input and output features). */
  dim: number;
  /** Number of heads H; d must be divisible by H (headDim = d / H). */
  heads: number;
  /** Rotate-half RoPE on q and k (default true, as in RiNALMo). */
  rope?: boolean;
  /** RoPE frequency base (default 10000). */
  ropeBase?: number;
  /** Query i attends only keys j ≤ i (default false: RiNALMo is a bidirectional encoder). */
  causal?: boolean;
  /** Biases on both projections (default false: RiNALMo's `attn_qkv_bias` is False). */
  bias?: boolean;
  /** Dropout on the attention probabilities in training mode (default 0; RiNALMo trains with 0.1). */
  dropout?: number;
}

/**
 * Self-attention over x [batch, length, dim] → [batch, length, dim]. In training mode `dropout`
 * drops attention probabilities inside the fused kernel (the mask is regenerated in the backward,
 * never stored); in eval mode (`module.train(false)`) there is none.
 */
export class MultiHeadAttention extends Module {
  readonly dim: number;
  readonly heads: number;
  readonly headDim: number;
  readonly useRope: boolean;
  readonly ropeBase: number;
  readonly causal: boolean;
  readonly dropout: number;
  /** Fused q|k|v projection, weight [3·dim, dim] (one matmul instead of three). */
  readonly Wqkv: Linear;
  readonly out_proj: Linear;

  constructor(opts: MultiHeadAttentionOptions) {
    super();
    const { dim, heads } = opts;
    if (!Number.isInteger(dim) || dim < 1)
      throw new RangeError(`MultiHeadAttention: dim must be a positive integer, got ${dim}`);
    if (!Number.isInteger(heads) || heads < 1)
      throw new RangeError(`MultiHeadAttention: heads must be a positive integer, got ${heads}`);
    if (dim % heads !== 0) throw new RangeError(`MultiHeadAttention: dim ${dim} is not divisible by heads ${heads}`);
    this.dim = dim;
    this.heads = heads;
    this.headDim = dim / heads;
    this.useRope = opts.rope ?? true;
    // Rotate-half pairs element i with i + headDim/2, so an odd head dim has no rotation partner.
    if (this.useRope && this.headDim % 2 !== 0)
      throw new RangeError(
        `MultiHeadAttention: RoPE needs an even head dim, got ${this.headDim} (dim ${dim} / heads ${heads})`,
      );
    this.ropeBase = opts.ropeBase ?? 10000;
    this.causal = opts.causal ?? false;
    this.dropout = opts.dropout ?? 0;
    if (!(this.dropout >= 0 && this.dropout < 1))
      throw new RangeError(`MultiHeadAttention: dropout must be in [0, 1), got ${this.dropout}`);
    const bias = opts.bias ?? false;
    this.Wqkv = this.module('Wqkv', new Linear(dim, 3 * dim, { bias }));
    this.out_proj = this.module('out_proj', new Linear(dim, dim, { bias }));
  }

  /**
   * x: f32 [batch, length, dim]; keyPaddingMask: i32/bool [batch, length], 1 = token, 0 = padding.
   * Padded positions are masked as keys only: their own output rows are computed but meaningless
   * (as in RiNALMo), so losses must ignore them.
   */
  forward(x: Tensor, keyPaddingMask?: Tensor | null): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.dim) {
      throw new RangeError(`MultiHeadAttention: x must be [batch, length, ${this.dim}], got [${x.shape.join(', ')}]`);
    }
    const [B, L] = x.shape as [number, number, number];
    if (
      keyPaddingMask &&
      (keyPaddingMask.rank !== 2 || keyPaddingMask.shape[0] !== B || keyPaddingMask.shape[1] !== L)
    ) {
      throw new RangeError(
        `MultiHeadAttention: keyPaddingMask must be [batch, length] = [${B}, ${L}], got ` +
          `[${keyPaddingMask.shape.join(', ')}]`,
      );
    }
    const { heads: H, headDim: hd, dim: D } = this;
    const opts = {
      keyPaddingMask: keyPaddingMask ?? undefined,
      causal: this.causal,
      scale: 1 / Math.sqrt(hd),
      dropout: this.training ? this.dropout : 0,
    };
    // One [B·L, d] × [d, 3d] matmul; the output's last axis is (q|k|v, head, headDim). Without RoPE
    // the attention kernels read the heads in place and write [B, L, H, hd] (and, backward, one
    // [B, L, 3, H, hd] gradient): no copies.
    const qkv5 = this.Wqkv.forward(x).reshape([B, L, 3, H, hd]);
    if (!this.useRope) return this.out_proj.forward(T.attentionQkv(qkv5, opts).reshape([B, L, D]));
    // The split into heads is a permute view: [3, B, H, L, hd]. RoPE's output is contiguous [B, H,
    // L, hd]; it rotates by the index along L (positions 0..L−1, CLS at 0 as in RiNALMo). v stays
    // a strided view, read in place.
    const qkv = qkv5.permute([2, 0, 3, 1, 4]);
    const [qRaw, kRaw, v] = [0, 1, 2].map((i) => qkv.narrow(0, i, 1).squeeze(0)) as [Tensor, Tensor, Tensor];
    const base = this.ropeBase;
    const out = T.attention(T.rope(qRaw, { base }), T.rope(kRaw, { base }), v, opts);
    // Merge heads: [B, H, L, hd] → [B, L, H, hd] (a contiguous view: the output is stored token-major) → [B, L, d].
    return this.out_proj.forward(out.permute([0, 2, 1, 3]).reshape([B, L, D]));
  }
}
