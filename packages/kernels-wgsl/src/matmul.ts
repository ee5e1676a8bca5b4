/**
 * Matrix multiplication: C[b] = act(A[b] @ B[b] + bias), batched with broadcast batch dims, any
 * operand strides (a transposed operand is just a view with swapped strides, never a copy), an
 * optional second output holding the pre-activation value (for autograd), and a float64 reference.
 *
 * Kernels: `direct` (register-blocked, operands straight from storage: the CPU-adapter choice),
 * `tiled` (workgroup-memory tiles, 4×4 per thread: the default on hardware GPUs), `dot` (one
 * workgroup per output with a tree reduction: tiny outputs, long K), and split-K over either tile
 * kernel (partials to a scratch buffer, then a fixed-order reduce: deterministic, no atomics). A
 * small autotuner times candidates per adapter and shape class (`tuneMatmul`, JSON export/import).
 *
 * Versions, GFLOP/s on this machine: SwiftShader 5.0.0 (Subzero JIT, 4-lane SSE), 2 shared AMD EPYC
 * vCPUs, npm webgpu 0.6.2; f32, contiguous square operands unless noted. Other processes often
 * loaded the machine: wall-clock figures are from quiet moments (load < 1); "cpu" figures are
 * flop / (process CPU time / 2 cores), used to rank variants while it was busy.
 *  v1 one thread per output (direct 1×1, 64 threads):                  512³ 0.30
 *  v2 workgroup-memory tiles, 4×4/thread, 8×8 threads, bk 16, vec4 tile reads (GPU-style):
 *                                                                      512³ 0.75, 1024³ 1.0 cpu, batched 0.2–0.3
 *  v3 register-blocked from storage, scalar loads (best samples): 4×4 512³ 1.9; 8×8 2.8; 16×8
 *     2.9–3.1; 16×16 2.95; 1024³ (16×8) 2.3–2.7 cpu
 *  v4 + vec4 loads (A along k or m, B along n or k): 16×32/thread      1024³ 3.55, batched 1.93 (bench p50)
 *  v5 + vec4 stores for in-bounds tiles, epilogue as a loop over a private copy of the accumulators
 *     (compile 8 s → 2 s), 32×16/thread, 4×2 threads (64×64 tile):   256³ 4.06, 512³ 4.25, 1024³ 5.10
 *     (best sample 5.42), batched [8,128,64]×[8,64,128] 3.11 (bench p50; FMA ceiling in that run 13.85,
 *     i.e. 37% at 1024³; jax-js: 1.56 / 1.99 / 2.08 / 1.37)
 *  skinny: x[1,1024]@W[1024,1024] 1×4/thread 0.45 (best 0.78); W@x 4×1/thread 0.46;
 *     [32,4096]@[4096,32]: 16×16 + split-K 8 1.81 vs 0.92 unsplit
 * Tried and dropped: A rows shared through workgroup memory read at constant indices (meant to be
 * one scalar load + broadcast): 0.6 at 512³; textureLoad from rgba32float textures: no gain over
 * vec4 storage loads (microbenchmark); split-K at 1024³: slower (2.0–2.3 cpu vs 2.5). Subgroup
 * broadcast of A rows (subgroup size 4) gained ≈25–30% cpu at 512³ over the same scalar-load kernel
 * but needs the 'subgroups' device feature, which the tensor runtime does not request.
 * What the microbenchmarks say about this adapter: a 4-lane load from storage or workgroup memory,
 * scalar or per vec4 component, whatever the offset pattern, costs ≈15–30 lane-FMAs; FMAs slow down
 * ~3× once ~128 accumulators spill. Hence the biggest tile whose loads per FMA, (tm+tn)/(tm·tn),
 * fall faster than spills grow, and no workgroup memory on CPU adapters.
 */
import { KernelQueue, adapterKey, grid, isSoftwareAdapter } from './queue.js';
import { type CpuOperand, type GpuOperand, type View, UniformWriter, coalesce, numel, uniformBlock } from './layout.js';
import { ERF_WGSL, erf } from './math.js';

// ---------------------------------------------------------------------------------------------
// Public types

export type MatmulActivation = 'none' | 'relu' | 'gelu' | 'geluTanh';
export const MATMUL_ACTIVATIONS: readonly MatmulActivation[] = ['none', 'relu', 'gelu', 'geluTanh'];

/**
 * Register-blocked: each thread keeps a tm×tn block of C in registers and reads A and B straight
 * from storage (vec4 loads where the layout allows), 4 k-steps per loop iteration.
 */
export interface DirectConfig {
  kind: 'direct';
  tm: number;
  tn: number;
  wx: number;
  wy: number;
}
/** Workgroup-memory tiled: (wy·tm)×bk tiles of A and bk×(wx·tn) tiles of B are staged in workgroup memory; each thread computes tm×tn. */
export interface TiledConfig {
  kind: 'tiled';
  tm: number;
  tn: number;
  wx: number;
  wy: number;
  bk: number;
}
/** One workgroup of `wg` threads per output element: threads stride over K, then a tree reduction in workgroup memory. */
export interface DotConfig {
  kind: 'dot';
  wg: number;
}
export type MatmulConfig = DirectConfig | TiledConfig | DotConfig;

/** A kernel choice: the config and the number of K splits (1 = none; >1 writes partials, then a second dispatch reduces them in a fixed order). */
export interface MatmulPlan {
  config: MatmulConfig;
  splitK: number;
}

export interface MatmulDims {
  batch: number;
  m: number;
  n: number;
  k: number;
}

export interface MatmulOptions<T> {
  /** Added before the activation; any view that broadcasts to the output shape (e.g. [N] for a linear layer). */
  bias?: T;
  activation?: MatmulActivation;
  /** Optional second output with out's shape: the value before the activation (what its gradient needs). */
  preActivation?: T;
}

export interface MatmulGpuOptions extends MatmulOptions<GpuOperand> {
  /** Forces a kernel choice (tests, the tuner); otherwise the tuned or default plan for the shape is used. */
  plan?: MatmulPlan;
}

export const configKey = (c: MatmulConfig): string =>
  c.kind === 'dot' ? `dot${c.wg}` : c.kind === 'direct' ? `direct${c.tm}x${c.tn}/${c.wx}x${c.wy}` : `tiled${c.tm}x${c.tn}/${c.wx}x${c.wy}/k${c.bk}`;
export const planKey = (p: MatmulPlan): string => `${configKey(p.config)}${p.splitK > 1 ? `/split${p.splitK}` : ''}`;

// ---------------------------------------------------------------------------------------------
// Operand layout: shapes are checked here once, for both devices.

/** Largest number of batch dims left after merging contiguous ones. */
export const MAX_MATMUL_BATCH_RANK = 6;

