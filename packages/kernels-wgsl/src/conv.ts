/**
 * 2-D convolution, channels-last, stride 1, dilation 1, zero padding (any amounts per side):
 *
 *   out[b, oh, ow, co] = bias[co] + Σ_{ci, kh, kw} x[b, oh + kh − padTop, ow + kw − padLeft, ci] · w[co, ci, kh, kw]
 *
 * x [B, H, W, Cin] and out [B, Hout, Wout, Cout] are channels-last (the models' [B, L, d] layout);
 * w [Cout, Cin, kH, kW] is PyTorch's layout, so checkpoints interchange. A 1-D convolution over
 * [B, L, C] is the case H = kH = 1 (the tensor package views it so).
 *
 * Kernels: a direct implicit GEMM — no im2col buffer, which for a 3×3 convolution over an L×L pair
 * map would be 9× the input and overflow the 128 MiB binding limit at L ≈ 400 with 64 channels.
 * Each thread keeps a TM×TN register tile (TM pixels × TN channels) and reads its operands straight
 * from storage, as matmul.ts's `direct` kernel (the measured choice for CPU adapters: no workgroup
 * memory, no barriers); taps are outer loops, channels the inner one, so no division runs per
 * multiply-add. Three roles share the geometry:
 *  - forward: M = B·Hout·Wout pixels × N = Cout, reduction over (kh, kw, ci);
 *  - input gradient: M = B·H·W pixels × N = Cin, reduction over (kh, kw, co) of dy at
 *    (ih + padTop − kh, iw + padLeft − kw) — the transposed convolution, as a gather (no atomics);
 *  - weight gradient: per tap, Cout × Cin, reduction over the output pixels; split into chunks of
 *    pixels when there are few outputs (partials to scratch, then a fixed-order sum: deterministic).
 * The bias gradient is a plain sum of dy over its pixels (the tensor package's sum).
 *
 * Padded taps read 0 and still multiply the weight, as PyTorch's unfold does: a NaN weight gives NaN.
 * Bounds tests combine with `&`, not `&&`: short-circuit branches for 8 pixels made SwiftShader's
 * compile time explode (111 s vs 1.5 s for one pipeline on the loaded 2-core machine).
 */
import { KernelQueue, grid } from './queue.js';
import { type CpuOperand, type GpuOperand, UniformWriter, isContiguous, uniformBlock } from './layout.js';

/** Zero padding on each side of the two spatial axes. */
export interface ConvPadding {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

export interface ConvGeometry {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  kernelH: number;
  kernelW: number;
  outHeight: number;
  outWidth: number;
  padding: ConvPadding;
}

const WG = 64;
/** Pixels per thread. */
const TM = 8;

const dims = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Checks x [B, H, W, Cin] against w [Cout, Cin, kH, kW] and the padding; returns the geometry
 * (Hout = H + top + bottom − kH + 1, likewise Wout), refusing an empty output window.
 */
export function convGeometry(
  op: string,
  xShape: readonly number[],
  wShape: readonly number[],
  padding: ConvPadding,
): ConvGeometry {
  if (xShape.length !== 4)
    throw new RangeError(`${op}: input must be [batch, height, width, channels], got ${dims(xShape)}`);
  if (wShape.length !== 4)
    throw new RangeError(`${op}: weight must be [outChannels, inChannels, kernelH, kernelW], got ${dims(wShape)}`);
  const [batch, height, width, inChannels] = xShape as [number, number, number, number];
  const [outChannels, wIn, kernelH, kernelW] = wShape as [number, number, number, number];
  if (wIn !== inChannels) {
    throw new RangeError(
      `${op}: weight ${dims(wShape)} expects ${wIn} input channels, the input ${dims(xShape)} has ${inChannels}`,
    );
  }
  if (kernelH < 1 || kernelW < 1)
    throw new RangeError(`${op}: kernel size must be at least 1, weight is ${dims(wShape)}`);
  for (const p of [padding.top, padding.bottom, padding.left, padding.right]) {
    if (!Number.isInteger(p) || p < 0)
      throw new RangeError(`${op}: padding must be non-negative integers, got ${JSON.stringify(padding)}`);
  }
  const outHeight = height + padding.top + padding.bottom - kernelH + 1;
  const outWidth = width + padding.left + padding.right - kernelW + 1;
  if (outHeight < 1 || outWidth < 1) {
    throw new RangeError(
      `${op}: kernel ${kernelH}×${kernelW} does not fit the padded input ${height + padding.top + padding.bottom}×` +
        `${width + padding.left + padding.right} (input ${dims(xShape)}, padding ${JSON.stringify(padding)})`,
    );
  }
  return { batch, height, width, inChannels, outChannels, kernelH, kernelW, outHeight, outWidth, padding };
}

function checkOperand(op: string, what: string, t: { shape: readonly number[] }, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((s, d) => s !== shape[d])) {
    throw new RangeError(`${op}: ${what} must be ${dims(shape)}, got ${dims(t.shape)}`);
  }
}

