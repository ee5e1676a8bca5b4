/**
 * Row kernels along the last axis: softmax, log-softmax and the fused log-softmax + cross-entropy,
 * forward and backward, each with its float64 CPU reference. Also the shared row machinery
 * (`rowLayout`, `rowKernelSource`, `runRowKernel`) that norm.ts builds on.
 *
 * A row is the last axis of a strided view; the leading dims are coalesced jointly over every
 * operand and travel in the uniform block (offset, column stride and ≤ 4 lead strides per operand),
 * so transposed or sliced inputs and outputs need no copy. Per-row operands (targets, loss,
 * logsumexp, mean, rstd) are views with column stride 0; per-column ones (LayerNorm weight) have
 * lead strides 0. Three addressing modes, each its own pipeline: 'v' binds row-wide operands as
 * vec4<f32> when every row is 16-byte aligned (C % 4 = 0, offsets and lead strides multiples of 4),
 * 'u' unit-stride scalars, 's' strided scalars.
 *
 * Schedules: `L` lanes cooperate on a row (L = 1: one thread per row, 64 rows per workgroup; L > 1:
 * 64/L rows per 64-thread workgroup, or one row per L-thread workgroup for L > 64); lanes stride over
 * the (vector) columns. Row-wide reductions go through workgroup memory: "flat" (every lane of the
 * row reads the row's L partials after one barrier) for L ≤ 16, "leader" (lane 0 folds them, a
 * second barrier broadcasts) above, or a classic "tree". Buffers are double-buffered so one barrier
 * guards both RAW and WAR hazards between consecutive reductions. Every lane folds the partials in
 * the same order, so results do not depend on the schedule's timing.
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
import { KernelQueue, grid } from './queue.js';
import { type CpuOperand, type GpuOperand, type View, UniformWriter, coalesce, numel, uniformBlock } from './layout.js';
import { IEEE_WGSL } from './math.js';

// ---------------------------------------------------------------------------------------------
// Row layouts shared by every row kernel

/** Largest number of leading dims (after coalescing) a row kernel addresses. */
export const MAX_LEAD_RANK = 4;
/** Most operands a row kernel takes. */
export const MAX_ROW_OPERANDS = 7;
/** Words of the uniform block: header 0–7, lead shape 8–11, operand k at 12 + 8k. */
export const ROW_WORDS = 12 + 8 * MAX_ROW_OPERANDS;

/** WGSL: element offset of row `row` of row operand `k` (its lead dims unravelled from the uniform block). */
export const ROW_BASE_WGSL = `fn row_base(k: u32, row: u32) -> u32 {
  let at = 12u + 8u * k;
  var o = word(at);
  var rem = row;
  for (var d = word(2u); d > 0u; d--) {
    let size = word(7u + d);
    o += (rem % size) * word(at + 1u + d);
    rem = rem / size;
  }
  return o;
}`;

export interface RowLayout {
  rows: number;
  cols: number;
  leadShape: number[];
  /** Per operand: element offset, column stride, lead strides (coalesced). */
  operands: { offset: number; colStride: number; leadStrides: number[] }[];
}

/**
 * Rows of `shape` (last axis) as seen by each view. Views must all have `shape`; a per-row operand
 * is passed as a view with column stride 0, a per-column one with lead strides 0.
 */
export function rowLayout(op: string, shape: readonly number[], views: readonly View[]): RowLayout {
  if (shape.length === 0) throw new RangeError(`${op}: needs at least one dim (rows are along the last axis)`);
  if (views.length > MAX_ROW_OPERANDS) throw new RangeError(`${op}: too many operands (${views.length})`);
  for (const v of views) {
    if (v.shape.length !== shape.length || v.shape.some((s, d) => s !== shape[d])) {
      throw new RangeError(`${op}: operand view [${v.shape.join(', ')}] does not match [${shape.join(', ')}]`);
    }
  }
  const cols = shape[shape.length - 1]!;
  const lead = shape.slice(0, -1);
  const merged = coalesce(lead, views.map((v) => v.strides.slice(0, -1)));
  if (merged.shape.length > MAX_LEAD_RANK) {
    throw new RangeError(`${op}: the leading dims of [${shape.join(', ')}] need ${merged.shape.length} strided dims (max ${MAX_LEAD_RANK}); make the input contiguous first`);
  }
  const operands = views.map((v, k) => ({ offset: v.offset, colStride: v.strides[shape.length - 1]!, leadStrides: merged.strides[k]! }));
  return {
    rows: numel(lead),
    cols,
    leadShape: merged.shape,
    operands,
  };
}