interface Mat {
  off: number;
  s0: number; // stride of the row dim (m for A, C, bias; k for B)
  s1: number; // stride of the col dim
}

interface Layout {
  m: number;
  n: number;
  k: number;
  batch: number;
  /** Coalesced batch shape and per-operand batch strides, in the order c, a, b, bias, pre. */
  batchShape: number[];
  batchStrides: number[][];
  c: Mat;
  a: Mat;
  b: Mat;
  bias: Mat | null;
  pre: Mat | null;
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Strides that read `v` as `shape` (right-aligned broadcasting: size-1 and missing dims get stride 0). */
function broadcastStridesTo(what: string, v: View, shape: readonly number[]): number[] {
  const lead = shape.length - v.shape.length;
  if (lead < 0) throw new RangeError(`${what} ${fmt(v.shape)} has more dims than ${fmt(shape)}`);
  return shape.map((size, d) => {
    if (d < lead) return 0;
    const s = v.shape[d - lead]!;
    if (s === size) return size === 1 ? 0 : v.strides[d - lead]!;
    if (s === 1) return 0;
    throw new RangeError(`${what} ${fmt(v.shape)} does not broadcast to ${fmt(shape)}`);
  });
}

function resolveLayout(out: View, a: View, b: View, bias?: View, pre?: View): Layout {
  if (out.shape.length < 2 || a.shape.length < 2 || b.shape.length < 2) {
    throw new RangeError(`matmul: kernel operands need at least 2 dims (out ${fmt(out.shape)}, a ${fmt(a.shape)}, b ${fmt(b.shape)}); promote vectors first`);
  }
  const r = out.shape.length;
  const m = out.shape[r - 2]!;
  const n = out.shape[r - 1]!;
  const k = a.shape[a.shape.length - 1]!;
  const batchShape = out.shape.slice(0, r - 2);
  if (a.shape[a.shape.length - 2] !== m || b.shape[b.shape.length - 1] !== n || b.shape[b.shape.length - 2] !== k) {
    throw new RangeError(`matmul: ${fmt(a.shape)} @ ${fmt(b.shape)} does not give ${fmt(out.shape)}`);
  }
  const as = broadcastStridesTo('matmul: a', a, [...batchShape, m, k]);
  const bs = broadcastStridesTo('matmul: b', b, [...batchShape, k, n]);
  const xs = bias ? broadcastStridesTo('matmul: bias', bias, out.shape) : null;
  if (pre && (pre.shape.length !== r || pre.shape.some((s, d) => s !== out.shape[d]))) {
    throw new RangeError(`matmul: preActivation ${fmt(pre.shape)} must have the output's shape ${fmt(out.shape)}`);
  }
  const lists = [out.strides, as, bs, xs ?? out.strides, pre ? pre.strides : out.strides].map((s) => s.slice(0, r - 2));
  const merged = coalesce(batchShape, lists);
  if (merged.shape.length > MAX_MATMUL_BATCH_RANK) {
    throw new RangeError(`matmul: ${merged.shape.length} non-mergeable batch dims exceed ${MAX_MATMUL_BATCH_RANK}`);
  }
  const mat = (v: View, s: readonly number[], off: number): Mat => ({ off, s0: s[r - 2]!, s1: s[r - 1]! });
  // Rows of size 1 have no meaningful stride; 0 keeps index arithmetic in range.
  const fix = (x: Mat, rows: number, cols: number): Mat => ({ off: x.off, s0: rows === 1 ? 0 : x.s0, s1: cols === 1 ? 0 : x.s1 });
  return {
    m,
    n,
    k,
    batch: numel(batchShape),
    batchShape: merged.shape,
    batchStrides: merged.strides,
    c: fix(mat(out, out.strides, out.offset), m, n),
    a: fix(mat(a, as, a.offset), m, k),
    b: fix(mat(b, bs, b.offset), k, n),
    bias: xs && bias ? { off: bias.offset, s0: xs[r - 2]!, s1: xs[r - 1]! } : null,
    pre: pre ? fix(mat(pre, pre.strides, pre.offset), m, n) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Float64 reference

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activationCpu(act: MatmulActivation, x: number): number {
  switch (act) {
    case 'none':
      return x;
    case 'relu':
      return Math.max(x, 0);
    case 'gelu':
      return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
    case 'geluTanh':
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
  }
}

/** Float64 reference of `matmulGpu`: same operand, broadcasting and write semantics. */
export function matmulCpu(out: CpuOperand, a: CpuOperand, b: CpuOperand, opts: MatmulOptions<CpuOperand> = {}): void {
  checkDtypes([out, a, b, opts.bias, opts.preActivation]);
  const L = resolveLayout(out, a, b, opts.bias, opts.preActivation);
  const act = opts.activation ?? 'none';
  const { m: M, n: N, k: K } = L;
  const rank = L.batchShape.length;
  const coord = new Array<number>(rank).fill(0);
  for (let bi = 0; bi < L.batch; bi++) {
    // offsets of this batch entry
    const offs = L.batchStrides.map((st) => st.reduce((acc, s, d) => acc + s * coord[d]!, 0));
    const ao = L.a.off + offs[1]!;
    const bo = L.b.off + offs[2]!;
    const co = L.c.off + offs[0]!;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let p = 0; p < K; p++) acc += a.data[ao + i * L.a.s0 + p * L.a.s1]! * b.data[bo + p * L.b.s0 + j * L.b.s1]!;
        if (L.bias) acc += opts.bias!.data[L.bias.off + offs[3]! + i * L.bias.s0 + j * L.bias.s1]!;
        if (L.pre) opts.preActivation!.data[L.pre.off + offs[4]! + i * L.pre.s0 + j * L.pre.s1] = acc;
        out.data[co + i * L.c.s0 + j * L.c.s1] = activationCpu(act, acc);
      }
    }
    for (let d = rank - 1; d >= 0; d--) {
      if (++coord[d]! < L.batchShape[d]!) break;
      coord[d] = 0;
    }
  }
}

function checkDtypes(xs: ({ dtype: string } | undefined)[]): void {
  for (const x of xs) if (x && x.dtype !== 'f32') throw new TypeError(`matmul: only f32 operands are supported, got ${x.dtype}`);
}

// ---------------------------------------------------------------------------------------------
// Uniform block (u32 words), shared by every matmul kernel.

