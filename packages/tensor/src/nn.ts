/**
 * Neural-network ops over the fused kernels: softmax, log-softmax, cross-entropy, LayerNorm,
 * RMSNorm, embedding, dropout, SwiGLU, index_add, and the optimizer steps (AdamW, global-norm
 * clipping). Each runs the WGSL kernel on the GPU or its float64 reference on the CPU.
 *
 * Every differentiable forward calls `record(op, inputs, output, attrs)` once; internal helper ops
 * run unrecorded. Tensors a backward needs that are not inputs or the output travel in
 * `attrs.saved` (fresh handles or new tensors): when autograd takes the op (output.gradNode set)
 * they are kept out of `tidy` scopes and belong to the graph node, which must dispose them after its
 * backward; otherwise they are disposed at once. Each backward is also exported as a plain function.
 */
import {
  type View,
  ELEMENTWISE_OPS,
  elementwiseCpu,
  elementwiseGpu,
  numel,
} from '@rnagrad/kernels-wgsl';
import {
  type CrossEntropyOptions,
  crossEntropyBackwardCpu,
  crossEntropyBackwardGpu,
  crossEntropyCpu,
  crossEntropyGpu,
  softmaxBackwardCpu,
  softmaxBackwardGpu,
  softmaxCpu,
  softmaxGpu,
} from '@rnagrad/kernels-wgsl';
import { layerNormBackwardCpu, layerNormBackwardGpu, layerNormCpu, layerNormGpu, normBackwardScratchBytes } from '@rnagrad/kernels-wgsl';
import { type AdamWOptions, adamwCpu, adamwGpu, clipGradNormCpu, clipGradNormGpu, gradNormCpu, gradNormGpu, gradNormScratchBytes } from '@rnagrad/kernels-wgsl';
import { scatterAddRowsCpu, scatterAddRowsGpu, scatterScratchBytes } from '@rnagrad/kernels-wgsl';
import * as ops from './ops.js';
import { deviceOf, empty, hooks, launch, normalizeDim, record, takeCounters } from './ops.js';
import { tidy, type Tensor } from './tensor.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** Runs `fn` with recording off: the helper ops a fused op is built from are not graph nodes. */
export function untracked<T>(fn: () => T): T {
  const prev = hooks.gradEnabled;
  hooks.gradEnabled = false;
  try {
    return fn();
  } finally {
    hooks.gradEnabled = prev;
  }
}