const outShape = (g: ConvGeometry) => [g.batch, g.outHeight, g.outWidth, g.outChannels];

function requireContiguousF32(op: string, ...ts: GpuOperand[]): void {
  for (const t of ts) {
    if (t.dtype !== 'f32') throw new TypeError(`${op}: expects f32 operands, got ${t.dtype} ${dims(t.shape)}`);
    if (!isContiguous(t)) throw new RangeError(`${op}: operands must be contiguous, got a view of ${dims(t.shape)}`);
  }
}

/** Channels per thread for N channels: the smallest power of two ≥ N, at most 8. */
const channelTile = (n: number) => (n <= 1 ? 1 : n <= 2 ? 2 : n <= 4 ? 4 : 8);

// Uniform words shared by the three roles.
const WORDS = 24;
function geometryUniforms(g: ConvGeometry): UniformWriter {
  return new UniformWriter(WORDS)
    .u32(0, g.batch)
    .u32(1, g.height)
    .u32(2, g.width)
    .u32(3, g.inChannels)
    .u32(4, g.outChannels)
    .u32(5, g.kernelH)
    .u32(6, g.kernelW)
    .u32(7, g.padding.top)
    .u32(8, g.padding.left)
    .u32(9, g.outHeight)
    .u32(10, g.outWidth);
}

const PRELUDE = `${uniformBlock(WORDS)}
fn geo(i: u32) -> i32 { return i32(word(i)); }`;

/**
 * The TM×TN accumulators as plain variables (registers: SwiftShader compiles a private array
 * updated in the hot loop ~50× slower), their unrolled multiply-add from loaded `a_i` and `b_j`,
 * and their copy into the array `tile` the store loop reads.
 */
function accumulators(tm: number, tn: number): { decl: string; fma: string; copy: string } {
  const ij = Array.from({ length: tm * tn }, (_, k) => [Math.floor(k / tn), k % tn] as const);
  return {
    decl: ij.map(([i, j]) => `var c${i}_${j} = 0.0;`).join(' '),
    fma: ij.map(([i, j]) => `c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`).join(' '),
    copy: `var tile: array<f32, ${tm * tn}>; ${ij.map(([i, j], k) => `tile[${k}] = c${i}_${j};`).join(' ')}`,
  };
}