const W = {
  M: 0, N: 1, K: 2, BTOTAL: 3,
  AOFF: 4, BOFF: 5, COFF: 6, XOFF: 7,
  SAM: 8, SAK: 9, SBK: 10, SBN: 11,
  SCM: 12, SCN: 13, SXM: 14, SXN: 15,
  BRANK: 16, BSTART: 17, SPLITS: 18, KCHUNK: 19,
  POFF: 20, SPM: 21, SPN: 22, ROWSTART: 23,
  COLSTART: 24, PARTOFF: 25, TOTAL: 26,
} as const;
const MB = MAX_MATMUL_BATCH_RANK;
const SHAPE = 28;
const STR = { c: SHAPE + MB, a: SHAPE + 2 * MB, b: SHAPE + 3 * MB, x: SHAPE + 4 * MB, p: SHAPE + 5 * MB };
const WORDS = SHAPE + 6 * MB;

/** A uniform word read with constant indices (a dynamic index would compile to a gather on CPU adapters). */
const w = (i: number) => `params.m[${i >> 2}][${i & 3}]`;

function writeUniforms(L: Layout, extra: { splits: number; kChunk: number; partOff: number; rowStart: number; colStart: number; batchStart: number }): UniformWriter {
  const u = new UniformWriter(WORDS)
    .u32(W.M, L.m).u32(W.N, L.n).u32(W.K, L.k).u32(W.BTOTAL, L.batch)
    .u32(W.AOFF, L.a.off).u32(W.BOFF, L.b.off).u32(W.COFF, L.c.off).u32(W.XOFF, L.bias?.off ?? 0)
    .u32(W.SAM, L.a.s0).u32(W.SAK, L.a.s1).u32(W.SBK, L.b.s0).u32(W.SBN, L.b.s1)
    .u32(W.SCM, L.c.s0).u32(W.SCN, L.c.s1).u32(W.SXM, L.bias?.s0 ?? 0).u32(W.SXN, L.bias?.s1 ?? 0)
    .u32(W.BRANK, L.batchShape.length).u32(W.BSTART, extra.batchStart).u32(W.SPLITS, extra.splits).u32(W.KCHUNK, extra.kChunk)
    .u32(W.POFF, L.pre?.off ?? 0).u32(W.SPM, L.pre?.s0 ?? 0).u32(W.SPN, L.pre?.s1 ?? 0).u32(W.ROWSTART, extra.rowStart)
    .u32(W.COLSTART, extra.colStart).u32(W.PARTOFF, extra.partOff).u32(W.TOTAL, L.batch * L.m * L.n)
    .array(SHAPE, L.batchShape, MB, 1);
  const [sc, sa, sb, sx, sp] = L.batchStrides;
  u.array(STR.c, sc!, MB).array(STR.a, sa!, MB).array(STR.b, sb!, MB).array(STR.x, sx!, MB).array(STR.p, sp!, MB);
  return u;
}

// ---------------------------------------------------------------------------------------------
// WGSL pieces

interface Flags {
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

function flagKey(f: Flags): string {
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
      return `(0.5 * ${v} * (1.0 + tanh(clamp(${SQRT_2_OVER_PI} * (${v} + 0.044715 * ${v} * ${v} * ${v}), -15.0, 15.0))))`;
  }
}

