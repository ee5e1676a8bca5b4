/**
 * Softmax, log-softmax and the fused log-softmax + cross-entropy along the last axis, forward and
 * backward, each with its float64 CPU reference; row kernels on the machinery of rows.ts.
 *
 * Versions tried (SwiftShader 5.0.0 via Dawn, 2 cores of a shared VM whose other tenants made every
 * figure swing ±30–50%: "p50 / best" of interleaved rounds; softmax over [1024, 1024] counts 1 read +
 * 1 write = 8 MiB; the vec4 copy kernel measured 0.8–1.5 GB/s p50, 1.3–2.5 GB/s best in the same runs;
 * jax-js: 0.159 GB/s):
 *  v1 scalar loads, 3 passes (max, Σexp, write exp·inv), L = 1/4/16/64/256 lanes per row:
 *     L=1 0.20–0.36 GB/s, L=4 0.12–0.20, L=16 0.11, L=64 0.055 (leader) / 0.040 (tree), L=256 0.010.
 *     Barriers are what costs here: every extra lane per row made it slower.
 *  v2 vec4 loads (rows 16-byte aligned, C % 4 = 0): L=1 0.52–0.64 GB/s p50, L=4 0.34, L=16 0.22, L=64 0.08.
 *  v3 v2 + online max/Σexp in one pass (then a write pass): 0.59 vs 0.53 GB/s p50 for the 3-pass v2
 *     (15 interleaved rounds) — chosen; its (max, Σ) pair is also the one cross-lane reduction (`lse`).
 *  tried, not kept: storing exp(x−m) in pass 2 and rescaling it in pass 3 (no better than recomputing
 *     exp), unrolling the online pass by two vec4 (within noise), workgroup sizes 4/8/16/32/64 for L=1
 *     (within noise).
 *  bench/softmax.ts, final: 0.35–0.59 GB/s p50, 0.55–0.86 GB/s best = 2.2–3.7× jax-js (p50), ≈ 40–45%
 *  of the copy kernel; log-softmax ≈ 1.5× faster (no exp in its write pass).
 *  Schedule: one thread per row (L=1) unless rows are too few to fill the adapter (< 256 threads),
 *  then 4/16/64 lanes per row ([4, 262144]: L=64 0.32 GB/s vs L=1 0.036).
 * Cross-entropy fwd+bwd on [16384, 70] (rows not 16-byte aligned: scalar loads): L=1 36–44 ms best,
 * 53–81 ms p50; L=4 90 ms best; C = 72 (vec4) for comparison: ≈ 21 ms best. A flat one-thread-per-vec4
 * backward (row found by division) for unaligned C was no faster (17.5 vs 16.9 ms best) — not kept.
 */
import { KernelQueue } from './queue.js';
import { type CpuOperand, type GpuOperand, type View } from './layout.js';
import {
  type RowLayout,
  type RowOperandDecl,
  type RowSchedule,
  forEachRow,
  perRowView,
  rowLayout,
  runRowKernel,
} from './rows.js';

function gpuView(o: GpuOperand, shape: readonly number[]): View {
  return o.shape.length === shape.length ? o : perRowView(o, shape);
}

// ---------------------------------------------------------------------------------------------
// Softmax / log-softmax

const F = (name: string, write = false): RowOperandDecl => ({ name, type: 'f32', write });
const P = (name: string, write = false, type: 'f32' | 'i32' = 'f32'): RowOperandDecl => ({
  name,
  type,
  write,
  perRow: true,
});