/**
 * Row-wide reductions: max, sum, sum2 (a vec2<f32> of two sums) and lse (a vec2<f32> (max, Σexp(x−max))
 * pair of an online softmax; combined by rescaling to the larger max).
 */
export type RowReduceKind = 'max' | 'sum' | 'sum2' | 'lse';

/** Schedule of a row kernel: lanes per row and the reduction style. */
export interface RowSchedule {
  lanes: 1 | 4 | 16 | 64 | 128 | 256;
  reduce?: 'flat' | 'leader' | 'tree';
  /** Threads per workgroup (default max(64, lanes)); a multiple of `lanes`. */
  wg?: number;
}

/**
 * The default schedule for `rows` rows of `cols` (vector) columns, chosen by measurement (see the
 * file comment): one thread per row unless there are too few rows to fill the adapter, then 4, 16
 * or 64 lanes per row while each lane keeps ≥ 32 vector columns.
 */
export function defaultRowSchedule(rows: number, cols: number): RowSchedule {
  let lanes: 1 | 4 | 16 | 64 = 1;
  while (lanes < 64 && rows * lanes < 256 && cols / (lanes * 4) >= 32) lanes = (lanes * 4) as 4 | 16 | 64;
  return { lanes };
}

export interface RowOperandDecl {
  name: string;
  type: 'f32' | 'i32';
  write: boolean;
  /** Read or written only at the row's base (targets, loss, mean, rstd): always scalar. */
  perRow?: boolean;
}

/** How columns are addressed: 'v' vec4 words, 'u' unit-stride scalars, 's' strided scalars. */
export type RowMode = 'v' | 'u' | 's';

/**
 * Code-generation context handed to a row kernel's body. In scope in the body: `row` (clamped row
 * index), `valid` (row < rows), `lane`, `C` (columns), `CV` (vector columns: C/4 in mode 'v'),
 * `NEG_INF`, the type alias `VF` (f32, or vec4<f32> in mode 'v'), `hsum(VF)`, `hmax(VF)`,
 * `vcol(c) -> VI` (column indices as i32 / vec4<i32>) and per operand `<name>_o` (row base).
 */
export interface RowCtx {
  readonly mode: RowMode;
  /** The VF value at vector column `c` of a row-wide operand (an lvalue). */
  at(name: string, c: string): string;
  /** The scalar at column `col` (u32 expression) of a row-wide operand. */
  el(name: string, col: string): string;
  /** The per-row scalar of a per-row operand (an lvalue). */
  row(name: string): string;
  /** Loops this lane's vector columns with `c`. */
  cols(body: string): string;
  /** Makes `v` the row-wide max / sum (`sum2`: a vec2<f32> of two sums), identical in every lane. */
  reduce(v: string, kind: RowReduceKind): string;
}

const WG = 64;

function workgroupSize(s: RowSchedule): number {
  return s.wg ?? Math.max(WG, s.lanes);
}

