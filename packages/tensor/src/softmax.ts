/**
 * Softmax, log-softmax and fused cross-entropy along a dim: the kernels of kernels-wgsl softmax.ts
 * on the GPU, their float64 twins on the CPU. Each backward is also exported as a plain function.
 */
import {
  type CrossEntropyOptions,
  type View,
  crossEntropyBackwardCpu,
  crossEntropyBackwardGpu,
  crossEntropyCpu,
  crossEntropyGpu,
  softmaxBackwardCpu,
  softmaxBackwardGpu,
  softmaxCpu,
  softmaxGpu,
} from '@rnagrad/kernels-wgsl';
import * as ops from './ops.js';
import { deviceOf, empty, launch, normalizeDim, record } from './ops.js';
import { requireF32, sameShape, untracked } from './op.js';
import { lastDimView, viewOf, withContiguousFallback } from './rows.js';
import type { Tensor } from './tensor.js';

function softmaxImpl(op: string, x: Tensor, dim: number, log: boolean): Tensor {
  const device = deviceOf(op, [x]);
  requireF32(op, x);
  const d = x.rank === 0 ? 0 : normalizeDim(op, dim, x.rank);
  const out = empty(x.shape, 'f32', device);
  withContiguousFallback([x], ([xx]) => {
    const xv = lastDimView(xx!, d);
    const ov = lastDimView(out, d);
    launch(op, device, {
      gpu: (at, queue) => softmaxGpu(queue, at(out, ov), at(xx!, xv), { log }),
      cpu: (at) => softmaxCpu(at(out, ov), at(xx!, xv), { log }),
    });
  });
  return out;
}

function softmaxBackwardImpl(op: string, y: Tensor, dy: Tensor, dim: number, log: boolean): Tensor {
  const device = deviceOf(op, [y, dy]);
  requireF32(op, y, dy);
  sameShape(op, y, dy);
  const d = y.rank === 0 ? 0 : normalizeDim(op, dim, y.rank);
  const dx = empty(y.shape, 'f32', device);
  withContiguousFallback([y, dy], ([yy, gg]) => {
    const [yv, gv, xv] = [lastDimView(yy!, d), lastDimView(gg!, d), lastDimView(dx, d)];
    launch(op, device, {
      gpu: (at, queue) => softmaxBackwardGpu(queue, at(dx, xv), at(yy!, yv), at(gg!, gv), { log }),
      cpu: (at) => softmaxBackwardCpu(at(dx, xv), at(yy!, yv), at(gg!, gv), { log }),
    });
  });
  return dx;
}

/** softmax along `dim` (numerically stable). Records 'softmax' with attrs { dim }; the rule needs the output. */
export function softmax(x: Tensor, dim = -1): Tensor {
  const out = softmaxImpl('softmax', x, dim, false);
  return record('softmax', [x], out, { dim: x.rank === 0 ? 0 : normalizeDim('softmax', dim, x.rank) });
}

/** dx = y ⊙ (dy − Σ_dim dy⊙y), from the softmax output y. */
export function softmaxBackward(y: Tensor, dy: Tensor, dim = -1): Tensor {
  return softmaxBackwardImpl('softmaxBackward', y, dy, dim, false);
}

/** log-softmax along `dim`. Records 'logSoftmax' with attrs { dim }; the rule needs the output. */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  const out = softmaxImpl('logSoftmax', x, dim, true);
  return record('logSoftmax', [x], out, { dim: x.rank === 0 ? 0 : normalizeDim('logSoftmax', dim, x.rank) });
}

