/**
 * LayerNorm and RMSNorm along the last axis, forward and backward, with float64 references.
 *
 * Forward (one row kernel, see rows.ts for the schedules): LayerNorm takes the mean, then the
 * variance as Σ(x−mean)²/C in a second pass over the (cached) row — no E[x²]−E[x]² cancellation —
 * and writes y plus the per-row mean and rstd = 1/√(var+eps) for the backward. RMSNorm writes y and
 * rstd = 1/√(mean(x²)+eps). Weight and bias are optional. With a residual r, the kernel normalises
 * x + r and also writes that sum (a pre-LN block's residual add and the next norm in one dispatch).
 *
 * Backward: dx by a row kernel with one paired reduction (Σg, Σg·x̂ with g = dy·w):
 *   LayerNorm dx = rstd·(g − mean(g) − x̂·mean(g·x̂)),  RMSNorm dx = rstd·(g − x̂·mean(g·x̂)).
 * dweight = Σ_rows dy·x̂ and dbias = Σ_rows dy are deterministic (no atomics): a column kernel
 * gives per-(row chunk, column) partial sums, a second kernel adds the chunks of each column in a
 * fixed order.
 *
 * Versions (SwiftShader, 2 cores of a shared, noisy VM; "best / p50" of interleaved rounds), [4096, 256]
 * with weight and bias:
 *  forward, the row schedules of rows.ts (one thread per row, vec4): 12.6–25 ms best, 22–51 ms p50;
 *    4 lanes per row (barriers): 41 / 95 ms.
 *  backward v1: dx row kernel + column partials over 8 chunks (512 column threads) whose rows were
 *    unravelled per row (integer divisions) + chunk reduce: 150–200 ms best, of which dx 15–30 ms.
 *  backward v2: rows with ≤ 1 lead dim (after coalescing) advance each base by its stride; chunks
 *    sized for ≥ 2048 column threads: 22.5 ms best, 40 ms p50 — chosen.
 */
import { KernelQueue, grid } from './queue.js';
import { type CpuOperand, type GpuOperand, type View, uniformBlock } from './layout.js';
import {
  type RowOperandDecl,
  type RowSchedule,
  ROW_BASE_WGSL,
  ROW_WORDS,
  forEachRow,
  perColumnView,
  perRowView,
  rowLayout,
  rowMode,
  rowUniforms,
  runRowKernel,
} from './rows.js';

export interface NormOptions {
  /** RMSNorm instead of LayerNorm (no mean, no bias). */
  rms?: boolean;
  eps?: number;
  schedule?: RowSchedule;
}

const F = (name: string, write = false): RowOperandDecl => ({ name, type: 'f32', write });
const P = (name: string, write = false): RowOperandDecl => ({ name, type: 'f32', write, perRow: true });

function asRowOperand(t: View, shape: readonly number[]): View {
  return t.shape.length === shape.length ? t : perRowView(t, shape);
}

/**
 * y = LayerNorm(x)·weight + bias (or RMSNorm(x)·weight) along the last axis. `mean` (LayerNorm
 * only) and `rstd` are per-row outputs of shape x.shape[:-1]; weight/bias are [C] or null. With
 * `residual` (x's shape), x + residual is normalised and written to `out.sum`.
 */