/** WGSL of a row kernel; `body` gets the context above. `extra` is WGSL placed before main. */
export function rowKernelSource(operands: readonly RowOperandDecl[], schedule: RowSchedule, mode: RowMode, body: (ctx: RowCtx) => string, extra = ''): string {
  const L = schedule.lanes;
  const wg = workgroupSize(schedule);
  const rpg = wg / L;
  const style = schedule.reduce ?? (L <= 16 ? 'flat' : 'leader');
  const isVec = (o: RowOperandDecl) => mode === 'v' && !o.perRow && o.type === 'f32';
  const decls = operands.map(
    (o, k) => `@group(0) @binding(${k + 1}) var<storage, ${o.write ? 'read_write' : 'read'}> ${o.name}: array<${isVec(o) ? 'vec4<f32>' : o.type}>;`,
  );
  let reductions = 0;
  const used = new Set<string>();
  const typeOf = (kind: RowReduceKind) => (kind === 'sum2' || kind === 'lse' ? 'vec2<f32>' : 'f32');
  const combine = (kind: RowReduceKind, a: string, b: string) =>
    kind === 'max' ? `max(${a}, ${b})` : kind === 'lse' ? `lse_combine(${a}, ${b})` : `${a} + ${b}`;
  const ctx: RowCtx = {
    mode,
    at: (name, c) => (mode === 's' ? `${name}[${name}_o + ${c} * ${name}_s]` : `${name}[${name}_o + ${c}]`),
    el: (name, col) =>
      mode === 'v' ? `${name}[${name}_o + (${col}) / 4u][(${col}) % 4u]` : mode === 's' ? `${name}[${name}_o + (${col}) * ${name}_s]` : `${name}[${name}_o + ${col}]`,
    row: (name) => `${name}[${name}_o]`,
    cols: (inner) => `for (var c = ${L === 1 ? '0u' : 'lane'}; c < CV; c += ${L}u) {\n${inner}\n}`,
    reduce: (v, kind) => {
      if (L === 1) return '';
      const tag = typeOf(kind) === 'f32' ? 'f' : 'v';
      const buf = `red${tag}${reductions % 2}`;
      const bc = `bc${tag}${reductions % 2}`;
      reductions++;
      used.add(`var<workgroup> ${buf}: array<${typeOf(kind)}, ${wg}>;`);
      if (style === 'flat') {
        return `${buf}[lid] = ${v};
  workgroupBarrier();
  { var acc = ${buf}[base];
    for (var i = 1u; i < ${L}u; i++) { acc = ${combine(kind, 'acc', `${buf}[base + i]`)}; }
    ${v} = acc; }`;
      }
      if (style === 'leader') {
        used.add(`var<workgroup> ${bc}: array<${typeOf(kind)}, ${rpg}>;`);
        return `${buf}[lid] = ${v};
  workgroupBarrier();
  if (lane == 0u) {
    var acc = ${buf}[base];
    for (var i = 1u; i < ${L}u; i++) { acc = ${combine(kind, 'acc', `${buf}[base + i]`)}; }
    ${bc}[slot] = acc;
  }
  workgroupBarrier();
  ${v} = ${bc}[slot];`;
      }
      return `${buf}[lid] = ${v};
  workgroupBarrier();
  for (var s = ${L / 2}u; s > 0u; s = s >> 1u) {
    if (lane < s) { ${buf}[lid] = ${combine(kind, `${buf}[lid]`, `${buf}[lid + s]`)}; }
    workgroupBarrier();
  }
  ${v} = ${buf}[base];`;
    },
  };
  const code = body(ctx);
  const bases = operands
    .map((o, k) => `let ${o.name}_o = row_base(${k}u, row)${isVec(o) ? ' / 4u' : ''};${mode === 's' && !o.perRow ? ` let ${o.name}_s = word(${12 + 8 * k + 1}u);` : ''}`)
    .join('\n  ');
  const vecHelpers =
    mode === 'v'
      ? `alias VF = vec4<f32>;
alias VI = vec4<i32>;
alias VU = vec4<u32>;
fn hsum(v: VF) -> f32 { return (v.x + v.y) + (v.z + v.w); }
fn hmax(v: VF) -> f32 { return max(max(v.x, v.y), max(v.z, v.w)); }
fn vcol(c: u32) -> VI { return vec4<i32>(i32(4u * c)) + vec4<i32>(0, 1, 2, 3); }`
      : `alias VF = f32;
alias VI = i32;
alias VU = u32;
fn hsum(v: VF) -> f32 { return v; }
fn hmax(v: VF) -> f32 { return v; }
fn vcol(c: u32) -> VI { return i32(c); }`;
  // Online-softmax helpers. LOWEST (-FLT_MAX) starts a running max: unlike -inf it keeps
  // exp(m_old - m_new) finite when the row begins with -inf entries. A NaN or +inf entry poisons
  // the pair (max NaN): PyTorch's softmax of such a row is NaN, and so is that of an all -inf row
  // (Σ = 0), which `lse_undefined` reports.
  const onlineHelpers = `const LOWEST = bitcast<f32>(0xff7fffffu);
fn lse_bad(v: VF) -> bool {
  let b = bitcast<VU>(v);
  return any(((b & VU(0x7fffffffu)) > VU(0x7f800000u)) | (b == VU(0x7f800000u)));
}
fn lse_combine(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  if (is_nan(a.x) || is_nan(b.x)) { return vec2<f32>(nan_f32(), 0.0); }
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}
fn lse_push(a: vec2<f32>, v: VF) -> vec2<f32> {
  if (is_nan(a.x) || lse_bad(v)) { return vec2<f32>(nan_f32(), 0.0); }
  let m = max(a.x, hmax(v));
  return vec2<f32>(m, a.y * exp(a.x - m) + hsum(exp(v - m)));
}
fn lse_undefined(a: vec2<f32>) -> bool { return is_nan(a.x) || a.y == 0.0; }`;
  return `${uniformBlock(ROW_WORDS)}
${decls.join('\n')}
${[...used].join('\n')}
${vecHelpers}
${IEEE_WGSL}
${onlineHelpers}
${ROW_BASE_WGSL}
${extra}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % ${L}u;
  let slot = lid / ${L}u;
  let base = slot * ${L}u;
  let rowRaw = (wid.x + wid.y * nwg.x) * ${rpg}u + slot;
  let valid = rowRaw < word(0u);
  let row = min(rowRaw, word(0u) - 1u);
  let C = word(1u);
  let CV = C${mode === 'v' ? ' / 4u' : ''};
  let NEG_INF = bitcast<f32>(word(3u));
  ${bases}
  ${code}
}`;
}

