/**
 * Tiled ("flash") multi-head attention, forward and backward, with key-padding masks and causal
 * masking, and float64 CPU references (straightforward O(L²·d)) beside the kernels.
 *
 * q, k, v, out, dOut, dq, dk, dv are contiguous f32 [batch, heads, length, headDim]; the key-padding
 * mask is [batch, length] i32/bool (any strides; 0 = padding: that key is masked).
 *
 *  - Forward (FlashAttention-2's online softmax): a workgroup owns wg·per query rows, each thread
 *    `per` rows held in registers (q pre-scaled by scale·log2 e, so exp2 does the softmax); K/V
 *    stream through workgroup memory `tile` keys at a time. Writes O and the per-row logsumexp.
 *  - Backward: (1) per-row stats (lse·log2 e, D = Σ dO⊙O); (2) dQ over query blocks, recomputing
 *    P = exp2(s − lse) tile by tile from K/V; (3) dK/dV over key blocks (each thread owns key rows),
 *    streaming Q/dO tiles. Deterministic: no atomics, no L×L buffers, every output written once.
 *  - Masks: padded keys get a −1e30 bias; causal pairs are selected to −1e30 against a per-row
 *    limit. Finite sentinels only (WGSL may assume no infinities): the running max starts at −5e29,
 *    so a row that has seen no key keeps m < −1e29 and is written as zeros with lse = −inf (passed
 *    in a uniform word); its stats row carries +1e30 so the backward's P is 0 for it. Causal and
 *    masked are uniform flags, so one pipeline per (headDim, schedule) serves every call.
 *  - Barriers: two per tile loop — after the cooperative tile write (read-after-write) and after
 *    the compute that reads it (write-after-read, before the next tile overwrites it).
 *  - Inner loops are fully unrolled with constant indices: SwiftShader turns a constant-index
 *    workgroup load into one broadcast load, but a dynamic index into a private array costs ~10×.
 *  - Dropout on the probabilities (`dropout` p): pair (bh, i, j) is kept iff
 *    uniform(key, base + (bh·L + i)·L + j) ≥ p (the counter RNG of random.ts), kept ones scaled
 *    by 1/(1 − p). The forward's normaliser uses the undropped probabilities (dropout acts after
 *    the softmax); both backward kernels regenerate the same mask, and D = Σ dO·O still holds
 *    because O already carries it. A separate pipeline (the hash per pair costs), so attention
 *    without dropout is unchanged.
 *
 * Versions tried (SwiftShader on 2 cores, B 1, H 4, d 32; wall-clock, samples synchronised on
 * completion; other processes shared the 2 cores during these runs, so figures moved ±2×; the
 * mins are the least disturbed):
 *  v1 one query row per thread (64-thread workgroups), 32-key tiles, scores as dot(q, k) with each
 *     K/V word read from workgroup memory once per row: L 256 fwd 100–276 ms, bwd 500–740 ms.
 *     Smaller tiles helped a little (8 keys: fwd 58–79 ms).
 *  micro-benchmarks: vec4 mul+add chains 12–16 GFLOP/s; one broadcast workgroup load per vec4
 *     mul+add 3.4 GFLOP/s, a vec4 workgroup load (= 4 broadcasts) per mul+add 1.0; a dynamic index
 *     into a private array 0.9; fma() no faster than mul+add (12.7). So each K/V word loaded from
 *     workgroup memory must feed many FMAs: the lever is rows per thread.
 *  v2 each K/V word loaded once per tile and used for all of a thread's rows: fwd L 256, per=2:
 *     34 ms; per=4: 20–24 ms; per=8: 16–25 ms; per=16 with 16-thread workgroups, 4-key tiles:
 *     9–12 ms. dQ with V words re-read per row: 100 ms → loaded once: 15 ms.
 *  v3 causal and masked as uniform flags (fewer pipelines; the per-pair select was already
 *     there), one read-modify-write of each backward accumulator per tile instead of per key.
 *     L 1024 per-kernel mins: fwd 118 ms (4.5 GFLOP/s), dQ 126 ms (6.4), dK/dV 193 ms (5.6).
 *  Sweeps at L 1024: per 8/12/16/24 with 4-key tiles within noise of each other for fwd (per 16
 *     ≈ 25% faster than 8 by CPU time); 8-key tiles 20–30% slower (more live registers); 2-key
 *     tiles no better. d 160 (L 512): per 2 is 1.55× faster than per 1 but compiles in 21.6 s
 *     instead of 9.2 s on SwiftShader (compile time grows with per·headDim: d 32 per 16 takes
 *     11 s for the three pipelines, per 4 3.4 s) — per 1 chosen for d > 64.
 *  v4 (not kept) K/V (Q/dO) read straight from storage by every lane, same address in all lanes:
 *     no workgroup memory, no barriers. On SwiftShader 10–25% faster per kernel (L 1024 fwd min
 *     87 vs 114 ms) — but its pipelines compile 3–4× slower (robust per-lane loads: d 32 per 16
 *     39 s instead of 11 s for the three, d 160 40 s instead of 9 s), so tiles stay in workgroup
 *     memory, which is also what GPUs want.
 *  v5 medium sequences (L ≤ 256): 4-thread workgroups — one SIMD group on SwiftShader, so the
 *     two barriers per tile cost next to nothing — with per = 16 (d 32) or 4 (d 64; per 16 at
 *     d 64 crashes SwiftShader's compiler). B 8, H 4, causal, fwd + bwd medians (ms):
 *       L 64  d 32:  64-thread per 1 (old short schedule) 30 + 64;  4-thread per 16: 6.5 + 21.8
 *       L 64  d 64:  old 68 + 156;  4-thread per 4: 26 + 57
 *       L 128 d 32:  16-thread per 16: 43 + 113;  4-thread per 16: 25 + 55
 *       L 256 d 32:  16-thread per 16: 80 + 194;  4-thread per 16: 63 + 131
 *     but at B 1, L 1024, non-causal the 16-thread schedule stays ahead (100 + 290 vs 148 + 361).
 *     In the GPT-2-style training step (T 64) attention went from 185 to 49 ms of GPU time.
 *  chosen (software adapters): 4-row tiles; L ≤ 256 and d ≤ 64: 4-thread workgroups, per = 16
 *     (d ≤ 32) or 4; longer sequences: 16-thread workgroups with per = 16 (d ≤ 32) or 8 (d ≤ 64);
 *     d > 64: 16 threads, per = 1.
 *  v6 hardware GPUs (NVIDIA H200 through Dawn/Vulkan, the first real-GPU run): the SwiftShader
 *     schedule is 30× too slow there — B 1, H 4, L 1024 gives 4096 rows, so 16 rows per thread
 *     leaves 256 threads for a 132-SM GPU (fwd+bwd 45.5 ms against composed 1.23 ms). Hardware
 *     adapters now get one row per thread. bench/attention-schedules.ts, GPU timestamps, ms
 *     fwd | dQ | dK/dV at L 1024 d 32 (wg×per×tile): 16×16×4 7.9 | 13.2 | 24.1; 32×1×32 1.05 |
 *     1.44 | 3.60; 64×1×16 0.66 | 1.51 | 2.62; 64×1×8 0.72 | 1.31 | 2.16 (best total; causal
 *     0.13 | 0.26 | 0.39); 64×2×8 1.05 | 3.41 | 6.29. d 160 (L 512): 32×1×4 25.8 ms total,
 *     64×1×4 28.4, 128×1×4 36.5. Chosen: 64 threads × 1 row × 8-key tiles (d ≤ 64), 32 × 1 × 4
 *     (d > 64). bench/run.ts on the H200 (wall-clock, synchronised; with 64×1×16): L 1024
 *     fwd+bwd 1.43 ms vs composed 1.48 (1.03×), causal 1.31 vs 1.59 (1.21×); L 2048 2.31 vs 2.86
 *     ms (1.24×); forward alone 1.5× (L 1024), 3.3× (L 2048). At these sizes the GPU is starved
 *     (4096 threads, each walking all keys): splitting the keys across threads is what is left.
 *  bench/attention.ts (pooled medians, min in brackets; composed = the project's matmul kernel →
 *  softmax → matmul, its masks in the matmul epilogue, P kept for its backward), two final runs:
 *    quieter machine (load 0.9→3):   L 256 fwd 11.2 [9.4] ms, fwd+bwd 55.9 [34.4] ms (composed
 *      96.9, 1.7×); causal fwd+bwd 66.8 [35.3] ms; L 1024 fwd+bwd 451 [400] ms vs composed 618
 *      [489] (1.37×), causal 287 [264] vs 586 (2.0×); fwd alone L 256 3.1×, L 1024 causal 3.6×.
 *    load 3.5→5.6 (other sessions):  L 256 fwd+bwd 66.4 [34.6] ms (composed 67.5), causal 59.4;
 *      L 1024 fwd+bwd 811 [776] vs 959 [910] ms (1.18×), causal 614 vs 1031 (1.68×); fwd 2.0–3.4×.
 *    Earlier runs against a plainer matmul (4×4 outputs per thread) gave 3.7× at L 1024.
 *  Where it stands: the forward is 2–3.5× the composed forward; the backward recomputes P and dP
 *  in both backward kernels (7 matmul-equivalents against the composed path's 4 with P stored),
 *  so at fwd+bwd the fused path leads by only 1.0–2.0× here; its sure win is memory: O(L·d), not
 *  16 MiB [L, L] matrices at L 2048. Per-kernel rate ≈ 4.5–6.4 GFLOP/s against a 12–16
 *  GFLOP/s mul+add ceiling measured in the same micro-benchmark.
 */
