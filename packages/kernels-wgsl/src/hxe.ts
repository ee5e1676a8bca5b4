/**
 * Hierarchical cross-entropy (HXE, HELM / Bertinetto et al.) and plain cross-entropy as one fused
 * kernel: logits [N, C] → per-row loss and, optionally, dloss/dlogits, in a single dispatch.
 *
 * The tree is data. Class c has `width` path entries (node, coefficient), leaf first, such that
 * `L = −Σ_j coef_j · log S_j`, S_j = softmax mass under node j (tokenizers' `hxePathTable`, which
 * folds α and Z(α) into the coefficients). `hxeKernelTable` orders the classes depth-first from the
 * node→class membership matrix, so every node covers one contiguous range of ranks and the kernel
 * tests "class k under node j" as `rank[k] − lo_j < len_j` (unsigned): no per-tree code, any tree.
 * Entries holding only the class itself (the leaf, and unary chains like start_codon → ATG) are
 * merged into one leaf coefficient evaluated in the log domain. Plain cross-entropy (`xe`) is the
 * same kernel with no group entries and leaf coefficient 1.
 *
 * Per row (`threadsPerRow` lanes per row, 64 lanes per workgroup):
 *   pass 1  m = max z, z_t                               (lane-strided; lanes reduced in workgroup memory)
 *   pass 2  e = exp(z − m); U = Σ e; a_j = Σ_{k∈A_j} e   (up to 4 group entries per pass)
 *           L = −c_leaf (z_t − m − log U) − Σ_j c'_j (log a_j − log U)
 *   pass 3  dL/dz_k = p_k (c_leaf + Σ_j c'_j) − c_leaf [k = t] − e_k Σ_{j: k∈A_j} c'_j / a_j
 *           (= p_k (g_k − Σ_ℓ p_ℓ g_ℓ) of models.md A3; the entries are nested, so the last sum
 *           is a suffix sum picked by one select per entry)
 * Deeper trees (more than 4 group entries) loop passes 2–3 over chunks of 4, accumulating dlogits.
 *
 * Underflow: a group entry whose mass (relative to the row max) is below 2^-126, the smallest
 * normal f32, is skipped and its coefficient carried to the next entry up the path: with the
 * leaf-first order this is HELM's "skip edges whose numerator is 0" in the edge form (the edge
 * weights w_j = c_0 + … + c_j telescope), with a threshold that does not depend on whether a GPU
 * flushes denormals. The leaf term never underflows (log domain), so `xe` is exact cross-entropy at
 * any logit gap: a confidently wrong row keeps its loss and gradient.
 *
 * Versions, [16384, 70], HELM codon tree at α = 0.2 (3 group entries per class) vs XE, medians,
 * every sample synchronised on GPU completion. SwiftShader (Vulkan on 2 CPU cores); the machine
 * was shared with other sessions' benchmarks (load average 2–7), so medians moved by up to ±40%
 * between runs; versions were compared interleaved in one process.
 *   v1  leaf as an ordinary path entry (XE = one-entry path), one division-free fma per entry:
 *         64 lanes/row (1 row per workgroup, tree reductions):  HXE 6831 ms  XE 4049 ms  fwd+bwd
 *         16 lanes/row:                                          HXE 1440 ms  XE 1080 ms
 *          4 lanes/row:                                          HXE  306 ms  XE  224 ms
 *          1 lane/row (64 rows per workgroup, no barriers):      HXE 75.4 ms  XE 61.6 ms  (1.22×)
 *                                                        forward HXE 38.2 ms  XE 31.4 ms
 *       → workgroup barriers are what SwiftShader pays for; one lane per row is the default.
 *   v2  8-entry unrolled variants cost 4–10 s of pipeline compilation each: capped at 4 per pass.
 *   v3  (this file) one-class entries merged into the leaf coefficient, unsigned range test,
 *       suffix-sum backward (one select per entry instead of select + fma + add), 1 lane/row:
 *                                                        fwd+bwd HXE 63.5 ms  XE 49.5 ms  (1.28×)
 *                                                        forward HXE 33.6 ms  XE 21.1 ms  (1.59×)
 *       bench/hxe.ts (5 rounds × 15, pooled medians), three runs at different machine load:
 *         load ~4:   fwd+bwd HXE 54.1 ms  XE 41.7 ms (1.30×)   forward 33.3 / 20.6 ms (1.61×)
 *         load 5–7:  fwd+bwd HXE 95.4 ms  XE 67.6 ms (1.41×)   forward 45.4 / 27.1 ms (1.67×)
 *         load 4–5:  fwd+bwd HXE 98.4 ms  XE 76.3 ms (1.29×)   forward 51.4 / 32.2 ms (1.59×)
 *         tensor op (loss + reduce, then backward scale), last run: HXE 112 ms, XE 88 ms (1.27×)
 *   Tried and dropped: rank table staged in workgroup memory (one barrier per workgroup): HXE
 *   2.5–3× slower; ranks read 4 at a time as vec4 (loop unrolled by 4): no measurable change;
 *   exp(z − m) cached in dlogits between passes 2 and 3: no measurable change.
 * HXE's extra cost over XE is the rank gather and 3 range tests per element in passes 2 and 3;
 * on a CPU-emulated GPU that is compute, on a real GPU the kernel should be bound by the same
 * logits/dlogits traffic for both (not measured here: no GPU). Against the 1.3× target,
 * forward+backward is borderline (1.28–1.41× across runs) and forward alone misses (~1.6×).
 * Not tried: a row per subgroup with subgroupMax/subgroupAdd (contiguous loads, no barriers);
 * SwiftShader's adapter offers 'subgroups' but the runtime does not request the feature.
 * The backward scale kernel: one element per invocation 37 ms → 16 per invocation as vec4 ≈ 10 ms.
 */