/** Fills the row uniform block; header words 4–7 are the kernel's own scalars. */
export function rowUniforms(layout: RowLayout, scalars: (u: UniformWriter) => void = () => {}): UniformWriter {
  const u = new UniformWriter(ROW_WORDS).u32(0, layout.rows).u32(1, layout.cols).u32(2, layout.leadShape.length).f32(3, -Infinity);
  u.array(8, layout.leadShape, MAX_LEAD_RANK, 1);
  layout.operands.forEach((o, k) => {
    u.u32(12 + 8 * k, o.offset).u32(12 + 8 * k + 1, o.colStride).array(12 + 8 * k + 2, o.leadStrides, MAX_LEAD_RANK);
  });
  scalars(u);
  return u;
}

/** The addressing mode a launch can use: vec4 when every row-wide operand is 16-byte aligned. */
export function rowMode(layout: RowLayout, operands: readonly RowOperandDecl[], allowVec = true): RowMode {
  const wide = layout.operands.filter((_, k) => !operands[k]!.perRow);
  if (layout.cols > 1 && !wide.every((o) => o.colStride === 1)) return 's';
  const aligned = wide.every((o, k) => operands[k]!.type !== 'f32' || (o.offset % 4 === 0 && o.leadStrides.every((s) => s % 4 === 0)));
  return allowVec && layout.cols % 4 === 0 && layout.cols > 0 && aligned && wide.length > 0 ? 'v' : 'u';
}

/** Dispatches a row kernel over `layout.rows` rows. */
export function runRowKernel(
  queue: KernelQueue,
  opts: {
    key: string;
    operands: readonly RowOperandDecl[];
    buffers: GPUBuffer[];
    layout: RowLayout;
    schedule?: RowSchedule;
    body: (ctx: RowCtx) => string;
    extra?: string;
    scalars?: (u: UniformWriter) => void;
    allowVec?: boolean;
  },
): void {
  const { layout } = opts;
  if (layout.rows === 0) return;
  const mode = rowMode(layout, opts.operands, opts.allowVec ?? true);
  const schedule = opts.schedule ?? defaultRowSchedule(layout.rows, mode === 'v' ? layout.cols / 4 : layout.cols);
  const wg = workgroupSize(schedule);
  queue.dispatch({
    key: `${opts.key}:L${schedule.lanes}${schedule.reduce ?? ''}w${wg}:${mode}`,
    source: () => rowKernelSource(opts.operands, schedule, mode, opts.body, opts.extra),
    storage: opts.buffers,
    uniforms: rowUniforms(layout, opts.scalars).data,
    workgroups: grid(Math.ceil(layout.rows / (wg / schedule.lanes)), queue.device.limits.maxComputeWorkgroupsPerDimension),
    label: opts.key,
  });
}

/** Calls `visit` with each operand's base offset for every row of `layout` (CPU side). */
export function forEachRow(layout: RowLayout, visit: (row: number, bases: number[]) => void): void {
  const rank = layout.leadShape.length;
  for (let r = 0; r < layout.rows; r++) {
    const bases = layout.operands.map((o) => {
      let off = o.offset;
      let rem = r;
      for (let d = rank - 1; d >= 0; d--) {
        const size = layout.leadShape[d]!;
        off += (rem % size) * o.leadStrides[d]!;
        rem = Math.floor(rem / size);
      }
      return off;
    });
    visit(r, bases);
  }
}

/** A view of a per-row tensor (shape = the lead dims) as an operand of `shape`: column stride 0. */
export function perRowView(t: View, shape: readonly number[]): View {
  if (t.shape.length !== shape.length - 1 || t.shape.some((s, d) => s !== shape[d])) {
    throw new RangeError(`per-row operand [${t.shape.join(', ')}] does not match the rows of [${shape.join(', ')}]`);
  }
  return { shape, strides: [...t.strides, 0], offset: t.offset };
}

