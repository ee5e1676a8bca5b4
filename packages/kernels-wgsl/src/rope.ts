/**
 * Rotary position embedding, GPT-NeoX "rotate-half" layout (non-interleaved) over the full head
 * dim, as RiNALMo and flash-attn's `RotaryEmbedding(interleaved=False)` use it:
 *
 *   inv_freq_i = 1 / base^(2i/D)   (i < D/2),   angle(p, c) = p · inv_freq_(c mod D/2)
 *   y = x·cos(angle) + rotate_half(x)·sin(angle),   rotate_half(x) = cat(−x[D/2:], x[:D/2])
 *
 * for positions p = positionOffset + (index along the length axis). Each pair (x_i, x_{i+D/2}) is
 * rotated by one angle, so the backward is the inverse rotation (sin negated): `inverse: true`.
 *
 * Precision follows PyTorch's float32 tables: inv_freq is computed in float64 and rounded to f32
 * on the host (travelling in the uniform block), the angle p·inv_freq is an f32 product, and the
 * kernel evaluates sin/cos itself (driver sin/cos may be only 2⁻¹¹ accurate): a three-constant
 * Cody–Waite reduction by π/2 whose products are exact without fma (for angles below ~12800 rad,
 * i.e. positions up to 12800 at the highest frequency) and the ~1-ulp polynomials of `TRIG_WGSL`.
 * (The two-constant `fma` reduction of `sin_acc` loses ~1e-5 absolute at angles ~100 where the
 * driver's fma is not fused, as on SwiftShader.) The float64 reference rotates in float64 by the
 * same f32-rounded angle.
 *
 * One thread per (row, pair): 64-thread workgroups over rows·D/2 pairs; memory-bound.
 */
import { KernelQueue, grid } from './queue.js';
import { type CpuOperand, type GpuOperand, UniformWriter, isContiguous, numel, uniformBlock } from './layout.js';
import { TRIG_WGSL } from './math.js';

export interface RopeOptions {
  /** Frequency base (default 10000). */
  base?: number;
  /** Position of the first element along the length axis (default 0). */
  positionOffset?: number;
  /** Rotate by −angle: the backward of the forward rotation. */
  inverse?: boolean;
}

const HEADER = 8;
/** inv_freq entries the uniform block carries; wider heads compute theirs in the kernel. */
const TABLE = 120;
const WORDS = HEADER + TABLE;
const WG = 64;

/** inv_freq_i = 1 / base^(2i/D) rounded to f32, as PyTorch builds it in float32. */
export function ropeInvFreq(headDim: number, base = 10000): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const e = Math.fround((2 * i) / headDim);
    out[i] = Math.fround(1 / Math.fround(Math.pow(base, e)));
  }
  return out;
}

function check(
  op: string,
  x: { shape: readonly number[] },
  out: { shape: readonly number[] },
): { rows: number; L: number; D: number } {
  if (x.shape.length < 2)
    throw new RangeError(`${op}: input must be [..., length, headDim], got [${x.shape.join(', ')}]`);
  if (out.shape.length !== x.shape.length || out.shape.some((s, d) => s !== x.shape[d])) {
    throw new RangeError(`${op}: output [${out.shape.join(', ')}] must match input [${x.shape.join(', ')}]`);
  }
  const D = x.shape.at(-1)!;
  const L = x.shape.at(-2)!;
  if (D % 2 !== 0) throw new RangeError(`${op}: headDim must be even for rotate-half RoPE, got ${D}`);
  return { rows: numel(x.shape.slice(0, -1)), L, D };
}