/** The header of a pixel-tile role: thread → (pixel tile, channel tile); per-pixel coordinates. */
function pixelTileHeader(tn: number, pixels: string, rowsWord: number, colsWord: number, channels: string): string {
  const coords = Array.from(
    { length: TM },
    (_, i) => `
  let p${i} = min(m0 + ${i}u, ${pixels} - 1u);
  let c${i} = i32(p${i} % word(${colsWord}u));
  let r${i} = i32((p${i} / word(${colsWord}u)) % word(${rowsWord}u));
  let bi${i} = i32(p${i} / (word(${colsWord}u) * word(${rowsWord}u)));`,
  ).join('');
  const chans = Array.from({ length: tn }, (_, j) => `let ch${j} = min(n0 + ${j}u, ${channels} - 1u);`).join('\n  ');
  return `
  let t = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  let nTiles = word(11u);
  if (t >= word(12u)) { return; }
  let m0 = (t / nTiles) * ${TM}u;
  let n0 = (t % nTiles) * ${tn}u;
  ${coords}
  ${chans}
  ${accumulators(TM, tn).decl}`;
}

/**
 * Stores the tile into out [pixels, channels] (channels fastest), skipping clamped rows/columns: a
 * loop over the accumulators, as unrolled guarded stores multiply the compile time on SwiftShader.
 */
function storeTile(tn: number, pixels: string, channels: string, bias: boolean): string {
  return `${accumulators(TM, tn).copy}
  for (var i = 0u; i < ${TM}u; i++) {
    if (m0 + i >= ${pixels}) { break; }
    for (var j = 0u; j < ${tn}u; j++) {
      if (n0 + j < ${channels}) { outb[word(15u) + (m0 + i) * ${channels} + n0 + j] = tile[i * ${tn}u + j]${bias ? ' + biasb[word(16u) + n0 + j]' : ''}; }
    }
  }`;
}

/**
 * Forward and input-gradient kernels: both gather a [pixels, channels] output from an NHWC operand
 * `a` (x, or dy) through the taps and the weight. `transposed` selects the input gradient: read dy
 * at (r + padTop − kh, c + padLeft − kw) and w[co, ci] with the reduction over co.
 */
function gatherSource(tn: number, transposed: boolean, bias: boolean): string {
  // Forward: pixels of out (rows Hout = word 9, cols Wout = word 10), channels Cout, reduce over Cin;
  // a = x with H, W, Cin. Input gradient: pixels of x (H = 1, W = 2), channels Cin, reduce over Cout; a = dy.
  const [rowsW, colsW] = transposed ? [1, 2] : [9, 10];
  const [aRows, aCols] = transposed ? ['geo(9u)', 'geo(10u)'] : ['geo(1u)', 'geo(2u)'];
  const channels = transposed ? 'word(3u)' : 'word(4u)';
  const reduceLen = transposed ? 'word(4u)' : 'word(3u)';
  const pixels = `(word(0u) * word(${rowsW}u) * word(${colsW}u))`;
  const taps = Array.from(
    { length: TM },
    (_, i) =>
      `
      let ar${i} = r${i} ${transposed ? '+ geo(7u) - kh' : '+ kh - geo(7u)'};
      let ac${i} = c${i} ${transposed ? '+ geo(8u) - kw' : '+ kw - geo(8u)'};
      let ok${i} = (ar${i} >= 0) & (ar${i} < ${aRows}) & (ac${i} >= 0) & (ac${i} < ${aCols});
      let ab${i} = select(0u, u32((bi${i} * ${aRows} + ar${i}) * ${aCols} + ac${i}) * ${reduceLen}, ok${i}) + ` +
      `word(13u);`,
  ).join('');
  const loadA = Array.from({ length: TM }, (_, i) => `let a${i} = select(0.0, ab[ab${i} + k], ok${i});`).join(' ');
  // w[co, ci, kh, kw]: forward reads channel j as co (stride Cin·kH·kW) and k as ci; transposed the reverse.
  const KK = 'word(5u) * word(6u)';
  const wIndex = (j: number) =>
    transposed ? `wb[wtap + (k * word(3u) + ch${j}) * ${KK}]` : `wb[wtap + (ch${j} * word(3u) + k) * ${KK}]`;
  const loadB = Array.from({ length: tn }, (_, j) => `let b${j} = ${wIndex(j)};`).join(' ');
  return `${PRELUDE}
@group(0) @binding(1) var<storage, read_write> outb: array<f32>;
@group(0) @binding(2) var<storage, read> ab: array<f32>;
@group(0) @binding(3) var<storage, read> wb: array<f32>;
${bias ? '@group(0) @binding(4) var<storage, read> biasb: array<f32>;' : ''}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${pixelTileHeader(tn, pixels, rowsW, colsW, channels)}
  for (var kh = 0; kh < geo(5u); kh++) {
    for (var kw = 0; kw < geo(6u); kw++) {
      ${taps}
      let wtap = word(14u) + u32(kh * geo(6u) + kw);
      for (var k = 0u; k < ${reduceLen}; k++) {
        ${loadA}
        ${loadB}
        ${accumulators(TM, tn).fma}
      }
    }
  }
  ${storeTile(tn, pixels, channels, bias)}
}`;
}