export function layerNormGpu(
  queue: KernelQueue,
  out: { y: GpuOperand; mean?: GpuOperand | null; rstd: GpuOperand; sum?: GpuOperand | null },
  x: GpuOperand,
  weight: GpuOperand | null,
  bias: GpuOperand | null,
  opts: NormOptions = {},
  residual: GpuOperand | null = null,
): void {
  const rms = opts.rms ?? false;
  if (rms && bias) throw new TypeError('rmsNorm: takes no bias');
  if (!rms && !out.mean) throw new TypeError('layerNorm: needs a mean output');
  if (residual && !out.sum) throw new TypeError('layerNorm: a residual needs a sum output');
  const shape = x.shape;
  const ops: { decl: RowOperandDecl; view: View; buffer: GPUBuffer }[] = [{ decl: F('x'), view: x, buffer: x.buffer }];
  if (residual) {
    ops.push({ decl: F('res'), view: residual, buffer: residual.buffer });
    ops.push({ decl: F('sum', true), view: out.sum!, buffer: out.sum!.buffer });
  }
  if (weight) ops.push({ decl: F('w'), view: perColumnView(weight, shape), buffer: weight.buffer });
  if (bias) ops.push({ decl: F('b'), view: perColumnView(bias, shape), buffer: bias.buffer });
  ops.push({ decl: F('y', true), view: out.y, buffer: out.y.buffer });
  if (!rms) ops.push({ decl: P('mean', true), view: asRowOperand(out.mean!, shape), buffer: out.mean!.buffer });
  ops.push({ decl: P('rstd', true), view: asRowOperand(out.rstd, shape), buffer: out.rstd.buffer });
  const layout = rowLayout(
    rms ? 'rmsNorm' : 'layerNorm',
    shape,
    ops.map((o) => o.view),
  );
  runRowKernel(queue, {
    key: `${rms ? 'rmsNorm' : 'layerNorm'}:${weight ? 'w' : ''}${bias ? 'b' : ''}${residual ? ':residual' : ''}`,
    operands: ops.map((o) => o.decl),
    buffers: ops.map((o) => o.buffer),
    layout,
    schedule: opts.schedule,
    scalars: (u) => u.f32(4, opts.eps ?? 1e-5),
    body: (k) => {
      const X = residual ? `(${k.at('x', 'c')} + ${k.at('res', 'c')})` : k.at('x', 'c');
      const S = residual ? `${k.at('sum', 'c')} = ${X}; ` : '';
      const W = weight ? ` * ${k.at('w', 'c')}` : '';
      const B = bias ? ` + ${k.at('b', 'c')}` : '';
      const invC = '(1.0 / f32(C))';
      if (rms) {
        return `
  var q = 0.0;
  ${k.cols(`let v = ${X}; q += hsum(v * v);`)}
  ${k.reduce('q', 'sum')}
  if (!valid) { return; }
  let r = inverseSqrt(q * ${invC} + bitcast<f32>(word(4u)));
  if (lane == 0u) { ${k.row('rstd')} = r; }
  ${k.cols(`${S}${k.at('y', 'c')} = ${X} * r${W};`)}`;
      }
      return `
  var s = 0.0;
  ${k.cols(`s += hsum(${X});`)}
  ${k.reduce('s', 'sum')}
  let mu = s * ${invC};
  var q = 0.0;
  ${k.cols(`let d = ${X} - mu; q += hsum(d * d);`)}
  ${k.reduce('q', 'sum')}
  if (!valid) { return; }
  let r = inverseSqrt(q * ${invC} + bitcast<f32>(word(4u)));
  if (lane == 0u) { ${k.row('mean')} = mu; ${k.row('rstd')} = r; }
  ${k.cols(`${S}${k.at('y', 'c')} = (${X} - mu) * r${W}${B};`)}`;
    },
  });
}

/** Bytes of scratch `layerNormBackwardGpu` needs for the dweight/dbias partial sums. */
export function normBackwardScratchBytes(rows: number, cols: number): number {
  return Math.max(16, 2 * normChunks(rows, cols) * cols * 4);
}

function normChunks(rows: number, cols: number): number {
  const vcols = Math.max(1, Math.ceil(cols / 4));
  return Math.max(1, Math.min(Math.ceil(rows / 16), Math.ceil(2048 / vcols), 4096));
}

const COL_WG = 64;

/** Bindings of the column kernel: dy and the partials always; x, rstd (and mean) only for dweight. */
function columnBindings(rms: boolean, wantW: boolean): string[] {
  return ['dy', 'part', ...(wantW ? ['x', 'rstd', ...(rms ? [] : ['mean'])] : [])];
}