import { KernelQueue, grid, isSoftwareAdapter } from './queue.js';
import { type CpuOperand, type GpuOperand, UniformWriter, isContiguous, numel, uniformBlock } from './layout.js';
import { RNG_WGSL, uniformFromCounter } from './random.js';

// ---------------------------------------------------------------------------------------------
// Configuration

/**
 * A kernel's schedule. `wg` threads per workgroup; each thread owns `per` rows of the side it keeps
 * in registers (query rows in the forward and dQ kernels, key rows in the dK/dV kernel), so a
 * workgroup covers `wg·per` rows; the other side streams through workgroup memory `tile` rows at a
 * time.
 */
export interface AttentionTileConfig {
  wg: number;
  per: number;
  tile: number;
}

export interface AttentionTiles {
  fwd: AttentionTileConfig;
  dq: AttentionTileConfig;
  dkv: AttentionTileConfig;
}

/** Workgroup memory every schedule stays within: the portable WebGPU default. */
export const ATTENTION_WORKGROUP_BYTES = 16384;

/** Bytes of workgroup memory a kernel of head dim `headDim` and tile `tile` uses. */
export function attentionWorkgroupBytes(kind: 'fwd' | 'dq' | 'dkv', headDim: number, tile: number): number {
  // Two [tile, headDim] f32 tiles, plus per-row extras (key bias: 1 word; query stats: 2 words).
  return 2 * tile * headDim * 4 + tile * (kind === 'dkv' ? 8 : 4);
}

/**
 * The default schedules for `headDim`, sequence `length` and the kind of adapter (chosen by
 * measurement, see the file comment). On CPU adapters rows per thread trade workgroup-memory
 * loads (each feeds `per` FMAs) against registers and pipeline compile time (∝ per·headDim);
 * short sequences use fewer rows per workgroup so they are not mostly idle lanes. GPUs want many
 * threads instead: one row each, wide key tiles.
 */
export function attentionTiles(headDim: number, length: number, software = true): AttentionTiles {
  const fit = (kind: 'fwd' | 'dq' | 'dkv', want: number) => {
    let t = want;
    while (t > 1 && attentionWorkgroupBytes(kind, headDim, t) > ATTENTION_WORKGROUP_BYTES) t--;
    return t;
  };
  if (!software) {
    const wg = headDim <= 64 ? 64 : 32;
    const cfg = (kind: 'fwd' | 'dq' | 'dkv') => ({ wg, per: 1, tile: fit(kind, headDim <= 64 ? 8 : 4) });
    return { fwd: cfg('fwd'), dq: cfg('dq'), dkv: cfg('dkv') };
  }
  // Up to 256 keys: 4-thread workgroups (one SIMD group on SwiftShader, so barriers cost next to
  // nothing) with 16 (d ≤ 32) or 4 (d ≤ 64) rows per thread; longer sequences: 16 threads.
  const medium = length <= 256 && headDim <= 64;
  const per = headDim > 64 ? 1 : headDim <= 32 ? 16 : medium ? 4 : 8;
  const wg = medium ? 4 : 16;
  return {
    fwd: { wg, per, tile: fit('fwd', 4) },
    dq: { wg, per, tile: fit('dq', 4) },
    dkv: { wg, per, tile: fit('dkv', 4) },
  };
}

export interface AttentionOptions {
  /** Multiplies q·k before the softmax; default 1/√headDim. */
  scale?: number;
  /** Key j of sequence b can only be attended by queries i ≥ j. */
  causal?: boolean;
  /** Dropout on the attention probabilities: rate p in [0, 1) and the counter-RNG stream (key, base). */
  dropout?: AttentionDropout | null;
}