import { KernelQueue, grid } from './queue.js';
import { type GpuOperand, UniformWriter, isContiguous, numel, uniformBlock } from './layout.js';

// ---------------------------------------------------------------------------------------------
// Tables

/**
 * A tree as plain data. `nodes`/`coefficients` are [numClasses, width] row-major (entry j of class
 * c at c·width + j), leaf first and then up the path, padded with (root, 0); `membership` is the
 * 0/1 node→class matrix [numNodes, numClasses] (tokenizers' `leafMembership`). Every entry's node
 * must contain its class, and the nodes must form a tree (any two node class-sets are nested or
 * disjoint), which is what lets the kernel use contiguous rank ranges.
 */
export interface HxeTableData {
  numClasses: number;
  width: number;
  nodes: ArrayLike<number>;
  coefficients: ArrayLike<number>;
  membership: ArrayLike<number>;
}

/**
 * The kernel's form of a table, as u32 words. Entries holding only the class itself (the leaf,
 * and unary chains above it such as start_codon → ATG) all have mass p_c, so they merge into one
 * leaf coefficient computed in the log domain; the other entries ("group" entries, `width` per
 * class, padded with empty ones) become rank ranges. Per class c, at c·(1 + 3·width):
 * [leaf coefficient (f32 bits), then per group entry: lo, length, coefficient (f32 bits)], where
 * class k is under the entry iff rank[k] − lo < length (unsigned). Then `numClasses` words of
 * rank[k], the class's position in depth-first order. Plain XE is width 0: leaf coefficient 1.
 */
export interface HxeKernelTable {
  numClasses: number;
  /** Group entries per class (0 for plain cross-entropy). */
  width: number;
  words: Uint32Array;
}

/** A kernel table uploaded to a storage buffer. */
export interface HxeGpuTable {
  numClasses: number;
  width: number;
  buffer: GPUBuffer;
}

function checkCount(what: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`hxe table: ${what} must be an integer ≥ ${min}, got ${value}`);
}

/** Validates a table against its membership matrix; returns the class set of every node. */
function tableSets(table: HxeTableData): { numNodes: number; sets: number[][] } {
  const { numClasses: C, width: W } = table;
  checkCount('numClasses', C, 1);
  checkCount('width', W, 0);
  if (table.nodes.length !== C * W) throw new RangeError(`hxe table: nodes has ${table.nodes.length} entries, expected numClasses × width = ${C} × ${W} = ${C * W}`);
  if (table.coefficients.length !== C * W) {
    throw new RangeError(`hxe table: coefficients has ${table.coefficients.length} entries, expected numClasses × width = ${C} × ${W} = ${C * W}`);
  }
  const m = table.membership;
  if (m.length === 0 || m.length % C !== 0) {
    throw new RangeError(`hxe table: membership has ${m.length} entries, expected numNodes × numClasses (a multiple of ${C}); build it with leafMembership(tree)`);
  }
  const numNodes = m.length / C;
  const sets: number[][] = Array.from({ length: numNodes }, () => []);
  for (let n = 0; n < numNodes; n++) for (let k = 0; k < C; k++) if (m[n * C + k]) sets[n]!.push(k);
  for (let c = 0; c < C; c++) {
    for (let j = 0; j < W; j++) {
      const node = table.nodes[c * W + j]!;
      const coef = table.coefficients[c * W + j]!;
      if (!Number.isInteger(node) || node < 0 || node >= numNodes) throw new RangeError(`hxe table: class ${c} entry ${j} names node ${node}, outside 0..${numNodes - 1}`);
      if (!Number.isFinite(coef)) throw new RangeError(`hxe table: class ${c} entry ${j} has coefficient ${coef}`);
      if (!m[node * C + c]) throw new RangeError(`hxe table: class ${c} entry ${j} is node ${node}, which does not contain class ${c} (membership row ${node} is 0 there)`);
    }
  }
  return { numNodes, sets };
}