function columnSource(
  rms: boolean,
  vec: boolean,
  unit: boolean,
  wantW: boolean,
  wantB: boolean,
  linear: boolean,
): string {
  const VF = vec ? 'vec4<f32>' : 'f32';
  const types: Record<string, string> = { dy: VF, part: VF, x: VF, rstd: 'f32', mean: 'f32' };
  const decls = columnBindings(rms, wantW).map(
    (name, k) =>
      `@group(0) @binding(${k + 1}) var<storage, ${name === 'part' ? 'read_write' : 'read'}> ${name}: array<${types[name]}>;`,
  );
  // Operand order in the uniform block: x 0, dy 1, rstd 2, mean 3. With `linear` rows (≤ 1 lead
  // dim after coalescing) each base advances by its lead stride instead of being unravelled.
  const ops = [
    ['x', 0, true],
    ['dy', 1, true],
    ['rstd', 2, false],
    ['mean', 3, false],
  ] as const;
  const used = ops.filter(([name]) => columnBindings(rms, wantW).includes(name));
  const div = (wide: boolean) => (vec && wide ? ' / 4u' : '');
  const init = used
    .map(([name, k, wide]) =>
      linear
        ? `var ${name}_o = (word(${12 + 8 * k}u) + r0 * word(${12 + 8 * k + 2}u))${div(wide)}; ` +
          `let ${name}_step = word(${12 + 8 * k + 2}u)${div(wide)};`
        : `var ${name}_o = 0u;`,
    )
    .join('\n  ');
  const perRow = used.map(([name, k, wide]) => (linear ? '' : `${name}_o = row_base(${k}u, r)${div(wide)};`)).join(' ');
  const advance = used.map(([name]) => (linear ? `${name}_o += ${name}_step;` : '')).join(' ');
  const at = (name: string, k: number) =>
    unit ? `${name}[${name}_o + c]` : `${name}[${name}_o + c * word(${12 + 8 * k + 1}u)]`;
  return `${uniformBlock(ROW_WORDS)}
${decls.join('\n')}
${ROW_BASE_WGSL}
@compute @workgroup_size(${COL_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * ${COL_WG}u + lid;
  let CV = word(1u)${vec ? ' / 4u' : ''};
  if (c >= CV) { return; }
  let chunk = wid.y;
  let per = word(4u);
  let r0 = chunk * per;
  let r1 = min(word(0u), r0 + per);
  var sw = ${VF}(0.0);
  var sb = ${VF}(0.0);
  ${init}
  for (var r = r0; r < r1; r++) {
    ${perRow}
    let g = ${at('dy', 1)};
    ${wantW ? `sw += g * (${at('x', 0)}${rms ? '' : ' - mean[mean_o]'}) * rstd[rstd_o];` : ''}
    ${wantB ? 'sb += g;' : ''}
    ${advance}
  }
  let chunks = word(5u);
  part[chunk * CV + c] = sw;
  part[(chunks + chunk) * CV + c] = sb;
}`;
}

function chunkReduceSource(wantW: boolean, wantB: boolean): string {
  const decls = [`@group(0) @binding(1) var<storage, read> part: array<f32>;`];
  let b = 2;
  if (wantW) decls.push(`@group(0) @binding(${b++}) var<storage, read_write> dw: array<f32>;`);
  if (wantB) decls.push(`@group(0) @binding(${b++}) var<storage, read_write> db: array<f32>;`);
  return `${uniformBlock(8)}
${decls.join('\n')}
@compute @workgroup_size(${COL_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = (wid.x + wid.y * nwg.x) * ${COL_WG}u + lid;
  let C = word(0u);
  if (c >= C) { return; }
  let chunks = word(1u);
  var sw = 0.0;
  var sb = 0.0;
  for (var k = 0u; k < chunks; k++) {
    sw += part[k * C + c];
    sb += part[(chunks + k) * C + c];
  }
  ${wantW ? 'dw[word(2u) + c * word(3u)] = sw;' : ''}
  ${wantB ? 'db[word(4u) + c * word(5u)] = sb;' : ''}
}`;
}

/**
 * Backward of `layerNormGpu` (or RMSNorm with `rms`): dx, and dweight/dbias when given (each [C]).
 * `scratch` (≥ normBackwardScratchBytes) holds the column partials; without it a temporary buffer
 * is created and destroyed once the work is submitted.
 */