function tiles(pixels: number, channels: number, tn: number): { nTiles: number; threads: number } {
  const nTiles = Math.ceil(channels / tn);
  return { nTiles, threads: Math.ceil(pixels / TM) * nTiles };
}

function dispatchGather(
  queue: KernelQueue,
  op: string,
  g: ConvGeometry,
  transposed: boolean,
  out: GpuOperand,
  a: GpuOperand,
  w: GpuOperand,
  bias: GpuOperand | null,
): void {
  const pixels = transposed ? g.batch * g.height * g.width : g.batch * g.outHeight * g.outWidth;
  const channels = transposed ? g.inChannels : g.outChannels;
  if (pixels === 0 || channels === 0) return;
  const tn = channelTile(channels);
  const { nTiles, threads } = tiles(pixels, channels, tn);
  const u = geometryUniforms(g)
    .u32(11, nTiles)
    .u32(12, threads)
    .u32(13, a.offset)
    .u32(14, w.offset)
    .u32(15, out.offset)
    .u32(16, bias?.offset ?? 0);
  queue.dispatch({
    key: `${op}:${tn}${bias ? ':bias' : ''}`,
    source: () => gatherSource(tn, transposed, !!bias),
    storage: [out.buffer, a.buffer, w.buffer, ...(bias ? [bias.buffer] : [])],
    uniforms: u.data,
    workgroups: grid(Math.ceil(threads / WG), queue.maxWorkgroupsPerDimension),
    label: op,
  });
}

/** out [B, Hout, Wout, Cout] = conv2d(x [B, H, W, Cin], w [Cout, Cin, kH, kW]) + bias [Cout] (optional). */
export function conv2dGpu(
  queue: KernelQueue,
  out: GpuOperand,
  x: GpuOperand,
  weight: GpuOperand,
  bias: GpuOperand | null,
  padding: ConvPadding,
): void {
  const op = 'conv2d';
  const g = convGeometry(op, x.shape, weight.shape, padding);
  checkOperand(op, 'output', out, outShape(g));
  if (bias) checkOperand(op, 'bias', bias, [g.outChannels]);
  requireContiguousF32(op, out, x, weight, ...(bias ? [bias] : []));
  dispatchGather(queue, op, g, false, out, x, weight, bias);
}

/** dx [B, H, W, Cin] of conv2d from dy [B, Hout, Wout, Cout] and w (x's shape is dx's). */
export function conv2dInputGradGpu(
  queue: KernelQueue,
  dx: GpuOperand,
  dy: GpuOperand,
  weight: GpuOperand,
  padding: ConvPadding,
): void {
  const op = 'conv2dInputGrad';
  const g = convGeometry(op, dx.shape, weight.shape, padding);
  checkOperand(op, 'dy', dy, outShape(g));
  requireContiguousF32(op, dx, dy, weight);
  dispatchGather(queue, op, g, true, dx, dy, weight, null);
}

// ---------------------------------------------------------------------------------------------
// Weight gradient