function requireF32(op: string, ...ts: (Tensor | null | undefined)[]): void {
  for (const t of ts) if (t && t.dtype !== 'f32') throw new TypeError(`${op}: expected an f32 tensor, got ${t.dtype} [${t.shape.join(', ')}]`);
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((s, d) => s !== b.shape[d])) {
    throw new RangeError(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] must be equal`);
  }
}

/** `t` viewed with `dim` moved last (rank-0 tensors become [1]). */
function lastDimView(t: Tensor, dim: number): View {
  if (t.rank === 0) return { shape: [1], strides: [1], offset: t.offset };
  const order = [...t.shape.keys()].filter((d) => d !== dim).concat(dim);
  return { shape: order.map((d) => t.shape[d]!), strides: order.map((d) => t.strides[d]!), offset: t.offset };
}

function viewOf(t: Tensor): View {
  return { shape: t.shape, strides: t.strides, offset: t.offset };
}

/**
 * Runs a row kernel on `views`; if the leading dims do not coalesce into the kernel's rank budget
 * the strided inputs are made contiguous first (rare: rank > 5 views).
 */
function withContiguousFallback<T>(inputs: Tensor[], run: (xs: Tensor[]) => T): T {
  try {
    return run(inputs);
  } catch (err) {
    if (!(err instanceof RangeError) || !/contiguous first/.test(err.message)) throw err;
    const copies = untracked(() => inputs.map((x) => (x.isContiguous ? x : ops.clone(x))));
    try {
      return run(copies);
    } finally {
      copies.forEach((x, k) => x !== inputs[k] && x.dispose());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax and log-softmax

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
    throw new RangeError(`${op}: logits [${logits.shape.join(', ')}] need targets of shape [${logits.shape.slice(0, -1).join(', ')}], got [${targets.shape.join(', ')}]`);
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
  return record(op, [logits], out, { reduction, ignoreIndex: kopts.ignoreIndex, labelSmoothing: kopts.labelSmoothing }, saved);
}

/**
 * dlogits of `crossEntropy` from the saved logsumexp: (softmax − target distribution)·dloss per
 * row. `dloss` has the loss's shape (targets' shape for 'none', [] or any 1-element shape for
 * 'mean'/'sum'); `count` (non-ignored rows, from the forward) is recomputed when omitted.
 */
export function crossEntropyBackward(logits: Tensor, targets: Tensor, lse: Tensor, dloss: Tensor, opts: CrossEntropyOpts & { count?: Tensor } = {}): Tensor {
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
    if (dloss.size !== 1) throw new RangeError(`${op}: reduction '${reduction}' needs a 1-element dloss, got [${dloss.shape.join(', ')}]`);
    if (reduction === 'mean') {
      const count = opts.count ?? countValid(targets, kopts.ignoreIndex);
      scale = untracked(() => ops.div(dloss, count));
      if (!opts.count) count.dispose();
      ownScale = true;
    }
  }
  // Per-row view of the loss gradient: stride 0 everywhere broadcasts a single value.
  const perRow: View =
    reduction === 'none' ? viewOf(scale) : { shape: targets.shape, strides: targets.shape.map(() => 0), offset: scale.offset };
  const dx = empty(logits.shape, 'f32', device);
  withContiguousFallback([logits], ([x]) => {
    launch(op, device, {
      gpu: (at, queue) => crossEntropyBackwardGpu(queue, at(dx), at(x!), at(targets), at(lse), at(scale, perRow), kopts),
      cpu: (at) => crossEntropyBackwardCpu(at(dx), at(x!), at(targets), at(lse), at(scale, perRow), kopts),
    });
  });
  if (ownScale) scale.dispose();
  return dx;
}

// ---------------------------------------------------------------------------------------------
// LayerNorm / RMSNorm

function checkAffine(op: string, x: Tensor, p: Tensor | null | undefined, what: string): void {
  if (!p) return;
  requireF32(op, p);
  const C = x.shape[x.rank - 1];
  if (p.rank !== 1 || p.shape[0] !== C) throw new RangeError(`${op}: ${what} must have shape [${C}], got [${p.shape.join(', ')}]`);
}

function normForward(op: 'layerNorm' | 'rmsNorm', x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): { y: Tensor; mean: Tensor | null; rstd: Tensor } {
  const rms = op === 'rmsNorm';
  const device = deviceOf(op, [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])]);
  requireF32(op, x);
  if (x.rank < 1) throw new RangeError(`${op}: needs at least one dim, got a scalar`);
  checkAffine(op, x, weight, 'weight');
  checkAffine(op, x, bias, 'bias');
  const lead = x.shape.slice(0, -1);
  const y = empty(x.shape, 'f32', device);
  const mean = rms ? null : empty(lead, 'f32', device);
  const rstd = empty(lead, 'f32', device);
  withContiguousFallback([x], ([xx]) => {
    launch(op, device, {
      gpu: (at, queue) => layerNormGpu(queue, { y: at(y), mean: mean && at(mean), rstd: at(rstd) }, at(xx!), weight && at(weight), bias && at(bias), { rms, eps }),
      cpu: (at) => layerNormCpu({ y: at(y), mean: mean && at(mean), rstd: at(rstd) }, at(xx!), weight && at(weight), bias && at(bias), { rms, eps }),
    });
  });
  return { y, mean, rstd };
}

/**
 * LayerNorm over the last axis: (x − mean)/√(var + eps)·weight + bias (weight, bias optional, [C]).
 * Records 'layerNorm' on [x, weight?, bias?] (only those given, in that order) with attrs
 * { eps, hasWeight, hasBias, saved: { mean, rstd } } (each of shape x.shape[:-1]).
 */
export function layerNorm(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const { y, mean, rstd } = normForward('layerNorm', x, weight, bias, eps);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return record('layerNorm', inputs, y, { eps, hasWeight: !!weight, hasBias: !!bias }, { mean: mean!, rstd });
}

/**
 * RMSNorm over the last axis: x/√(mean(x²) + eps)·weight. Records 'rmsNorm' on [x, weight?] with
 * attrs { eps, hasWeight, saved: { rstd } }.
 */
export function rmsNorm(x: Tensor, weight: Tensor | null = null, eps = 1e-6): Tensor {
  const { y, rstd } = normForward('rmsNorm', x, weight, null, eps);
  return record('rmsNorm', [x, ...(weight ? [weight] : [])], y, { eps, hasWeight: !!weight }, { rstd });
}

function normBackward(
  op: string,
  rms: boolean,
  dy: Tensor,
  x: Tensor,
  mean: Tensor | null,
  rstd: Tensor,
  weight: Tensor | null,
  withBias: boolean,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  const device = deviceOf(op, [dy, x, rstd, ...(mean ? [mean] : []), ...(weight ? [weight] : [])]);
  requireF32(op, dy, x, mean, rstd);
  sameShape(op, dy, x);
  checkAffine(op, x, weight, 'weight');
  const C = x.shape[x.rank - 1]!;
  const dx = empty(x.shape, 'f32', device);
  const dweight = weight ? empty([C], 'f32', device) : null;
  const dbias = withBias && !rms ? empty([C], 'f32', device) : null;
  withContiguousFallback([x, dy], ([xx, gg]) => {
    launch(op, device, {
      gpu: (at, queue) => {
        const rows = numel(x.shape.slice(0, -1));
        const scratch = dweight || dbias ? empty([normBackwardScratchBytes(rows, C) / 4], 'f32', 'gpu') : null;
        layerNormBackwardGpu(
          queue,
          { dx: at(dx), dweight: dweight && at(dweight), dbias: dbias && at(dbias) },
          { x: at(xx!), weight: weight && at(weight), mean: mean && at(mean), rstd: at(rstd), dy: at(gg!) },
          { rms, scratch: scratch?.storage.buffer ?? undefined },
        );
        scratch?.dispose();
      },
      cpu: (at) =>
        layerNormBackwardCpu(
          { dx: at(dx), dweight: dweight && at(dweight), dbias: dbias && at(dbias) },
          { x: at(xx!), weight: weight && at(weight), mean: mean && at(mean), rstd: at(rstd), dy: at(gg!) },
          { rms },
        ),
    });
  });
  return { dx, dweight, dbias };
}

/** Gradients of `layerNorm` from the saved mean and rstd: dweight if `weight` is given, dbias if `withBias`. */
export function layerNormBackward(
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  weight: Tensor | null = null,
  withBias = false,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  return normBackward('layerNormBackward', false, dy, x, mean, rstd, weight, withBias);
}

/** Gradients of `rmsNorm` from the saved rstd: dweight if `weight` is given. */
export function rmsNormBackward(dy: Tensor, x: Tensor, rstd: Tensor, weight: Tensor | null = null): { dx: Tensor; dweight: Tensor | null } {
  const { dx, dweight } = normBackward('rmsNormBackward', true, dy, x, null, rstd, weight, false);
  return { dx, dweight };
}

// ---------------------------------------------------------------------------------------------
// Embedding and index_add

function flatIds(op: string, ids: Tensor): Tensor {
  if (ids.dtype !== 'i32') throw new TypeError(`${op}: ids must be i32, got ${ids.dtype}`);
  return untracked(() => ops.reshape(ids, [ids.size]));
}

/**
 * Rows of `table` [V, D] picked by i32 `ids` (any shape) → [...ids.shape, D]. `paddingIdx` only
 * affects the gradient (that row gets none), as in PyTorch. Records 'embedding' on [table] with
 * attrs { numEmbeddings, paddingIdx, saved: { ids } }.
 */
export function embedding(table: Tensor, ids: Tensor, opts: { paddingIdx?: number | null } = {}): Tensor {
  const op = 'embedding';
  deviceOf(op, [table, ids]);
  if (table.rank !== 2) throw new RangeError(`${op}: table must be [V, D], got [${table.shape.join(', ')}]`);
  const flat = flatIds(op, ids);
  const rows = untracked(() => ops.indexSelect(table, 0, flat, { op }));
  flat.dispose();
  const out = untracked(() => ops.reshape(rows, [...ids.shape, table.shape[1]!]));
  rows.dispose();
  return record(op, [table], out, { numEmbeddings: table.shape[0]!, paddingIdx: opts.paddingIdx ?? null }, { ids: ids.detach() });
}

/** Deterministic scatter-add of dy [...ids.shape, D] rows into [numEmbeddings, D]. */
export function embeddingBackward(ids: Tensor, dy: Tensor, numEmbeddings: number, opts: { paddingIdx?: number | null } = {}): Tensor {
  const op = 'embeddingBackward';
  const device = deviceOf(op, [ids, dy]);
  requireF32(op, dy);
  if (dy.rank !== ids.rank + 1 || ids.shape.some((s, d) => s !== dy.shape[d])) {
    throw new RangeError(`${op}: dy [${dy.shape.join(', ')}] must be [${[...ids.shape, 'D'].join(', ')}]`);
  }
  const D = dy.shape[dy.rank - 1]!;
  const flat = flatIds(op, ids);
  ops.checkIndices(flat, { op, size: numEmbeddings });
  const rows = untracked(() => ops.reshape(dy, [ids.size, D]));
  const out = empty([numEmbeddings, D], 'f32', device);
  scatterRows(op, out, flat, rows, opts.paddingIdx ?? null);
  flat.dispose();
  rows.dispose();
  return out;
}

function scatterRows(op: string, out: Tensor, index: Tensor, src: Tensor, paddingIdx: number | null): void {
  launch(op, out.device, {
    gpu: (at, queue) => {
      const keys = empty([scatterScratchBytes(index.size) / 4], 'f32', 'gpu');
      scatterAddRowsGpu(queue, at(out), at(index), at(src), { paddingIdx, scratch: keys.storage.buffer! });
      keys.dispose();
    },
    cpu: (at) => scatterAddRowsCpu(at(out), at(index), at(src), { paddingIdx }),
  });
}

/**
 * PyTorch's index_add (out of place): x with src's slices along `dim` added at positions `index`
 * (1-D i32; repeats accumulate, deterministically). Records 'indexAdd' on [x, src] with attrs
 * { dim, saved: { index } } (grads: dx = dy, dsrc = indexSelect(dy, dim, index)).
 */
export function indexAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const op = 'indexAdd';
  const device = deviceOf(op, [x, index, src]);
  requireF32(op, x, src);
  const d = normalizeDim(op, dim, x.rank);
  if (index.dtype !== 'i32' || index.rank !== 1) throw new TypeError(`${op}: index must be a 1-D i32 tensor`);
  if (src.rank !== x.rank || src.shape.some((s, k) => (k === d ? s !== index.shape[0] : s !== x.shape[k]))) {
    throw new RangeError(`${op}: src [${src.shape.join(', ')}] must match x [${x.shape.join(', ')}] with dim ${d} of size ${index.shape[0]}`);
  }
  const V = x.shape[d]!;
  ops.checkIndices(index, { op, size: V });
  const rest = x.shape.filter((_, k) => k !== d);
  const D = numel(rest);
  const out = untracked(() => {
    // src with `dim` first, as [N, D] rows (a copy only when the permuted view is not contiguous)
    const perm = [d, ...x.shape.keys()].filter((k, i) => i === 0 || k !== d);
    const moved = ops.permute(src, perm);
    const rows = ops.reshape(moved, [index.shape[0]!, D]);
    moved.dispose();
    const summed = empty([V, D], 'f32', device);
    scatterRows(op, summed, index, rows, null);
    rows.dispose();
    const shaped = ops.reshape(summed, [V, ...rest]);
    summed.dispose();
    const inverse = perm.map((_, k) => perm.indexOf(k));
    const back = ops.permute(shaped, inverse);
    shaped.dispose();
    const result = ops.add(x, back);
    back.dispose();
    return result;
  });
  return record(op, [x, src], out, { dim: d }, { index: index.detach() });
}

// ---------------------------------------------------------------------------------------------
// Dropout

/** The inverted-dropout multiplier for `shape`: 0 with probability p, else 1/(1−p). */
export function dropoutMask(shape: readonly number[], p: number, device: 'gpu' | 'cpu' = ops.getDefaultDevice(), seed?: number): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  const mask = empty(shape, 'f32', device);
  const { key, base } = takeCounters(mask.size, seed);
  const scalars = [
    { value: key | 0, dtype: 'i32' as const },
    { value: base | 0, dtype: 'i32' as const },
    { value: p, dtype: 'f32' as const },
  ];
  launch('dropout', device, {
    gpu: (at, queue) => elementwiseGpu(queue, ELEMENTWISE_OPS.dropoutMask, at(mask), scalars),
    cpu: (at) => elementwiseCpu(ELEMENTWISE_OPS.dropoutMask, at(mask), scalars),
  });
  return mask;
}

/**
 * Inverted dropout. In training with p > 0: y = x ⊙ mask, recorded as 'dropout' on [x] with attrs
 * { p, saved: { mask } } (backward: dy ⊙ mask). Otherwise a new handle on x, recorded as 'view'
 * ({ from: x.shape }, like contiguous()).
 */
export function dropout(x: Tensor, p: number, training = true, opts: { seed?: number } = {}): Tensor {
  const device = deviceOf('dropout', [x]);
  requireF32('dropout', x);
  if (!training || p === 0) return record('view', [x], x.detach(), { from: x.shape });
  const mask = dropoutMask(x.shape, p, device, opts.seed);
  const y = untracked(() => ops.mul(x, mask));
  return record('dropout', [x], y, { p }, { mask });
}

/** dy ⊙ mask. */
export function dropoutBackward(dy: Tensor, mask: Tensor): Tensor {
  return untracked(() => ops.mul(dy, mask));
}

// ---------------------------------------------------------------------------------------------
// SwiGLU (RiNALMo: learnable scalar β)

function checkSwiglu(op: string, u: Tensor, v: Tensor, beta: Tensor): void {
  requireF32(op, u, v, beta);
  sameShape(op, u, v);
  if (beta.size !== 1) throw new RangeError(`${op}: beta must have one element, got [${beta.shape.join(', ')}]`);
}

/** A view of the one-element β that broadcasts against anything: shape []. */
function scalarView(beta: Tensor): Tensor {
  return beta.view([], [], beta.offset);
}

/**
 * (u · σ(β·u)) ⊙ v with a one-element β (RiNALMo's SwiGLU). Composed from elementwise kernels.
 * Records 'swiglu' on [u, v, beta]; the rule needs the inputs (swigluBackward).
 */
export function swiglu(u: Tensor, v: Tensor, beta: Tensor): Tensor {
  deviceOf('swiglu', [u, v, beta]);
  checkSwiglu('swiglu', u, v, beta);
  const out = untracked(() => tidy(() => ops.mul(ops.mul(u, ops.sigmoid(ops.mul(u, scalarView(beta)))), v)));
  return record('swiglu', [u, v, beta], out, {});
}

/**
 * Gradients of `swiglu`: with s = σ(βu),
 * du = dy·v·(s + βu·s(1−s)), dv = dy·u·s, dβ = Σ dy·v·u²·s(1−s) (shape of beta).
 */
export function swigluBackward(u: Tensor, v: Tensor, beta: Tensor, dy: Tensor): { du: Tensor; dv: Tensor; dbeta: Tensor } {
  deviceOf('swigluBackward', [u, v, beta, dy]);
  checkSwiglu('swigluBackward', u, v, beta);
  sameShape('swigluBackward', u, dy);
  return untracked(() =>
    tidy(() => {
      const b = scalarView(beta);
      const bu = ops.mul(u, b);
      const s = ops.sigmoid(bu);
      const dv = ops.mul(ops.mul(dy, u), s);
      const gv = ops.mul(dy, v); // dy·v
      const sp = ops.mul(s, ops.sub(1, s)); // s(1−s)
      const du = ops.mul(gv, ops.add(s, ops.mul(bu, sp)));
      const dbeta = ops.reshape(ops.sum(ops.mul(ops.mul(gv, ops.mul(u, u)), sp)), beta.shape);
      return { du, dv, dbeta };
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Optimizer steps (in place, not recorded)

export interface AdamWStepOptions extends Omit<AdamWOptions, 'weightDecay'> {
  /** One value for all, or one per parameter (e.g. 0 for biases and norms). Default 0.01. */
  weightDecay?: number | readonly number[];
}

/**
 * One AdamW step (PyTorch semantics: decoupled decay, bias correction) over every parameter, in
 * place: param, m and v are updated; grads are read. All tensors must be contiguous and f32.
 */
export function adamwStep(params: readonly Tensor[], grads: readonly Tensor[], ms: readonly Tensor[], vs: readonly Tensor[], opts: AdamWStepOptions): void {
  const op = 'adamwStep';
  if (grads.length !== params.length || ms.length !== params.length || vs.length !== params.length) {
    throw new RangeError(`${op}: params, grads, ms and vs must have the same length (${params.length}, ${grads.length}, ${ms.length}, ${vs.length})`);
  }
  if (params.length === 0) return;
  const all = [...params, ...grads, ...ms, ...vs];
  const device = deviceOf(op, all);
  for (const t of all) {
    requireF32(op, t);
    if (!t.isContiguous) throw new RangeError(`${op}: tensors must be contiguous (got a view of shape [${t.shape.join(', ')}])`);
  }
  const wd = (k: number) => (typeof opts.weightDecay === 'number' || opts.weightDecay === undefined ? opts.weightDecay : opts.weightDecay[k]);
  const kopts: AdamWOptions = { ...opts, weightDecay: undefined };
  launch(op, device, {
    gpu: (at, queue) => adamwGpu(queue, params.map((p, k) => ({ param: at(p), grad: at(grads[k]!), m: at(ms[k]!), v: at(vs[k]!), weightDecay: wd(k) })), kopts),
    cpu: (at) => adamwCpu(params.map((p, k) => ({ param: at(p), grad: at(grads[k]!), m: at(ms[k]!), v: at(vs[k]!), weightDecay: wd(k) })), kopts),
  });
}

function normInputs(op: string, grads: readonly Tensor[]): 'gpu' | 'cpu' {
  const device = grads.length ? deviceOf(op, grads) : ops.getDefaultDevice();
  for (const t of grads) {
    requireF32(op, t);
    if (!t.isContiguous) throw new RangeError(`${op}: gradients must be contiguous`);
  }
  return device;
}

/** The global L2 norm of all gradients as a shape-[] tensor (deterministic; no readback). */
export function gradNorm(grads: readonly Tensor[]): Tensor {
  const op = 'gradNorm';
  const device = normInputs(op, grads);
  const norm = empty([], 'f32', device);
  launch(op, device, {
    gpu: (at, queue) => {
      const operands = grads.map((t) => at(t));
      const scratch = empty([gradNormScratchBytes(operands) / 4], 'f32', 'gpu');
      gradNormGpu(queue, at(norm), operands, { scratch: scratch.storage.buffer! });
      scratch.dispose();
    },
    cpu: (at) => gradNormCpu(at(norm), grads.map((t) => at(t))),
  });
  return norm;
}

/**
 * Clips in place so the global norm is at most `maxNorm`: every grad *= min(1, maxNorm/(norm+1e-6)),
 * with the coefficient computed on the GPU. Returns the norm before clipping (shape []).
 */
export function clipGradNorm(grads: readonly Tensor[], maxNorm: number): Tensor {
  const op = 'clipGradNorm';
  const device = normInputs(op, grads);
  const norm = empty([], 'f32', device);
  launch(op, device, {
    gpu: (at, queue) => {
      const operands = grads.map((t) => at(t));
      const scratch = empty([gradNormScratchBytes(operands) / 4], 'f32', 'gpu');
      clipGradNormGpu(queue, at(norm), operands, maxNorm, { scratch: scratch.storage.buffer! });
      scratch.dispose();
    },
    cpu: (at) => clipGradNormCpu(at(norm), grads.map((t) => at(t)), maxNorm),
  });
  return norm;
}
