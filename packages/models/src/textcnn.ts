/**
 * HELM's downstream head (models.md A6): Linear(d → 2d), three convolutions of 100 filters spanning
 * k ∈ {3, 4, 5} codons and all 2d features (HELM's Conv2d(1 → 100, [k, 2d]) is exactly a Conv1d of
 * 2d input channels, which is how it is stored here: weight [filters, 2d, k]), ReLU, a max over
 * the sequence, concatenation, Dropout(0.2) and Linear(300 → outputs).
 *
 * One deliberate deviation: the max runs over windows of real codons only. HELM pools over every
 * position, <cls>, <eos> and padding included, so a sequence's prediction depended on how much
 * padding its batch had. Inputs here are the codon positions' features (no <cls>/<eos>) with
 * their lengths; padded positions are zeroed and windows that reach them are excluded.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { Module, uniformInit } from './module.js';
import { Dropout, Linear } from './layers.js';
import { BlockList } from './helm.js';

export interface TextCnnConfig {
  /** Features per position (the backbone's width). */
  inputSize: number;
  outputs: number;
  /** Filters per kernel size (HELM: 100). */
  filters: number;
  /** Window widths in codons (HELM: 3, 4, 5). */
  kernels: number[];
  /** Before the output layer (HELM: 0.2). */
  dropout: number;
}

export const TEXTCNN_DEFAULTS: Omit<TextCnnConfig, 'inputSize' | 'outputs'> = {
  filters: 100,
  kernels: [3, 4, 5],
  dropout: 0.2,
};

/** A convolution over positions, channels-last: x [B, L, Cin] → [B, L − k + 1, filters]. PyTorch Conv1d's init. */
export class CodonConv extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly inChannels: number,
    readonly filters: number,
    readonly kernel: number,
  ) {
    super();
    const bound = 1 / Math.sqrt(inChannels * kernel);
    this.weight = this.param('weight', uniformInit([filters, inChannels, kernel], bound));
    this.bias = this.param('bias', uniformInit([filters], bound));
  }
  forward(x: Tensor): Tensor {
    return T.conv1d(x, this.weight, this.bias);
  }
}

export class TextCnnHead extends Module {
  readonly cfg: TextCnnConfig;
  readonly proj: Linear;
  readonly convs: CodonConv[];
  readonly drop: Dropout;
  readonly fc: Linear;

  constructor(config: Pick<TextCnnConfig, 'inputSize' | 'outputs'> & Partial<TextCnnConfig>) {
    super();
    this.cfg = { ...TEXTCNN_DEFAULTS, ...config };
    const { inputSize, outputs, filters, kernels } = this.cfg;
    for (const [name, v] of [
      ['inputSize', inputSize],
      ['outputs', outputs],
      ['filters', filters],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`TextCnnHead: ${name} must be an integer ≥ 1, got ${v}`);
    }
    if (!kernels.length || kernels.some((k) => !Number.isInteger(k) || k < 1))
      throw new RangeError(`TextCnnHead: kernels must be integers ≥ 1, got [${kernels.join(', ')}]`);
    this.proj = this.module('proj', new Linear(inputSize, 2 * inputSize));
    this.convs = this.module(
      'convs',
      new BlockList(kernels.map((k) => new CodonConv(2 * inputSize, filters, k))),
    ).items;
    this.drop = this.module('drop', new Dropout(this.cfg.dropout));
    this.fc = this.module('fc', new Linear(filters * kernels.length, outputs));
  }

  /** The widest window: the shortest sequence the head can pool without padding. */
  get minLength(): number {
    return Math.max(...this.cfg.kernels);
  }

  /**
   * features: [B, L, inputSize], the codon positions of each row first, then padding; lengths: the
   * real codons per row (each ≥ the widest kernel). Returns [B, outputs].
   */
  forward(features: Tensor, lengths: readonly number[]): Tensor {
    const [B, L] = features.shape as [number, number, number];
    if (features.rank !== 3 || features.shape[2] !== this.cfg.inputSize) {
      throw new RangeError(
        `TextCnnHead: features must be [batch, length, ${this.cfg.inputSize}], got [${features.shape.join(', ')}]`,
      );
    }
    if (lengths.length !== B) throw new RangeError(`TextCnnHead: ${lengths.length} lengths for a batch of ${B}`);
    lengths.forEach((n, b) => {
      if (!Number.isInteger(n) || n < this.minLength || n > L)
        throw new RangeError(
          `TextCnnHead: row ${b} has length ${n}; it must be in ${this.minLength}..${L} (the widest window to the ` +
            `padded length)`,
        );
    });
    const real = T.tensor(
      Float32Array.from({ length: B * L }, (_, i) => (i % L < lengths[Math.floor(i / L)]! ? 1 : 0)),
      { shape: [B, L, 1] },
    );
    const x = T.mul(this.proj.forward(features), real);
    const pooled = this.convs.map((conv) => {
      const k = conv.kernel;
      const windows = L - k + 1;
      // 0 where the window lies inside the real codons, a large negative number where it reaches padding.
      const exclude = T.tensor(
        Float32Array.from({ length: B * windows }, (_, i) =>
          i % windows <= lengths[Math.floor(i / windows)]! - k ? 0 : -1e9,
        ),
        { shape: [B, windows, 1] },
      );
      return T.max(T.add(T.relu(conv.forward(x)), exclude), 1);
    });
    return this.fc.forward(this.drop.forward(T.concat(pooled, 1)));
  }
}
