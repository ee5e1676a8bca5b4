/**
 * WGSL of the backward kernels: per-row statistics, dQ over query blocks (recomputing P from K/V
 * tiles), dK/dV over key blocks (streaming Q/dO tiles). Every output is written once: no atomics.
 */
import type { AttentionTileConfig } from './schedule.js';
import {
  type Gen,
  LOG2E,
  MAIN,
  NEG,
  NO_LIMIT,
  U,
  header,
  loadKeyTile,
  maskBinding,
  maskedAt,
  rowAt,
  tileLoop,
  treeSum,
  u32,
} from './wgsl.js';

/** Per-row backward statistics: (lse·log2 e, or +1e30 for rows with no key; D = Σ dO·O). */
export function statsSource(G: Gen): string {
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
  let L = word(${U.L}u);
  let bh = row / L;
  let bi = bh / word(${U.H}u);
  let hi = bh % word(${U.H}u);
  let oa = at(${U.O}u, bi, hi, row % L);
  let da = at(${U.DO}u, bi, hi, row % L);
  var acc = ${G.zero};
  for (var i = 0u; i < ${u32(DV)}; i++) { acc += ob[oa + i] * dob[da + i]; }
  let lse = lseb[word(${U.LSE}u) + row];
  stats[word(${U.STATS}u) + row] = vec2<f32>(select(1e30, lse * ${LOG2E}, lse > -1e30), ${G.W === 4 ? 'dot(acc, vec4<f32>(1.0))' : 'acc'});
}`;
}

/** dQ: each thread keeps query rows (q, dO) in registers and streams K/V tiles. */
export function dqSource(G: Gen, cfg: AttentionTileConfig, drop: boolean): string {
  const { wg: WG, per: R, tile: BC } = cfg;
  const { DV, VT } = G;
  const rows = [...Array(R).keys()];
  const comps = [...Array(DV).keys()];
  const keys = [...Array(BC).keys()];
  const s: string[] = [];
  for (const r of rows) {
    s.push(`let row${r} = q0 + lid + ${u32(r * WG)}; let rc${r} = rowBase + min(row${r}, L - 1u);`);
    s.push(`let lim${r} = select(${NO_LIMIT}, row${r}, causal);`);
    s.push(`let lc${r} = min(row${r}, L - 1u);`);
    s.push(`let qa${r} = at(${U.Q}u, bi, hi, lc${r}); let da${r} = at(${U.DO}u, bi, hi, lc${r});`);
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
      body.push(
        `let ds${r}_${j} = p${r}_${j} * (${drop ? `drop_keep(dc${r} + k0 + ${u32(j)}) * ${dp}` : dp} - st${r}.y);`,
      );
    }
  }
  // One read-modify-write of each accumulator per tile.
  for (const r of rows)
    for (const i of comps) body.push(`g${r}_${i} += ${treeSum(keys.map((j) => `ds${r}_${j} * k${j}_${i}`))};`);
  const fin = rows.map(
    (r) => `if (row${r} < L) {
    let ga = at(${U.O}u, bi, hi, row${r});
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

/**
 * dK, dV: each thread keeps key rows (k, v) in registers and streams Q/dO tiles. With `shared`, dK
 * and dV are parts of one buffer (one writable binding: WebGPU forbids aliased writable bindings).
 */
export function dkvSource(G: Gen, cfg: AttentionTileConfig, drop: boolean, shared = false): string {
  const { wg: WG, per: R, tile: BQ } = cfg;
  const { DV, VT } = G;
  const rows = [...Array(R).keys()];
  const comps = [...Array(DV).keys()];
  const queries = [...Array(BQ).keys()];
  const s: string[] = [];
  for (const r of rows) {
    s.push(`let key${r} = k0 + lid + ${u32(r * WG)};`);
    s.push(`var kok${r} = key${r} < L;`);
    s.push(`let klim${r} = select(0u, key${r}, causal);`);
    s.push(`if (${maskedAt(`min(key${r}, L - 1u)`)}) { kok${r} = false; }`);
    s.push(
      `let ka${r} = at(${U.K}u, bi, hi, min(key${r}, L - 1u)); let va${r} = at(${U.V}u, bi, hi, min(key${r}, L - 1u));`,
    );
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
    for (const i of comps)
      body.push(
        `gv${r}_${i} += ${treeSum(
          queries.map((j) => (drop ? `p${r}_${j} * kp${r}_${j} * d${j}_${i}` : `p${r}_${j} * d${j}_${i}`)),
        )};`,
      );
    for (const i of comps) body.push(`gk${r}_${i} += ${treeSum(queries.map((j) => `ds${r}_${j} * q${j}_${i}`))};`);
  }
  const n = BQ * DV;
  const load = `{ let lim = (L - i0) * ${u32(DV)};
  ${tileLoop(
    n,
    WG,
    `var qx = ${G.zero}; var dx = ${G.zero};
    if (e < lim) { qx = qb[${rowAt(G, U.Q, 'i0')}]; dx = dob[${rowAt(G, U.DO, 'i0')}]; }
    qt[e] = qx; dt[e] = dx;`,
  )}
  ${tileLoop(
    BQ,
    WG,
    `var sx = vec2<f32>(1e30, 0.0);
    if (i0 + e < L) { sx = stats[word(${U.STATS}u) + rowBase + i0 + e]; }
    qst[e] = sx;`,
  )} }`;
  const fin = rows.map(
    (r) => `if (key${r} < L) {
    let ga = at(${U.O}u, bi, hi, key${r});
    let gb = at(${U.OUT2}u, bi, hi, key${r});
    let f = select(0.0, scale, kok${r});
    let fv = select(0.0, 1.0, kok${r});
    ${comps.map((i) => `dkb[ga + ${u32(i)}] = gk${r}_${i} * f;`).join('\n    ')}
    ${comps.map((i) => `${shared ? 'dkb' : 'dvb'}[gb + ${u32(i)}] = gv${r}_${i} * fv;`).join('\n    ')}
  }`,
  );
  const bindings = [
    `read_write> dkb: array<${VT}>;`,
    ...(shared ? [] : [`read_write> dvb: array<${VT}>;`]),
    ...['qb', 'kb', 'vb', 'dob'].map((name) => `read> ${name}: array<${VT}>;`),
    'read> stats: array<vec2<f32>>;',
  ];
  return `${header(drop)}
${bindings.map((decl, i) => `@group(0) @binding(${i + 1}) var<storage, ${decl}`).join('\n')}
${maskBinding(bindings.length + 1)}
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