/** A view of a per-column vector [C] as an operand of `shape`: lead strides 0. */
export function perColumnView(t: View, shape: readonly number[]): View {
  const C = shape[shape.length - 1];
  if (t.shape.length !== 1 || t.shape[0] !== C) throw new RangeError(`per-column operand [${t.shape.join(', ')}] must be [${C}]`);
  return { shape, strides: [...shape.slice(0, -1).map(() => 0), t.strides[0]!], offset: t.offset };
}

function gpuView(o: GpuOperand, shape: readonly number[]): View {
  return o.shape.length === shape.length ? o : perRowView(o, shape);
}

// ---------------------------------------------------------------------------------------------
// Softmax / log-softmax

const F = (name: string, write = false): RowOperandDecl => ({ name, type: 'f32', write });
const P = (name: string, write = false, type: 'f32' | 'i32' = 'f32'): RowOperandDecl => ({ name, type, write, perRow: true });

/** out = softmax(x) (or log-softmax) along the last axis; x and out share a shape, any strides. */
export function softmaxGpu(queue: KernelQueue, out: GpuOperand, x: GpuOperand, opts: { log?: boolean; schedule?: RowSchedule; allowVec?: boolean } = {}): void {
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
  ${log
    ? `let logSum = log(a.y);
  ${k.cols(`${k.at('y', 'c')} = select((${k.at('x', 'c')} - m) - logSum, nanRow, undefinedRow);`)}`
    : `let inv = 1.0 / a.y;
  ${k.cols(`${k.at('y', 'c')} = select(exp(${k.at('x', 'c')} - m) * inv, nanRow, undefinedRow);`)}`}`,
  });
}

/**
 * Softmax backward: dx = y ⊙ (dy − Σ dy⊙y); with `log`, log-softmax backward from its output
 * y = log p: dx = dy − exp(y) Σ dy.
 */
export function softmaxBackwardGpu(queue: KernelQueue, dx: GpuOperand, y: GpuOperand, dy: GpuOperand, opts: { log?: boolean; schedule?: RowSchedule } = {}): void {
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
  ${k.cols(log
    ? `${k.at('dx', 'c')} = ${k.at('dy', 'c')} - exp(${k.at('y', 'c')}) * s;`
    : `${k.at('dx', 'c')} = ${k.at('y', 'c')} * (${k.at('dy', 'c')} - s);`)}`,
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
    for (let c = 0; c < C; c++) dx.data[xb! + c * xo!.colStride] = opts.log ? G(c) - Math.exp(Y(c)) * s : Y(c) * (G(c) - s);
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
export function crossEntropyGpu(queue: KernelQueue, loss: GpuOperand, lse: GpuOperand, logits: GpuOperand, targets: GpuOperand, opts: CrossEntropyOptions = {}): void {
  const shape = logits.shape;
  const layout = rowLayout('crossEntropy', shape, [logits, gpuView(targets, shape), gpuView(loss, shape), gpuView(lse, shape)]);
  const eps = opts.labelSmoothing ?? 0;
  const smooth = eps !== 0;
  runRowKernel(queue, {
    key: `crossEntropy:${smooth ? 'smooth' : 'hard'}`,
    operands: [F('x'), P('tg', false, 'i32'), P('loss', true), P('lse', true)],
    buffers: [logits.buffer, targets.buffer, loss.buffer, lse.buffer],
    layout,
    schedule: opts.schedule,
    scalars: (u) => u.i32(4, opts.ignoreIndex ?? -100).f32(5, 1 - eps).f32(6, eps / Math.max(1, layout.cols)).f32(7, NaN),
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
  const layout = rowLayout('crossEntropyBackward', shape, [logits, gpuView(targets, shape), gpuView(lse, shape), gpuView(dloss, shape), dlogits]);
  const eps = opts.labelSmoothing ?? 0;
  runRowKernel(queue, {
    key: 'crossEntropyBackward',
    operands: [F('x'), P('tg', false, 'i32'), P('lse'), P('dl'), F('dx', true)],
    buffers: [logits.buffer, targets.buffer, lse.buffer, dloss.buffer, dlogits.buffer],
    layout,
    schedule: opts.schedule,
    scalars: (u) => u.i32(4, opts.ignoreIndex ?? -100).f32(5, 1 - eps).f32(6, eps / Math.max(1, layout.cols)).f32(7, opts.scale ?? 1),
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

export function crossEntropyCpu(loss: CpuOperand, lse: CpuOperand, logits: CpuOperand, targets: CpuOperand, opts: CrossEntropyOptions = {}): void {
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
  const layout = rowViews(shape, logits, perRowView(targets, shape), perRowView(lse, shape), perRowView(dloss, shape), dlogits);
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