/** out = softmax(x) (or log-softmax) along the last axis; x and out share a shape, any strides. */
export function softmaxGpu(
  queue: KernelQueue,
  out: GpuOperand,
  x: GpuOperand,
  opts: { log?: boolean; schedule?: RowSchedule; allowVec?: boolean } = {},
): void {
  const layout = rowLayout('softmax', x.shape, [x, out]);
  const log = opts.log ?? false;
  runRowKernel(queue, {
    key: `softmax:${log ? 'log' : 'exp'}`,
    operands: [F('x'), F('y', true)],
    buffers: [x.buffer, out.buffer],
    layout,
    schedule: opts.schedule,
    allowVec: opts.allowVec,
    body: (k) => `
  var a = vec2<f32>(LOWEST, 0.0);
  ${k.cols(`a = lse_push(a, ${k.at('x', 'c')});`)}
  ${k.reduce('a', 'lse')}
  if (!valid) { return; }
  let m = a.x;
  let undefinedRow = lse_undefined(a);
  let nanRow = VF(nan_f32());
  ${
    log
      ? `let logSum = log(a.y);
  ${k.cols(`${k.at('y', 'c')} = select((${k.at('x', 'c')} - m) - logSum, nanRow, undefinedRow);`)}`
      : `let inv = 1.0 / a.y;
  ${k.cols(`${k.at('y', 'c')} = select(exp(${k.at('x', 'c')} - m) * inv, nanRow, undefinedRow);`)}`
  }`,
  });
}

/**
 * Softmax backward: dx = y ⊙ (dy − Σ dy⊙y); with `log`, log-softmax backward from its output
 * y = log p: dx = dy − exp(y) Σ dy.
 */
export function softmaxBackwardGpu(
  queue: KernelQueue,
  dx: GpuOperand,
  y: GpuOperand,
  dy: GpuOperand,
  opts: { log?: boolean; schedule?: RowSchedule } = {},
): void {
  const layout = rowLayout('softmaxBackward', y.shape, [y, dy, dx]);
  const log = opts.log ?? false;
  runRowKernel(queue, {
    key: `softmaxBackward:${log ? 'log' : 'exp'}`,
    operands: [F('y'), F('dy'), F('dx', true)],
    buffers: [y.buffer, dy.buffer, dx.buffer],
    layout,
    schedule: opts.schedule,
    body: (k) => `
  var s = 0.0;
  ${k.cols(log ? `s += hsum(${k.at('dy', 'c')});` : `s += hsum(${k.at('dy', 'c')} * ${k.at('y', 'c')});`)}
  ${k.reduce('s', 'sum')}
  if (!valid) { return; }
  ${k.cols(
    log
      ? `${k.at('dx', 'c')} = ${k.at('dy', 'c')} - exp(${k.at('y', 'c')}) * s;`
      : `${k.at('dx', 'c')} = ${k.at('y', 'c')} * (${k.at('dy', 'c')} - s);`,
  )}`,
  });
}

function rowViews(shape: readonly number[], ...views: View[]): RowLayout {
  return rowLayout('row', shape, views);
}

export function softmaxCpu(out: CpuOperand, x: CpuOperand, opts: { log?: boolean } = {}): void {
  const layout = rowViews(x.shape, x, out);
  const C = layout.cols;
  const [xo, yo] = layout.operands;
  forEachRow(layout, (_, [xb, yb]) => {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x.data[xb! + c * xo!.colStride]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x.data[xb! + c * xo!.colStride]! - m);
    // (x − m) − log Σ, not x − (m + log Σ): no cancellation when |x| is large.
    const logSum = Math.log(s);
    for (let c = 0; c < C; c++) {
      const v = x.data[xb! + c * xo!.colStride]!;
      out.data[yb! + c * yo!.colStride] = opts.log ? v - m - logSum : Math.exp(v - m) / s;
    }
  });
}

export function softmaxBackwardCpu(dx: CpuOperand, y: CpuOperand, dy: CpuOperand, opts: { log?: boolean } = {}): void {
  const layout = rowViews(y.shape, y, dy, dx);
  const C = layout.cols;
  const [yo, go, xo] = layout.operands;
  forEachRow(layout, (_, [yb, gb, xb]) => {
    const Y = (c: number) => y.data[yb! + c * yo!.colStride]!;
    const G = (c: number) => dy.data[gb! + c * go!.colStride]!;
    let s = 0;
    for (let c = 0; c < C; c++) s += opts.log ? G(c) : G(c) * Y(c);
    for (let c = 0; c < C; c++)
      dx.data[xb! + c * xo!.colStride] = opts.log ? G(c) - Math.exp(Y(c)) * s : Y(c) * (G(c) - s);
  });
}