function source(): string {
  return `${uniformBlock(WORDS)}
${TRIG_WGSL}
@group(0) @binding(1) var<storage, read_write> outb: array<f32>;
@group(0) @binding(2) var<storage, read> xb: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  let half = word(1u);
  if (t >= word(0u) * half) { return; }
  let row = t / half;
  let i = t % half;
  let pos = f32(row % word(2u) + word(5u));
  var inv: f32;
  if (half <= ${TABLE}u) { inv = bitcast<f32>(word(${HEADER}u + i)); }
  else { inv = exp2(-f32(2u * i) / f32(2u * half) * bitcast<f32>(word(6u))); }
  let angle = pos * inv;
  // Cody–Waite by π/2 in three parts (1.5703125 has 8 bits, 4.837512969970703125e-4 has 11):
  // k·c1 and k·c2 are exact for k < 2^13, so r carries the full f32 accuracy of the angle.
  let k = round(angle * 0.6366197723675814);
  let r = ((angle - k * 1.5703125) - k * 4.837512969970703125e-4) - k * 7.54978995489188216e-8;
  let q = i32(k) & 3;
  let ps = trig_poly_sin(r);
  let pc = trig_poly_cos(r);
  var c = pc;
  var s = ps;
  if (q == 1) { c = -ps; s = pc; }
  if (q == 2) { c = -pc; s = -ps; }
  if (q == 3) { c = ps; s = -pc; }
  s = s * bitcast<f32>(word(7u));
  let xo = word(3u) + row * 2u * half + i;
  let oo = word(4u) + row * 2u * half + i;
  let a = xb[xo];
  let b = xb[xo + half];
  outb[oo] = a * c - b * s;
  outb[oo + half] = b * c + a * s;
}`;
}

/**
 * RoPE on the GPU: `x` and `out` are contiguous f32 [..., length, headDim] (may be the same
 * buffer region for an in-place rotation).
 */
export function ropeGpu(queue: KernelQueue, out: GpuOperand, x: GpuOperand, opts: RopeOptions = {}): void {
  const op = opts.inverse ? 'ropeBackward' : 'rope';
  const { rows, L, D } = check(op, x, out);
  if (x.dtype !== 'f32' || out.dtype !== 'f32') throw new TypeError(`${op}: expects f32 tensors`);
  if (!isContiguous(x) || !isContiguous(out)) throw new RangeError(`${op}: input and output must be contiguous`);
  const pairs = rows * (D / 2);
  if (pairs === 0) return;
  const base = opts.base ?? 10000;
  const offset = opts.positionOffset ?? 0;
  if (!Number.isInteger(offset) || offset < 0)
    throw new RangeError(`${op}: positionOffset must be a non-negative integer, got ${offset}`);
  const u = new UniformWriter(WORDS)
    .u32(0, rows)
    .u32(1, D / 2)
    .u32(2, L)
    .u32(3, x.offset)
    .u32(4, out.offset)
    .u32(5, offset)
    .f32(6, Math.log2(base))
    .f32(7, opts.inverse ? -1 : 1);
  if (D / 2 <= TABLE) {
    const inv = ropeInvFreq(D, base);
    for (let i = 0; i < inv.length; i++) u.f32(HEADER + i, inv[i]!);
  }
  queue.dispatch({
    key: 'rope',
    source,
    storage: [out.buffer, x.buffer],
    uniforms: u.data,
    workgroups: grid(Math.ceil(pairs / WG), queue.maxWorkgroupsPerDimension),
    label: op,
  });
}

/** Float64 reference of `ropeGpu` (any strides): rotation in float64 by the f32-rounded angles. */
export function ropeCpu(out: CpuOperand, x: CpuOperand, opts: RopeOptions = {}): void {
  const op = opts.inverse ? 'ropeBackward' : 'rope';
  const { rows, L, D } = check(op, x, out);
  const half = D / 2;
  const inv = ropeInvFreq(D, opts.base ?? 10000);
  const offset = opts.positionOffset ?? 0;
  const sign = opts.inverse ? -1 : 1;
  const lead = x.shape.slice(0, -1);
  const xs = x.strides;
  const os = out.strides;
  const rank = x.shape.length;
  for (let row = 0; row < rows; row++) {
    // Unravel the leading index (the last of which is the position).
    let rem = row;
    let xo = x.offset;
    let oo = out.offset;
    for (let d = lead.length - 1; d >= 0; d--) {
      const c = rem % lead[d]!;
      rem = Math.floor(rem / lead[d]!);
      xo += c * xs[d]!;
      oo += c * os[d]!;
    }
    const pos = (row % L) + offset;
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(pos) * inv[i]!);
      const c = Math.cos(angle);
      const s = Math.sin(angle) * sign;
      const a = x.data[xo + i * xs[rank - 1]!]!;
      const b = x.data[xo + (i + half) * xs[rank - 1]!]!;
      out.data[oo + i * os[rank - 1]!] = a * c - b * s;
      out.data[oo + (i + half) * os[rank - 1]!] = b * c + a * s;
    }
  }
}
