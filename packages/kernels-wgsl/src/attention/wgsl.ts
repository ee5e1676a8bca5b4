/** WGSL pieces shared by the attention kernels: uniform words, vector widths, tile loads, masks. */
import { uniformBlock } from '../layout.js';
import { RNG_WGSL } from '../random.js';
import type { AttentionTileConfig } from './schedule.js';

export const LOG2E = Math.LOG2E;
/** A finite "minus infinity": masked scores become ≈ −1e30 and exp2 of them underflows (≤ 1e-38). */
export const NEG = '-1e30';
/** Running max start: above every masked score (≈ −1e30), below every real one. */
export const M_INIT = '-5e29';

// Uniform words shared by the kernels. Each [batch, heads, length, headDim] operand (Q … OUT2) has
// four words from its slot: offset, batch stride, head stride, length stride (in vectors; headDim
// is unit-stride), so strided views (heads interleaved within a token, as the QKV projection
// leaves them) are read and written in place.
export const U = {
  BH: 0,
  H: 1,
  L: 2,
  BLOCKS: 3,
  LSE: 9,
  STATS: 10,
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
  Q: 24,
  K: 28,
  V: 32,
  O: 36,
  DO: 40,
  OUT2: 44,
} as const;
export const WORDS = 48;
/** Largest u32: the per-row causal limit when causal masking is off. */
export const NO_LIMIT = '4294967295u';

export interface Gen {
  D: number;
  W: 1 | 4;
  /** Vectors per row. */
  DV: number;
  VT: string;
  zero: string;
  dot(a: string, b: string): string;
}

export function gen(D: number, W: 1 | 4): Gen {
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

export const u32 = (n: number) => `${n}u`;

/** Sum of terms as a balanced tree (shorter dependency chains than a left fold). */
export function treeSum(terms: string[]): string {
  if (terms.length === 1) return terms[0]!;
  const mid = terms.length >> 1;
  return `(${treeSum(terms.slice(0, mid))} + ${treeSum(terms.slice(mid))})`;
}
export function treeMax(terms: string[]): string {
  if (terms.length === 1) return terms[0]!;
  const mid = terms.length >> 1;
  return `max(${treeMax(terms.slice(0, mid))}, ${treeMax(terms.slice(mid))})`;
}

/** Loop over the `count` words of a tile, `wg` threads at a time; `body` sees `e` (u32). */
export function tileLoop(count: number, wg: number, body: string): string {
  const steps = Math.ceil(count / wg);
  const out: string[] = [];
  for (let t = 0; t < steps; t++) {
    const guard = (t + 1) * wg > count;
    out.push(`{ let e = lid + ${u32(t * wg)};${guard ? ` if (e < ${u32(count)}) {` : ''}
    ${body}${guard ? ' }' : ''} }`);
  }
  return out.join('\n  ');
}

export function header(dropout = false): string {
  return `${uniformBlock(WORDS)}
fn fword(i: u32) -> f32 { return bitcast<f32>(word(i)); }
/** Index of the first vector of row (batch b, head h, position l) of the operand whose words start at \`slot\`. */
fn at(slot: u32, b: u32, h: u32, l: u32) -> u32 {
  return word(slot) + b * word(slot + 1u) + h * word(slot + 2u) + l * word(slot + 3u);
}${
    dropout
      ? `
${RNG_WGSL}
/** Keep factor of the pair at counter offset \`c\` (see attentionDropoutFactor). */
fn drop_keep(c: u32) -> f32 {
  let p = fword(${U.DROP_P}u);
  return select(1.0 / (1.0 - p), 0.0, rng_uniform(word(${U.DROP_KEY}u), word(${U.DROP_BASE}u) + c) < p);
}`
      : ''
  }`;
}

export const MAIN = `@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let nblk = word(${U.BLOCKS}u);
  if (g >= word(${U.BH}u) * nblk) { return; }
  let bh = g / nblk;
  let bi = bh / word(${U.H}u);
  let hi = bh % word(${U.H}u);
  let blk = g % nblk;
  let L = word(${U.L}u);
  let rowBase = bh * L;
  let causal = word(${U.CAUSAL}u) != 0u;`;

/** Loads a [tile, D] slab of K and V (rows k0…) into kt / vt and the key bias into kbias. */
export function loadKeyTile(G: Gen, cfg: AttentionTileConfig): string {
  const n = cfg.tile * G.DV;
  const tileBody = `var kx = ${G.zero}; var vx = ${G.zero};
    if (e < lim) { kx = kb[${rowAt(G, U.K, 'k0')}]; vx = vb[${rowAt(G, U.V, 'k0')}]; }
    kt[e] = kx; vt[e] = vx;`;
  const biasBody = `let key = k0 + e; var bz = ${NEG};
    if (key < L) { bz = 0.0; if (${maskedAt('key')}) { bz = ${NEG}; } }
    kbias[e] = bz;`;
  return `{ let lim = (L - k0) * ${u32(G.DV)};
  ${tileLoop(n, cfg.wg, tileBody)}
  ${tileLoop(cfg.tile, cfg.wg, biasBody)} }`;
}

/** WGSL index of word \`e\` of a tile of the operand at \`slot\` whose first row is \`l0\`. */
export function rowAt(G: Gen, slot: number, l0: string): string {
  return G.DV === 1
    ? `at(${slot}u, bi, hi, ${l0} + e)`
    : `at(${slot}u, bi, hi, ${l0} + e / ${u32(G.DV)}) + e % ${u32(G.DV)}`;
}

/** WGSL condition: key `key` (u32 < L) of this workgroup's sequence is padding. */
export function maskedAt(key: string): string {
  return (
    `word(${U.MASKED}u) != 0u && ` +
    `maskb[word(${U.MASK}u) + (bh / word(${U.H}u)) * word(${U.MASK_SB}u) + ${key} * word(${U.MASK_SL}u)] == 0`
  );
}

/** The mask binding; without a mask the launcher binds another read-only buffer and clears MASKED. */
export function maskBinding(binding: number): string {
  return `@group(0) @binding(${binding}) var<storage, read> maskb: array<i32>;`;
}