// ---------------------------------------------------------------------------------------------
// Fused log-softmax + cross-entropy

export interface CrossEntropyOptions {
  /** Rows whose target equals this get loss 0 and gradient 0 (default -100). */
  ignoreIndex?: number;
  /** Label smoothing ε in [0, 1): target distribution (1−ε)·onehot + ε/C (default 0). */
  labelSmoothing?: number;
  schedule?: RowSchedule;
}

/**
 * Per-row cross-entropy of `logits` [..., C] against i32 `targets` [...]: writes `loss` [...]
 * (0 on ignored rows) and the row's logsumexp `lse` [...] (saved for the backward). A target
 * outside [0, C) that is not the ignore index gives NaN.
 */
export function crossEntropyGpu(
  queue: KernelQueue,
  loss: GpuOperand,
  lse: GpuOperand,
  logits: GpuOperand,
  targets: GpuOperand,
  opts: CrossEntropyOptions = {},
): void {
  const shape = logits.shape;
  const layout = rowLayout('crossEntropy', shape, [
    logits,
    gpuView(targets, shape),
    gpuView(loss, shape),
    gpuView(lse, shape),
  ]);
  const eps = opts.labelSmoothing ?? 0;
  const smooth = eps !== 0;
  runRowKernel(queue, {
    key: `crossEntropy:${smooth ? 'smooth' : 'hard'}`,
    operands: [F('x'), P('tg', false, 'i32'), P('loss', true), P('lse', true)],
    buffers: [logits.buffer, targets.buffer, loss.buffer, lse.buffer],
    layout,
    schedule: opts.schedule,
    scalars: (u) =>
      u
        .i32(4, opts.ignoreIndex ?? -100)
        .f32(5, 1 - eps)
        .f32(6, eps / Math.max(1, layout.cols))
        .f32(7, NaN),
    body: (k) => `
  var a = vec2<f32>(LOWEST, 0.0);
  ${smooth ? 'var sx = 0.0;' : ''}
  ${k.cols(`let v = ${k.at('x', 'c')}; a = lse_push(a, v);${smooth ? ' sx += hsum(v);' : ''}`)}
  ${k.reduce('a', 'lse')}
  ${smooth ? k.reduce('sx', 'sum') : ''}
  if (!valid || lane != 0u) { return; }
  let l = select(a.x + log(a.y), nan_f32(), lse_undefined(a));
  ${k.row('lse')} = l;
  let t = ${k.row('tg')};
  var out = 0.0;
  if (t != bitcast<i32>(word(4u))) {
    if (t < 0 || u32(t) >= C) {
      out = bitcast<f32>(word(7u));
    } else {
      out = select(l - bitcast<f32>(word(5u)) * ${k.el('x', 'u32(t)')}${smooth ? ' - bitcast<f32>(word(6u)) * sx' : ''}, l, is_nan(l));
    }
  }
  ${k.row('loss')} = out;`,
  });
}

/**
 * dlogits = (softmax(logits) − (1−ε)·onehot − ε/C) · dloss[row] · scale, from the saved per-row
 * logsumexp; ignored rows get 0. `dloss` is per row ([...], stride 0 broadcasts one value: for the
 * mean reduction pass g/count there). One pass; probabilities are never written.
 */
