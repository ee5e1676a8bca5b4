/**
 * RiNALMo's downstream heads (models.md B6), channels-last, with the official parameter names
 * (`pred_head.linear_in`, `pred_head.resnet.blocks.0.conv_net.3.weight`, …) so fine-tuned
 * checkpoints map one-to-one:
 * - secondary structure: pair(i, j) = [x_i ; x_j] → Linear(2d, C) (never materialising the
 *   [L, L, 2d] concatenation) → bottleneck ResNet2D blocks → Conv 3×3 to one channel → strict
 *   upper triangle, symmetrised; trained with BCE on the strict upper triangle;
 * - ncRNA classification: the <cls> row → Linear(d, 256) → GELU → Linear(256, classes);
 * - sequence regression: Linear(d, C) → ResNet1D blocks (Conv k3 → InstanceNorm → ELU, twice,
 *   + residual) → mean over non-pad positions (<cls>/<eos> included) → Dropout → Linear(C, 1).
 * InstanceNorm is PyTorch's default: no affine, biased variance, eps 1e-5, statistics over every
 * position (pads included, as in the official code).
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { Module, uniformInit } from './module.js';
import { BlockList } from './helm.js';
import { Dropout, Linear } from './layers.js';

const INSTANCE_NORM_EPS = 1e-5;

/** PyTorch `nn.Conv2d` (stride 1, 'same' padding) on channels-last input; weight [Cout, Cin, k, k]. */
class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(inChannels: number, outChannels: number, kernel: number, opts: { bias?: boolean } = {}) {
    super();
    const bound = 1 / Math.sqrt(inChannels * kernel * kernel);
    this.weight = this.param('weight', uniformInit([outChannels, inChannels, kernel, kernel], bound));
    this.bias = opts.bias === false ? null : this.param('bias', uniformInit([outChannels], bound));
  }
  forward(x: Tensor): Tensor {
    return T.conv2d(x, this.weight, this.bias, { padding: 'same' });
  }
}

/** PyTorch `nn.Conv1d` (stride 1, 'same' padding) on channels-last input; weight [Cout, Cin, k]. */
class Conv1d extends Module {
  readonly weight: Tensor;
  constructor(inChannels: number, outChannels: number, kernel: number) {
    super();
    this.weight = this.param(
      'weight',
      uniformInit([outChannels, inChannels, kernel], 1 / Math.sqrt(inChannels * kernel)),
    );
  }
  forward(x: Tensor): Tensor {
    return T.conv1d(x, this.weight, null, { padding: 'same' });
  }
}

/** `conv_net` = Sequential(conv, IN, act, conv, IN, act, …): only the convs (children 0, 3, 6) hold weights. */
class ConvNet extends Module {
  readonly convs: (Conv1d | Conv2d)[];
  constructor(
    convs: (Conv1d | Conv2d)[],
    readonly activation: (x: Tensor) => Tensor,
  ) {
    super();
    this.convs = convs.map((conv, k) => this.module(String(3 * k), conv));
  }
  forward(x: Tensor): Tensor {
    return this.convs.reduce((h, conv) => this.activation(T.instanceNorm(conv.forward(h), INSTANCE_NORM_EPS)), x);
  }
}

class ResidualBlock extends Module {
  readonly conv_net: ConvNet;
  constructor(convNet: ConvNet) {
    super();
    this.conv_net = this.module('conv_net', convNet);
  }
  forward(x: Tensor): Tensor {
    return T.add(x, this.conv_net.forward(x));
  }
}

class ResNet extends Module {
  readonly blocks: BlockList<ResidualBlock>;
  constructor(blocks: ResidualBlock[]) {
    super();
    this.blocks = this.module('blocks', new BlockList(blocks));
  }
  forward(x: Tensor): Tensor {
    return this.blocks.items.reduce((h, block) => block.forward(h), x);
  }
}

export interface SecondaryStructureHeadConfig {
  /** Encoder width d. */
  dim: number;
  /** Channels of the pair map (RiNALMo: 64). */
  channels: number;
  /** Bottleneck blocks (RiNALMo: 2). */
  blocks: number;
}

/** A [L, L] f32 constant: 1 strictly above the diagonal. */
function strictUpper(length: number): Tensor {
  const mask = new Float32Array(length * length);
  for (let i = 0; i < length; i++) mask.fill(1, i * length + i + 1, (i + 1) * length);
  return T.tensor(mask, { shape: [length, length] });
}