/** Pixel chunks of the weight gradient: enough threads to fill the adapter, ≥ 64 pixels each. */
function weightGradSplits(g: ConvGeometry): number {
  const pixels = g.batch * g.outHeight * g.outWidth;
  const threads =
    g.kernelH *
    g.kernelW *
    Math.ceil(g.outChannels / channelTile(g.outChannels)) *
    Math.ceil(g.inChannels / channelTile(g.inChannels));
  return Math.max(1, Math.min(Math.ceil(2048 / Math.max(1, threads)), Math.floor(pixels / 64), 256));
}

/** Bytes of scratch `conv2dWeightGradGpu` needs for its pixel-chunk partial sums (0: none). */
export function conv2dWeightGradScratchBytes(g: ConvGeometry): number {
  const splits = weightGradSplits(g);
  return splits > 1 ? splits * g.outChannels * g.inChannels * g.kernelH * g.kernelW * 4 : 0;
}

function weightGradSource(tm: number, tn: number): string {
  // Thread → (chunk s, tap, co tile, ci tile); acc[i][j] = Σ_p dy[p, co_i] · x[p shifted by the tap, ci_j].
  const cos = Array.from({ length: tm }, (_, i) => `let co${i} = min(m0 + ${i}u, word(4u) - 1u);`).join('\n  ');
  const cis = Array.from({ length: tn }, (_, j) => `let ci${j} = min(n0 + ${j}u, word(3u) - 1u);`).join('\n  ');
  const loadA = Array.from({ length: tm }, (_, i) => `let a${i} = dyb[dyo + co${i}];`).join(' ');
  const loadB = Array.from({ length: tn }, (_, j) => `let b${j} = select(0.0, xb[xo + ci${j}], ok);`).join(' ');
  const acc = accumulators(tm, tn);
  return `${PRELUDE}
@group(0) @binding(1) var<storage, read_write> outb: array<f32>;
@group(0) @binding(2) var<storage, read> dyb: array<f32>;
@group(0) @binding(3) var<storage, read> xb: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  if (t >= word(12u)) { return; }
  let nTiles = word(11u);
  let mTiles = (word(4u) + ${tm - 1}u) / ${tm}u;
  let KK = word(5u) * word(6u);
  let perChunk = KK * mTiles * nTiles;
  let s = t / perChunk;
  let tap = (t / (mTiles * nTiles)) % KK;
  let m0 = ((t / nTiles) % mTiles) * ${tm}u;
  let n0 = (t % nTiles) * ${tn}u;
  let kh = i32(tap / word(6u));
  let kw = i32(tap % word(6u));
  ${cos}
  ${cis}
  ${acc.decl}
  let Hout = word(9u);
  let Wout = word(10u);
  let pixels = word(0u) * Hout * Wout;
  let p0 = s * word(17u);
  let p1 = min(pixels, p0 + word(17u));
  var ow = i32(p0 % Wout);
  var oh = i32((p0 / Wout) % Hout);
  var b = i32(p0 / (Wout * Hout));
  for (var p = p0; p < p1; p++) {
    let ih = oh + kh - geo(7u);
    let iw = ow + kw - geo(8u);
    let ok = (ih >= 0) & (ih < geo(1u)) & (iw >= 0) & (iw < geo(2u));
    let xo = select(0u, u32((b * geo(1u) + ih) * geo(2u) + iw) * word(3u), ok) + word(14u);
    let dyo = word(13u) + p * word(4u);
    ${loadA}
    ${loadB}
    ${acc.fma}
    ow++;
    if (ow == i32(Wout)) { ow = 0; oh++; if (oh == i32(Hout)) { oh = 0; b++; } }
  }
  let dst = word(15u) + s * word(4u) * word(3u) * KK + tap;
  ${acc.copy}
  for (var i = 0u; i < ${tm}u; i++) {
    if (m0 + i >= word(4u)) { break; }
    for (var j = 0u; j < ${tn}u; j++) {
      if (n0 + j < word(3u)) { outb[dst + ((m0 + i) * word(3u) + n0 + j) * KK] = tile[i * ${tn}u + j]; }
    }
  }
}`;
}