/** Bindings: 1 = C (or the partial-sum scratch), 2 = A, 3 = B, then bias and pre-activation when present. */
function header(f: Flags, extra = ''): string {
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
function batchOffsets(bi: string): string {
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

/** Writes value `v` for output (r, c) of batch entry `bi`: bias, pre-activation, activation, store. Assumes bounds were checked. */
function epilogue(f: Flags, v: string, r: string, c: string, split: string, bi: string): string {
  if (f.split) return `{ C[partOff + ((${split} * bTotal + ${bi}) * M + ${r}) * N + ${c}] = ${v}; }`;
  let s = `var v = ${v};`;
  if (f.bias) s += ` v += ${el(f, 'BIAS', `ox + ${r} * sxm + ${c} * sxn`)};`;
  if (f.pre) s += ` ${el(f, 'PRE', `op + ${r} * spm + ${c} * spn`)} = v;`;
  s += ` ${el(f, 'C', `oc + ${r} * scm + ${c} * scn`)} = ${actWgsl(f.act, 'v')};`;
  return `{ ${s} }`;
}

/** The uniform words the epilogue reads, hoisted out of the per-output stores. */
function epilogueLets(f: Flags): string {
  if (f.split) return `let partOff = ${w(W.PARTOFF)}; let bTotal = ${w(W.BTOTAL)};`;
  let s = `let scm = ${w(W.SCM)}; let scn = ${w(W.SCN)};`;
  if (f.bias) s += ` let sxm = ${w(W.SXM)}; let sxn = ${w(W.SXN)};`;
  if (f.pre) s += ` let spm = ${w(W.SPM)}; let spn = ${w(W.SPN)};`;
  return s;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Batch entry and K range of this workgroup: z = batch·splits in split mode. */
function zPrologue(f: Flags): string {
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

// --- direct (register-blocked, no workgroup memory) ----------------------------------------

/** How an operand is read: 's' scalar, or vec4 along one of its dims ('k' for either operand, 'm' for A, 'n' for B). */
export type VecMode = 's' | 'k' | 'm' | 'n';

function directSource(cfg: DirectConfig, f: Flags, va: VecMode, vb: VecMode): string {
  const { tm, tn, wx, wy } = cfg;
  const vacc = tn % 4 === 0; // accumulate rows as vec4 over 4 columns
  const extra: string[] = [];
  let binding = 4 + (f.bias && !f.split ? 1 : 0) + (f.pre && !f.split ? 1 : 0);
  if (va !== 's') extra.push(`@group(0) @binding(${binding++}) var<storage, read> A4: array<vec4<f32>>;`);
  if (vb !== 's') extra.push(`@group(0) @binding(${binding++}) var<storage, read> B4: array<vec4<f32>>;`);
  // a(i, kk): A[row i][k + kk] within a block of 4 k-steps; b(kk, j) likewise.
  const a = (i: number, kk: number) => (va === 'k' ? `va${i}[${kk}]` : va === 'm' ? `va${kk}_${i >> 2}[${i & 3}]` : `sa${kk}_${i}`);
  const b = (kk: number, j: number) => (vb === 'n' ? `vb${kk}_${j >> 2}[${j & 3}]` : vb === 'k' ? `vb${j}[${kk}]` : `sb${kk}_${j}`);
  const bq = (kk: number, q: number) => (vb === 'n' ? `vb${kk}_${q}` : `vec4<f32>(${[0, 1, 2, 3].map((r) => b(kk, 4 * q + r)).join(', ')})`);
  let block = '';
  if (va === 'k') block += range(tm).map((i) => `let va${i} = A4[av${i} + k4];`).join(' ') + '\n';
  if (vb === 'k') block += range(tn).map((j) => `let vb${j} = B4[bv${j} + k4];`).join(' ') + '\n';
  for (let kk = 0; kk < 4; kk++) {
    block += `{ let kk${kk} = k + ${kk}u;\n`;
    if (va === 'm') block += range(tm / 4).map((q) => `let va${kk}_${q} = A4[av${q} + kk${kk} * sak4];`).join(' ') + '\n';
    if (va === 's') block += range(tm).map((i) => `let sa${kk}_${i} = A[ar${i} + kk${kk} * sak];`).join(' ') + '\n';
    if (vb === 'n') block += range(tn / 4).map((q) => `let vb${kk}_${q} = B4[bv${q} + kk${kk} * sbk4];`).join(' ') + '\n';
    if (vb === 's') block += range(tn).map((j) => `let sb${kk}_${j} = B[bc${j} + kk${kk} * sbk];`).join(' ') + '\n';
    for (let i = 0; i < tm; i++) {
      block += vacc
        ? range(tn / 4).map((q) => `c${i}_${q} = fma(vec4<f32>(${a(i, kk)}), ${bq(kk, q)}, c${i}_${q});`).join(' ') + '\n'
        : range(tn).map((j) => `c${i}_${j} = fma(${a(i, kk)}, ${b(kk, j)}, c${i}_${j});`).join(' ') + '\n';
    }
    block += '}\n';
  }
  // Tail: one k-step at a time through the scalar bindings.
  let tail = range(tm).map((i) => `let ta${i} = A[ar${i} + k * sak];`).join(' ') + '\n';
  tail += range(tn).map((j) => `let tb${j} = B[bc${j} + k * sbk];`).join(' ') + '\n';
  for (let i = 0; i < tm; i++) {
    tail += vacc
      ? range(tn / 4).map((q) => `c${i}_${q} = fma(vec4<f32>(ta${i}), vec4<f32>(${[0, 1, 2, 3].map((r) => `tb${4 * q + r}`).join(', ')}), c${i}_${q});`).join(' ') + '\n'
      : range(tn).map((j) => `c${i}_${j} = fma(ta${i}, tb${j}, c${i}_${j});`).join(' ') + '\n';
  }
  const offsets: string[] = [];
  offsets.push(range(tm).map((i) => `let ar${i} = oa + min(row0 + ${i}u, M - 1u) * sam;`).join(' '));
  offsets.push(range(tn).map((j) => `let bc${j} = ob + min(col0 + ${j}u, N - 1u) * sbn;`).join(' '));
  // vec4 offsets (in vec4 units); the launcher checked the alignment these divisions rely on.
  if (va === 'k') offsets.push(range(tm).map((i) => `let av${i} = ar${i} / 4u;`).join(' '));
  if (va === 'm') offsets.push(`let sak4 = sak / 4u; ` + range(tm / 4).map((q) => `let av${q} = (oa + min(row0 + ${4 * q}u, M - 4u)) / 4u;`).join(' '));
  if (vb === 'n') offsets.push(`let sbk4 = sbk / 4u; ` + range(tn / 4).map((q) => `let bv${q} = (ob + min(col0 + ${4 * q}u, N - 4u)) / 4u;`).join(' '));
  if (vb === 'k') offsets.push(range(tn).map((j) => `let bv${j} = bc${j} / 4u;`).join(' '));
  const decl = vacc
    ? range(tm).map((i) => range(tn / 4).map((q) => `var c${i}_${q} = vec4<f32>(0.0);`).join(' ')).join('\n  ')
    : range(tm).map((i) => range(tn).map((j) => `var c${i}_${j} = 0.0;`).join(' ')).join('\n  ');
  // The epilogue is a loop over a private copy of the accumulators: one copy of the bias/activation
  // code instead of tm·tn (compile time), while the hot loop keeps plain variables (registers).
  const cols = vacc ? tn / 4 : tn;
  const copy = range(tm).map((i) => range(cols).map((q) => `res[${i * cols + q}] = c${i}_${q};`).join(' ')).join('\n  ');
  const loopStores = `var res: array<${vacc ? 'vec4<f32>' : 'f32'}, ${tm * cols}>;
  ${copy}
  for (var i = 0u; i < ${tm}u; i++) {
    let r = row0 + i;
    if (r >= M) { break; }
    for (var j = 0u; j < ${tn}u; j++) {
      let c = col0 + j;
      if (c >= N) { break; }
      ${epilogue(f, vacc ? `res[i * ${cols}u + j / 4u][j % 4u]` : `res[i * ${cols}u + j]`, 'r', 'c', 'sk', 'bi')}
    }
  }`;
  let stores = loopStores;
  if (f.vstore && vacc && !f.split) {
    // Whole tile in bounds: unrolled vec4 stores straight from the accumulators.
    let fast = '';
    for (let i = 0; i < tm; i++) {
      fast += `{ let rc = (oc + (row0 + ${i}u) * scm + col0) / 4u;${f.bias ? ` let rx = (ox + (row0 + ${i}u) * sxm + col0) / 4u;` : ''}${f.pre ? ` let rp = (op + (row0 + ${i}u) * spm + col0) / 4u;` : ''}\n`;
      for (let q = 0; q < cols; q++) {
        fast += `  { var v = c${i}_${q};${f.bias ? ` v += BIAS[rx + ${q}u];` : ''}${f.pre ? ` PRE[rp + ${q}u] = v;` : ''} C[rc + ${q}u] = act4(v); }\n`;
      }
      fast += '}\n';
    }
    stores = `if (row0 + ${tm}u <= M && col0 + ${tn}u <= N) {
${fast}  } else {
  ${loopStores}
  }`;
  }
  return `${header(f, extra.join('\n'))}
@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = ${w(W.M)}; let N = ${w(W.N)}; let K = ${w(W.K)};
  let row0 = ${w(W.ROWSTART)} + (wid.y * ${wy}u + lid.y) * ${tm}u;
  let col0 = ${w(W.COLSTART)} + (wid.x * ${wx}u + lid.x) * ${tn}u;
  if (row0 >= M || col0 >= N) { return; }
  ${zPrologue(f)}
  ${batchOffsets('bi')}
  ${epilogueLets(f)}
  let sam = ${w(W.SAM)}; let sak = ${w(W.SAK)}; let sbk = ${w(W.SBK)}; let sbn = ${w(W.SBN)};
  ${offsets.join('\n  ')}
  ${decl}
  var k = k0;
  loop {
    if (k + 4u > k1) { break; }
    let k4 = k / 4u;
${block}
    k += 4u;
  }
  loop {
    if (k >= k1) { break; }
${tail}
    k += 1u;
  }
  ${stores}
}`;
}

// --- tiled (workgroup memory) ----------------------------------------------------------------

function tiledSource(cfg: TiledConfig, f: Flags, aKFast: boolean, bNFast: boolean): string {
  const { tm, tn, wx, wy, bk } = cfg;
  const BM = wy * tm;
  const BN = wx * tn;
  const T = wx * wy;
  const vec = tn % 4 === 0; // B-tile reads as vec4 from workgroup memory
  const aLoads = (BM * bk) / T;
  const bLoads = (BN * bk) / T;
  // Element e of the A tile: m-major when A is k-contiguous (coalesced global reads), else k-major.
  const aIdx = aKFast ? ['e / ' + bk + 'u', 'e % ' + bk + 'u'] : ['e % ' + BM + 'u', 'e / ' + BM + 'u'];
  const bIdx = bNFast ? ['e / ' + BN + 'u', 'e % ' + BN + 'u'] : ['e % ' + bk + 'u', 'e / ' + bk + 'u'];
  let stage = '';
  for (let s = 0; s < aLoads; s++) {
    stage += `{ let e = ${s * T}u + tid; let mm = ${aIdx[0]}; let kk = ${aIdx[1]}; let gr = rowT + mm; let gk = kt + kk;
      As[kk * ${BM}u + mm] = select(0.0, A[oa + min(gr, M - 1u) * sam + min(gk, K - 1u) * sak], gr < M && gk < k1); }\n`;
  }
  for (let s = 0; s < bLoads; s++) {
    const store = vec ? `Bs[(kk * ${BN}u + nn) / 4u][nn % 4u]` : `Bs[kk * ${BN}u + nn]`;
    stage += `{ let e = ${s * T}u + tid; let kk = ${bIdx[0]}; let nn = ${bIdx[1]}; let gc = colT + nn; let gk = kt + kk;
      ${store} = select(0.0, B[ob + min(gk, K - 1u) * sbk + min(gc, N - 1u) * sbn], gc < N && gk < k1); }\n`;
  }
  let inner = '';
  for (let kk = 0; kk < bk; kk++) {
    inner += '{ ';
    for (let i = 0; i < tm; i++) inner += `let a${i} = As[${kk * BM}u + ly * ${tm}u + ${i}u]; `;
    if (vec) {
      for (let q = 0; q < tn / 4; q++) inner += `let b${q} = Bs[${(kk * BN) / 4}u + lx * ${tn / 4}u + ${q}u]; `;
      for (let i = 0; i < tm; i++) for (let q = 0; q < tn / 4; q++) inner += `c${i}_${q} = fma(vec4<f32>(a${i}), b${q}, c${i}_${q}); `;
    } else {
      for (let j = 0; j < tn; j++) inner += `let b${j} = Bs[${kk * BN}u + lx * ${tn}u + ${j}u]; `;
      for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) inner += `c${i}_${j} = fma(a${i}, b${j}, c${i}_${j}); `;
    }
    inner += '}\n';
  }
  const acc = (i: number, j: number) => (vec ? `c${i}_${j >> 2}[${j & 3}]` : `c${i}_${j}`);
  const decl = vec
    ? range(tm).map((i) => range(tn / 4).map((q) => `var c${i}_${q} = vec4<f32>(0.0);`).join(' ')).join('\n  ')
    : range(tm).map((i) => range(tn).map((j) => `var c${i}_${j} = 0.0;`).join(' ')).join('\n  ');
  const stores = range(tm)
    .map((i) => range(tn).map((j) => `if (row0 + ${i}u < M && col0 + ${j}u < N) ${epilogue(f, acc(i, j), `(row0 + ${i}u)`, `(col0 + ${j}u)`, 'sk', 'bi')}`).join('\n  '))
    .join('\n  ');
  const wgDecl = `var<workgroup> As: array<f32, ${BM * bk}>;
var<workgroup> Bs: ${vec ? `array<vec4<f32>, ${(BN * bk) / 4}>` : `array<f32, ${BN * bk}>`};`;
  return `${header(f, wgDecl)}
@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let M = ${w(W.M)}; let N = ${w(W.N)}; let K = ${w(W.K)};
  let lx = lid.x; let ly = lid.y;
  let rowT = ${w(W.ROWSTART)} + wid.y * ${BM}u;
  let colT = ${w(W.COLSTART)} + wid.x * ${BN}u;
  let row0 = rowT + ly * ${tm}u;
  let col0 = colT + lx * ${tn}u;
  ${zPrologue(f)}
  ${batchOffsets('bi')}
  ${epilogueLets(f)}
  let sam = ${w(W.SAM)}; let sak = ${w(W.SAK)}; let sbk = ${w(W.SBK)}; let sbn = ${w(W.SBN)};
  ${decl}
  for (var kt = k0; kt < k1; kt += ${bk}u) {
    // Write-after-read: every thread must be done reading the previous tiles before they are overwritten.
    workgroupBarrier();
${stage}
    workgroupBarrier();
${inner}
  }
  ${stores}
}`;
}

// --- dot (one workgroup per output) ----------------------------------------------------------

function dotSource(cfg: DotConfig, f: Flags): string {
  const wg = cfg.wg;
  return `${header(f, `var<workgroup> red: array<f32, ${wg}>;`)}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = ${w(W.M)}; let N = ${w(W.N)}; let K = ${w(W.K)};
  let o = wid.x + wid.y * nwg.x;
  if (o >= ${w(W.TOTAL)}) { return; }
  let mn = M * N;
  let bi = o / mn;
  let r = (o % mn) / N;
  let c = o % N;
  let sk = 0u;
  ${batchOffsets('bi')}
  ${epilogueLets(f)}
  let sak = ${w(W.SAK)}; let sbk = ${w(W.SBK)};
  let ar = oa + r * ${w(W.SAM)};
  let bc = ob + c * ${w(W.SBN)};
  var acc = 0.0;
  for (var k = lid; k < K; k += ${wg}u) { acc = fma(A[ar + k * sak], B[bc + k * sbk], acc); }
  red[lid] = acc;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) ${epilogue(f, 'red[0]', 'r', 'c', 'sk', 'bi')}
}`;
}

// --- split-K reduction -----------------------------------------------------------------------

const REDUCE_WG = 64;

function reduceSource(f: Flags): string {
  // Binding 2 (A) is the scratch with the partial sums; B is bound but unused.
  return `${header(f)}
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = ${w(W.M)}; let N = ${w(W.N)};
  let total = ${w(W.TOTAL)};
  let o = (wid.x + wid.y * nwg.x) * ${REDUCE_WG}u + lid;
  if (o >= total) { return; }
  _ = B[0];
  let mn = M * N;
  let bi = o / mn;
  let r = (o % mn) / N;
  let c = o % N;
  let sk = 0u;
  ${batchOffsets('bi')}
  ${epilogueLets(f)}
  var acc = 0.0;
  let base = ${w(W.PARTOFF)} + o;
  for (var s = 0u; s < ${w(W.SPLITS)}; s++) { acc += A[base + s * total]; }
  ${epilogue(f, 'acc', 'r', 'c', 'sk', 'bi')}
}`;
}

// ---------------------------------------------------------------------------------------------
// Plans: defaults, tuned choices per adapter and shape class

const bucket = (x: number) => (x <= 8 ? 's' : x <= 48 ? 'm' : x <= 256 ? 'l' : 'x');

/** Shape classes share a tuned plan: size buckets of M, N, K (≤8, ≤48, ≤256, larger) and whether there is a batch. */
export function matmulShapeClass(d: MatmulDims): string {
  return `m${bucket(d.m)}n${bucket(d.n)}k${bucket(d.k)}${d.batch > 1 ? 'b' : ''}`;
}

const tunings = new Map<string, Map<string, MatmulPlan>>();

/** Tuned plans of every adapter as JSON, to persist between runs. */
export function exportMatmulTunings(): string {
  const obj: Record<string, Record<string, MatmulPlan>> = {};
  for (const [adapter, classes] of tunings) obj[adapter] = Object.fromEntries(classes);
  return JSON.stringify(obj, null, 2);
}

/** Loads plans exported by `exportMatmulTunings` (merging over what is cached). Invalid entries are skipped. */
export function importMatmulTunings(json: string): void {
  const obj = JSON.parse(json) as Record<string, Record<string, MatmulPlan>>;
  for (const [adapter, classes] of Object.entries(obj)) {
    const map = tunings.get(adapter) ?? new Map<string, MatmulPlan>();
    for (const [cls, plan] of Object.entries(classes)) if (validPlan(plan)) map.set(cls, plan);
    tunings.set(adapter, map);
  }
}

export function clearMatmulTunings(): void {
  tunings.clear();
}

function validPlan(p: MatmulPlan): boolean {
  const c = p?.config;
  if (!c || !Number.isInteger(p.splitK) || p.splitK < 1) return false;
  const pow2 = (x: number) => Number.isInteger(x) && x > 0 && (x & (x - 1)) === 0;
  if (c.kind === 'dot') return pow2(c.wg) && c.wg <= 256;
  if (![c.tm, c.tn, c.wx, c.wy].every((x) => Number.isInteger(x) && x > 0) || c.wx * c.wy > 256 || c.tm * c.tn > 1024) return false;
  if (c.kind === 'direct') return c.tm <= 64 && c.tn <= 64;
  return c.kind === 'tiled' && tiledFits(c);
}

function tiledFits(c: TiledConfig): boolean {
  const T = c.wx * c.wy;
  const BM = c.wy * c.tm;
  const BN = c.wx * c.tn;
  return (BM * c.bk) % T === 0 && (BN * c.bk) % T === 0 && (c.tn % 4 !== 0 || (BN * c.bk) % 4 === 0) && 4 * c.bk * (BM + BN) <= 16384;
}

const direct = (tm: number, tn: number, wx: number, wy: number): DirectConfig => ({ kind: 'direct', tm, tn, wx, wy });
const tiled = (tm: number, tn: number, wx: number, wy: number, bk: number): TiledConfig => ({ kind: 'tiled', tm, tn, wx, wy, bk });

/** Output rows/cols one workgroup covers. */
function tileOf(c: MatmulConfig): [number, number] {
  return c.kind === 'dot' ? [1, 1] : [c.wy * c.tm, c.wx * c.tn];
}

function workgroupsOf(c: MatmulConfig, d: MatmulDims): number {
  const [bm, bn] = tileOf(c);
  return Math.ceil(d.m / bm) * Math.ceil(d.n / bn) * d.batch;
}

/** Splits K so that few-workgroup shapes keep every core busy; each split keeps ≥ 128 k-steps. */
function chooseSplit(c: MatmulConfig, d: MatmulDims, minGroups: number): number {
  if (c.kind === 'dot') return 1;
  const groups = workgroupsOf(c, d);
  if (groups >= minGroups || d.k < 256) return 1;
  const s = Math.min(Math.ceil(minGroups / groups), Math.floor(d.k / 128), 32);
  return s * d.batch * d.m * d.n * 4 <= 64 * 2 ** 20 ? Math.max(1, s) : 1;
}

/** Default plan when nothing is tuned for this adapter and shape class. */
export function defaultMatmulPlan(d: MatmulDims, software: boolean): MatmulPlan {
  const outputs = d.batch * d.m * d.n;
  if (outputs <= 16 && d.k >= 128) return { config: { kind: 'dot', wg: 64 }, splitK: 1 };
  const p2 = (x: number) => (x <= 1 ? 1 : x <= 2 ? 2 : x <= 4 ? 4 : 8);
  const minGroups = software ? 8 : 64;
  let config: MatmulConfig;
  if (d.m <= 4 && d.n <= 4) config = direct(p2(d.m), p2(d.n), 16, 4);
  else if (d.m <= 4) config = direct(p2(d.m), 4, 64, 1);
  else if (d.n <= 4) config = direct(4, p2(d.n), 1, 64);
  else if (d.m <= 8) config = direct(8, 8, 16, 1);
  else if (d.n <= 8) config = direct(8, 8, 1, 16);
  else if (!software && d.m >= 32 && d.n >= 32) config = tiled(4, 4, 8, 8, 16);
  else {
    // CPU adapters: loads cost far more than FMAs, so the biggest register tile that fits the
    // matrix (idle SIMD lanes waste as much) and still yields enough workgroups, with split-K's help.
    const options = [direct(32, 16, 4, 2), direct(16, 16, 2, 4), direct(16, 16, 2, 2), direct(8, 8, 4, 4), direct(4, 4, 8, 4)];
    const up16 = (x: number) => Math.max(16, Math.ceil(x / 16) * 16);
    const usable = (c: MatmulConfig) => {
      const [bm, bn] = tileOf(c);
      const groups = workgroupsOf(c, d);
      return bm <= up16(d.m) && bn <= up16(d.n) && (groups >= minGroups || (d.k >= 256 && groups * Math.floor(d.k / 128) >= minGroups));
    };
    config = options.find(usable) ?? options[options.length - 1]!;
  }
  return { config, splitK: chooseSplit(config, d, minGroups) };
}

/** The plan `matmulGpu` uses for these dims on this queue: tuned if available, else the default. */
export function matmulPlanFor(queue: KernelQueue, d: MatmulDims): MatmulPlan {
  const key = adapterKey(queue);
  const tuned = tunings.get(key)?.get(matmulShapeClass(d));
  if (tuned) {
    const splitK = tuned.splitK > 1 ? Math.min(tuned.splitK, Math.max(1, Math.floor(d.k / 64))) : 1;
    return { config: tuned.config, splitK };
  }
  return defaultMatmulPlan(d, isSoftwareAdapter(queue));
}

// ---------------------------------------------------------------------------------------------
// Launch

interface Scratch {
  buffer: GPUBuffer;
  bytes: number;
}
const scratch = new WeakMap<KernelQueue, Scratch>();

/** Split-K partials live in one scratch buffer per queue, reused in stream order and grown as needed. */
function scratchBuffer(queue: KernelQueue, bytes: number): GPUBuffer {
  const cur = scratch.get(queue);
  if (cur && cur.bytes >= bytes) return cur.buffer;
  if (cur) queue.afterSubmit(() => cur.buffer.destroy());
  const size = Math.max(bytes, 1 << 20);
  const buffer = queue.device.createBuffer({ label: 'rnagrad matmul split-K partials', size, usage: GPUBufferUsage.STORAGE });
  scratch.set(queue, { buffer, bytes: size });
  return buffer;
}

/**
 * Which operands the direct kernel reads as vec4: along k when k is the unit-stride dim, else along
 * m (A) or n (B), provided every row start is 16-byte aligned and the binding holds whole vec4s.
 */
function vectorModes(L: Layout, c: DirectConfig, aBuf: GPUBuffer, bBuf: GPUBuffer): [VecMode, VecMode] {
  const al = (x: number) => x % 4 === 0;
  const batchOk = (k: number) => L.batchStrides[k]!.every(al);
  let va: VecMode = 's';
  let vb: VecMode = 's';
  if (aBuf.size % 16 === 0 && al(L.a.off) && batchOk(1)) {
    if (L.a.s1 === 1 && al(L.a.s0)) va = 'k';
    else if (L.a.s0 === 1 && al(L.a.s1) && c.tm % 4 === 0 && al(L.m)) va = 'm';
  }
  if (bBuf.size % 16 === 0 && al(L.b.off) && batchOk(2)) {
    if (L.b.s1 === 1 && al(L.b.s0) && c.tn % 4 === 0 && al(L.n)) vb = 'n';
    else if (L.b.s0 === 1 && al(L.b.s1)) vb = 'k';
  }
  return [va, vb];
}

/** Whether C, bias and pre-activation can be bound as vec4 arrays with 16-byte aligned, unit-stride rows. */
function vectorStores(L: Layout, out: GpuOperand, opts: MatmulGpuOptions): boolean {
  const al = (x: number) => x % 4 === 0;
  const ok = (m: Mat | null, buf: GPUBuffer | undefined, k: number) =>
    !!m && !!buf && buf.size % 16 === 0 && m.s1 === 1 && al(m.off) && al(m.s0) && L.batchStrides[k]!.every(al);
  return ok(L.c, out.buffer, 0) && (!L.bias || ok(L.bias, opts.bias?.buffer, 3)) && (!L.pre || ok(L.pre, opts.preActivation?.buffer, 4));
}

/**
 * out = act(a @ b + bias) on the GPU. `out` is [...batch, M, N] (any strides, must not alias an
 * input); `a` is [..., M, K] and `b` [..., K, N], their batch dims broadcasting to out's; `bias`
 * broadcasts to out's shape. Transposed operands are views with swapped strides.
 */
export function matmulGpu(queue: KernelQueue, out: GpuOperand, a: GpuOperand, b: GpuOperand, opts: MatmulGpuOptions = {}): void {
  checkDtypes([out, a, b, opts.bias, opts.preActivation]);
  const L = resolveLayout(out, a, b, opts.bias, opts.preActivation);
  if (L.batch === 0 || L.m === 0 || L.n === 0) return;
  const dims: MatmulDims = { batch: L.batch, m: L.m, n: L.n, k: L.k };
  const plan = opts.plan ?? matmulPlanFor(queue, dims);
  if (!validPlan(plan)) throw new RangeError(`matmul: invalid plan ${JSON.stringify(plan)} (tiled tiles must fit 16 KiB of workgroup memory; at most 256 threads)`);
  const act = opts.activation ?? 'none';
  const f: Flags = { act, bias: !!opts.bias, pre: !!opts.preActivation, split: false };
  const extraStorage: GPUBuffer[] = [];
  if (opts.bias) extraStorage.push(opts.bias.buffer);
  if (opts.preActivation) extraStorage.push(opts.preActivation.buffer);
  const maxDim = queue.device.limits.maxComputeWorkgroupsPerDimension;
  const base = { splits: 1, kChunk: L.k, partOff: 0, rowStart: 0, colStart: 0, batchStart: 0 };
  const c = plan.config;

  if (c.kind === 'dot') {
    queue.dispatch({
      key: `matmul:${configKey(c)}:${flagKey(f)}`,
      source: () => dotSource(c, f),
      storage: [out.buffer, a.buffer, b.buffer, ...extraStorage],
      uniforms: writeUniforms(L, base).data,
      workgroups: grid(L.batch * L.m * L.n, maxDim),
      label: 'matmul dot',
    });
    return;
  }

  const splits = Math.max(1, Math.min(plan.splitK, L.k));
  // K chunks are multiples of 4 so vec4 reads along k stay aligned.
  const kChunk = splits > 1 ? Math.ceil(Math.ceil(L.k / splits) / 4) * 4 : L.k;
  let fMain: Flags = splits > 1 ? { ...f, split: true } : f;
  let key: string;
  let source: () => string;
  const vecStorage: GPUBuffer[] = [];
  if (c.kind === 'direct') {
    if (splits === 1 && c.tn % 4 === 0 && vectorStores(L, out, opts)) fMain = { ...f, vstore: true };
    const [va, vb] = vectorModes(L, c, a.buffer, b.buffer);
    key = `matmul:${configKey(c)}:${va}${vb}:${flagKey(fMain)}`;
    source = () => directSource(c, fMain, va, vb);
    if (va !== 's') vecStorage.push(a.buffer);
    if (vb !== 's') vecStorage.push(b.buffer);
  } else {
    const aKFast = L.a.s1 === 1;
    const bNFast = L.b.s1 === 1;
    key = `matmul:${configKey(c)}:${aKFast ? 'ak' : 'am'}${bNFast ? 'bn' : 'bk'}:${flagKey(fMain)}`;
    source = () => tiledSource(c, fMain, aKFast, bNFast);
  }
  let target: GPUBuffer = out.buffer;
  if (splits > 1) target = scratchBuffer(queue, splits * L.batch * L.m * L.n * 4);
  const storage = splits > 1 ? [target, a.buffer, b.buffer, ...vecStorage] : [target, a.buffer, b.buffer, ...extraStorage, ...vecStorage];
  const [bm, bn] = tileOf(c);
  const tilesY = Math.ceil(L.m / bm);
  const tilesX = Math.ceil(L.n / bn);
  const zPer = Math.max(1, Math.floor(maxDim / splits));
  for (let b0 = 0; b0 < L.batch; b0 += zPer) {
    const bCount = Math.min(zPer, L.batch - b0);
    for (let y0 = 0; y0 < tilesY; y0 += maxDim) {
      for (let x0 = 0; x0 < tilesX; x0 += maxDim) {
        const u = writeUniforms(L, { splits, kChunk, partOff: 0, rowStart: y0 * bm, colStart: x0 * bn, batchStart: b0 });
        queue.dispatch({
          key,
          source,
          storage,
          uniforms: u.data,
          workgroups: [Math.min(maxDim, tilesX - x0), Math.min(maxDim, tilesY - y0), bCount * splits],
          label: `matmul ${c.kind}`,
        });
      }
    }
  }
  if (splits > 1) {
    queue.dispatch({
      key: `matmul:reduce:${flagKey(f)}`,
      source: () => reduceSource(f),
      storage: [out.buffer, target, b.buffer, ...extraStorage],
      uniforms: writeUniforms(L, { ...base, splits }).data,
      workgroups: grid(Math.ceil((L.batch * L.m * L.n) / REDUCE_WG), maxDim),
      label: 'matmul split-K reduce',
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Autotuner

export interface MatmulTiming {
  plan: MatmulPlan;
  key: string;
  /** Fastest of the synchronised runs, in ms (other load on a shared machine only ever adds time). */
  ms: number;
  /** Median of the runs, in ms. */
  medianMs: number;
  gflops: number;
}

export interface MatmulTuneResult {
  adapter: string;
  shapeClass: string;
  best: MatmulPlan;
  timings: MatmulTiming[];
}

/** Candidate plans for a shape: register-blocked tiles that fit it, the workgroup-memory tiled kernel, and split-K variants. */
export function matmulCandidates(d: MatmulDims): MatmulPlan[] {
  const pool: MatmulConfig[] = [
    direct(16, 32, 2, 4), direct(32, 16, 4, 2), direct(32, 32, 2, 2), direct(16, 16, 2, 4), direct(16, 16, 4, 4), direct(8, 32, 2, 8),
    direct(8, 16, 4, 4), direct(16, 8, 8, 4), direct(8, 8, 4, 4), direct(4, 4, 8, 8),
    direct(1, 16, 16, 1), direct(2, 16, 8, 2), direct(4, 16, 8, 1), direct(8, 16, 4, 1),
    direct(16, 1, 1, 16), direct(16, 2, 2, 8), direct(16, 4, 1, 8), direct(16, 8, 1, 4),
    direct(1, 4, 64, 1), direct(4, 1, 1, 64), direct(1, 1, 64, 1),
    tiled(4, 4, 8, 8, 16), tiled(8, 4, 8, 8, 8), tiled(4, 4, 16, 16, 8),
  ];
  const fits = (c: MatmulConfig) => {
    const [bm, bn] = tileOf(c);
    // Skip tiles more than twice the matrix in a dim (wasted lanes) unless the dim is tiny.
    return (bm <= 2 * Math.max(d.m, 8) || c.kind === 'dot') && (bn <= 2 * Math.max(d.n, 8) || c.kind === 'dot');
  };
  const plans: MatmulPlan[] = pool.filter(fits).map((config) => ({ config, splitK: 1 }));
  if (d.batch * d.m * d.n <= 256 && d.k >= 64) plans.push({ config: { kind: 'dot', wg: 64 }, splitK: 1 });
  for (const p of [...plans]) {
    const s = chooseSplit(p.config, d, 16);
    if (s > 1) plans.push({ config: p.config, splitK: s });
  }
  return plans;
}

/**
 * Times candidate plans on this queue's adapter for one shape (random operands, each run
 * synchronised with `queue.sync()`, the first run — pipeline compilation — not counted) and caches
 * the fastest (best run) for the shape's class. Slow on CPU adapters: run it from benchmarks or
 * setup code, not in hot paths.
 */
export async function tuneMatmul(
  queue: KernelQueue,
  d: MatmulDims,
  opts: { candidates?: MatmulPlan[]; reps?: number; maxMsPerCandidate?: number; onResult?: (t: MatmulTiming) => void } = {},
): Promise<MatmulTuneResult> {
  const { device } = queue;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const mk = (n: number) => {
    const buffer = device.createBuffer({ size: Math.max(16, n * 4), usage });
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 0.5;
    device.queue.writeBuffer(buffer, 0, data);
    return buffer;
  };
  const A = mk(d.batch * d.m * d.k);
  const B = mk(d.batch * d.k * d.n);
  const C = mk(d.batch * d.m * d.n);
  const view = (buffer: GPUBuffer, shape: number[]): GpuOperand => ({ buffer, dtype: 'f32', shape, strides: contiguous(shape), offset: 0 });
  const shapes = { a: [d.batch, d.m, d.k], b: [d.batch, d.k, d.n], c: [d.batch, d.m, d.n] };
  const reps = opts.reps ?? 5;
  const timings: MatmulTiming[] = [];
  const flops = 2 * d.batch * d.m * d.n * d.k;
  try {
    for (const plan of opts.candidates ?? matmulCandidates(d)) {
      const run = () => matmulGpu(queue, view(C, shapes.c), view(A, shapes.a), view(B, shapes.b), { plan });
      let t = performance.now();
      run(); // compiles the pipeline
      await queue.sync();
      const first = performance.now() - t;
      const times: number[] = [];
      const n = opts.maxMsPerCandidate && first * reps > opts.maxMsPerCandidate ? Math.max(1, Math.floor(opts.maxMsPerCandidate / first)) : reps;
      for (let r = 0; r < n; r++) {
        t = performance.now();
        run();
        await queue.sync();
        times.push(performance.now() - t);
      }
      times.sort((x, y) => x - y);
      const ms = times[0]!;
      const timing = { plan, key: planKey(plan), ms, medianMs: times[times.length >> 1]!, gflops: flops / ms / 1e6 };
      timings.push(timing);
      opts.onResult?.(timing);
    }
  } finally {
    await queue.sync();
    A.destroy();
    B.destroy();
    C.destroy();
  }
  const best = timings.reduce((x, y) => (y.ms < x.ms ? y : x)).plan;
  const adapter = adapterKey(queue);
  const shapeClass = matmulShapeClass(d);
  const map = tunings.get(adapter) ?? new Map<string, MatmulPlan>();
  map.set(shapeClass, best);
  tunings.set(adapter, map);
  return { adapter, shapeClass, best, timings };
}

function contiguous(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}