export class SecondaryStructureHead extends Module {
  readonly linear_in: Linear;
  readonly resnet: ResNet;
  readonly conv_out: Conv2d;
  constructor(readonly cfg: SecondaryStructureHeadConfig) {
    super();
    const c = cfg.channels;
    this.linear_in = this.module('linear_in', new Linear(2 * cfg.dim, c));
    const block = () =>
      new ResidualBlock(
        new ConvNet(
          [
            new Conv2d(c, c, 1, { bias: false }),
            new Conv2d(c, c, 3, { bias: false }),
            new Conv2d(c, c, 1, { bias: false }),
          ],
          T.relu,
        ),
      );
    this.resnet = this.module('resnet', new ResNet(Array.from({ length: cfg.blocks }, block)));
    this.conv_out = this.module('conv_out', new Conv2d(c, 1, 3));
  }

  /** x [B, L, d] (the representation without <cls>/<eos>) → symmetric pair logits [B, L, L], 0 on the diagonal. */
  forward(x: Tensor): Tensor {
    const [batch, length] = x.shape as [number, number, number];
    const pairs = T.pairwiseLinear(x, this.linear_in.weight, this.linear_in.bias); // [B, L, L, C]
    const logits = this.conv_out.forward(this.resnet.forward(pairs)).reshape([batch, length, length]);
    const upper = T.mul(logits, strictUpper(length));
    return T.add(upper, T.transpose(upper, 1, 2));
  }
}

/**
 * Mean binary cross-entropy with logits over the strict upper triangle: logits [B, L, L], targets
 * f32 [B, L, L] of 0/1. Uses max(z, 0) − z·y + log(1 + e^−|z|), stable for any z.
 */
export function pairLoss(logits: Tensor, targets: Tensor): Tensor {
  const [batch, length] = logits.shape as [number, number, number];
  if (length < 2) throw new RangeError(`pairLoss: a sequence of ${length} base has no pairs to score`);
  const perPair = T.add(T.sub(T.relu(logits), T.mul(logits, targets)), T.log(T.add(T.exp(T.neg(T.abs(logits))), 1)));
  return T.div(T.sum(T.mul(perPair, strictUpper(length))), (batch * length * (length - 1)) / 2);
}

export interface ClassificationHeadConfig {
  dim: number;
  /** Hidden width (RiNALMo: 256). */
  hidden: number;
  classes: number;
}

export class ClassificationHead extends Module {
  readonly linear_in: Linear;
  readonly linear_out: Linear;
  constructor(readonly cfg: ClassificationHeadConfig) {
    super();
    this.linear_in = this.module('linear_in', new Linear(cfg.dim, cfg.hidden));
    this.linear_out = this.module('linear_out', new Linear(cfg.hidden, cfg.classes));
  }
  /** representation [B, L, d] → logits [B, classes], from the <cls> row. */
  forward(representation: Tensor): Tensor {
    const [batch, , dim] = representation.shape as [number, number, number];
    const cls = T.narrow(representation, 1, 0, 1).reshape([batch, dim]);
    return this.linear_out.forward(T.gelu(this.linear_in.forward(cls)));
  }
}

export interface RegressionHeadConfig {
  dim: number;
  /** Channels (RiNALMo MRL: 32). */
  channels: number;
  /** ResNet1D blocks (RiNALMo MRL: 6). */
  blocks: number;
  /** Dropout before the output Linear (RiNALMo: 0.2). */
  dropout: number;
}

export class RegressionHead extends Module {
  readonly linear_in: Linear;
  readonly resnet: ResNet;
  readonly linear_out: Linear;
  private readonly drop: Dropout;
  constructor(readonly cfg: RegressionHeadConfig) {
    super();
    const c = cfg.channels;
    this.linear_in = this.module('linear_in', new Linear(cfg.dim, c));
    const block = () => new ResidualBlock(new ConvNet([new Conv1d(c, c, 3), new Conv1d(c, c, 3)], (x) => T.elu(x)));
    this.resnet = this.module('resnet', new ResNet(Array.from({ length: cfg.blocks }, block)));
    this.drop = this.module('dropout', new Dropout(cfg.dropout));
    this.linear_out = this.module('linear_out', new Linear(c, 1));
  }
  /** representation [B, L, d], tokenMask f32 [B, L] (1 = token) → predictions [B]. Pad rows are zeroed first. */
  forward(representation: Tensor, tokenMask: Tensor): Tensor {
    const [batch] = representation.shape as [number, number, number];
    const keep = tokenMask.unsqueeze(2);
    const h = this.resnet.forward(this.linear_in.forward(T.mul(representation, keep)));
    const pooled = T.div(T.sum(T.mul(h, keep), 1), T.sum(keep, 1));
    return this.linear_out.forward(this.drop.forward(pooled)).reshape([batch]);
  }
}