export function layerNormBackwardGpu(
  queue: KernelQueue,
  grads: { dx: GpuOperand; dweight?: GpuOperand | null; dbias?: GpuOperand | null },
  saved: { x: GpuOperand; weight: GpuOperand | null; mean?: GpuOperand | null; rstd: GpuOperand; dy: GpuOperand },
  opts: NormOptions & { scratch?: GPUBuffer } = {},
): void {
  const rms = opts.rms ?? false;
  const { x, weight, rstd, dy } = saved;
  const mean = rms ? null : saved.mean;
  if (!rms && !mean) throw new TypeError('layerNormBackward: needs the saved mean');
  const shape = x.shape;
  const name = rms ? 'rmsNormBackward' : 'layerNormBackward';
  // dx
  const ops: { decl: RowOperandDecl; view: View; buffer: GPUBuffer }[] = [{ decl: F('x'), view: x, buffer: x.buffer }];
  if (weight) ops.push({ decl: F('w'), view: perColumnView(weight, shape), buffer: weight.buffer });
  if (mean) ops.push({ decl: P('mean'), view: asRowOperand(mean, shape), buffer: mean.buffer });
  ops.push({ decl: P('rstd'), view: asRowOperand(rstd, shape), buffer: rstd.buffer });
  ops.push({ decl: F('dy'), view: dy, buffer: dy.buffer });
  ops.push({ decl: F('dx', true), view: grads.dx, buffer: grads.dx.buffer });
  const layout = rowLayout(
    name,
    shape,
    ops.map((o) => o.view),
  );
  runRowKernel(queue, {
    key: `${name}:dx:${weight ? 'w' : ''}`,
    operands: ops.map((o) => o.decl),
    buffers: ops.map((o) => o.buffer),
    layout,
    schedule: opts.schedule,
    body: (k) => {
      const xh = `(${k.at('x', 'c')}${rms ? '' : ' - mu'}) * r`;
      const g = `${k.at('dy', 'c')}${weight ? ` * ${k.at('w', 'c')}` : ''}`;
      return `
  let r = ${k.row('rstd')};
  ${rms ? '' : `let mu = ${k.row('mean')};`}
  var a = vec2<f32>(0.0);
  ${k.cols(`let xh = ${xh}; let g = ${g}; a += vec2<f32>(hsum(g), hsum(g * xh));`)}
  ${k.reduce('a', 'sum2')}
  if (!valid) { return; }
  let ma = ${rms ? '0.0' : 'a.x / f32(C)'};
  let mb = a.y / f32(C);
  ${k.cols(`let xh = ${xh}; ${k.at('dx', 'c')} = r * (${g} - ma - xh * mb);`)}`;
    },
  });
  // dweight / dbias
  const wantW = !!grads.dweight;
  const wantB = !!grads.dbias && !rms;
  if (!wantW && !wantB) return;
  const rows = layout.rows;
  const C = layout.cols;
  const chunks = rows === 0 ? 0 : normChunks(rows, C);
  const per = chunks === 0 ? 0 : Math.ceil(rows / chunks);
  const bytes = normBackwardScratchBytes(rows, C);
  let scratch = opts.scratch;
  if (scratch && scratch.size < bytes)
    throw new RangeError(`${name}: scratch of ${scratch.size} bytes is smaller than the ${bytes} needed`);
  if (!scratch) {
    const tmp = queue.device.createBuffer({ label: `${name} scratch`, size: bytes, usage: GPUBufferUsage.STORAGE });
    queue.afterSubmit(() => tmp.destroy());
    scratch = tmp;
  }
  const colViews: View[] = [x, dy, asRowOperand(rstd, shape)];
  if (mean) colViews.push(asRowOperand(mean, shape));
  const colLayout = rowLayout(name, shape, colViews);
  const mode = rowMode(colLayout, [F('x'), F('dy'), P('rstd'), P('mean')].slice(0, colViews.length));
  const vec = mode === 'v';
  const unit = mode !== 's';
  const linear = colLayout.leadShape.length <= 1;
  if (chunks > 0 && C > 0) {
    const byName: Record<string, GPUBuffer> = {
      dy: dy.buffer,
      part: scratch,
      x: x.buffer,
      rstd: rstd.buffer,
      mean: mean?.buffer ?? scratch,
    };
    const buffers = columnBindings(rms, wantW).map((n) => byName[n]!);
    const cv = vec ? C / 4 : C;
    queue.dispatch({
      key:
        `${name}:columns:${rms ? 'rms' : 'ln'}:${vec ? 'v' : unit ? 'u' : 's'}:` +
        `${wantW ? 'w' : ''}${wantB ? 'b' : ''}:${linear ? 'lin' : 'nd'}`,
      source: () => columnSource(rms, vec, unit, wantW, wantB, linear),
      storage: buffers,
      uniforms: rowUniforms(colLayout, (u) => u.u32(4, per).u32(5, chunks)).data,
      workgroups: [Math.ceil(cv / COL_WG), chunks],
      label: `${name} columns`,
    });
  }
  const storage: GPUBuffer[] = [scratch];
  if (wantW) storage.push(grads.dweight!.buffer);
  if (wantB) storage.push(grads.dbias!.buffer);
  const u = new Uint32Array(8);
  u[0] = C;
  u[1] = chunks;
  if (wantW) {
    u[2] = grads.dweight!.offset;
    u[3] = grads.dweight!.strides[0] ?? 1;
  }
  if (wantB) {
    u[4] = grads.dbias!.offset;
    u[5] = grads.dbias!.strides[0] ?? 1;
  }
  queue.dispatch({
    key: `${name}:chunkReduce:${wantW ? 'w' : ''}${wantB ? 'b' : ''}`,
    source: () => chunkReduceSource(wantW, wantB),
    storage,
    uniforms: u,
    workgroups: grid(Math.ceil(C / COL_WG), queue.device.limits.maxComputeWorkgroupsPerDimension),
    label: `${name} chunk reduce`,
  });
}