/**
 * Builds the kernel table: orders the classes so that every node's classes are contiguous
 * (sorting classes by their chain of containing nodes, largest first, is a depth-first order for
 * any tree), then stores each path entry as its rank range. Throws when the membership is not a
 * tree or a path is not leaf-first (each entry's set must contain the previous one).
 */
export function hxeKernelTable(table: HxeTableData): HxeKernelTable {
  const { numClasses: C } = table;
  const { numNodes, sets } = tableSets(table);
  const chains: number[][] = Array.from({ length: C }, () => []);
  for (let n = 0; n < numNodes; n++) for (const k of sets[n]!) chains[k]!.push(n);
  for (const chain of chains) chain.sort((a, b) => sets[b]!.length - sets[a]!.length || a - b);
  const order = Array.from({ length: C }, (_, k) => k).sort((x, y) => {
    const a = chains[x]!;
    const b = chains[y]!;
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length || x - y;
  });
  const rank = new Int32Array(C);
  order.forEach((k, r) => (rank[k] = r));
  const lo = new Int32Array(numNodes);
  const hi = new Int32Array(numNodes);
  for (let n = 0; n < numNodes; n++) {
    const set = sets[n]!;
    if (set.length === 0) continue;
    let a = C;
    let b = -1;
    for (const k of set) {
      a = Math.min(a, rank[k]!);
      b = Math.max(b, rank[k]!);
    }
    if (b - a + 1 !== set.length) {
      throw new RangeError(`hxe table: membership is not a tree — node ${n}'s classes overlap another node's without nesting, so they cannot be made contiguous`);
    }
    lo[n] = a;
    hi[n] = b + 1;
  }
  // Split each path into its one-class prefix (merged into the leaf coefficient) and group entries.
  const groups: number[][] = [];
  const leafCoef = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const list: number[] = [];
    for (let j = 0; j < table.width; j++) {
      const node = table.nodes[c * table.width + j]!;
      if (j > 0) {
        const prev = table.nodes[c * table.width + j - 1]!;
        if (lo[node]! > lo[prev]! || hi[node]! < hi[prev]!) {
          throw new RangeError(`hxe table: class ${c}'s entries must run from the leaf up (entry ${j}, node ${node}, does not contain entry ${j - 1}, node ${prev})`);
        }
      }
      if (sets[node]!.length === 1) leafCoef[c]! += table.coefficients[c * table.width + j]!;
      else list.push(j);
    }
    groups.push(list);
  }
  const W = Math.max(0, ...groups.map((g) => g.length));
  const stride = 1 + 3 * W;
  const words = new Uint32Array(rankOffset(C, W) + C);
  const floats = new Float32Array(words.buffer);
  for (let c = 0; c < C; c++) {
    floats[c * stride] = leafCoef[c]!;
    groups[c]!.forEach((j, g) => {
      const node = table.nodes[c * table.width + j]!;
      const at = c * stride + 1 + 3 * g;
      words[at] = lo[node]!;
      words[at + 1] = hi[node]! - lo[node]!;
      floats[at + 2] = table.coefficients[c * table.width + j]!;
    });
  }
  words.set(rank, rankOffset(C, W));
  return { numClasses: C, width: W, words };
}

/** Word offset of the rank table: right after the entries. */
function rankOffset(numClasses: number, width: number): number {
  return (1 + 3 * width) * numClasses;
}

/** Plain cross-entropy as a kernel table: the class itself with coefficient 1, no group entries. */
export function xeKernelTable(numClasses: number): HxeKernelTable {
  checkCount('numClasses', numClasses, 1);
  const C = numClasses;
  const words = new Uint32Array(rankOffset(C, 0) + C);
  const floats = new Float32Array(words.buffer);
  for (let c = 0; c < C; c++) {
    floats[c] = 1;
    words[rankOffset(C, 0) + c] = c;
  }
  return { numClasses: C, width: 0, words };
}

