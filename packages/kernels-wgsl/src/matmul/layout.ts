/**
 * Operand layout of a matmul: shapes checked once for both devices, batch dims merged, and the
 * uniform block (u32 words) every matmul kernel reads.
 */
import { type View, UniformWriter, coalesce, numel } from '../layout.js';

/** Largest number of batch dims left after merging contiguous ones. */
export const MAX_MATMUL_BATCH_RANK = 6;

export interface Mat {
  off: number;
  s0: number; // stride of the row dim (m for A, C, bias; k for B)
  s1: number; // stride of the col dim
}

export interface Layout {
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

export function resolveLayout(out: View, a: View, b: View, bias?: View, pre?: View): Layout {
  if (out.shape.length < 2 || a.shape.length < 2 || b.shape.length < 2) {
    throw new RangeError(
      `matmul: kernel operands need at least 2 dims (out ${fmt(out.shape)}, a ${fmt(a.shape)}, b ${fmt(b.shape)}); ` +
        `promote vectors first`,
    );
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
  const mat = (s: readonly number[], off: number): Mat => ({ off, s0: s[r - 2]!, s1: s[r - 1]! });
  // Rows of size 1 have no meaningful stride; 0 keeps index arithmetic in range.
  const fix = (x: Mat, rows: number, cols: number): Mat => ({
    off: x.off,
    s0: rows === 1 ? 0 : x.s0,
    s1: cols === 1 ? 0 : x.s1,
  });
  return {
    m,
    n,
    k,
    batch: numel(batchShape),
    batchShape: merged.shape,
    batchStrides: merged.strides,
    c: fix(mat(out.strides, out.offset), m, n),
    a: fix(mat(as, a.offset), m, k),
    b: fix(mat(bs, b.offset), k, n),
    bias: xs && bias ? { off: bias.offset, s0: xs[r - 2]!, s1: xs[r - 1]! } : null,
    pre: pre ? fix(mat(pre.strides, pre.offset), m, n) : null,
  };
}

export function checkDtypes(xs: ({ dtype: string } | undefined)[]): void {
  for (const x of xs)
    if (x && x.dtype !== 'f32') throw new TypeError(`matmul: only f32 operands are supported, got ${x.dtype}`);
}

// Uniform block (u32 words), shared by every matmul kernel.

export const W = {
  M: 0,
  N: 1,
  K: 2,
  BTOTAL: 3,
  AOFF: 4,
  BOFF: 5,
  COFF: 6,
  XOFF: 7,
  SAM: 8,
  SAK: 9,
  SBK: 10,
  SBN: 11,
  SCM: 12,
  SCN: 13,
  SXM: 14,
  SXN: 15,
  BRANK: 16,
  BSTART: 17,
  SPLITS: 18,
  KCHUNK: 19,
  POFF: 20,
  SPM: 21,
  SPN: 22,
  ROWSTART: 23,
  COLSTART: 24,
  PARTOFF: 25,
  TOTAL: 26,
} as const;
const MB = MAX_MATMUL_BATCH_RANK;
export const SHAPE = 28;
export const STR = { c: SHAPE + MB, a: SHAPE + 2 * MB, b: SHAPE + 3 * MB, x: SHAPE + 4 * MB, p: SHAPE + 5 * MB };
export const WORDS = SHAPE + 6 * MB;

/** A uniform word read with constant indices (a dynamic index would compile to a gather on CPU adapters). */
export const w = (i: number) => `params.m[${i >> 2}][${i & 3}]`;

export function writeUniforms(
  L: Layout,
  extra: { splits: number; kChunk: number; partOff: number; rowStart: number; colStart: number; batchStart: number },
): UniformWriter {
  const u = new UniformWriter(WORDS)
    .u32(W.M, L.m)
    .u32(W.N, L.n)
    .u32(W.K, L.k)
    .u32(W.BTOTAL, L.batch)
    .u32(W.AOFF, L.a.off)
    .u32(W.BOFF, L.b.off)
    .u32(W.COFF, L.c.off)
    .u32(W.XOFF, L.bias?.off ?? 0)
    .u32(W.SAM, L.a.s0)
    .u32(W.SAK, L.a.s1)
    .u32(W.SBK, L.b.s0)
    .u32(W.SBN, L.b.s1)
    .u32(W.SCM, L.c.s0)
    .u32(W.SCN, L.c.s1)
    .u32(W.SXM, L.bias?.s0 ?? 0)
    .u32(W.SXN, L.bias?.s1 ?? 0)
    .u32(W.BRANK, L.batchShape.length)
    .u32(W.BSTART, extra.batchStart)
    .u32(W.SPLITS, extra.splits)
    .u32(W.KCHUNK, extra.kChunk)
    .u32(W.POFF, L.pre?.off ?? 0)
    .u32(W.SPM, L.pre?.s0 ?? 0)
    .u32(W.SPN, L.pre?.s1 ?? 0)
    .u32(W.ROWSTART, extra.rowStart)
    .u32(W.COLSTART, extra.colStart)
    .u32(W.PARTOFF, extra.partOff)
    .u32(W.TOTAL, L.batch * L.m * L.n)
    .array(SHAPE, L.batchShape, MB, 1);
  const [sc, sa, sb, sx, sp] = L.batchStrides;
  u.array(STR.c, sc!, MB).array(STR.a, sa!, MB).array(STR.b, sb!, MB).array(STR.x, sx!, MB).array(STR.p, sp!, MB);
  return u;
}