/** Pair (bh, i, j) is dropped iff uniformFromCounter(key, base + (bh·L + i)·L + j) < p. */
export interface AttentionDropout {
  p: number;
  key: number;
  base: number;
}

/** The keep factor of pair (bh, i, j): 0 if dropped, 1/(1 − p) if kept (the float64 references use it). */
export function attentionDropoutFactor(d: AttentionDropout, L: number, bh: number, i: number, j: number): number {
  const counter = (d.base + Math.imul(Math.imul(bh, L) + i, L) + j) >>> 0;
  return uniformFromCounter(d.key, counter) < d.p ? 0 : 1 / (1 - d.p);
}

// ---------------------------------------------------------------------------------------------
// Shapes

interface Dims {
  B: number;
  H: number;
  L: number;
  D: number;
}

function dimsOf(op: string, q: { shape: readonly number[] }, others: { shape: readonly number[] }[]): Dims {
  if (q.shape.length !== 4) throw new RangeError(`${op}: q must be [batch, heads, length, headDim], got [${q.shape.join(', ')}]`);
  for (const t of others) {
    if (t.shape.length !== 4 || t.shape.some((s, d) => s !== q.shape[d])) {
      throw new RangeError(`${op}: q [${q.shape.join(', ')}] and [${t.shape.join(', ')}] must have the same shape`);
    }
  }
  const [B, H, L, D] = q.shape as [number, number, number, number];
  if (D < 1) throw new RangeError(`${op}: headDim must be at least 1, got [${q.shape.join(', ')}]`);
  return { B, H, L, D };
}

function checkMask(op: string, mask: { shape: readonly number[]; dtype: string } | null | undefined, dims: Dims): void {
  if (!mask) return;
  if (mask.shape.length !== 2 || mask.shape[0] !== dims.B || mask.shape[1] !== dims.L) {
    throw new RangeError(`${op}: keyPaddingMask must be [batch, length] = [${dims.B}, ${dims.L}], got [${mask.shape.join(', ')}]`);
  }
  if (mask.dtype === 'f32') throw new TypeError(`${op}: keyPaddingMask must be i32 or bool (1 = token, 0 = padding), got f32`);
}

function checkGpuOperand(op: string, name: string, t: GpuOperand): void {
  if (t.dtype !== 'f32') throw new TypeError(`${op}: ${name} must be f32, got ${t.dtype}`);
  if (!isContiguous(t)) throw new RangeError(`${op}: ${name} must be contiguous (make it contiguous first)`);
}

// ---------------------------------------------------------------------------------------------
// WGSL generation

const LOG2E = Math.LOG2E;
/** A finite "minus infinity": masked scores become ≈ −1e30 and exp2 of them underflows (≤ 1e-38). */
const NEG = '-1e30';
/** Running max start: above every masked score (≈ −1e30), below every real one. */
const M_INIT = '-5e29';

// Uniform words shared by the kernels.
const U = {
  BH: 0,
  H: 1,
  L: 2,
  BLOCKS: 3,
  Q: 4,
  K: 5,
  V: 6,
  O: 7,
  DO: 8,
  LSE: 9,
  STATS: 10,
  OUT2: 11,
  MASK: 12,
  MASK_SB: 13,
  MASK_SL: 14,
  C: 15, // scale·log2(e)
  SCALE: 16,
  NEG_INF: 17,
  MASKED: 18,
  CAUSAL: 19,
  DROP_P: 20,
  DROP_KEY: 21,
  DROP_BASE: 22,
} as const;
const WORDS = 24;
/** Largest u32: the per-row causal limit when causal masking is off. */
const NO_LIMIT = '4294967295u';

interface Gen {
  D: number;
  W: 1 | 4;
  /** Vectors per row. */
  DV: number;
  VT: string;
  zero: string;
  dot(a: string, b: string): string;
}

function gen(D: number, W: 1 | 4): Gen {
  const VT = W === 4 ? 'vec4<f32>' : 'f32';
  return {
    D,
    W,
    DV: D / W,
    VT,
    zero: `${VT}(0.0)`,
    dot: (a, b) => (W === 4 ? `dot(${a}, ${b})` : `(${a} * ${b})`),
  };
}

const u32 = (n: number) => `${n}u`;

/** Sum of terms as a balanced tree (shorter dependency chains than a left fold). */
function treeSum(terms: string[]): string {
  if (terms.length === 1) return terms[0]!;
  const mid = terms.length >> 1;
  return `(${treeSum(terms.slice(0, mid))} + ${treeSum(terms.slice(mid))})`;
}
function treeMax(terms: string[]): string {
  if (terms.length === 1) return terms[0]!;
  const mid = terms.length >> 1;
  return `max(${treeMax(terms.slice(0, mid))}, ${treeMax(terms.slice(mid))})`;
}