/** dx = dy − exp(y)·Σ_dim dy, from the log-softmax output y. */
export function logSoftmaxBackward(y: Tensor, dy: Tensor, dim = -1): Tensor {
  return softmaxBackwardImpl('logSoftmaxBackward', y, dy, dim, true);
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOpts {
  /** Target value whose rows are skipped (default -100, PyTorch's). */
  ignoreIndex?: number;
  reduction?: Reduction;
  /** Label smoothing ε in [0, 1) (default 0). */
  labelSmoothing?: number;
}

function checkCrossEntropy(op: string, logits: Tensor, targets: Tensor): void {
  requireF32(op, logits);
  if (targets.dtype !== 'i32') throw new TypeError(`${op}: targets must be i32, got ${targets.dtype}`);
  if (logits.rank < 1 || targets.rank !== logits.rank - 1 || targets.shape.some((s, d) => s !== logits.shape[d])) {
    throw new RangeError(
      `${op}: logits [${logits.shape.join(', ')}] need targets of shape [${logits.shape.slice(0, -1).join(', ')}], ` +
        `got [${targets.shape.join(', ')}]`,
    );
  }
}

function kernelOpts(opts: CrossEntropyOpts): CrossEntropyOptions & { ignoreIndex: number; labelSmoothing: number } {
  return { ignoreIndex: opts.ignoreIndex ?? -100, labelSmoothing: opts.labelSmoothing ?? 0 };
}

/** Number of targets that are not `ignoreIndex`, as a 1-element f32 tensor of shape []. */
export function countValid(targets: Tensor, ignoreIndex = -100): Tensor {
  return untracked(() => {
    const valid = ops.ne(targets, ignoreIndex);
    const asF = ops.cast(valid, 'f32');
    const n = ops.sum(asF);
    valid.dispose();
    asF.dispose();
    return n;
  });
}

/**
 * Fused log-softmax + negative log-likelihood over the last axis: logits [..., C], i32 targets
 * [...]. 'mean' divides by the number of non-ignored rows (NaN when all are ignored, as PyTorch).
 * Records 'crossEntropy' on [logits] with attrs { ignoreIndex, labelSmoothing, reduction,
 * saved: { targets, lse, count? } } — count only for 'mean'.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOpts = {}): Tensor {
  const op = 'crossEntropy';
  const device = deviceOf(op, [logits, targets]);
  checkCrossEntropy(op, logits, targets);
  const reduction = opts.reduction ?? 'mean';
  const kopts = kernelOpts(opts);
  ops.checkIndices(targets, { op, size: logits.shape[logits.rank - 1]!, ignore: kopts.ignoreIndex });
  const rows = empty(targets.shape, 'f32', device);
  const lse = empty(targets.shape, 'f32', device);
  withContiguousFallback([logits], ([x]) => {
    launch(op, device, {
      gpu: (at, queue) => crossEntropyGpu(queue, at(rows), at(lse), at(x!), at(targets), kopts),
      cpu: (at) => crossEntropyCpu(at(rows), at(lse), at(x!), at(targets), kopts),
    });
  });
  const saved: { targets: Tensor; lse: Tensor; count?: Tensor } = { targets: targets.detach(), lse };
  let out = rows;
  if (reduction !== 'none') {
    out = untracked(() => {
      const total = ops.sum(rows);
      if (reduction === 'sum') return total;
      const count = countValid(targets, kopts.ignoreIndex);
      saved.count = count;
      const mean = ops.div(total, count);
      total.dispose();
      return mean;
    });
    rows.dispose();
  }
  return record(
    op,
    [logits],
    out,
    { reduction, ignoreIndex: kopts.ignoreIndex, labelSmoothing: kopts.labelSmoothing },
    saved,
  );
}

/**
 * dlogits of `crossEntropy` from the saved logsumexp: (softmax − target distribution)·dloss per
 * row. `dloss` has the loss's shape (targets' shape for 'none', [] or any 1-element shape for
 * 'mean'/'sum'); `count` (non-ignored rows, from the forward) is recomputed when omitted.
 */
export function crossEntropyBackward(
  logits: Tensor,
  targets: Tensor,
  lse: Tensor,
  dloss: Tensor,
  opts: CrossEntropyOpts & { count?: Tensor } = {},
): Tensor {
  const op = 'crossEntropyBackward';
  const device = deviceOf(op, [logits, targets, lse, dloss]);
  checkCrossEntropy(op, logits, targets);
  sameShape(op, lse, targets);
  const reduction = opts.reduction ?? 'mean';
  const kopts = kernelOpts(opts);
  let scale = dloss;
  let ownScale = false;
  if (reduction === 'none') sameShape(op, dloss, targets);
  else {
    if (dloss.size !== 1)
      throw new RangeError(`${op}: reduction '${reduction}' needs a 1-element dloss, got [${dloss.shape.join(', ')}]`);
    if (reduction === 'mean') {
      const count = opts.count ?? countValid(targets, kopts.ignoreIndex);
      scale = untracked(() => ops.div(dloss, count));
      if (!opts.count) count.dispose();
      ownScale = true;
    }
  }
  // Per-row view of the loss gradient: stride 0 everywhere broadcasts a single value.
  const perRow: View =
    reduction === 'none'
      ? viewOf(scale)
      : { shape: targets.shape, strides: targets.shape.map(() => 0), offset: scale.offset };
  const dx = empty(logits.shape, 'f32', device);
  withContiguousFallback([logits], ([x]) => {
    launch(op, device, {
      gpu: (at, queue) =>
        crossEntropyBackwardGpu(queue, at(dx), at(x!), at(targets), at(lse), at(scale, perRow), kopts),
      cpu: (at) => crossEntropyBackwardCpu(at(dx), at(x!), at(targets), at(lse), at(scale, perRow), kopts),
    });
  });
  if (ownScale) scale.dispose();
  return dx;
}