function chunkSumSource(): string {
  return `${uniformBlock(4)}
@group(0) @binding(1) var<storage, read_write> outb: array<f32>;
@group(0) @binding(2) var<storage, read> part: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  let n = word(0u);
  if (i >= n) { return; }
  var s = 0.0;
  for (var k = 0u; k < word(1u); k++) { s += part[k * n + i]; }
  outb[word(2u) + i] = s;
}`;
}

/**
 * dw [Cout, Cin, kH, kW] of conv2d from dy [B, Hout, Wout, Cout] and x [B, H, W, Cin]. `scratch`
 * (≥ conv2dWeightGradScratchBytes) holds the chunk partials; without it a temporary buffer is
 * created and destroyed once the work is submitted.
 */
export function conv2dWeightGradGpu(
  queue: KernelQueue,
  dw: GpuOperand,
  dy: GpuOperand,
  x: GpuOperand,
  padding: ConvPadding,
  scratch?: GPUBuffer,
): void {
  const op = 'conv2dWeightGrad';
  const g = convGeometry(op, x.shape, dw.shape, padding);
  checkOperand(op, 'dy', dy, outShape(g));
  requireContiguousF32(op, dw, dy, x);
  const n = g.outChannels * g.inChannels * g.kernelH * g.kernelW;
  if (n === 0) return;
  const splits = weightGradSplits(g);
  const bytes = conv2dWeightGradScratchBytes(g);
  let part: GPUBuffer | null = null;
  if (splits > 1) {
    if (scratch && scratch.size < bytes)
      throw new RangeError(`${op}: scratch of ${scratch.size} bytes is smaller than the ${bytes} needed`);
    part = scratch ?? null;
    if (!part) {
      const tmp = queue.device.createBuffer({ label: `${op} scratch`, size: bytes, usage: GPUBufferUsage.STORAGE });
      queue.afterSubmit(() => tmp.destroy());
      part = tmp;
    }
  }
  const pixels = g.batch * g.outHeight * g.outWidth;
  const tm = channelTile(g.outChannels);
  const tn = channelTile(g.inChannels);
  const nTiles = Math.ceil(g.inChannels / tn);
  const threads = splits * g.kernelH * g.kernelW * Math.ceil(g.outChannels / tm) * nTiles;
  const u = geometryUniforms(g)
    .u32(11, nTiles)
    .u32(12, threads)
    .u32(13, dy.offset)
    .u32(14, x.offset)
    .u32(15, part ? 0 : dw.offset)
    .u32(17, Math.ceil(pixels / splits));
  const max = queue.maxWorkgroupsPerDimension;
  queue.dispatch({
    key: `${op}:${tm}x${tn}`,
    source: () => weightGradSource(tm, tn),
    storage: [part ?? dw.buffer, dy.buffer, x.buffer],
    uniforms: u.data,
    workgroups: grid(Math.ceil(threads / WG), max),
    label: op,
  });
  if (!part) return;
  queue.dispatch({
    key: `${op}:chunkSum`,
    source: chunkSumSource,
    storage: [dw.buffer, part],
    uniforms: new UniformWriter(4).u32(0, n).u32(1, splits).u32(2, dw.offset).data,
    workgroups: grid(Math.ceil(n / WG), max),
    label: `${op} chunk sum`,
  });
}

// ---------------------------------------------------------------------------------------------
// CPU references (any strides), float64

function at4(t: CpuOperand, a: number, b: number, c: number, d: number): number {
  return t.offset + a * t.strides[0]! + b * t.strides[1]! + c * t.strides[2]! + d * t.strides[3]!;
}