/** Loop over the `count` words of a tile, `wg` threads at a time; `body` sees `e` (u32). */
function tileLoop(count: number, wg: number, body: string): string {
  const steps = Math.ceil(count / wg);
  const out: string[] = [];
  for (let t = 0; t < steps; t++) {
    const guard = (t + 1) * wg > count;
    out.push(`{ let e = lid + ${u32(t * wg)};${guard ? ` if (e < ${u32(count)}) {` : ''}
    ${body}${guard ? ' }' : ''} }`);
  }
  return out.join('\n  ');
}

function header(dropout = false): string {
  return `${uniformBlock(WORDS)}
fn fword(i: u32) -> f32 { return bitcast<f32>(word(i)); }${dropout ? `
${RNG_WGSL}
/** Keep factor of the pair at counter offset \`c\` (see attentionDropoutFactor). */
fn drop_keep(c: u32) -> f32 {
  let p = fword(${U.DROP_P}u);
  return select(1.0 / (1.0 - p), 0.0, rng_uniform(word(${U.DROP_KEY}u), word(${U.DROP_BASE}u) + c) < p);
}` : ''}`;
}

const MAIN = `@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let nblk = word(${U.BLOCKS}u);
  if (g >= word(${U.BH}u) * nblk) { return; }
  let bh = g / nblk;
  let blk = g % nblk;
  let L = word(${U.L}u);
  let rowBase = bh * L;
  let causal = word(${U.CAUSAL}u) != 0u;`;

/** Loads a [tile, D] slab of K and V (rows k0…) into kt / vt and the key bias into kbias. */
function loadKeyTile(G: Gen, cfg: AttentionTileConfig): string {
  const n = cfg.tile * G.DV;
  const tileBody = `var kx = ${G.zero}; var vx = ${G.zero};
    if (e < lim) { kx = kb[kBase + e]; vx = vb[vBase + e]; }
    kt[e] = kx; vt[e] = vx;`;
  const biasBody = `let key = k0 + e; var bz = ${NEG};
    if (key < L) { bz = 0.0; if (${maskedAt('key')}) { bz = ${NEG}; } }
    kbias[e] = bz;`;
  return `{ let lim = (L - k0) * ${u32(G.DV)};
  let kBase = word(${U.K}u) + (rowBase + k0) * ${u32(G.DV)};
  let vBase = word(${U.V}u) + (rowBase + k0) * ${u32(G.DV)};
  ${tileLoop(n, cfg.wg, tileBody)}
  ${tileLoop(cfg.tile, cfg.wg, biasBody)} }`;
}

/** WGSL condition: key `key` (u32 < L) of this workgroup's sequence is padding. */
function maskedAt(key: string): string {
  return `word(${U.MASKED}u) != 0u && maskb[word(${U.MASK}u) + (bh / word(${U.H}u)) * word(${U.MASK_SB}u) + ${key} * word(${U.MASK_SL}u)] == 0`;
}

/** The mask binding; without a mask the launcher binds another read-only buffer and clears MASKED. */
function maskBinding(binding: number): string {
  return `@group(0) @binding(${binding}) var<storage, read> maskb: array<i32>;`;
}

/** The forward kernel: O and the row logsumexp, online softmax over key tiles. */
function forwardSource(G: Gen, cfg: AttentionTileConfig, drop: boolean): string {
  const { wg: WG, per: R, tile: BC } = cfg;
  const { DV, VT } = G;
  const rows = [...Array(R).keys()];
  const comps = [...Array(DV).keys()];
  const keys = [...Array(BC).keys()];
  const s: string[] = [];
  for (const r of rows) {
    s.push(`let row${r} = q0 + lid + ${u32(r * WG)}; let qa${r} = word(${U.Q}u) + (rowBase + min(row${r}, L - 1u)) * ${u32(DV)};`);
    s.push(`let lim${r} = select(${NO_LIMIT}, row${r}, causal);`);
    for (const i of comps) s.push(`let q${r}_${i} = qb[qa${r} + ${u32(i)}] * c;`);
    for (const i of comps) s.push(`var o${r}_${i} = ${G.zero};`);
    s.push(`var m${r} = ${M_INIT}; var l${r} = 0.0;`);
    if (drop) s.push(`let dc${r} = (bh * L + row${r}) * L;`);
  }
  const body: string[] = [];
  // Scores (log2 units, q pre-scaled by scale·log2 e); each K/V word is loaded once for all rows.
  for (const j of keys) {
    for (const i of comps) body.push(`let k${j}_${i} = kt[${u32(j * DV + i)}];`);
    body.push(`let b${j} = kbias[${j}u];`);
    for (const r of rows) {
      const dotq = treeSum(comps.map((i) => G.dot(`q${r}_${i}`, `k${j}_${i}`)));
      body.push(`let s${r}_${j} = select(b${j} + ${dotq}, ${NEG}, k0 + ${u32(j)} > lim${r});`);
    }
  }
  for (const r of rows) {
    body.push(`let mn${r} = max(m${r}, ${treeMax(keys.map((j) => `s${r}_${j}`))});`);
    body.push(`let al${r} = exp2(m${r} - mn${r}); m${r} = mn${r};`);
    for (const j of keys) body.push(`let p${r}_${j} = exp2(s${r}_${j} - mn${r});`);
    body.push(`l${r} = l${r} * al${r} + ${treeSum(keys.map((j) => `p${r}_${j}`))};`);
    // Dropout scales what reaches O, not the normaliser.
    for (const j of keys) body.push(`let pv${r}_${j} = ${drop ? `p${r}_${j} * drop_keep(dc${r} + k0 + ${u32(j)})` : `p${r}_${j}`};`);
  }
  for (const i of comps) {
    for (const j of keys) body.push(`let v${i}_${j} = vt[${u32(j * DV + i)}];`);
    for (const r of rows) body.push(`o${r}_${i} = o${r}_${i} * al${r} + ${treeSum(keys.map((j) => `pv${r}_${j} * v${i}_${j}`))};`);
  }
  const fin: string[] = [];
  for (const r of rows) {
    fin.push(`if (row${r} < L) {
    let ok = m${r} > -1e29;
    let inv = select(0.0, 1.0 / l${r}, ok);
    let oa = word(${U.O}u) + (rowBase + row${r}) * ${u32(DV)};
    ${comps.map((i) => `outb[oa + ${u32(i)}] = o${r}_${i} * inv;`).join('\n    ')}
    lseb[word(${U.LSE}u) + rowBase + row${r}] = select(fword(${U.NEG_INF}u), (m${r} + log2(l${r})) * ${Math.LN2}, ok);
  }`);
  }
  return `${header(drop)}
@group(0) @binding(1) var<storage, read_write> outb: array<${VT}>;
@group(0) @binding(2) var<storage, read_write> lseb: array<f32>;
@group(0) @binding(3) var<storage, read> qb: array<${VT}>;
@group(0) @binding(4) var<storage, read> kb: array<${VT}>;
@group(0) @binding(5) var<storage, read> vb: array<${VT}>;
${maskBinding(6)}
var<workgroup> kt: array<${VT}, ${BC * DV}>;
var<workgroup> vt: array<${VT}, ${BC * DV}>;
var<workgroup> kbias: array<f32, ${BC}>;
${MAIN.replace('WG', String(WG))}
  let c = fword(${U.C}u);
  let q0 = blk * ${u32(WG * R)};
  ${s.join('\n  ')}
  let kend = select(L, min(L, q0 + ${u32(WG * R)}), causal);
  for (var k0 = 0u; k0 < kend; k0 += ${u32(BC)}) {
  ${loadKeyTile(G, cfg)}
  workgroupBarrier();
  ${body.join('\n  ')}
  workgroupBarrier();
  }
  ${fin.join('\n  ')}
}`;
}

/** Per-row backward statistics: (lse·log2 e, or +1e30 for rows with no key; D = Σ dO·O). */
function statsSource(G: Gen): string {
  const { DV, VT } = G;
  return `${header()}
@group(0) @binding(1) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> ob: array<${VT}>;
@group(0) @binding(3) var<storage, read> dob: array<${VT}>;
@group(0) @binding(4) var<storage, read> lseb: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (row >= word(${U.BH}u) * word(${U.L}u)) { return; }
  let oa = word(${U.O}u) + row * ${u32(DV)};
  let da = word(${U.DO}u) + row * ${u32(DV)};
  var acc = ${G.zero};
  for (var i = 0u; i < ${u32(DV)}; i++) { acc += ob[oa + i] * dob[da + i]; }
  let lse = lseb[word(${U.LSE}u) + row];
  stats[word(${U.STATS}u) + row] = vec2<f32>(select(1e30, lse * ${LOG2E}, lse > -1e30), ${G.W === 4 ? 'dot(acc, vec4<f32>(1.0))' : 'acc'});
}`;
}

/** dQ: each thread keeps query rows (q, dO) in registers and streams K/V tiles. */
function dqSource(G: Gen, cfg: AttentionTileConfig, drop: boolean): string {
  const { wg: WG, per: R, tile: BC } = cfg;
  const { DV, VT } = G;
  const rows = [...Array(R).keys()];
  const comps = [...Array(DV).keys()];
  const keys = [...Array(BC).keys()];
  const s: string[] = [];
  for (const r of rows) {
    s.push(`let row${r} = q0 + lid + ${u32(r * WG)}; let rc${r} = rowBase + min(row${r}, L - 1u);`);
    s.push(`let lim${r} = select(${NO_LIMIT}, row${r}, causal);`);
    s.push(`let qa${r} = word(${U.Q}u) + rc${r} * ${u32(DV)}; let da${r} = word(${U.DO}u) + rc${r} * ${u32(DV)};`);
    for (const i of comps) s.push(`let q${r}_${i} = qb[qa${r} + ${u32(i)}] * c;`);
    for (const i of comps) s.push(`let d${r}_${i} = dob[da${r} + ${u32(i)}];`);
    for (const i of comps) s.push(`var g${r}_${i} = ${G.zero};`);
    s.push(`let st${r} = stats[word(${U.STATS}u) + rc${r}];`);
    if (drop) s.push(`let dc${r} = (bh * L + row${r}) * L;`);
  }
  const body: string[] = [];
  for (const j of keys) {
    for (const i of comps) body.push(`let k${j}_${i} = kt[${u32(j * DV + i)}];`);
    for (const i of comps) body.push(`let w${j}_${i} = vt[${u32(j * DV + i)}];`);
    body.push(`let b${j} = kbias[${j}u];`);
    for (const r of rows) {
      const dotq = treeSum(comps.map((i) => G.dot(`q${r}_${i}`, `k${j}_${i}`)));
      body.push(`let p${r}_${j} = exp2(select(b${j} + ${dotq}, ${NEG}, k0 + ${u32(j)} > lim${r}) - st${r}.x);`);
      const dp = treeSum(comps.map((i) => G.dot(`d${r}_${i}`, `w${j}_${i}`)));
      body.push(`let ds${r}_${j} = p${r}_${j} * (${drop ? `drop_keep(dc${r} + k0 + ${u32(j)}) * ${dp}` : dp} - st${r}.y);`);
    }
  }
  // One read-modify-write of each accumulator per tile.
  for (const r of rows) for (const i of comps) body.push(`g${r}_${i} += ${treeSum(keys.map((j) => `ds${r}_${j} * k${j}_${i}`))};`);
  const fin = rows.map(
    (r) => `if (row${r} < L) {
    let ga = word(${U.O}u) + (rowBase + row${r}) * ${u32(DV)};
    let f = select(0.0, scale, st${r}.x < 1e29); // rows with no key: exactly zero
    ${comps.map((i) => `dqb[ga + ${u32(i)}] = g${r}_${i} * f;`).join('\n    ')}
  }`,
  );
  return `${header(drop)}
@group(0) @binding(1) var<storage, read_write> dqb: array<${VT}>;
@group(0) @binding(2) var<storage, read> qb: array<${VT}>;
@group(0) @binding(3) var<storage, read> kb: array<${VT}>;
@group(0) @binding(4) var<storage, read> vb: array<${VT}>;
@group(0) @binding(5) var<storage, read> dob: array<${VT}>;
@group(0) @binding(6) var<storage, read> stats: array<vec2<f32>>;
${maskBinding(7)}
var<workgroup> kt: array<${VT}, ${BC * DV}>;
var<workgroup> vt: array<${VT}, ${BC * DV}>;
var<workgroup> kbias: array<f32, ${BC}>;
${MAIN.replace('WG', String(WG))}
  let c = fword(${U.C}u);
  let scale = fword(${U.SCALE}u);
  let q0 = blk * ${u32(WG * R)};
  ${s.join('\n  ')}
  let kend = select(L, min(L, q0 + ${u32(WG * R)}), causal);
  for (var k0 = 0u; k0 < kend; k0 += ${u32(BC)}) {
  ${loadKeyTile(G, cfg)}
  workgroupBarrier();
  ${body.join('\n  ')}
  workgroupBarrier();
  }
  ${fin.join('\n  ')}
}`;
}

/** dK, dV: each thread keeps key rows (k, v) in registers and streams Q/dO tiles. */
function dkvSource(G: Gen, cfg: AttentionTileConfig, drop: boolean): string {
  const { wg: WG, per: R, tile: BQ } = cfg;
  const { DV, VT } = G;
  const rows = [...Array(R).keys()];
  const comps = [...Array(DV).keys()];
  const queries = [...Array(BQ).keys()];
  const s: string[] = [];
  for (const r of rows) {
    s.push(`let key${r} = k0 + lid + ${u32(r * WG)}; let kc${r} = rowBase + min(key${r}, L - 1u);`);
    s.push(`var kok${r} = key${r} < L;`);
    s.push(`let klim${r} = select(0u, key${r}, causal);`);
    s.push(`if (${maskedAt(`min(key${r}, L - 1u)`)}) { kok${r} = false; }`);
    s.push(`let ka${r} = word(${U.K}u) + kc${r} * ${u32(DV)}; let va${r} = word(${U.V}u) + kc${r} * ${u32(DV)};`);
    for (const i of comps) s.push(`let k${r}_${i} = kb[ka${r} + ${u32(i)}] * c;`);
    for (const i of comps) s.push(`let v${r}_${i} = vb[va${r} + ${u32(i)}];`);
    for (const i of comps) s.push(`var gk${r}_${i} = ${G.zero};`);
    for (const i of comps) s.push(`var gv${r}_${i} = ${G.zero};`);
  }
  const body: string[] = [];
  for (const j of queries) {
    body.push(`let st_${j} = qst[${j}u];`);
    for (const i of comps) body.push(`let q${j}_${i} = qt[${u32(j * DV + i)}];`);
    for (const i of comps) body.push(`let d${j}_${i} = dt[${u32(j * DV + i)}];`);
    for (const r of rows) {
      const dotk = treeSum(comps.map((i) => G.dot(`q${j}_${i}`, `k${r}_${i}`)));
      body.push(`let p${r}_${j} = exp2(select(${dotk}, ${NEG}, i0 + ${u32(j)} < klim${r}) - st_${j}.x);`);
      const dp = treeSum(comps.map((i) => G.dot(`d${j}_${i}`, `v${r}_${i}`)));
      if (drop) body.push(`let kp${r}_${j} = drop_keep((bh * L + i0 + ${u32(j)}) * L + key${r});`);
      body.push(`let ds${r}_${j} = p${r}_${j} * (${drop ? `kp${r}_${j} * ${dp}` : dp} - st_${j}.y);`);
    }
  }
  // One read-modify-write of each accumulator per tile.
  for (const r of rows) {
    for (const i of comps) body.push(`gv${r}_${i} += ${treeSum(queries.map((j) => (drop ? `p${r}_${j} * kp${r}_${j} * d${j}_${i}` : `p${r}_${j} * d${j}_${i}`)))};`);
    for (const i of comps) body.push(`gk${r}_${i} += ${treeSum(queries.map((j) => `ds${r}_${j} * q${j}_${i}`))};`);
  }
  const n = BQ * DV;
  const load = `{ let lim = (L - i0) * ${u32(DV)};
  let qBase = word(${U.Q}u) + (rowBase + i0) * ${u32(DV)};
  let dBase = word(${U.DO}u) + (rowBase + i0) * ${u32(DV)};
  ${tileLoop(n, WG, `var qx = ${G.zero}; var dx = ${G.zero};
    if (e < lim) { qx = qb[qBase + e]; dx = dob[dBase + e]; }
    qt[e] = qx; dt[e] = dx;`)}
  ${tileLoop(BQ, WG, `var sx = vec2<f32>(1e30, 0.0);
    if (i0 + e < L) { sx = stats[word(${U.STATS}u) + rowBase + i0 + e]; }
    qst[e] = sx;`)} }`;
  const fin = rows.map(
    (r) => `if (key${r} < L) {
    let ga = word(${U.O}u) + (rowBase + key${r}) * ${u32(DV)};
    let gb = word(${U.OUT2}u) + (rowBase + key${r}) * ${u32(DV)};
    let f = select(0.0, scale, kok${r});
    let fv = select(0.0, 1.0, kok${r});
    ${comps.map((i) => `dkb[ga + ${u32(i)}] = gk${r}_${i} * f;`).join('\n    ')}
    ${comps.map((i) => `dvb[gb + ${u32(i)}] = gv${r}_${i} * fv;`).join('\n    ')}
  }`,
  );
  return `${header(drop)}
@group(0) @binding(1) var<storage, read_write> dkb: array<${VT}>;
@group(0) @binding(2) var<storage, read_write> dvb: array<${VT}>;
@group(0) @binding(3) var<storage, read> qb: array<${VT}>;
@group(0) @binding(4) var<storage, read> kb: array<${VT}>;
@group(0) @binding(5) var<storage, read> vb: array<${VT}>;
@group(0) @binding(6) var<storage, read> dob: array<${VT}>;
@group(0) @binding(7) var<storage, read> stats: array<vec2<f32>>;
${maskBinding(8)}
var<workgroup> qt: array<${VT}, ${BQ * DV}>;
var<workgroup> dt: array<${VT}, ${BQ * DV}>;
var<workgroup> qst: array<vec2<f32>, ${BQ}>;
${MAIN.replace('WG', String(WG))}
  let c = fword(${U.C}u);
  let scale = fword(${U.SCALE}u);
  let k0 = blk * ${u32(WG * R)};
  ${s.join('\n  ')}
  let istart = select(0u, k0, causal);
  for (var i0 = istart; i0 < L; i0 += ${u32(BQ)}) {
  ${load}
  workgroupBarrier();
  ${body.join('\n  ')}
  workgroupBarrier();
  }
  ${fin.join('\n  ')}
}`;
}

// ---------------------------------------------------------------------------------------------
// Launchers

export interface AttentionForwardArgs extends AttentionOptions {
  /** [batch, heads, length, headDim], contiguous f32 (also k, v). */
  q: GpuOperand;
  k: GpuOperand;
  v: GpuOperand;
  /** [batch, heads, length, headDim] output. */
  out: GpuOperand;
  /** [batch, heads, length]: natural-log logsumexp of each row's scaled scores (−inf for rows with no key). */
  lse: GpuOperand;
  /** [batch, length] i32/bool, any strides: 1 = token, 0 = padding (that key is masked). */
  keyPaddingMask?: GpuOperand | null;
  /** Schedule override (benchmarks, tests). */
  tiles?: Partial<AttentionTiles>;
}

export interface AttentionBackwardArgs extends AttentionOptions {
  q: GpuOperand;
  k: GpuOperand;
  v: GpuOperand;
  /** The forward's output and logsumexp. */
  out: GpuOperand;
  lse: GpuOperand;
  /** Gradient of the output. */
  dOut: GpuOperand;
  dq: GpuOperand;
  dk: GpuOperand;
  dv: GpuOperand;
  /** Scratch of 2·batch·heads·length f32 (offset even): per-row (lse·log2 e, Σ dO·O). */
  stats: GpuOperand;
  keyPaddingMask?: GpuOperand | null;
  tiles?: Partial<AttentionTiles>;
}

/** The vector width the operands allow: vec4 when the head dim and every offset are multiples of 4. */
function widthOf(D: number, operands: GpuOperand[]): 1 | 4 {
  return D % 4 === 0 && operands.every((o) => o.offset % 4 === 0) ? 4 : 1;
}

/** The dropout to apply, or null (none, or p = 0); throws on a rate outside [0, 1). */
function dropoutOf(op: string, d: AttentionDropout | null | undefined): AttentionDropout | null {
  if (!d) return null;
  if (!(d.p >= 0 && d.p < 1)) throw new RangeError(`${op}: dropout rate must be in [0, 1), got ${d.p}`);
  return d.p > 0 ? d : null;
}

function baseUniforms(dims: Dims, blocks: number, scale: number, causal: boolean, mask: GpuOperand | null | undefined, drop: AttentionDropout | null): UniformWriter {
  const u = new UniformWriter(WORDS)
    .u32(U.CAUSAL, causal ? 1 : 0)
    .u32(U.BH, dims.B * dims.H)
    .u32(U.H, dims.H)
    .u32(U.L, dims.L)
    .u32(U.BLOCKS, blocks)
    .f32(U.C, scale * LOG2E)
    .f32(U.SCALE, scale)
    .f32(U.NEG_INF, -Infinity);
  if (mask) u.u32(U.MASKED, 1).u32(U.MASK, mask.offset).u32(U.MASK_SB, mask.strides[0]!).u32(U.MASK_SL, mask.strides[1]!);
  if (drop) u.f32(U.DROP_P, drop.p).u32(U.DROP_KEY, drop.key >>> 0).u32(U.DROP_BASE, drop.base >>> 0);
  return u;
}

function tileKey(t: AttentionTileConfig): string {
  return `${t.wg}x${t.per}x${t.tile}`;
}

function checkTiles(op: string, kind: 'fwd' | 'dq' | 'dkv', t: AttentionTileConfig, D: number, device: GPUDevice): void {
  const bytes = attentionWorkgroupBytes(kind, D, t.tile);
  if (bytes > device.limits.maxComputeWorkgroupStorageSize) {
    throw new RangeError(`${op}: ${kind} tile of ${t.tile} rows × headDim ${D} needs ${bytes} bytes of workgroup memory, more than this device's ${device.limits.maxComputeWorkgroupStorageSize}`);
  }
}

/** Forward attention on the GPU: writes `out` and `lse`. Never materialises the L×L scores. */
export function attentionForwardGpu(queue: KernelQueue, args: AttentionForwardArgs): void {
  const op = 'attention';
  const dims = dimsOf(op, args.q, [args.k, args.v, args.out]);
  checkMask(op, args.keyPaddingMask, dims);
  for (const [name, t] of [['q', args.q], ['k', args.k], ['v', args.v], ['out', args.out]] as const) checkGpuOperand(op, name, t);
  if (args.lse.dtype !== 'f32' || numel(args.lse.shape) !== dims.B * dims.H * dims.L) throw new RangeError(`${op}: lse must be f32 [batch, heads, length]`);
  const { B, H, L, D } = dims;
  if (B * H * L === 0) return;
  const W = widthOf(D, [args.q, args.k, args.v, args.out]);
  const G = gen(D, W);
  const cfg = { ...attentionTiles(D, L, isSoftwareAdapter(queue)).fwd, ...args.tiles?.fwd };
  checkTiles(op, 'fwd', cfg, D, queue.device);
  const causal = args.causal ?? false;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const blocks = Math.ceil(L / (cfg.wg * cfg.per));
  const drop = dropoutOf(op, args.dropout);
  const u = baseUniforms(dims, blocks, scale, causal, args.keyPaddingMask, drop)
    .u32(U.Q, args.q.offset / W)
    .u32(U.K, args.k.offset / W)
    .u32(U.V, args.v.offset / W)
    .u32(U.O, args.out.offset / W)
    .u32(U.LSE, args.lse.offset);
  queue.dispatch({
    key: `attn-fwd:${D}:${W}:${tileKey(cfg)}${drop ? ':drop' : ''}`,
    source: () => forwardSource(G, cfg, !!drop),
    storage: [args.out.buffer, args.lse.buffer, args.q.buffer, args.k.buffer, args.v.buffer, (args.keyPaddingMask ?? args.q).buffer],
    uniforms: u.data,
    workgroups: grid(B * H * blocks, queue.device.limits.maxComputeWorkgroupsPerDimension),
    label: 'attention forward',
  });
}

/**
 * Backward attention on the GPU: three dispatches — per-row statistics (D = Σ dO·O and the lse),
 * dQ over query blocks, dK/dV over key blocks. Deterministic (no atomics); no L×L buffers.
 */
export function attentionBackwardGpu(queue: KernelQueue, args: AttentionBackwardArgs): void {
  const op = 'attentionBackward';
  const dims = dimsOf(op, args.q, [args.k, args.v, args.out, args.dOut, args.dq, args.dk, args.dv]);
  checkMask(op, args.keyPaddingMask, dims);
  const named = [['q', args.q], ['k', args.k], ['v', args.v], ['out', args.out], ['dOut', args.dOut], ['dq', args.dq], ['dk', args.dk], ['dv', args.dv]] as const;
  for (const [name, t] of named) checkGpuOperand(op, name, t);
  const { B, H, L, D } = dims;
  if (args.lse.dtype !== 'f32' || numel(args.lse.shape) !== B * H * L) throw new RangeError(`${op}: lse must be f32 [batch, heads, length]`);
  if (args.stats.dtype !== 'f32' || numel(args.stats.shape) < 2 * B * H * L || args.stats.offset % 2 !== 0) {
    throw new RangeError(`${op}: stats scratch must hold 2·batch·heads·length f32 at an even offset`);
  }
  if (B * H * L === 0) return;
  const W = widthOf(D, named.map(([, t]) => t));
  const G = gen(D, W);
  const tiles = attentionTiles(D, L, isSoftwareAdapter(queue));
  const dqCfg = { ...tiles.dq, ...args.tiles?.dq };
  const dkvCfg = { ...tiles.dkv, ...args.tiles?.dkv };
  checkTiles(op, 'dq', dqCfg, D, queue.device);
  checkTiles(op, 'dkv', dkvCfg, D, queue.device);
  const causal = args.causal ?? false;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const drop = dropoutOf(op, args.dropout);
  const maxDim = queue.device.limits.maxComputeWorkgroupsPerDimension;
  const mask = (args.keyPaddingMask ?? args.q).buffer;
  const variant = `${D}:${W}`;
  const common = (blocks: number) =>
    baseUniforms(dims, blocks, scale, causal, args.keyPaddingMask, drop)
      .u32(U.Q, args.q.offset / W)
      .u32(U.K, args.k.offset / W)
      .u32(U.V, args.v.offset / W)
      .u32(U.DO, args.dOut.offset / W)
      .u32(U.LSE, args.lse.offset)
      .u32(U.STATS, args.stats.offset / 2);

  queue.dispatch({
    key: `attn-stats:${D}:${W}`,
    source: () => statsSource(G),
    storage: [args.stats.buffer, args.out.buffer, args.dOut.buffer, args.lse.buffer],
    uniforms: common(1).u32(U.O, args.out.offset / W).data,
    workgroups: grid(Math.ceil((B * H * L) / 64), maxDim),
    label: 'attention backward stats',
  });

  const dqBlocks = Math.ceil(L / (dqCfg.wg * dqCfg.per));
  queue.dispatch({
    key: `attn-dq:${variant}:${tileKey(dqCfg)}${drop ? ':drop' : ''}`,
    source: () => dqSource(G, dqCfg, !!drop),
    storage: [args.dq.buffer, args.q.buffer, args.k.buffer, args.v.buffer, args.dOut.buffer, args.stats.buffer, mask],
    uniforms: common(dqBlocks).u32(U.O, args.dq.offset / W).data,
    workgroups: grid(B * H * dqBlocks, maxDim),
    label: 'attention backward dQ',
  });

  const kvBlocks = Math.ceil(L / (dkvCfg.wg * dkvCfg.per));
  queue.dispatch({
    key: `attn-dkv:${variant}:${tileKey(dkvCfg)}${drop ? ':drop' : ''}`,
    source: () => dkvSource(G, dkvCfg, !!drop),
    storage: [args.dk.buffer, args.dv.buffer, args.q.buffer, args.k.buffer, args.v.buffer, args.dOut.buffer, args.stats.buffer, mask],
    uniforms: common(kvBlocks).u32(U.O, args.dk.offset / W).u32(U.OUT2, args.dv.offset / W).data,
    workgroups: grid(B * H * kvBlocks, maxDim),
    label: 'attention backward dK dV',
  });
}

/** WGSL of each attention kernel for a configuration (inspection and tests). */
export function attentionSources(
  headDim: number,
  opts: { length?: number; width?: 1 | 4; tiles?: Partial<AttentionTiles>; dropout?: boolean; software?: boolean } = {},
): Record<'fwd' | 'stats' | 'dq' | 'dkv', string> {
  const W = opts.width ?? (headDim % 4 === 0 ? 4 : 1);
  const G = gen(headDim, W);
  const t = { ...attentionTiles(headDim, opts.length ?? 1024, opts.software ?? true), ...opts.tiles };
  const drop = opts.dropout ?? false;
  return { fwd: forwardSource(G, t.fwd, drop), stats: statsSource(G), dq: dqSource(G, t.dq, drop), dkv: dkvSource(G, t.dkv, drop) };
}

// ---------------------------------------------------------------------------------------------
// Float64 references (straightforward O(L²·D))

export interface AttentionCpuArgs extends AttentionOptions {
  q: CpuOperand;
  k: CpuOperand;
  v: CpuOperand;
  keyPaddingMask?: CpuOperand | null;
}

function at4(t: CpuOperand, b: number, h: number, l: number, d: number): number {
  return t.offset + b * t.strides[0]! + h * t.strides[1]! + l * t.strides[2]! + d * t.strides[3]!;
}

/** Row (b, h, i)'s probabilities over keys, or null if every key is masked. Also returns the lse. */
function probabilities(args: AttentionCpuArgs, dims: Dims, b: number, h: number, i: number, p: Float64Array): number {
  const { L, D } = dims;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const mask = args.keyPaddingMask;
  let m = -Infinity;
  for (let j = 0; j < L; j++) {
    const ok = (!args.causal || j <= i) && (!mask || mask.data[mask.offset + b * mask.strides[0]! + j * mask.strides[1]!] !== 0);
    if (!ok) {
      p[j] = -Infinity;
      continue;
    }
    let s = 0;
    for (let d = 0; d < D; d++) s += args.q.data[at4(args.q, b, h, i, d)]! * args.k.data[at4(args.k, b, h, j, d)]!;
    p[j] = s * scale;
    if (p[j]! > m) m = p[j]!;
  }
  if (m === -Infinity) {
    p.fill(0);
    return -Infinity;
  }
  let l = 0;
  for (let j = 0; j < L; j++) {
    p[j] = p[j] === -Infinity ? 0 : Math.exp(p[j]! - m);
    l += p[j]!;
  }
  for (let j = 0; j < L; j++) p[j]! /= l;
  return m + Math.log(l);
}

/** Float64 forward: out [B,H,L,D] and lse [B,H,L] (−inf for rows whose keys are all masked, with zero output). */
export function attentionForwardCpu(args: AttentionCpuArgs & { out: CpuOperand; lse: CpuOperand }): void {
  const dims = dimsOf('attention', args.q, [args.k, args.v, args.out]);
  checkMask('attention', args.keyPaddingMask, dims);
  const { B, H, L, D } = dims;
  const drop = dropoutOf('attention', args.dropout);
  const p = new Float64Array(L);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < L; i++) {
        const lse = probabilities(args, dims, b, h, i, p);
        args.lse.data[args.lse.offset + (b * H + h) * L + i] = lse;
        if (drop) for (let j = 0; j < L; j++) p[j]! *= attentionDropoutFactor(drop, L, b * H + h, i, j);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < L; j++) if (p[j] !== 0) acc += p[j]! * args.v.data[at4(args.v, b, h, j, d)]!;
          args.out.data[at4(args.out, b, h, i, d)] = acc;
        }
      }
    }
  }
}