export function crossEntropyBackwardGpu(
  queue: KernelQueue,
  dlogits: GpuOperand,
  logits: GpuOperand,
  targets: GpuOperand,
  lse: GpuOperand,
  dloss: GpuOperand,
  opts: CrossEntropyOptions & { scale?: number } = {},
): void {
  const shape = logits.shape;
  const layout = rowLayout('crossEntropyBackward', shape, [
    logits,
    gpuView(targets, shape),
    gpuView(lse, shape),
    gpuView(dloss, shape),
    dlogits,
  ]);
  const eps = opts.labelSmoothing ?? 0;
  runRowKernel(queue, {
    key: 'crossEntropyBackward',
    operands: [F('x'), P('tg', false, 'i32'), P('lse'), P('dl'), F('dx', true)],
    buffers: [logits.buffer, targets.buffer, lse.buffer, dloss.buffer, dlogits.buffer],
    layout,
    schedule: opts.schedule,
    scalars: (u) =>
      u
        .i32(4, opts.ignoreIndex ?? -100)
        .f32(5, 1 - eps)
        .f32(6, eps / Math.max(1, layout.cols))
        .f32(7, opts.scale ?? 1),
    body: (k) => `
  if (!valid) { return; }
  let t = ${k.row('tg')};
  let l = ${k.row('lse')};
  let g = select(${k.row('dl')} * bitcast<f32>(word(7u)), 0.0, t == bitcast<i32>(word(4u)));
  let lo = VF(bitcast<f32>(word(6u)));
  let hi = lo + VF(bitcast<f32>(word(5u)));
  // A NaN row (NaN or +inf logits) gets a NaN gradient, ignored or not, as PyTorch's does.
  let nanRow = is_nan(l);
  ${k.cols(`${k.at('dx', 'c')} = select((exp(${k.at('x', 'c')} - l) - select(lo, hi, vcol(c) == VI(t))) * g, VF(nan_f32()), nanRow);`)}`,
  });
}

export function crossEntropyCpu(
  loss: CpuOperand,
  lse: CpuOperand,
  logits: CpuOperand,
  targets: CpuOperand,
  opts: CrossEntropyOptions = {},
): void {
  const shape = logits.shape;
  const layout = rowViews(shape, logits, perRowView(targets, shape), perRowView(loss, shape), perRowView(lse, shape));
  const C = layout.cols;
  const eps = opts.labelSmoothing ?? 0;
  const ignore = opts.ignoreIndex ?? -100;
  const cs = layout.operands[0]!.colStride;
  forEachRow(layout, (_, [xb, tb, lb, sb]) => {
    const X = (c: number) => logits.data[xb! + c * cs]!;
    let m = -Infinity;
    let sx = 0;
    for (let c = 0; c < C; c++) {
      m = Math.max(m, X(c));
      sx += X(c);
    }
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(X(c) - m);
    const l = m + Math.log(s);
    lse.data[sb!] = l;
    const t = targets.data[tb!]!;
    // The smoothing term only when ε > 0: 0 · (−inf) would turn a −inf logit's +inf loss into NaN.
    const smoothing = eps === 0 ? 0 : (eps / C) * sx;
    loss.data[lb!] = t === ignore ? 0 : t < 0 || t >= C ? NaN : l - (1 - eps) * X(t) - smoothing;
  });
}

export function crossEntropyBackwardCpu(
  dlogits: CpuOperand,
  logits: CpuOperand,
  targets: CpuOperand,
  lse: CpuOperand,
  dloss: CpuOperand,
  opts: CrossEntropyOptions & { scale?: number } = {},
): void {
  const shape = logits.shape;
  const layout = rowViews(
    shape,
    logits,
    perRowView(targets, shape),
    perRowView(lse, shape),
    perRowView(dloss, shape),
    dlogits,
  );
  const C = layout.cols;
  const eps = opts.labelSmoothing ?? 0;
  const ignore = opts.ignoreIndex ?? -100;
  const xs = layout.operands[0]!.colStride;
  const ds = layout.operands[4]!.colStride;
  forEachRow(layout, (_, [xb, tb, lb, gb, db]) => {
    const t = targets.data[tb!]!;
    const g = t === ignore ? 0 : dloss.data[gb!]! * (opts.scale ?? 1);
    const l = lse.data[lb!]!;
    for (let c = 0; c < C; c++) {
      const p = Math.exp(logits.data[xb! + c * xs]! - l);
      dlogits.data[db! + c * ds] = (p - eps / C - (c === t ? 1 - eps : 0)) * g;
    }
  });
}