/** Float64 reference of `conv2dGpu`. */
export function conv2dCpu(
  out: CpuOperand,
  x: CpuOperand,
  weight: CpuOperand,
  bias: CpuOperand | null,
  padding: ConvPadding,
): void {
  const op = 'conv2d';
  const g = convGeometry(op, x.shape, weight.shape, padding);
  checkOperand(op, 'output', out, outShape(g));
  if (bias) checkOperand(op, 'bias', bias, [g.outChannels]);
  for (let b = 0; b < g.batch; b++) {
    for (let oh = 0; oh < g.outHeight; oh++) {
      for (let ow = 0; ow < g.outWidth; ow++) {
        for (let co = 0; co < g.outChannels; co++) {
          let s = 0;
          for (let kh = 0; kh < g.kernelH; kh++) {
            const ih = oh + kh - padding.top;
            for (let kw = 0; kw < g.kernelW; kw++) {
              const iw = ow + kw - padding.left;
              const inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
              for (let ci = 0; ci < g.inChannels; ci++) {
                const xv = inside ? x.data[at4(x, b, ih, iw, ci)]! : 0;
                s += xv * weight.data[at4(weight, co, ci, kh, kw)]!;
              }
            }
          }
          if (bias) s += bias.data[bias.offset + co * bias.strides[0]!]!;
          out.data[at4(out, b, oh, ow, co)] = s;
        }
      }
    }
  }
}

/** Float64 reference of `conv2dInputGradGpu`. */
export function conv2dInputGradCpu(dx: CpuOperand, dy: CpuOperand, weight: CpuOperand, padding: ConvPadding): void {
  const op = 'conv2dInputGrad';
  const g = convGeometry(op, dx.shape, weight.shape, padding);
  checkOperand(op, 'dy', dy, outShape(g));
  for (let b = 0; b < g.batch; b++) {
    for (let ih = 0; ih < g.height; ih++) {
      for (let iw = 0; iw < g.width; iw++) {
        for (let ci = 0; ci < g.inChannels; ci++) {
          let s = 0;
          for (let kh = 0; kh < g.kernelH; kh++) {
            const oh = ih + padding.top - kh;
            if (oh < 0 || oh >= g.outHeight) continue;
            for (let kw = 0; kw < g.kernelW; kw++) {
              const ow = iw + padding.left - kw;
              if (ow < 0 || ow >= g.outWidth) continue;
              for (let co = 0; co < g.outChannels; co++)
                s += dy.data[at4(dy, b, oh, ow, co)]! * weight.data[at4(weight, co, ci, kh, kw)]!;
            }
          }
          dx.data[at4(dx, b, ih, iw, ci)] = s;
        }
      }
    }
  }
}

/** Float64 reference of `conv2dWeightGradGpu`. */
export function conv2dWeightGradCpu(dw: CpuOperand, dy: CpuOperand, x: CpuOperand, padding: ConvPadding): void {
  const op = 'conv2dWeightGrad';
  const g = convGeometry(op, x.shape, dw.shape, padding);
  checkOperand(op, 'dy', dy, outShape(g));
  for (let co = 0; co < g.outChannels; co++) {
    for (let ci = 0; ci < g.inChannels; ci++) {
      for (let kh = 0; kh < g.kernelH; kh++) {
        for (let kw = 0; kw < g.kernelW; kw++) {
          let s = 0;
          for (let b = 0; b < g.batch; b++) {
            for (let oh = 0; oh < g.outHeight; oh++) {
              const ih = oh + kh - padding.top;
              for (let ow = 0; ow < g.outWidth; ow++) {
                const iw = ow + kw - padding.left;
                const xv = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width ? x.data[at4(x, b, ih, iw, ci)]! : 0;
                s += dy.data[at4(dy, b, oh, ow, co)]! * xv;
              }
            }
          }
          dw.data[at4(dw, co, ci, kh, kw)] = s;
        }
      }
    }
  }
}