// ---------------------------------------------------------------------------------------------
// CPU references

export function layerNormCpu(
  out: { y: CpuOperand; mean?: CpuOperand | null; rstd: CpuOperand; sum?: CpuOperand | null },
  x: CpuOperand,
  weight: CpuOperand | null,
  bias: CpuOperand | null,
  opts: NormOptions = {},
  residual: CpuOperand | null = null,
): void {
  const rms = opts.rms ?? false;
  const eps = opts.eps ?? 1e-5;
  const shape = x.shape;
  const layout = rowLayout('layerNorm', shape, [
    x,
    out.y,
    perRowView(out.rstd, shape),
    ...(rms ? [] : [perRowView(out.mean!, shape)]),
    ...(residual ? [residual, out.sum!] : []),
  ]);
  const C = layout.cols;
  const strides = layout.operands.map((o) => o.colStride);
  const [xs, ys] = strides;
  const k = rms ? 3 : 4; // where the residual and the sum operands start
  const [rs, ss] = strides.slice(k);
  const W = (c: number) => (weight ? weight.data[weight.offset + c * weight.strides[0]!]! : 1);
  const B = (c: number) => (bias ? bias.data[bias.offset + c * bias.strides[0]!]! : 0);
  const row = new Float64Array(C);
  forEachRow(layout, (_, bases) => {
    const [xb, yb, rb] = bases;
    const mb = bases[3];
    const [ro, so] = bases.slice(k);
    for (let c = 0; c < C; c++) row[c] = x.data[xb! + c * xs!]! + (residual ? residual.data[ro! + c * rs!]! : 0);
    if (residual) for (let c = 0; c < C; c++) out.sum!.data[so! + c * ss!] = row[c]!;
    let mu = 0;
    if (!rms) {
      for (let c = 0; c < C; c++) mu += row[c]!;
      mu /= C;
    }
    let q = 0;
    for (let c = 0; c < C; c++) q += (row[c]! - mu) ** 2;
    const r = 1 / Math.sqrt(q / C + eps);
    out.rstd.data[rb!] = r;
    if (!rms) out.mean!.data[mb!] = mu;
    for (let c = 0; c < C; c++) out.y.data[yb! + c * ys!] = (row[c]! - mu) * r * W(c) + B(c);
  });
}

export function layerNormBackwardCpu(
  grads: { dx: CpuOperand; dweight?: CpuOperand | null; dbias?: CpuOperand | null },
  saved: { x: CpuOperand; weight: CpuOperand | null; mean?: CpuOperand | null; rstd: CpuOperand; dy: CpuOperand },
  opts: NormOptions = {},
): void {
  const rms = opts.rms ?? false;
  const { x, weight, rstd, dy, mean } = saved;
  const shape = x.shape;
  const layout = rowLayout('layerNormBackward', shape, [
    x,
    dy,
    grads.dx,
    perRowView(rstd, shape),
    ...(rms ? [] : [perRowView(mean!, shape)]),
  ]);
  const C = layout.cols;
  const [xs, gs, ds] = layout.operands.map((o) => o.colStride);
  const W = (c: number) => (weight ? weight.data[weight.offset + c * weight.strides[0]!]! : 1);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  forEachRow(layout, (_, [xb, gb, db0, rb, mb]) => {
    const r = rstd.data[rb!]!;
    const mu = rms ? 0 : mean!.data[mb!]!;
    const xh = (c: number) => (x.data[xb! + c * xs!]! - mu) * r;
    const dyv = (c: number) => dy.data[gb! + c * gs!]!;
    let sa = 0;
    let sb = 0;
    for (let c = 0; c < C; c++) {
      const g = dyv(c) * W(c);
      sa += g;
      sb += g * xh(c);
      dw[c] += dyv(c) * xh(c);
      db[c] += dyv(c);
    }
    const ma = rms ? 0 : sa / C;
    const mb2 = sb / C;
    for (let c = 0; c < C; c++) grads.dx.data[db0! + c * ds!] = r * (dyv(c) * W(c) - ma - xh(c) * mb2);
  });
  const write = (t: CpuOperand | null | undefined, v: Float64Array) => {
    if (!t) return;
    for (let c = 0; c < C; c++) t.data[t.offset + c * t.strides[0]!] = v[c]!;
  };
  write(grads.dweight, dw);
  if (!rms) write(grads.dbias, db);
}
