/**
 * The WGSL of each matmul schedule: `direct` (register-blocked, operands straight from storage) and its `subgroup`
 * form (A shared across lanes), `tiled` (workgroup-memory tiles), `dot` (one workgroup per output) and the split-K
 * reduction.
 */
import type { DirectConfig, DotConfig, SubgroupConfig, TiledConfig } from './types.js';
import { W, w } from './layout.js';
import { type Flags, batchOffsets, epilogue, epilogueLets, header, range, zPrologue } from './wgsl.js';

// --- direct (register-blocked, no workgroup memory) ----------------------------------------

/** How an operand is read: 's' scalar, or vec4 along one of its dims ('k' for either operand, 'm' for A, 'n' for B). */
export type VecMode = 's' | 'k' | 'm' | 'n';

/**
 * `direct`, or with a `subgroup` config the same kernel where each block of 4 k-steps of A is loaded once per
 * subgroup: lane l loads k-step l mod 4 (scalar, or a vec4 of rows) and lanes take each k-step from lane 0–3 by
 * `subgroupBroadcast`. Every lane of a workgroup works on the same rows (one row of threads), so this holds however
 * the adapter groups threads into subgroups and for any subgroup size ≥ 4. Mode 'k' for A needs tm % 4 == 0 there.
 */
export function directSource(cfg: DirectConfig | SubgroupConfig, f: Flags, va: VecMode, vb: VecMode): string {
  const { tm, tn, wx } = cfg;
  const shareA = cfg.kind === 'subgroup';
  const wy = cfg.kind === 'direct' ? cfg.wy : 1;
  const vacc = tn % 4 === 0; // accumulate rows as vec4 over 4 columns
  const extra: string[] = [];
  let binding = 4 + (f.bias && !f.split ? 1 : 0) + (f.pre && !f.split ? 1 : 0);
  if (va !== 's') extra.push(`@group(0) @binding(${binding++}) var<storage, read> A4: array<vec4<f32>>;`);
  if (vb !== 's') extra.push(`@group(0) @binding(${binding++}) var<storage, read> B4: array<vec4<f32>>;`);
  // a(i, kk): A[row i][k + kk] within a block of 4 k-steps; b(kk, j) likewise.
  const a = (i: number, kk: number) =>
    va === 'k' ? `va${i}[${kk}]` : va === 'm' ? `va${kk}_${i >> 2}[${i & 3}]` : `sa${kk}_${i}`;
  const b = (kk: number, j: number) =>
    vb === 'n' ? `vb${kk}_${j >> 2}[${j & 3}]` : vb === 'k' ? `vb${j}[${kk}]` : `sb${kk}_${j}`;
  const bq = (kk: number, q: number) =>
    vb === 'n' ? `vb${kk}_${q}` : `vec4<f32>(${[0, 1, 2, 3].map((r) => b(kk, 4 * q + r)).join(', ')})`;
  let block = '';
  if (shareA) {
    // One load per lane per 4 k-steps (lane l: k-step l mod 4, or rows 4q + l mod 4 as vec4s along k).
    const loads =
      va === 'k'
        ? range(tm / 4).map((q) => `let la${q} = A4[al${q} + k4];`)
        : va === 'm'
          ? range(tm / 4).map((q) => `let la${q} = A4[av${q} + (k + lk) * sak4];`)
          : range(tm).map((i) => `let la${i} = A[ar${i} + (k + lk) * sak];`);
    block += loads.join(' ') + '\n';
  }
  if (va === 'k')
    block +=
      range(tm)
        .map((i) =>
          shareA ? `let va${i} = subgroupBroadcast(la${i >> 2}, ${i & 3}u);` : `let va${i} = A4[av${i} + k4];`,
        )
        .join(' ') + '\n';
  if (vb === 'k')
    block +=
      range(tn)
        .map((j) => `let vb${j} = B4[bv${j} + k4];`)
        .join(' ') + '\n';
  for (let kk = 0; kk < 4; kk++) {
    block += `{ let kk${kk} = k + ${kk}u;\n`;
    if (va === 'm')
      block +=
        range(tm / 4)
          .map((q) =>
            shareA
              ? `let va${kk}_${q} = subgroupBroadcast(la${q}, ${kk}u);`
              : `let va${kk}_${q} = A4[av${q} + kk${kk} * sak4];`,
          )
          .join(' ') + '\n';
    if (va === 's')
      block +=
        range(tm)
          .map((i) =>
            shareA
              ? `let sa${kk}_${i} = subgroupBroadcast(la${i}, ${kk}u);`
              : `let sa${kk}_${i} = A[ar${i} + kk${kk} * sak];`,
          )
          .join(' ') + '\n';
    if (vb === 'n')
      block +=
        range(tn / 4)
          .map((q) => `let vb${kk}_${q} = B4[bv${q} + kk${kk} * sbk4];`)
          .join(' ') + '\n';
    if (vb === 's')
      block +=
        range(tn)
          .map((j) => `let sb${kk}_${j} = B[bc${j} + kk${kk} * sbk];`)
          .join(' ') + '\n';
    for (let i = 0; i < tm; i++) {
      block += vacc
        ? range(tn / 4)
            .map((q) => `c${i}_${q} = fma(vec4<f32>(${a(i, kk)}), ${bq(kk, q)}, c${i}_${q});`)
            .join(' ') + '\n'
        : range(tn)
            .map((j) => `c${i}_${j} = fma(${a(i, kk)}, ${b(kk, j)}, c${i}_${j});`)
            .join(' ') + '\n';
    }
    block += '}\n';
  }
  // Tail: one k-step at a time through the scalar bindings.
  let tail =
    range(tm)
      .map((i) => `let ta${i} = A[ar${i} + k * sak];`)
      .join(' ') + '\n';
  tail +=
    range(tn)
      .map((j) => `let tb${j} = B[bc${j} + k * sbk];`)
      .join(' ') + '\n';
  for (let i = 0; i < tm; i++) {
    tail += vacc
      ? range(tn / 4)
          .map(
            (q) =>
              `c${i}_${q} = fma(vec4<f32>(ta${i}), vec4<f32>(${[0, 1, 2, 3].map((r) => `tb${4 * q + r}`).join(', ')}), c${i}_${q});`,
          )
          .join(' ') + '\n'
      : range(tn)
          .map((j) => `c${i}_${j} = fma(ta${i}, tb${j}, c${i}_${j});`)
          .join(' ') + '\n';
  }
  const offsets: string[] = [];
  offsets.push(
    range(tm)
      .map((i) => `let ar${i} = oa + min(row0 + ${i}u, M - 1u) * sam;`)
      .join(' '),
  );
  offsets.push(
    range(tn)
      .map((j) => `let bc${j} = ob + min(col0 + ${j}u, N - 1u) * sbn;`)
      .join(' '),
  );
  // vec4 offsets (in vec4 units); the launcher checked the alignment these divisions rely on.
  if (va === 'k' && shareA)
    offsets.push(
      range(tm / 4)
        .map((q) => `let al${q} = (oa + min(row0 + ${4 * q}u + lk, M - 1u) * sam) / 4u;`)
        .join(' '),
    );
  else if (va === 'k')
    offsets.push(
      range(tm)
        .map((i) => `let av${i} = ar${i} / 4u;`)
        .join(' '),
    );
  if (va === 'm')
    offsets.push(
      `let sak4 = sak / 4u; ` +
        range(tm / 4)
          .map((q) => `let av${q} = (oa + min(row0 + ${4 * q}u, M - 4u)) / 4u;`)
          .join(' '),
    );
  if (vb === 'n')
    offsets.push(
      `let sbk4 = sbk / 4u; ` +
        range(tn / 4)
          .map((q) => `let bv${q} = (ob + min(col0 + ${4 * q}u, N - 4u)) / 4u;`)
          .join(' '),
    );
  if (vb === 'k')
    offsets.push(
      range(tn)
        .map((j) => `let bv${j} = bc${j} / 4u;`)
        .join(' '),
    );
  const decl = vacc
    ? range(tm)
        .map((i) =>
          range(tn / 4)
            .map((q) => `var c${i}_${q} = vec4<f32>(0.0);`)
            .join(' '),
        )
        .join('\n  ')
    : range(tm)
        .map((i) =>
          range(tn)
            .map((j) => `var c${i}_${j} = 0.0;`)
            .join(' '),
        )
        .join('\n  ');
  // The epilogue is a loop over a private copy of the accumulators: one copy of the bias/activation
  // code instead of tm·tn (compile time), while the hot loop keeps plain variables (registers).
  const cols = vacc ? tn / 4 : tn;
  const copy = range(tm)
    .map((i) =>
      range(cols)
        .map((q) => `res[${i * cols + q}] = c${i}_${q};`)
        .join(' '),
    )
    .join('\n  ');
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
  // Subgroup form: no early exit for columns past N (their lanes still load A for the others; loads are clamped) and
  // rows from the workgroup id only, so the broadcasts stay in uniform control flow.
  return `${shareA ? 'enable subgroups;\n' : ''}${header(f, extra.join('\n'))}
@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>${
    shareA ? ', @builtin(subgroup_invocation_id) lane: u32' : ''
  }) {
  let M = ${w(W.M)}; let N = ${w(W.N)}; let K = ${w(W.K)};
  let row0 = ${w(W.ROWSTART)} + ${shareA ? 'wid.y' : `(wid.y * ${wy}u + lid.y)`} * ${tm}u;
  let col0 = ${w(W.COLSTART)} + (wid.x * ${wx}u + lid.x) * ${tn}u;
  ${shareA ? 'if (row0 >= M) { return; }\n  let lk = lane & 3u;' : 'if (row0 >= M || col0 >= N) { return; }'}
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

export function tiledSource(cfg: TiledConfig, f: Flags, aKFast: boolean, bNFast: boolean): string {
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
      for (let i = 0; i < tm; i++)
        for (let q = 0; q < tn / 4; q++) inner += `c${i}_${q} = fma(vec4<f32>(a${i}), b${q}, c${i}_${q}); `;
    } else {
      for (let j = 0; j < tn; j++) inner += `let b${j} = Bs[${kk * BN}u + lx * ${tn}u + ${j}u]; `;
      for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) inner += `c${i}_${j} = fma(a${i}, b${j}, c${i}_${j}); `;
    }
    inner += '}\n';
  }
  const acc = (i: number, j: number) => (vec ? `c${i}_${j >> 2}[${j & 3}]` : `c${i}_${j}`);
  const decl = vec
    ? range(tm)
        .map((i) =>
          range(tn / 4)
            .map((q) => `var c${i}_${q} = vec4<f32>(0.0);`)
            .join(' '),
        )
        .join('\n  ')
    : range(tm)
        .map((i) =>
          range(tn)
            .map((j) => `var c${i}_${j} = 0.0;`)
            .join(' '),
        )
        .join('\n  ');
  const stores = range(tm)
    .map((i) =>
      range(tn)
        .map(
          (j) =>
            `if (row0 + ${i}u < M && col0 + ${j}u < N) ` +
            `${epilogue(f, acc(i, j), `(row0 + ${i}u)`, `(col0 + ${j}u)`, 'sk', 'bi')}`,
        )
        .join('\n  '),
    )
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

export function dotSource(cfg: DotConfig, f: Flags): string {
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

export const REDUCE_WG = 64;

export function reduceSource(f: Flags): string {
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
