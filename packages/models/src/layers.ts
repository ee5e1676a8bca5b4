/** The basic layers, with PyTorch parameter names and layouts. */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { Module, normalInit, uniformInit } from './module.js';

/** PyTorch `nn.Linear`: weight [out, in], y = x Wᵀ + b. Default init U(±1/√in) as in PyTorch. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean; std?: number } = {},
  ) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param(
      'weight',
      opts.std !== undefined
        ? normalInit([outFeatures, inFeatures], opts.std)
        : uniformInit([outFeatures, inFeatures], bound),
    );
    this.bias =
      opts.bias === false
        ? null
        : this.param('bias', opts.std !== undefined ? T.zeros([outFeatures]) : uniformInit([outFeatures], bound));
  }
  forward(x: Tensor): Tensor {
    return T.linear(x, this.weight, this.bias ?? undefined);
  }
}

/** Hugging Face GPT-2's `Conv1D`: weight stored [in, out], y = x W + b (kept so GPT-2-style checkpoints map 1:1). */
export class Conv1D extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    std = 0.02,
  ) {
    super();
    this.weight = this.param('weight', normalInit([inFeatures, outFeatures], std));
    this.bias = this.param('bias', T.zeros([outFeatures]));
  }
  forward(x: Tensor, activation?: 'gelu' | 'geluTanh' | 'relu'): Tensor {
    return T.matmul(x, this.weight, { bias: this.bias, activation });
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(
    readonly size: number,
    readonly opts: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param('weight', T.ones([size])) : null;
    this.bias = affine ? this.param('bias', T.zeros([size])) : null;
  }
  forward(x: Tensor): Tensor {
    return T.layerNorm(x, this.weight ?? undefined, this.bias ?? undefined, this.opts.eps ?? 1e-5);
  }
  /** The residual add before this norm and the norm in one kernel: sum = x + residual, y = norm(sum). */
  addForward(x: Tensor, residual: Tensor): { sum: Tensor; y: Tensor } {
    return T.addLayerNorm(x, residual, this.weight, this.bias, this.opts.eps ?? 1e-5);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(
    readonly count: number,
    readonly size: number,
    std = 0.02,
  ) {
    super();
    this.weight = this.param('weight', normalInit([count, size], std));
  }
  /** ids: i32 of any shape → [...ids.shape, size]. */
  forward(ids: Tensor): Tensor {
    return T.embedding(this.weight, ids);
  }
}

export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return this.training && this.p > 0 ? T.dropout(x, this.p, true) : x;
  }
}