/** Float64 backward: dq, dk, dv from dOut, recomputing the probabilities. */
export function attentionBackwardCpu(args: AttentionCpuArgs & { dOut: CpuOperand; dq: CpuOperand; dk: CpuOperand; dv: CpuOperand }): void {
  const dims = dimsOf('attentionBackward', args.q, [args.k, args.v, args.dOut, args.dq, args.dk, args.dv]);
  checkMask('attentionBackward', args.keyPaddingMask, dims);
  const { B, H, L, D } = dims;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const P = new Float64Array(L * L);
  const dS = new Float64Array(L * L);
  const PM = new Float64Array(L * L);
  const row = new Float64Array(L);
  const drop = dropoutOf('attentionBackward', args.dropout);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < L; i++) {
        probabilities(args, dims, b, h, i, row);
        P.set(row, i * L);
      }
      // With dropout (factor M): O = (P⊙M)V, dP = M⊙(dO Vᵀ), dS = P⊙(dP − Σ_j P dP); dV uses P⊙M.
      for (let i = 0; i < L; i++) {
        let Di = 0;
        for (let j = 0; j < L; j++) {
          let dp = 0;
          if (P[i * L + j] !== 0) for (let d = 0; d < D; d++) dp += args.dOut.data[at4(args.dOut, b, h, i, d)]! * args.v.data[at4(args.v, b, h, j, d)]!;
          const m = drop ? attentionDropoutFactor(drop, L, b * H + h, i, j) : 1;
          dS[i * L + j] = dp * m;
          Di += P[i * L + j]! * dp * m;
          PM[i * L + j] = P[i * L + j]! * m;
        }
        for (let j = 0; j < L; j++) dS[i * L + j] = P[i * L + j]! * (dS[i * L + j]! - Di);
      }
      for (let x = 0; x < L; x++) {
        for (let d = 0; d < D; d++) {
          let gq = 0;
          let gk = 0;
          let gv = 0;
          for (let y = 0; y < L; y++) {
            gq += dS[x * L + y]! * args.k.data[at4(args.k, b, h, y, d)]!;
            gk += dS[y * L + x]! * args.q.data[at4(args.q, b, h, y, d)]!;
            gv += PM[y * L + x]! * args.dOut.data[at4(args.dOut, b, h, y, d)]!;
          }
          args.dq.data[at4(args.dq, b, h, x, d)] = gq * scale;
          args.dk.data[at4(args.dk, b, h, x, d)] = gk * scale;
          args.dv.data[at4(args.dv, b, h, x, d)] = gv;
        }
      }
    }
  }
}
