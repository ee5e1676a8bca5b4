/**
 * The machinery every row kernel builds on (softmax.ts, norm.ts): row layouts, schedules, the WGSL
 * generator with its row-wide reductions, and the CPU side's row walk.
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
 */
import { KernelQueue, grid } from './queue.js';
import { type View, UniformWriter, coalesce, numel, uniformBlock } from './layout.js';
import { IEEE_WGSL } from './math.js';

/** Largest number of leading dims (after coalescing) a row kernel addresses. */
export const MAX_LEAD_RANK = 4;
/** Most operands a row kernel takes: WebGPU's default of 8 storage buffers per stage (residual LayerNorm uses all). */
export const MAX_ROW_OPERANDS = 8;
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
  const merged = coalesce(
    lead,
    views.map((v) => v.strides.slice(0, -1)),
  );
  if (merged.shape.length > MAX_LEAD_RANK) {
    throw new RangeError(
      `${op}: the leading dims of [${shape.join(', ')}] need ${merged.shape.length} strided dims ` +
        `(max ${MAX_LEAD_RANK}); make the input contiguous first`,
    );
  }
  const operands = views.map((v, k) => ({
    offset: v.offset,
    colStride: v.strides[shape.length - 1]!,
    leadStrides: merged.strides[k]!,
  }));
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
export function rowKernelSource(
  operands: readonly RowOperandDecl[],
  schedule: RowSchedule,
  mode: RowMode,
  body: (ctx: RowCtx) => string,
  extra = '',
): string {
  const L = schedule.lanes;
  const wg = workgroupSize(schedule);
  const rpg = wg / L;
  const style = schedule.reduce ?? (L <= 16 ? 'flat' : 'leader');
  const isVec = (o: RowOperandDecl) => mode === 'v' && !o.perRow && o.type === 'f32';
  const decls = operands.map(
    (o, k) =>
      `@group(0) @binding(${k + 1}) var<storage, ${o.write ? 'read_write' : 'read'}> ${o.name}: array<${isVec(o) ? 'vec4<f32>' : o.type}>;`,
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
      mode === 'v'
        ? `${name}[${name}_o + (${col}) / 4u][(${col}) % 4u]`
        : mode === 's'
          ? `${name}[${name}_o + (${col}) * ${name}_s]`
          : `${name}[${name}_o + ${col}]`,
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
    .map(
      (o, k) =>
        `let ${o.name}_o = row_base(${k}u, row)${isVec(o) ? ' / 4u' : ''};` +
        `${mode === 's' && !o.perRow ? ` let ${o.name}_s = word(${12 + 8 * k + 1}u);` : ''}`,
    )
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
  const u = new UniformWriter(ROW_WORDS)
    .u32(0, layout.rows)
    .u32(1, layout.cols)
    .u32(2, layout.leadShape.length)
    .f32(3, -Infinity);
  u.array(8, layout.leadShape, MAX_LEAD_RANK, 1);
  layout.operands.forEach((o, k) => {
    u.u32(12 + 8 * k, o.offset)
      .u32(12 + 8 * k + 1, o.colStride)
      .array(12 + 8 * k + 2, o.leadStrides, MAX_LEAD_RANK);
  });
  scalars(u);
  return u;
}

/** The addressing mode a launch can use: vec4 when every row-wide operand is 16-byte aligned. */
export function rowMode(layout: RowLayout, operands: readonly RowOperandDecl[], allowVec = true): RowMode {
  const wide = layout.operands.filter((_, k) => !operands[k]!.perRow);
  if (layout.cols > 1 && !wide.every((o) => o.colStride === 1)) return 's';
  const aligned = wide.every(
    (o, k) => operands[k]!.type !== 'f32' || (o.offset % 4 === 0 && o.leadStrides.every((s) => s % 4 === 0)),
  );
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
    workgroups: grid(Math.ceil(layout.rows / (wg / schedule.lanes)), queue.maxWorkgroupsPerDimension),
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
  if (t.shape.length !== 1 || t.shape[0] !== C)
    throw new RangeError(`per-column operand [${t.shape.join(', ')}] must be [${C}]`);
  return { shape, strides: [...shape.slice(0, -1).map(() => 0), t.strides[0]!], offset: t.offset };
}