/** Uploads a kernel table once; the buffer is read-only storage and lives as long as its handle. */
export function uploadHxeTable(device: GPUDevice, table: HxeKernelTable): HxeGpuTable {
  const buffer = device.createBuffer({
    label: `hxe table ${table.numClasses}×${table.width}`,
    size: Math.max(16, Math.ceil(table.words.byteLength / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, table.words.buffer, table.words.byteOffset, table.words.byteLength);
  return { numClasses: table.numClasses, width: table.width, buffer };
}

// ---------------------------------------------------------------------------------------------
// GPU kernels

const WG = 64;
/**
 * Group entries handled per pass (up to 4; deeper paths loop over chunks of 4). Larger unrolled
 * variants cost SwiftShader seconds to compile (8 entries: 4–10 s per pipeline).
 */
export const HXE_ENTRIES_PER_PASS = 4;
const WORDS = 12;
/** 2^-126, the smallest normal f32: masses below it (relative to the row max) count as underflowed. */
const TINY = '1.17549435e-38';

/**
 * Lanes per row when the caller does not choose. Measured on SwiftShader, where a workgroup
 * barrier is expensive: one lane per row (no barriers) wins for C = 70 (4×–20× over 4–64 lanes)
 * and even for C = 3000 with 1024 rows; 16 lanes win only for few long rows (C = 3000, 16 rows:
 * 3.3 vs 6.1 ms), where one lane per row leaves the machine idle.
 */
export function hxeDefaultThreadsPerRow(numClasses: number, rows = Infinity): number {
  return numClasses <= 1024 || rows >= 1024 ? 1 : 16;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function hxeSource(T: number, K: number, grad: boolean): string {
  const R = WG / T;
  const J = range(K);
  const B = grad ? 3 : 2;
  // Reduction of values `names` over the T lanes of a row (all lanes get the result). The
  // barriers sit in uniform control flow: every lane of the workgroup reaches each of them.
  const reduce = (names: string[], op: (a: string, b: string) => string): string => {
    if (T === 1) return '';
    const at = (v: number, idx: string) => `red[${v * WG}u + ${idx}]`;
    return `
  ${names.map((x, v) => `${at(v, 'lid')} = ${x};`).join(' ')}
  workgroupBarrier();
  for (var s = ${T / 2}u; s > 0u; s = s >> 1u) {
    if (lane < s) { ${names.map((_, v) => `${at(v, 'lid')} = ${op(at(v, 'lid'), at(v, 'lid + s'))};`).join(' ')} }
    workgroupBarrier();
  }
  ${names.map((x, v) => `${x} = ${at(v, 'lid - lane')};`).join(' ')}
  workgroupBarrier();`;
  };
  const inside = (j: number) => `r - lo${j} < len${j}`;
  // A lane-strided loop over the row; body(k, r) with r the class's rank. (Unrolling it by 4
  // with one vec4 load for four ranks measured no faster on SwiftShader.)
  const loop = (body: (k: string, r: string) => string): string => `for (var k = lane; k < C; k += ${T}u) ${body('k', 'tbl[rankBase + k]')}`;
  return `${uniformBlock(WORDS)}
@group(0) @binding(1) var<storage, read_write> losses: array<f32>;
${grad ? '@group(0) @binding(2) var<storage, read_write> dlogits: array<f32>;' : ''}
@group(0) @binding(${B}) var<storage, read> logits: array<f32>;
@group(0) @binding(${B + 1}) var<storage, read> targets: array<i32>;
@group(0) @binding(${B + 2}) var<storage, read> tbl: array<u32>;
${T > 1 ? `var<workgroup> red: array<f32, ${(K + 1) * WG}>;` : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = word(0u);
  let C = word(1u);
  let W = word(2u);
  let chunks = word(3u);
  let rankBase = word(11u);
  let lane = lid % ${T}u;
  let row = (wid.x + wid.y * nwg.x) * ${R}u + lid / ${T}u;
  let live = row < n;
  var tgt = 0;
  if (live) { tgt = targets[word(5u) + row]; }
  let ignored = tgt == bitcast<i32>(word(8u));
  let work = live && !ignored && tgt >= 0 && u32(tgt) < C;
  let t = u32(tgt);
  let base = word(4u) + row * C;
  let entry0 = t * (1u + 3u * W);

  // Pass 1: row max, the target's logit and its leaf coefficient.
  var m = bitcast<f32>(word(9u));
  var zt = 0.0;
  var cleaf = 0.0;
  if (work) {
    zt = logits[base + t];
    cleaf = bitcast<f32>(tbl[entry0]);
    for (var k = lane; k < C; k += ${T}u) { m = max(m, logits[base + k]); }
  }
  ${reduce(['m'], (a, b) => `max(${a}, ${b})`)}

  var total = 0.0;
  var lt = 0.0;
  var csum = 0.0;
  var carry = 0.0;
  var loss = 0.0;
  for (var q = 0u; q < chunks; q++) {
    // This chunk's group entries (the same in every lane of the row); padding has length 0.
    ${J.map((j) => `var lo${j} = 0u; var len${j} = 0u; var c${j} = 0.0;`).join('\n    ')}
    if (work) {
      ${J.map((j) => `if (q * ${K}u + ${j}u < W) { let at = entry0 + 1u + 3u * (q * ${K}u + ${j}u); lo${j} = tbl[at]; len${j} = tbl[at + 1u]; c${j} = bitcast<f32>(tbl[at + 2u]); }`).join('\n      ')}
    }
    // Pass 2: softmax denominator and the (unnormalised) masses under this chunk's entries.
    var tot = 0.0;
    ${J.map((j) => `var a${j} = 0.0;`).join(' ')}
    if (work) {
      ${loop((k, r) => `{
        let e = exp(logits[base + ${k}] - m);
        tot += e;
        ${K > 0 ? `let r = ${r};` : ''}
        ${J.map((j) => `a${j} += select(0.0, e, ${inside(j)});`).join('\n        ')}
      }`)}
    }
    ${reduce(['tot', ...J.map((j) => `a${j}`)], (a, b) => `${a} + ${b}`)}
    if (q == 0u) {
      total = tot;
      lt = log(tot);
      loss = -cleaf * (zt - m - lt); // one-class entries: log p_t in the log domain, never skipped
      csum = cleaf;
    }
    // Group terms. An underflowed entry is skipped and its coefficient carried up the path.
    ${J.map((j) => `var h${j} = 0.0;
    carry += c${j};
    if (a${j} >= ${TINY}) {
      loss -= carry * (log(a${j}) - lt);
      csum += carry;
      h${j} = carry / a${j};
      carry = 0.0;
    } else {
      len${j} = 0u;
    }`).join('\n    ')}
    ${grad ? `
    // Pass 3: dL/dz_k = p_k·Σc' − c_leaf·[k = t] − e_k·Σ_{entries over k} c'/a. Entries are
    // nested, so the last sum is a suffix sum from the smallest entry holding k.
    ${range(Math.max(K - 1, 0)).reverse().map((j) => `h${j} += h${j + 1};`).join(' ')}
    if (live) {
      let fill = select(bitcast<f32>(word(10u)), 0.0, ignored);
      let pc = csum / total;
      let first = q == 0u;
      let last = q + 1u == chunks;
      let dbase = word(7u) + row * C;
      ${loop((k, r) => `{
        var v = fill;
        if (work) {
          let e = exp(logits[base + k] - m);
          ${K > 0 ? `let r = ${r};
          var h = 0.0;
          ${J.slice().reverse().map((j) => `h = select(h, h${j}, ${inside(j)});`).join('\n          ')}
          v = -e * h;` : 'v = 0.0;'}
          if (!first) { v += dlogits[dbase + k]; }
          if (last) { v += e * pc - select(0.0, cleaf, k == t); }
        }
        dlogits[dbase + k] = v;
      }`)}
    }` : ''}
  }
  if (live && lane == 0u) {
    var out = loss;
    if (!work) { out = select(bitcast<f32>(word(10u)), 0.0, ignored); }
    losses[word(6u) + row] = out;
  }
}`;
}

export interface HxeGpuArgs {
  /** [N, C] f32, contiguous (any offset). */
  logits: GpuOperand;
  /** [N] i32, contiguous: class ids, or `ignoreIndex`. */
  targets: GpuOperand;
  table: HxeGpuTable;
  /** [N] f32 out: per-row loss (0 on ignored rows, NaN where a target is out of range). */
  losses: GpuOperand;
  /** [N, C] f32 out, contiguous: dloss_i/dlogits_i (unscaled); omit for the forward-only variant. */
  dlogits?: GpuOperand | null;
  ignoreIndex?: number;
  /** Lanes per row, a power of two ≤ 64 (default `hxeDefaultThreadsPerRow(C)`). */
  threadsPerRow?: number;
}

/**
 * One dispatch: per-row HXE (or XE, with an `xeKernelTable`) losses and, when `dlogits` is given,
 * their gradient. Ignored rows get loss 0 and a zero gradient row; rows whose target is neither
 * `ignoreIndex` nor in 0..C−1 get NaN (loss and gradient), so a bad target is visible.
 */
export function hxeGpu(queue: KernelQueue, args: HxeGpuArgs): void {
  const { logits, targets, table, losses, dlogits } = args;
  if (logits.shape.length !== 2) throw new RangeError(`hxe: logits must be [N, C], got [${logits.shape.join(', ')}]`);
  const [N, C] = logits.shape as [number, number];
  if (!isContiguous(logits)) throw new RangeError('hxe: logits must be contiguous');
  if (numel(targets.shape) !== N || !isContiguous(targets)) throw new RangeError(`hxe: targets must be [${N}] contiguous, got [${targets.shape.join(', ')}]`);
  if (targets.dtype !== 'i32') throw new TypeError(`hxe: targets must be i32, got ${targets.dtype}`);
  if (numel(losses.shape) !== N) throw new RangeError(`hxe: losses must hold ${N} values, got [${losses.shape.join(', ')}]`);
  if (table.numClasses !== C) throw new RangeError(`hxe: table has ${table.numClasses} classes but logits have ${C}`);
  if (dlogits && (numel(dlogits.shape) !== N * C || !isContiguous(dlogits))) throw new RangeError(`hxe: dlogits must be [${N}, ${C}] contiguous`);
  if (N === 0) return;
  const T = args.threadsPerRow ?? hxeDefaultThreadsPerRow(C, N);
  if (!Number.isInteger(Math.log2(T)) || T < 1 || T > WG) throw new RangeError(`hxe: threadsPerRow must be a power of two in 1..${WG}, got ${T}`);
  const K = Math.min(table.width, HXE_ENTRIES_PER_PASS);
  const chunks = K === 0 ? 1 : Math.ceil(table.width / K);
  const grad = !!dlogits;
  const u = new UniformWriter(WORDS)
    .u32(0, N).u32(1, C).u32(2, table.width).u32(3, chunks)
    .u32(4, logits.offset).u32(5, targets.offset).u32(6, losses.offset).u32(7, dlogits?.offset ?? 0)
    .i32(8, args.ignoreIndex ?? -100).f32(9, -Infinity).f32(10, NaN).u32(11, rankOffset(C, table.width));
  const storage = grad ? [losses.buffer, dlogits!.buffer, logits.buffer, targets.buffer, table.buffer] : [losses.buffer, logits.buffer, targets.buffer, table.buffer];
  queue.dispatch({
    key: `hxe:${T}:${K}:${grad ? 'fb' : 'f'}`,
    source: () => hxeSource(T, K, grad),
    storage,
    uniforms: u.data,
    workgroups: grid(Math.ceil(N / (WG / T)), queue.device.limits.maxComputeWorkgroupsPerDimension),
    label: grad ? 'hxe forward+backward' : 'hxe forward',
  });
}

const REDUCE_WG = 256;

function reduceSource(withScale: boolean): string {
  return `${uniformBlock(8)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${withScale ? '@group(0) @binding(4) var<storage, read_write> scale: array<f32>;' : ''}
@group(0) @binding(2) var<storage, read> losses: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<i32>;
var<workgroup> rs: array<f32, ${REDUCE_WG}>;
var<workgroup> rc: array<u32, ${REDUCE_WG}>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = word(0u);
  let ignore = bitcast<i32>(word(4u));
  var s = 0.0;
  var c = 0u;
  for (var i = lid; i < n; i += ${REDUCE_WG}u) {
    s += losses[word(1u) + i];
    c += select(0u, 1u, targets[word(2u) + i] != ignore);
  }
  rs[lid] = s;
  rc[lid] = c;
  workgroupBarrier();
  for (var k = ${REDUCE_WG / 2}u; k > 0u; k = k >> 1u) {
    if (lid < k) { rs[lid] += rs[lid + k]; rc[lid] += rc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let mean = word(5u) == 1u;
    let inv = select(0.0, 1.0 / f32(rc[0]), rc[0] > 0u);
    out[word(3u)] = select(rs[0], rs[0] * inv, mean);
    ${withScale ? 'scale[word(6u)] = select(1.0, inv, mean);' : ''}
  }
}`;
}

export interface HxeReduceArgs {
  /** [N] per-row losses from `hxeGpu`. */
  losses: GpuOperand;
  targets: GpuOperand;
  /** One f32 out: Σ losses, or Σ losses / (number of non-ignored rows) for `mean` (0 when none). */
  out: GpuOperand;
  /** Optional one f32 out: the factor the backward applies, 1/count for `mean` (0 when none), 1 for `sum`. */
  scale?: GpuOperand | null;
  reduction: 'mean' | 'sum';
  ignoreIndex?: number;
}

/** Sums the per-row losses and counts the non-ignored rows, in one workgroup. */
export function hxeReduceGpu(queue: KernelQueue, args: HxeReduceArgs): void {
  const N = numel(args.losses.shape);
  if (numel(args.targets.shape) !== N) throw new RangeError(`hxe reduce: ${N} losses but ${numel(args.targets.shape)} targets`);
  const withScale = !!args.scale;
  const u = new UniformWriter(8)
    .u32(0, N).u32(1, args.losses.offset).u32(2, args.targets.offset).u32(3, args.out.offset)
    .i32(4, args.ignoreIndex ?? -100).u32(5, args.reduction === 'mean' ? 1 : 0).u32(6, args.scale?.offset ?? 0);
  const storage = [args.out.buffer, args.losses.buffer, args.targets.buffer];
  if (withScale) storage.push(args.scale!.buffer);
  queue.dispatch({
    key: `hxe-reduce:${withScale}`,
    source: () => reduceSource(withScale),
    storage,
    uniforms: u.data,
    workgroups: [1],
    label: 'hxe reduce',
  });
}

/** Elements per invocation of the scale kernel (SwiftShader pays per workgroup). */
const SCALE_PER_THREAD = 16;

/** `vec4`: out and dlogits are read as vec4<f32> (all offsets and the size multiples of 4). */
function scaleSource(perRow: boolean, withScale: boolean, vec4: boolean): string {
  const V = vec4 ? 'vec4<f32>' : 'f32';
  const w = vec4 ? 4 : 1;
  return `${uniformBlock(8)}
@group(0) @binding(1) var<storage, read_write> out: array<${V}>;
@group(0) @binding(2) var<storage, read> d: array<${V}>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
${withScale ? '@group(0) @binding(4) var<storage, read> scale: array<f32>;' : ''}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let total = word(0u) / ${w}u;
  let start = (wid.x + wid.y * nwg.x) * ${WG * SCALE_PER_THREAD}u + lid;
  var f = g[word(3u)];
  ${withScale ? 'f *= scale[word(5u)];' : ''}
  for (var u = 0u; u < ${SCALE_PER_THREAD}u; u++) {
    let i = start + u * ${WG}u;
    if (i >= total) { break; }
    ${perRow ? `out[word(2u) + i] = d[word(4u) + i] * g[word(3u) + i / word(1u)]${withScale ? ' * scale[word(5u)]' : ''};` : `out[word(2u) / ${w}u + i] = d[word(4u) / ${w}u + i] * f;`}
  }
}`;
}

export interface HxeScaleGradArgs {
  /** [N, C] f32 out, contiguous. */
  out: GpuOperand;
  /** [N, C] unscaled per-row gradients from `hxeGpu`. */
  dlogits: GpuOperand;
  /** The incoming gradient: one value (`perRow` false) or [N] contiguous (`perRow` true). */
  gradOutput: GpuOperand;
  perRow: boolean;
  /** Optional one-value factor from `hxeReduceGpu` (1/count for `mean`). */
  scale?: GpuOperand | null;
}

/** Backward of the reduced loss: out[i, k] = dlogits[i, k] · gradOutput[i or 0] · scale. */
export function hxeScaleGradGpu(queue: KernelQueue, args: HxeScaleGradArgs): void {
  const total = numel(args.dlogits.shape);
  if (numel(args.out.shape) !== total) throw new RangeError('hxe backward: out and dlogits sizes differ');
  if (total === 0) return;
  const C = args.dlogits.shape.at(-1) ?? 1;
  const withScale = !!args.scale;
  const vec4 = !args.perRow && total % 4 === 0 && args.out.offset % 4 === 0 && args.dlogits.offset % 4 === 0;
  const u = new UniformWriter(8)
    .u32(0, total).u32(1, C).u32(2, args.out.offset).u32(3, args.gradOutput.offset).u32(4, args.dlogits.offset).u32(5, args.scale?.offset ?? 0);
  const storage = [args.out.buffer, args.dlogits.buffer, args.gradOutput.buffer];
  if (withScale) storage.push(args.scale!.buffer);
  queue.dispatch({
    key: `hxe-scale:${args.perRow}:${withScale}:${vec4}`,
    source: () => scaleSource(args.perRow, withScale, vec4),
    storage,
    uniforms: u.data,
    workgroups: grid(Math.ceil(total / (vec4 ? 4 : 1) / (WG * SCALE_PER_THREAD)), queue.device.limits.maxComputeWorkgroupsPerDimension),
    label: 'hxe backward scale',
  });
}

// ---------------------------------------------------------------------------------------------
// Float64 CPU references (independent of the rank ranges: they use the membership matrix)

export interface HxeCpuOptions {
  ignoreIndex?: number;
  /** 'hxe' (default) uses the table; 'xe' is plain cross-entropy (the table may be null). */
  mode?: 'hxe' | 'xe';
}

/** Same threshold as the kernel: 2^-126 relative to the row max. */
const UNDERFLOW = 2 ** -126;

interface RowResult {
  loss: number;
  /** dloss/dz for the row, when asked for. */
  grad: Float64Array | null;
}

function checkTarget(target: number, row: number, C: number, ignoreIndex: number): void {
  if (!Number.isInteger(target) || target < 0 || target >= C) {
    throw new RangeError(`hxe: target ${target} in row ${row} is not a class id in 0..${C - 1} (nor the ignore index ${ignoreIndex})`);
  }
}

function xeRow(z: ArrayLike<number>, target: number, wantGrad: boolean): RowResult {
  const C = z.length;
  let m = -Infinity;
  for (let k = 0; k < C; k++) m = Math.max(m, z[k]!);
  let U = 0;
  for (let k = 0; k < C; k++) U += Math.exp(z[k]! - m);
  const loss = Math.log(U) - (z[target]! - m);
  let grad: Float64Array | null = null;
  if (wantGrad) {
    grad = new Float64Array(C);
    for (let k = 0; k < C; k++) grad[k] = Math.exp(z[k]! - m) / U - (k === target ? 1 : 0);
  }
  return { loss, grad };
}

function hxeRow(z: ArrayLike<number>, target: number, table: HxeTableData, sizes: Int32Array, wantGrad: boolean): RowResult {
  const C = z.length;
  const W = table.width;
  const M = table.membership;
  let m = -Infinity;
  for (let k = 0; k < C; k++) m = Math.max(m, z[k]!);
  const e = new Float64Array(C);
  let U = 0;
  for (let k = 0; k < C; k++) U += e[k] = Math.exp(z[k]! - m);
  const logU = Math.log(U);
  let loss = 0;
  let carry = 0;
  let csum = 0;
  const taken: { node: number; coef: number; mass: number; single: boolean }[] = [];
  for (let j = 0; j < W; j++) {
    const node = table.nodes[target * W + j]!;
    carry += table.coefficients[target * W + j]!;
    const single = sizes[node] === 1;
    let mass = 0;
    for (let k = 0; k < C; k++) if (M[node * C + k]) mass += e[k]!;
    if (!single && !(mass >= UNDERFLOW)) continue;
    const logS = single ? z[target]! - m - logU : Math.log(mass) - logU;
    loss -= carry * logS;
    csum += carry;
    taken.push({ node, coef: carry, mass, single });
    carry = 0;
  }
  let grad: Float64Array | null = null;
  if (wantGrad) {
    grad = new Float64Array(C);
    for (let k = 0; k < C; k++) {
      let g = (e[k]! / U) * csum;
      for (const t of taken) if (M[t.node * C + k]) g -= t.single ? t.coef : (t.coef * e[k]!) / t.mass;
      grad[k] = g;
    }
  }
  return { loss, grad };
}

function runCpu(
  logits: ArrayLike<number>,
  numClasses: number,
  targets: ArrayLike<number>,
  table: HxeTableData | null,
  options: HxeCpuOptions,
  visit: (row: number, result: RowResult | null) => void,
  wantGrad: boolean,
): void {
  const C = numClasses;
  const N = targets.length;
  const ignoreIndex = options.ignoreIndex ?? -100;
  const mode = options.mode ?? 'hxe';
  if (logits.length !== N * C) throw new RangeError(`hxe: logits hold ${logits.length} values, expected ${N} rows × ${C} classes`);
  let sizes = new Int32Array(0);
  if (mode === 'hxe') {
    if (!table) throw new TypeError("hxe: mode 'hxe' needs a table");
    if (table.numClasses !== C) throw new RangeError(`hxe: table has ${table.numClasses} classes but logits have ${C}`);
    const { sets } = tableSets(table);
    sizes = Int32Array.from(sets, (s) => s.length);
  }
  const row = new Float64Array(C);
  for (let i = 0; i < N; i++) {
    const t = targets[i]!;
    if (t === ignoreIndex) {
      visit(i, null);
      continue;
    }
    checkTarget(t, i, C, ignoreIndex);
    for (let k = 0; k < C; k++) row[k] = logits[i * C + k]!;
    visit(i, mode === 'xe' ? xeRow(row, t, wantGrad) : hxeRow(row, t, table!, sizes, wantGrad));
  }
}

/** Float64 per-row losses (0 for ignored rows); throws on a target that is neither a class nor ignored. */
export function hxeForwardCpu(logits: ArrayLike<number>, numClasses: number, targets: ArrayLike<number>, table: HxeTableData | null, options: HxeCpuOptions = {}): Float64Array {
  const losses = new Float64Array(targets.length);
  runCpu(logits, numClasses, targets, table, options, (i, r) => (losses[i] = r ? r.loss : 0), false);
  return losses;
}

/**
 * Float64 gradient [N, C] of Σ_i gradLosses_i · loss_i with respect to the logits (gradLosses
 * defaults to 1 for every row; a number applies to all rows). Ignored rows get zeros.
 */
export function hxeBackwardCpu(
  logits: ArrayLike<number>,
  numClasses: number,
  targets: ArrayLike<number>,
  table: HxeTableData | null,
  options: HxeCpuOptions & { gradLosses?: ArrayLike<number> | number } = {},
): Float64Array {
  const C = numClasses;
  const out = new Float64Array(targets.length * C);
  const weight = (i: number) => (options.gradLosses === undefined ? 1 : typeof options.gradLosses === 'number' ? options.gradLosses : options.gradLosses[i]!);
  runCpu(logits, C, targets, table, options, (i, r) => {
    if (!r) return;
    const w = weight(i);
    for (let k = 0; k < C; k++) out[i * C + k] = r.grad![k]! * w;
  }, true);
  return out;
}
