/** WGSL of the forward kernel: online softmax (FlashAttention-2) over key tiles, O and the row logsumexp. */
import type { AttentionTileConfig } from './schedule.js';
import {
  type Gen,
  M_INIT,
  MAIN,
  NEG,
  NO_LIMIT,
  U,
  header,
  loadKeyTile,
  maskBinding,
  treeMax,
  treeSum,
  u32,
} from './wgsl.js';

/** The forward kernel: O and the row logsumexp, online softmax over key tiles. */
export function forwardSource(G: Gen, cfg: AttentionTileConfig, drop: boolean): string {
  const { wg: WG, per: R, tile: BC } = cfg;
  const { DV, VT } = G;
  const rows = [...Array(R).keys()];
  const comps = [...Array(DV).keys()];
  const keys = [...Array(BC).keys()];
  const s: string[] = [];
  for (const r of rows) {
    s.push(`let row${r} = q0 + lid + ${u32(r * WG)}; ` + `let qa${r} = at(${U.Q}u, bi, hi, min(row${r}, L - 1u));`);
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
    for (const j of keys)
      body.push(`let pv${r}_${j} = ${drop ? `p${r}_${j} * drop_keep(dc${r} + k0 + ${u32(j)})` : `p${r}_${j}`};`);
  }
  for (const i of comps) {
    for (const j of keys) body.push(`let v${i}_${j} = vt[${u32(j * DV + i)}];`);
    for (const r of rows)
      body.push(`o${r}_${i} = o${r}_${i} * al${r} + ${treeSum(keys.map((j) => `pv${r}_${j} * v${i}_${j}`))};`);
  }
  const fin: string[] = [];
  for (const r of rows) {
    fin.push(`if (row${r} < L) {
    let ok = m${r} > -1e29;
    let inv = select(0.0, 1.0 / l${r}, ok);
    let oa = at(${U.O}u, bi, hi, row${r});
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
