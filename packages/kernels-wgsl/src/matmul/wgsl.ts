/** WGSL pieces shared by every matmul schedule: bindings, batch offsets, the epilogue. */
import { uniformBlock } from '../layout.js';
import { ERF_WGSL } from '../math.js';
import type { MatmulActivation } from './types.js';
import { SHAPE, STR, W, WORDS, w } from './layout.js';
import { SQRT_2_OVER_PI } from './reference.js';

export interface Flags {
  act: MatmulActivation;
  bias: boolean;
  pre: boolean;
  /** Main kernel writes raw partial sums to the scratch buffer (split-K); the reduce kernel does the epilogue. */
  split: boolean;
  /**
   * C (and bias / pre-activation when present) are bound as vec4 arrays: in-bounds thread tiles
   * store whole vec4s (the launcher checked alignment); other elements go through component writes.
   */
  vstore?: boolean;
}

export function flagKey(f: Flags): string {
  return `${f.act}${f.bias ? ':bias' : ''}${f.pre ? ':pre' : ''}${f.split ? ':split' : ''}${f.vstore ? ':v4' : ''}`;
}

/** Element `idx` of output/bias array `arr`, which is declared as vec4s when `f.vstore`. */
function el(f: Flags, arr: string, idx: string): string {
  return f.vstore ? `${arr}[(${idx}) / 4u][(${idx}) % 4u]` : `${arr}[${idx}]`;
}

/** The activation on a vec4 (the vector epilogue). */
function act4Wgsl(act: MatmulActivation): string {
  const v = 'v';
  switch (act) {
    case 'none':
      return v;
    case 'relu':
      return `max(${v}, vec4<f32>(0.0))`;
    case 'gelu':
      return `0.5 * ${v} * (1.0 + vec4<f32>(erf_f32(${v}.x * ${Math.SQRT1_2}), erf_f32(${v}.y * ${Math.SQRT1_2}), erf_f32(${v}.z * ${Math.SQRT1_2}), erf_f32(${v}.w * ${Math.SQRT1_2})))`;
    case 'geluTanh':
      return `0.5 * ${v} * (1.0 + tanh(clamp(${SQRT_2_OVER_PI} * (${v} + 0.044715 * ${v} * ${v} * ${v}), vec4<f32>(-15.0), vec4<f32>(15.0))))`;
  }
}

function actWgsl(act: MatmulActivation, v: string): string {
  switch (act) {
    case 'none':
      return v;
    case 'relu':
      return `max(${v}, 0.0)`;
    case 'gelu':
      return `(0.5 * ${v} * (1.0 + erf_f32(${v} * ${Math.SQRT1_2})))`;
    case 'geluTanh':
      return (
        `(0.5 * ${v} * (1.0 + ` +
        `tanh(clamp(${SQRT_2_OVER_PI} * (${v} + 0.044715 * ${v} * ${v} * ${v}), -15.0, 15.0))))`
      );
  }
}

/** Bindings: 1 = C (or the partial-sum scratch), 2 = A, 3 = B, then bias and pre-activation when present. */
export function header(f: Flags, extra = ''): string {
  const T = f.vstore ? 'vec4<f32>' : 'f32';
  const lines = [
    uniformBlock(WORDS),
    `@group(0) @binding(1) var<storage, read_write> C: array<${T}>;`,
    '@group(0) @binding(2) var<storage, read> A: array<f32>;',
    '@group(0) @binding(3) var<storage, read> B: array<f32>;',
  ];
  let binding = 4;
  if (f.bias && !f.split) lines.push(`@group(0) @binding(${binding++}) var<storage, read> BIAS: array<${T}>;`);
  if (f.pre && !f.split) lines.push(`@group(0) @binding(${binding++}) var<storage, read_write> PRE: array<${T}>;`);
  if (f.act === 'gelu' && !f.split) lines.push(ERF_WGSL);
  if (f.vstore) lines.push(`fn act4(v: vec4<f32>) -> vec4<f32> { return ${act4Wgsl(f.act)}; }`);
  if (extra) lines.push(extra);
  return lines.join('\n');
}

/** Declares oa, ob, oc, ox, op: element offsets of batch entry `bi` (a WGSL u32 expression) in each operand. */
export function batchOffsets(bi: string): string {
  return `var oa = ${w(W.AOFF)}; var ob = ${w(W.BOFF)}; var oc = ${w(W.COFF)}; var ox = ${w(W.XOFF)}; var op = ${w(W.POFF)};
  { var rem = ${bi};
    for (var d = ${w(W.BRANK)}; d > 0u; d--) {
      let size = word(${SHAPE}u + d - 1u);
      let q = rem % size;
      rem = rem / size;
      oa += q * word(${STR.a}u + d - 1u); ob += q * word(${STR.b}u + d - 1u); oc += q * word(${STR.c}u + d - 1u);
      ox += q * word(${STR.x}u + d - 1u); op += q * word(${STR.p}u + d - 1u);
    } }`;
}

/**
 * Writes value `v` for output (r, c) of batch entry `bi`: bias, pre-activation, activation, store. Assumes bounds were
 * checked.
 */
export function epilogue(f: Flags, v: string, r: string, c: string, split: string, bi: string): string {
  if (f.split) return `{ C[partOff + ((${split} * bTotal + ${bi}) * M + ${r}) * N + ${c}] = ${v}; }`;
  let s = `var v = ${v};`;
  if (f.bias) s += ` v += ${el(f, 'BIAS', `ox + ${r} * sxm + ${c} * sxn`)};`;
  if (f.pre) s += ` ${el(f, 'PRE', `op + ${r} * spm + ${c} * spn`)} = v;`;
  s += ` ${el(f, 'C', `oc + ${r} * scm + ${c} * scn`)} = ${actWgsl(f.act, 'v')};`;
  return `{ ${s} }`;
}

/** The uniform words the epilogue reads, hoisted out of the per-output stores. */
export function epilogueLets(f: Flags): string {
  if (f.split) return `let partOff = ${w(W.PARTOFF)}; let bTotal = ${w(W.BTOTAL)};`;
  let s = `let scm = ${w(W.SCM)}; let scn = ${w(W.SCN)};`;
  if (f.bias) s += ` let sxm = ${w(W.SXM)}; let sxn = ${w(W.SXN)};`;
  if (f.pre) s += ` let spm = ${w(W.SPM)}; let spn = ${w(W.SPN)};`;
  return s;
}

export const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Batch entry and K range of this workgroup: z = batch·splits in split mode. */
export function zPrologue(f: Flags): string {
  return f.split
    ? `let splits = ${w(W.SPLITS)};
  let sk = wid.z % splits;
  let bi = ${w(W.BSTART)} + wid.z / splits;
  let k0 = sk * ${w(W.KCHUNK)};
  let k1 = min(K, k0 + ${w(W.KCHUNK)});`
    : `let sk = 0u;
  let bi = ${w(W.BSTART)} + wid.z;
  let k0 = 0u;
  let k1 = K;`;
}
