/**
 * Hierarchical cross-entropy (HXE, HELM / Bertinetto et al.) and plain cross-entropy (XE) through
 * one pair of kernels: forward (per-row loss, plus a few statistics per row when a gradient will
 * be wanted) and backward (the gradient of the scaled losses, recomputed from logits + stats).
 *
 * The tree is data. Class c has `width` path entries (node, coefficient), leaf first, such that
 * `L = −Σ_j coef_j · log S_j`, S_j = softmax mass under node j (tokenizers' `hxePathTable`, which
 * folds α and Z(α) into the coefficients). `hxeKernelTable` orders the classes depth-first from the
 * node→class membership matrix, so every node is a contiguous range of ranks; the ends of all
 * group nodes cut the ranks into segments (23 for the codon tree), and each entry of a class is a
 * run of segments. Entries holding only the class itself (the leaf, and unary chains like
 * start_codon → ATG) are merged into one leaf coefficient evaluated in the log domain. Plain XE is
 * the same kernels with no group entries, one segment and leaf coefficient 1.
 *
 * Per row (`threadsPerRow` lanes per row, 64 lanes per workgroup; one lane per row by default):
 *   forward   m = max z;  walk the classes in rank order, segment by segment: e = exp(z − m),
 *             U = Σ e, and each segment's Σe added to the entries holding it (a range test per
 *             segment and entry, not per class);  L = −c_leaf (z_t − m − log U) − Σ_j c'_j log(a_j/U);
 *             stats = (m, Σc/U, h_j = c'_j/a_j)
 *   backward  dL/dz_k = f·(e_k·(Σc/U − Σ_{j: k∈A_j} h_j) − c_leaf [k = t])   (f = incoming gradient
 *             × scale; = p_k (g_k − Σ_ℓ p_ℓ g_ℓ) of models.md A3), the bracket constant per segment.
 * For tables of at most HXE_UNROLL_MAX_CLASSES classes (one lane per row), the walk is written out
 * in the shader with literal class ids: no order lookups, no loop.
 *
 * Underflow: a group entry whose mass a_j (relative to the row max) is below 2^-100 is left to a
 * fix-up pass: the forward marks the row (loss +inf), and `hxeFixup` recomputes such rows alone,
 * every entry in the log domain from its own max (log a_j = m_j − m + log Σ e^(z − m_j)), storing
 * log a_j for those entries; the backward's fix-up adds their terms c_j·e^(z − m − log a_j). So the
 * loss and gradient stay exact for any finite logits (HELM's "skip edges whose numerator is 0"
 * never triggers in f32 before it would in float64). Kept out of the main kernels because
 * SwiftShader pays for code in branches no lane takes (+15% forward, +70% backward when inlined).
 * The leaf term is always in the log domain. A row holding NaN or +inf, or only −inf, gets a NaN
 * loss and a NaN gradient row, as PyTorch's cross-entropy does.
 *
 * The measured versions behind this design (per-row lanes, unrolling, segments) are in NOTES.md
 * next to this file.
 *
 * On a GPU the kernels should be bound by logits/dlogits traffic for HXE and XE alike (not measured
 * here: no GPU).
 */
import {
  type GpuOperand,
  IEEE_WGSL,
  type KernelQueue,
  UniformWriter,
  grid,
  isContiguous,
  numel,
  uniformBlock,
} from '@rnagrad/kernels-wgsl';

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
 * class, padded with empty ones) are ranges of *segments*. The classes are put in a depth-first
 * order, where every node is a contiguous rank range; the group nodes' range ends cut the ranks
 * into `numSegments` segments, and each group entry is a contiguous run of them. Layout: per class
 * c at c·(1 + 3·width): [leaf coefficient (f32 bits), then per group entry: first segment, number
 * of segments, coefficient (f32 bits)]; then numSegments + 1 segment start ranks (the last is
 * numClasses); then numClasses words order[r], the class at rank r. Plain XE is width 0 with one
 * segment: leaf coefficient 1.
 */
export interface HxeKernelTable {
  numClasses: number;
  /** Group entries per class (0 for plain cross-entropy). */
  width: number;
  numSegments: number;
  /**
   * The depth-first order is the class order itself (plain XE, or a tree laid out that way): the kernels skip
   * the order lookup.
   */
  identityOrder: boolean;
  words: Uint32Array;
}

/** A kernel table uploaded to a storage buffer. */
export interface HxeGpuTable {
  numClasses: number;
  width: number;
  numSegments: number;
  identityOrder: boolean;
  /** Segment starts (numSegments + 1) and the rank → class order, as in the buffer. */
  starts: Uint32Array;
  order: Uint32Array;
  buffer: GPUBuffer;
  /**
   * Whether the fix-up passes have work (forward at word 0, backward at word 1): 0 unless a row of the last call
   * needed one, so that the common case costs no pass over the rows.
   */
  fixupFlags: GPUBuffer;
}

function checkCount(what: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min)
    throw new RangeError(`hxe table: ${what} must be an integer ≥ ${min}, got ${value}`);
}

/** Validates a table against its membership matrix; returns the class set of every node. */
function tableSets(table: HxeTableData): { numNodes: number; sets: number[][] } {
  const { numClasses: C, width: W } = table;
  checkCount('numClasses', C, 1);
  checkCount('width', W, 0);
  if (table.nodes.length !== C * W)
    throw new RangeError(
      `hxe table: nodes has ${table.nodes.length} entries, expected numClasses × width = ${C} × ${W} = ${C * W}`,
    );
  if (table.coefficients.length !== C * W) {
    throw new RangeError(
      `hxe table: coefficients has ${table.coefficients.length} entries, expected numClasses × width = ${C} ` +
        `× ${W} = ${C * W}`,
    );
  }
  const m = table.membership;
  if (m.length === 0 || m.length % C !== 0) {
    throw new RangeError(
      `hxe table: membership has ${m.length} entries, expected numNodes × numClasses (a multiple of ${C}); ` +
        `build it with leafMembership(tree)`,
    );
  }
  const numNodes = m.length / C;
  const sets: number[][] = Array.from({ length: numNodes }, () => []);
  for (let n = 0; n < numNodes; n++) for (let k = 0; k < C; k++) if (m[n * C + k]) sets[n]!.push(k);
  for (let c = 0; c < C; c++) {
    for (let j = 0; j < W; j++) {
      const node = table.nodes[c * W + j]!;
      const coef = table.coefficients[c * W + j]!;
      if (!Number.isInteger(node) || node < 0 || node >= numNodes)
        throw new RangeError(`hxe table: class ${c} entry ${j} names node ${node}, outside 0..${numNodes - 1}`);
      if (!Number.isFinite(coef)) throw new RangeError(`hxe table: class ${c} entry ${j} has coefficient ${coef}`);
      if (!m[node * C + c])
        throw new RangeError(
          `hxe table: class ${c} entry ${j} is node ${node}, which does not contain class ${c} (membership ` +
            `row ${node} is 0 there)`,
        );
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
      throw new RangeError(
        `hxe table: membership is not a tree — node ${n}'s classes overlap another node's without nesting, ` +
          `so they cannot be made contiguous`,
      );
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
          throw new RangeError(
            `hxe table: class ${c}'s entries must run from the leaf up (entry ${j}, node ${node}, does not ` +
              `contain entry ${j - 1}, node ${prev})`,
          );
        }
      }
      if (sets[node]!.length === 1) leafCoef[c]! += table.coefficients[c * table.width + j]!;
      else list.push(j);
    }
    groups.push(list);
  }
  const W = Math.max(0, ...groups.map((g) => g.length));
  // Segment starts: every group node's range ends, plus 0 and C.
  const cuts = new Set([0, C]);
  groups.forEach((list, c) =>
    list.forEach((j) => {
      const node = table.nodes[c * table.width + j]!;
      cuts.add(lo[node]!).add(hi[node]!);
    }),
  );
  const starts = [...cuts].sort((x, y) => x - y);
  const segmentOf = new Map(starts.map((r, i) => [r, i]));
  const S = starts.length - 1;
  const stride = entryStride(W);
  const words = new Uint32Array(orderOffset(C, W, S) + C);
  const floats = new Float32Array(words.buffer);
  for (let c = 0; c < C; c++) {
    floats[c * stride] = leafCoef[c]!;
    groups[c]!.forEach((j, g) => {
      const node = table.nodes[c * table.width + j]!;
      const at = c * stride + 1 + 3 * g;
      words[at] = segmentOf.get(lo[node]!)!;
      words[at + 1] = segmentOf.get(hi[node]!)! - segmentOf.get(lo[node]!)!;
      floats[at + 2] = table.coefficients[c * table.width + j]!;
    });
  }
  words.set(starts, segmentOffset(C, W));
  words.set(order, orderOffset(C, W, S));
  return { numClasses: C, width: W, numSegments: S, identityOrder: order.every((k, r) => k === r), words };
}

/** Words per class in a kernel table: leaf coefficient, then (first segment, segments, coefficient) per entry. */
function entryStride(width: number): number {
  return 1 + 3 * width;
}

/** Word offset of the segment starts: right after the entries. */
function segmentOffset(numClasses: number, width: number): number {
  return entryStride(width) * numClasses;
}

/** Word offset of the rank → class order: after the numSegments + 1 segment starts. */
function orderOffset(numClasses: number, width: number, numSegments: number): number {
  return segmentOffset(numClasses, width) + numSegments + 1;
}

/** Plain cross-entropy as a kernel table: the class itself with coefficient 1, no group entries, one segment. */
export function xeKernelTable(numClasses: number): HxeKernelTable {
  checkCount('numClasses', numClasses, 1);
  const C = numClasses;
  const words = new Uint32Array(orderOffset(C, 0, 1) + C);
  const floats = new Float32Array(words.buffer);
  floats.fill(1, 0, C);
  words.set([0, C], segmentOffset(C, 0));
  for (let c = 0; c < C; c++) words[orderOffset(C, 0, 1) + c] = c;
  return { numClasses: C, width: 0, numSegments: 1, identityOrder: true, words };
}

/** Uploads a kernel table once; the buffer is read-only storage and lives as long as its handle. */
export function uploadHxeTable(device: GPUDevice, table: HxeKernelTable): HxeGpuTable {
  const buffer = device.createBuffer({
    label: `hxe table ${table.numClasses}×${table.width}`,
    size: Math.max(16, Math.ceil(table.words.byteLength / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, table.words.buffer, table.words.byteOffset, table.words.byteLength);
  // Zero-initialised: no fix-up pending.
  const fixupFlags = device.createBuffer({ label: 'hxe fix-up flags', size: 16, usage: GPUBufferUsage.STORAGE });
  const C = table.numClasses;
  const at = segmentOffset(C, table.width);
  const starts = table.words.slice(at, at + table.numSegments + 1);
  const order = table.words.slice(
    orderOffset(C, table.width, table.numSegments),
    orderOffset(C, table.width, table.numSegments) + C,
  );
  return {
    numClasses: C,
    width: table.width,
    numSegments: table.numSegments,
    identityOrder: table.identityOrder,
    starts,
    order,
    buffer,
    fixupFlags,
  };
}

// ---------------------------------------------------------------------------------------------
// GPU kernels

const WG = 64;
const WORDS = 16;
/**
 * Group masses (relative to the row max) below 2^-100 are recomputed in the log domain: above it,
 * the class terms lost to f32 underflow (< 2^-126 each) change the mass by < C·2^-26 relatively.
 */
const LOG_DOMAIN_BELOW = '7.888609052210118e-31';

/**
 * Lanes per row when the caller does not choose. Measured on SwiftShader, where a workgroup
 * barrier is expensive: one lane per row (no barriers) wins for C = 70 (4×–20× over 4–64 lanes)
 * and even for C = 3000 with 1024 rows; 16 lanes win only for few long rows (C = 3000, 16 rows:
 * 3.3 vs 6.1 ms), where one lane per row leaves the machine idle.
 */
export function hxeDefaultThreadsPerRow(numClasses: number, rows = Infinity): number {
  return numClasses <= 1024 || rows >= 1024 ? 1 : 16;
}

/**
 * f32 words of per-row statistics the forward saves for the backward: m, Σc/U, the log-domain
 * entries as bits (u32), then h_j per entry: c_j/a_j, or log a_j for a log-domain entry.
 */
export function hxeStatsWords(table: { width: number }): number {
  return table.width + 3;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * WGSL shared by both kernels: row bookkeeping, the target's entries as segment ranges
 * (slo_j, slen_j) with coefficients c_j, and `segments(walk)`: a walk over the segments in rank
 * order (the same for every row, so lanes stay in step), `sg` the segment, and within it over the
 * classes `k` at its ranks, lane-strided.
 */
/**
 * A walk over the segments: `vars` declared once, `start` run as each segment begins, `body` per class `k`,
 * `end` after each segment.
 */
interface SegmentWalk {
  vars: string;
  start: string;
  body: string;
  end: string;
}

/**
 * How a kernel walks the classes: in class order when the depth-first order is the identity; unrolled with
 * literal class ids for small tables.
 */
interface Walk {
  identity: boolean;
  /** Segment starts and rank → class order, baked into the shader (one lane per row, small C). */
  unrolled: { starts: ArrayLike<number>; order: ArrayLike<number> } | null;
}

function rowPrelude(T: number, W: number, walk: Walk): { head: string; segments: (walk: SegmentWalk) => string } {
  const R = WG / T;
  const head = `let n = word(0u);
  let C = word(1u);
  let lane = lid % ${T}u;
  let row = (wid.x + wid.y * nwg.x) * ${R}u + lid / ${T}u;
  let live = row < n;
  var tgt = 0;
  if (live) { tgt = targets[word(5u) + row]; }
  let ignored = tgt == bitcast<i32>(word(8u));
  let work = live && !ignored && tgt >= 0 && u32(tgt) < C;
  let t = u32(tgt);
  let base = word(4u) + row * C;
  let entry = t * ${entryStride(W)}u;
  let nseg = word(2u);
  let seg0 = word(3u);
  let ord = word(11u);
  var cleaf = 0.0;
  ${range(W)
    .map((j) => `var slo${j} = 0u; var slen${j} = 0u; var c${j} = 0.0;`)
    .join('\n  ')}
  if (work) {
    cleaf = bitcast<f32>(tbl[entry]);
    ${range(W)
      .map(
        (j) =>
          `slo${j} = tbl[entry + ${1 + 3 * j}u]; slen${j} = tbl[entry + ${2 + 3 * j}u]; c${j} = ` +
          `bitcast<f32>(tbl[entry + ${3 + 3 * j}u]);`,
      )
      .join('\n    ')}
  }`;
  const order = walk.identity ? 'r' : 'tbl[ord + r]';
  const unrolled = walk.unrolled;
  // One lane per row: one flat loop over the ranks; the segment changes at a rank every lane
  // shares, so that branch is uniform (nested loops over short segments cost more here; so did
  // unrolling by 4 with the order read as vec4). Several lanes per row: a loop over segments,
  // lane-strided inside each.
  const segments = ({ vars, start, body, end }: SegmentWalk) =>
    unrolled
      ? `{ ${vars}
    ${range(unrolled.starts.length - 1)
      .map(
        (sg) => `{ let sg = ${sg}u; ${start}
      ${range(unrolled.starts[sg + 1]! - unrolled.starts[sg]!)
        .map((i) => `{ let k = ${unrolled.order[unrolled.starts[sg]! + i]}u; ${body} }`)
        .join(' ')}
      ${end} }`,
      )
      .join('\n    ')} }`
      : T === 1
        ? `{ var sg = 0u; var next = tbl[seg0 + 1u];
    ${vars}
    ${start}
    for (var r = 0u; r < C; r++) {
      let k = ${order}; ${body}
      if (r + 1u == next) {
        ${end}
        sg++;
        next = tbl[seg0 + sg + 1u];
        ${start}
      }
    } }`
        : `{ ${vars}
    for (var sg = 0u; sg < nseg; sg++) {
      let r1 = tbl[seg0 + sg + 1u];
      ${start}
      for (var r = tbl[seg0 + sg] + lane; r < r1; r += ${T}u) { let k = ${order}; ${body} }
      ${end}
    } }`;
  return { head, segments };
}

/** WGSL: segment `sg` lies inside entry j (unsigned range test on segment indices). */
const inside = (j: number) => `sg - slo${j} < slen${j}`;

const MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {`;

/** WGSL: the fix-up flags at `binding`, for the main kernels to raise and lower (atomically). */
const fixupFlagsBinding = (binding: number) =>
  `@group(0) @binding(${binding}) var<storage, read_write> fixupFlags: array<atomic<u32>>;`;

/** The forward kernels' bindings (stats only when the backward will want them; the fix-up flag for the main one). */
function forwardBindings(withStats: boolean, withFixupFlags: boolean): string {
  const B = withStats ? 3 : 2;
  return `@group(0) @binding(1) var<storage, read_write> losses: array<f32>;
${withStats ? '@group(0) @binding(2) var<storage, read_write> stats: array<f32>;' : ''}
@group(0) @binding(${B}) var<storage, read> logits: array<f32>;
@group(0) @binding(${B + 1}) var<storage, read> targets: array<i32>;
@group(0) @binding(${B + 2}) var<storage, read> tbl: array<u32>;
${withFixupFlags ? fixupFlagsBinding(B + 3) : ''}`;
}

/** The backward kernels' bindings (scale only for a mean; the fix-up flag for the main one). */
function backwardBindings(withScale: boolean, withFixupFlags: boolean): string {
  return `@group(0) @binding(1) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<i32>;
@group(0) @binding(4) var<storage, read> tbl: array<u32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> gradOut: array<f32>;
${withScale ? '@group(0) @binding(7) var<storage, read> scale: array<f32>;' : ''}
${withFixupFlags ? fixupFlagsBinding(withScale ? 8 : 7) : ''}`;
}

/**
 * Forward: per-row loss and, with `stats`, what the backward needs: the row max m, pc = Σc/U and
 * h_j = c_j/a_j per entry (0 where skipped), so that
 * dL/dz_k = e^(z_k − m)·(pc − Σ_{j: k ∈ A_j} h_j) − c_leaf·[k = t].
 * Pass 2 walks the classes in rank order one segment at a time: each segment's Σe is added to U
 * and, by one range test per entry, to the entries that hold it — per segment, not per class.
 */
function forwardSource(T: number, W: number, walk: Walk, withStats: boolean): string {
  const { head, segments } = rowPrelude(T, W, walk);
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
  const masses = range(W).map((j) => `a${j}`);
  return `${uniformBlock(WORDS)}
${forwardBindings(withStats, W > 0)}
${T > 1 ? `var<workgroup> red: array<f32, ${(W + 1) * WG}>;` : ''}
${IEEE_WGSL}

${MAIN}
  ${head}
  ${W > 0 ? lowerFixup(1) : ''}
  // Pass 1: row max and the target's logit. NaN counts as +inf (WGSL's max may drop NaN): either
  // makes the row's loss NaN, as does a row of −inf only. A NaN or ±inf logit makes the plain sum
  // zs non-finite (so may finite logits near f32's limit): only such rows are searched for NaN.
  var m = bitcast<f32>(word(9u));
  var zt = 0.0;
  var zs = 0.0;
  if (work) {
    zt = logits[base + t];
    for (var k = lane; k < C; k += ${T}u) { let z = logits[base + k]; m = max(m, z); zs += z; }
  }
  for (var once = select(0u, 1u, (bitcast<u32>(zs) & 0x7f800000u) == 0x7f800000u); once > 0u; once = 0u) {
    for (var k = lane; k < C; k += ${T}u) { m = select(m, inf_f32(), is_nan(logits[base + k])); }
  }
  ${reduce(['m'], (a, b) => `max(${a}, ${b})`)}
  let undefinedRow = m == inf_f32() || m == -inf_f32();
  // Pass 2: U = Σ e and the entries' masses a_j, e = exp(z − m), segment by segment.
  var U = 0.0;
  ${masses.map((a) => `var ${a} = 0.0;`).join(' ')}
  if (work) {
    ${segments({
      vars: 'var acc = 0.0;',
      start: 'acc = 0.0;',
      body: 'acc += exp(logits[base + k] - m);',
      end: `U += acc; ${range(W)
        .map((j) => `a${j} += select(0.0, acc, ${inside(j)});`)
        .join(' ')}`,
    })}
  }
  ${reduce(['U', ...masses], (a, b) => `${a} + ${b}`)}
  let lt = log(U);
  var loss = -cleaf * (zt - m - lt); // one-class entries: log p_t in the log domain
  var csum = cleaf;
  // Group terms. A mass that underflows leaves the row to the fix-up pass (marked by loss +inf).
  var fixup = false;
  ${range(W)
    .map(
      (j) => `var h${j} = 0.0;
  if (a${j} >= ${LOG_DOMAIN_BELOW}) {
    loss -= c${j} * (log(a${j}) - lt);
    csum += c${j};
    h${j} = c${j} / a${j};
  } else if (c${j} != 0.0) {
    fixup = true;
  }`,
    )
    .join('\n  ')}
  if (live && lane == 0u) {
    var out = select(select(loss, inf_f32(), fixup), nan_f32(), undefinedRow);
    if (!work) { out = select(bitcast<f32>(word(10u)), 0.0, ignored); }
    losses[word(6u) + row] = out;
    ${
      withStats
        ? `if (work) {
      let sa = word(12u) + row * ${W + 3}u;
      stats[sa] = select(m, nan_f32(), undefinedRow);
      stats[sa + 1u] = csum / U;
      stats[sa + 2u] = 0.0; // no log-domain entries (the fix-up sets them)
      ${range(W)
        .map((j) => `stats[sa + ${j + 3}u] = h${j};`)
        .join(' ')}
    }`
        : ''
    }
  }
  ${W > 0 ? `if (live && lane == 0u && work && fixup && !undefinedRow) { ${raiseFixup(0)} }` : ''}
}`;
}

/**
 * Backward: dlogits_k = f·(e^(z_k − m)·κ − c_leaf·[k = t]), f = gradOutput (per row or one value)
 * × scale, κ = pc − Σ_{entries over k} h_j constant over a segment: one pass over the classes in
 * rank order, the entry tests once per segment.
 */
function backwardSource(T: number, W: number, walk: Walk, perRow: boolean, withScale: boolean): string {
  const { head, segments } = rowPrelude(T, W, walk);
  return `${uniformBlock(WORDS)}
${backwardBindings(withScale, W > 0)}
${IEEE_WGSL}

${MAIN}
  ${head}
  ${W > 0 ? lowerFixup(0) : ''}
  if (!live) { return; }
  let dbase = word(7u) + row * C;
  let sa = word(12u) + row * ${W + 3}u;
  var m = 0.0;
  if (work) { m = stats[sa]; }
  // Ignored rows get 0, bad targets NaN, and rows whose loss is NaN (NaN or +inf logits) NaN.
  let nanRow = is_nan(m);
  if (!work || nanRow) {
    let fill = select(select(bitcast<f32>(word(10u)), 0.0, ignored), nan_f32(), nanRow);
    for (var k = lane; k < C; k += ${T}u) { dlogits[dbase + k] = fill; }
    return;
  }
  let f = gradOut[word(13u)${perRow ? ' + row' : ''}]${withScale ? ' * scale[word(14u)]' : ''};
  let pc = stats[sa + 1u];
  let logDomain = bitcast<u32>(stats[sa + 2u]);
  // Log-domain entries (word sa + 3 + j holds log a_j) count 0 here; the fix-up pass adds them.
  ${range(W)
    .map((j) => `let h${j} = select(stats[sa + ${j + 3}u], 0.0, (logDomain & ${1 << j}u) != 0u);`)
    .join(' ')}
  let fc = f * cleaf;
  ${segments({
    vars: 'var kap = 0.0;',
    start: `kap = f * (pc${range(W)
      .map((j) => ` - select(0.0, h${j}, ${inside(j)})`)
      .join('')});`,
    body: 'dlogits[dbase + k] = kap * exp(logits[base + k] - m) - select(0.0, fc, k == t);',
    end: '',
  })}
  ${W > 0 ? `if (logDomain != 0u) { ${raiseFixup(1)} }` : ''}
}`;
}

/**
 * WGSL: asks for the fix-up pass whose flag is word `at` of `fixupFlags` (every row that asks stores the same 1).
 * A flag is lowered by the main kernel of the other direction (forward lowers the backward's, backward the
 * forward's), never between a raise and the pass that reads it; a flag left raised (forward calls with no backward)
 * only costs a pass over the rows that finds nothing to fix.
 */
const raiseFixup = (at: number) => `atomicStore(&fixupFlags[${at}u], 1u);`;
const lowerFixup = (at: number) => `if (all(wid == vec3(0u)) && lid == 0u) { atomicStore(&fixupFlags[${at}u], 0u); }`;

/** WGSL: the class at rank r (the depth-first order, or r itself for an identity order). */
const classAt = (identity: boolean, r: string) => (identity ? r : `tbl[word(11u) + ${r}]`);

/**
 * Threads of a fix-up pass. The pass returns at once unless a main kernel raised its flag; then each thread strides
 * over the rows and skips the unmarked ones: such rows are rare, and a pass of a few workgroups costs SwiftShader
 * far less than a thread per row.
 */
const FIXUP_THREADS = 256;

/** WGSL: the fix-up kernels' loop over rows; `marked` declares `marked` from `row`: whether `body` runs. */
function fixupRows(W: number, at: number, marked: string, body: string): string {
  return `if (fixupFlags[${at}u] == 0u) { return; } // no row asked since the flag was lowered
  let C = word(1u);
  let seg0 = word(3u);
  for (var row = (wid.x + wid.y * nwg.x) * ${WG}u + lid; row < word(0u); row += ${FIXUP_THREADS}u) {
    ${marked}
    let tgt = targets[word(5u) + row];
    let valid = tgt != bitcast<i32>(word(8u)) && tgt >= 0 && u32(tgt) < C;
    // A loop that runs once for a marked row: SwiftShader skips a loop no lane enters, while it
    // runs the body of an untaken if under a mask.
    for (var once = select(0u, 1u, marked && valid); once > 0u; once = 0u) {
      let t = u32(tgt);
      let base = word(4u) + row * C;
      let entry = t * ${entryStride(W)}u;
      ${body}
    }
  }`;
}

/**
 * WGSL: recomputes row `row` (target `t`, logits at `base`, table entry at `entry`) with every
 * group entry in the log domain from its own max, and rewrites `losses[lo]` (and the stats).
 */
function forwardFixBody(W: number, identity: boolean, withStats: boolean): string {
  const order = (r: string) => classAt(identity, r);
  return `var m = -inf_f32();
    for (var k = 0u; k < C; k++) { m = max(m, logits[base + k]); }
    var U = 0.0;
    for (var k = 0u; k < C; k++) { U += exp(logits[base + k] - m); }
    let lt = log(U);
    let cleaf = bitcast<f32>(tbl[entry]);
    var loss = -cleaf * (logits[base + t] - m - lt);
    var csum = cleaf;
    var logDomain = 0u;
    let sa = word(12u) + row * ${W + 3}u;
    for (var j = 0u; j < ${W}u; j++) {
      let c = bitcast<f32>(tbl[entry + 3u + 3u * j]);
      if (c == 0.0) { continue; }
      let r0 = tbl[seg0 + tbl[entry + 1u + 3u * j]];
      let r1 = tbl[seg0 + tbl[entry + 1u + 3u * j] + tbl[entry + 2u + 3u * j]];
      var mj = -inf_f32();
      for (var r = r0; r < r1; r++) { mj = max(mj, logits[base + ${order('r')}]); }
      var sj = 0.0;
      for (var r = r0; r < r1; r++) { sj += exp(logits[base + ${order('r')}] - mj); }
      // An entry of −inf logits only has mass 0.
      let la = select(mj - m + log(sj), -inf_f32(), mj == -inf_f32());
      loss -= c * (la - lt);
      csum += c;
      let a = exp(la);
      let underflow = a < ${LOG_DOMAIN_BELOW};
      if (underflow) { logDomain |= 1u << j; }
      ${withStats ? 'stats[sa + 3u + j] = select(c / a, la, underflow);' : ''}
    }
    losses[lo] = loss;
    ${withStats ? 'stats[sa] = m; stats[sa + 1u] = csum / U; stats[sa + 2u] = bitcast<f32>(logDomain);' : ''}`;
}

/**
 * Forward fix-up: rows the forward marked (loss +inf) are recomputed with
 * every group entry in the log domain from its own max; the loss, and the stats if asked, are
 * rewritten (log a_j, flagged in word 2, for the entries whose mass is below the threshold).
 */
function fixupSource(W: number, identity: boolean, withStats: boolean): string {
  const body = forwardFixBody(W, identity, withStats);
  return `${uniformBlock(WORDS)}
${forwardBindings(withStats, false)}
@group(0) @binding(${withStats ? 6 : 5}) var<storage, read> fixupFlags: array<u32>;
${IEEE_WGSL}
${MAIN}
  ${fixupRows(
    W,
    0,
    `let lo = word(6u) + row;
    let marked = bitcast<u32>(losses[lo]) == 0x7f800000u; // bits: NaN must not pass`,
    body,
  )}
}`;
}

/** WGSL: adds −f·c_j·e^(z − m − log a_j) to dlogits over each log-domain entry j of the row (`logDomain` bits). */
function backwardFixBody(W: number, identity: boolean): string {
  return `for (var j = 0u; j < ${W}u; j++) {
      if ((logDomain & (1u << j)) == 0u) { continue; }
      let fj = f * bitcast<f32>(tbl[entry + 3u + 3u * j]);
      let la = stats[sa + 3u + j];
      let r0 = tbl[seg0 + tbl[entry + 1u + 3u * j]];
      let r1 = tbl[seg0 + tbl[entry + 1u + 3u * j] + tbl[entry + 2u + 3u * j]];
      for (var r = r0; r < r1; r++) {
        let k = ${classAt(identity, 'r')};
        dlogits[dbase + k] -= fj * exp(logits[base + k] - m - la);
      }
    }`;
}

/** Backward fix-up: for rows with log-domain entries, adds −f·c_j·e^(z − m − log a_j) over each log-domain entry j. */
function backwardFixupSource(W: number, identity: boolean, perRow: boolean, withScale: boolean): string {
  return `${uniformBlock(WORDS)}
${backwardBindings(withScale, false)}
@group(0) @binding(${withScale ? 8 : 7}) var<storage, read> fixupFlags: array<u32>;
${MAIN}
  let f0 = gradOut[word(13u)]${withScale ? ' * scale[word(14u)]' : ''};
  ${fixupRows(
    W,
    1,
    `let sa = word(12u) + row * ${W + 3}u;
    let logDomain = bitcast<u32>(stats[sa + 2u]);
    let marked = logDomain != 0u;`,
    `let m = stats[sa];
    let f = ${perRow ? 'gradOut[word(13u) + row]' + (withScale ? ' * scale[word(14u)]' : '') : 'f0'};
    let dbase = word(7u) + row * C;
    ${backwardFixBody(W, identity)}`,
  )}
}`;
}

/** Tables up to this many classes get kernels with the class order written into the code. */
export const HXE_UNROLL_MAX_CLASSES = 128;

function walkOf(table: HxeGpuTable, T: number): Walk {
  const unroll = T === 1 && table.numClasses <= HXE_UNROLL_MAX_CLASSES;
  return { identity: table.identityOrder, unrolled: unroll ? { starts: table.starts, order: table.order } : null };
}

function walkKey(walk: Walk): string {
  return walk.unrolled
    ? `u${Array.from(walk.unrolled.starts).join(',')}/${Array.from(walk.unrolled.order).join(',')}`
    : walk.identity
      ? 'i'
      : '';
}

function checkRows(op: string, logits: GpuOperand, targets: GpuOperand, table: HxeGpuTable): [number, number] {
  if (logits.shape.length !== 2) throw new RangeError(`${op}: logits must be [N, C], got [${logits.shape.join(', ')}]`);
  const [N, C] = logits.shape as [number, number];
  if (!isContiguous(logits)) throw new RangeError(`${op}: logits must be contiguous`);
  if (numel(targets.shape) !== N || !isContiguous(targets))
    throw new RangeError(`${op}: targets must be [${N}] contiguous, got [${targets.shape.join(', ')}]`);
  if (targets.dtype !== 'i32') throw new TypeError(`${op}: targets must be i32, got ${targets.dtype}`);
  if (table.numClasses !== C) throw new RangeError(`${op}: table has ${table.numClasses} classes but logits have ${C}`);
  return [N, C];
}

function lanesOf(op: string, requested: number | undefined, C: number, N: number): number {
  const T = requested ?? hxeDefaultThreadsPerRow(C, N);
  if (!Number.isInteger(Math.log2(T)) || T < 1 || T > WG)
    throw new RangeError(`${op}: threadsPerRow must be a power of two in 1..${WG}, got ${T}`);
  return T;
}

function checkStats(op: string, stats: GpuOperand, N: number, table: HxeGpuTable): void {
  if (stats.dtype !== 'f32' || numel(stats.shape) < N * hxeStatsWords(table) || !isContiguous(stats)) {
    throw new RangeError(
      `${op}: stats must be contiguous f32 holding N × (width + 3) = ${N} × ${hxeStatsWords(table)} values, ` +
        `got [${stats.shape.join(', ')}]`,
    );
  }
}

function uniforms(N: number, C: number, table: HxeGpuTable, ignoreIndex: number | undefined): UniformWriter {
  return new UniformWriter(WORDS)
    .u32(0, N)
    .u32(1, C)
    .u32(2, table.numSegments)
    .u32(3, segmentOffset(C, table.width))
    .i32(8, ignoreIndex ?? -100)
    .f32(9, -Infinity)
    .f32(10, NaN)
    .u32(11, orderOffset(C, table.width, table.numSegments));
}

export interface HxeGpuArgs {
  /** [N, C] f32, contiguous (any offset). */
  logits: GpuOperand;
  /** [N] i32, contiguous: class ids, or `ignoreIndex`. */
  targets: GpuOperand;
  table: HxeGpuTable;
  /** [N] f32 out: per-row loss (0 on ignored rows, NaN where a target is out of range). */
  losses: GpuOperand;
  /** [N, width + 3] f32 out (`hxeStatsWords`), contiguous: what `hxeBackwardGpu` needs; omit for the loss alone. */
  stats?: GpuOperand | null;
  ignoreIndex?: number;
  /** Lanes per row, a power of two ≤ 64 (default `hxeDefaultThreadsPerRow(C)`). */
  threadsPerRow?: number;
}

/**
 * One dispatch: per-row HXE (or XE, with an `xeKernelTable`) losses and, with `stats`, the per-row
 * statistics of the backward. Ignored rows get loss 0; rows whose target is neither `ignoreIndex`
 * nor in 0..C−1 get NaN (and a NaN gradient row in the backward), so a bad target is visible.
 */
export function hxeGpu(queue: KernelQueue, args: HxeGpuArgs): void {
  const op = 'hxe';
  const [N, C] = checkRows(op, args.logits, args.targets, args.table);
  if (numel(args.losses.shape) !== N)
    throw new RangeError(`${op}: losses must hold ${N} values, got [${args.losses.shape.join(', ')}]`);
  if (args.stats) checkStats(op, args.stats, N, args.table);
  if (N === 0) return;
  const T = lanesOf(op, args.threadsPerRow, C, N);
  const W = args.table.width;
  const walk = walkOf(args.table, T);
  const withStats = !!args.stats;
  const u = uniforms(N, C, args.table, args.ignoreIndex)
    .u32(4, args.logits.offset)
    .u32(5, args.targets.offset)
    .u32(6, args.losses.offset)
    .u32(12, args.stats?.offset ?? 0);
  const storage = [
    args.losses.buffer,
    ...(withStats ? [args.stats!.buffer] : []),
    args.logits.buffer,
    args.targets.buffer,
    args.table.buffer,
  ];
  const fixupFlags = args.table.fixupFlags;
  queue.dispatch({
    key: `hxe:${T}:${W}:${walkKey(walk)}:${withStats ? 's' : ''}`,
    source: () => forwardSource(T, W, walk, withStats),
    storage: W > 0 ? [...storage, fixupFlags] : storage,
    uniforms: u.data,
    workgroups: grid(Math.ceil(N / (WG / T)), queue.device.limits.maxComputeWorkgroupsPerDimension),
    label: 'hxe forward',
  });
  if (W === 0) return;
  const identity = args.table.identityOrder;
  queue.dispatch({
    key: `hxe-fixup:${W}:${identity}:${withStats ? 's' : ''}`,
    source: () => fixupSource(W, identity, withStats),
    storage: [...storage, fixupFlags],
    uniforms: u.data,
    workgroups: [FIXUP_THREADS / WG, 1],
    label: 'hxe forward fix-up',
  });
}

export interface HxeBackwardGpuArgs {
  /** The forward's logits [N, C], targets [N], table and stats. */
  logits: GpuOperand;
  targets: GpuOperand;
  table: HxeGpuTable;
  stats: GpuOperand;
  /** [N, C] f32 out, contiguous: d(Σ_i gradOutput_i · scale · loss_i)/dlogits. */
  dlogits: GpuOperand;
  /** The incoming gradient: one value (`perRow` false) or [N] contiguous (`perRow` true). */
  gradOutput: GpuOperand;
  perRow: boolean;
  /** Optional one-value factor (1/count for a mean, from `hxeReduceGpu`). */
  scale?: GpuOperand | null;
  ignoreIndex?: number;
  threadsPerRow?: number;
}

/** One dispatch: the gradient of the (scaled) losses, recomputing p from the logits and the saved stats. */
export function hxeBackwardGpu(queue: KernelQueue, args: HxeBackwardGpuArgs): void {
  const op = 'hxe backward';
  const [N, C] = checkRows(op, args.logits, args.targets, args.table);
  checkStats(op, args.stats, N, args.table);
  if (numel(args.dlogits.shape) !== N * C || !isContiguous(args.dlogits))
    throw new RangeError(`${op}: dlogits must be [${N}, ${C}] contiguous`);
  if (numel(args.gradOutput.shape) !== (args.perRow ? N : 1)) {
    throw new RangeError(
      `${op}: gradOutput must hold ${args.perRow ? N : 1} value(s), got [${args.gradOutput.shape.join(', ')}]`,
    );
  }
  if (N === 0) return;
  const T = lanesOf(op, args.threadsPerRow, C, N);
  const W = args.table.width;
  const walk = walkOf(args.table, T);
  const withScale = !!args.scale;
  const u = uniforms(N, C, args.table, args.ignoreIndex)
    .u32(4, args.logits.offset)
    .u32(5, args.targets.offset)
    .u32(7, args.dlogits.offset)
    .u32(12, args.stats.offset)
    .u32(13, args.gradOutput.offset)
    .u32(14, args.scale?.offset ?? 0);
  const storage = [
    args.dlogits.buffer,
    args.logits.buffer,
    args.targets.buffer,
    args.table.buffer,
    args.stats.buffer,
    args.gradOutput.buffer,
  ];
  if (withScale) storage.push(args.scale!.buffer);
  const fixupFlags = args.table.fixupFlags;
  queue.dispatch({
    key: `hxe-bwd:${T}:${W}:${walkKey(walk)}:${args.perRow}:${withScale}`,
    source: () => backwardSource(T, W, walk, args.perRow, withScale),
    storage: W > 0 ? [...storage, fixupFlags] : storage,
    uniforms: u.data,
    workgroups: grid(Math.ceil(N / (WG / T)), queue.device.limits.maxComputeWorkgroupsPerDimension),
    label: 'hxe backward',
  });
  if (W === 0) return;
  const identity = args.table.identityOrder;
  queue.dispatch({
    key: `hxe-bwd-fixup:${W}:${identity}:${args.perRow}:${withScale}`,
    source: () => backwardFixupSource(W, identity, args.perRow, withScale),
    storage: [...storage, fixupFlags],
    uniforms: u.data,
    workgroups: [FIXUP_THREADS / WG, 1],
    label: 'hxe backward fix-up',
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
  if (numel(args.targets.shape) !== N)
    throw new RangeError(`hxe reduce: ${N} losses but ${numel(args.targets.shape)} targets`);
  const withScale = !!args.scale;
  const u = new UniformWriter(8)
    .u32(0, N)
    .u32(1, args.losses.offset)
    .u32(2, args.targets.offset)
    .u32(3, args.out.offset)
    .i32(4, args.ignoreIndex ?? -100)
    .u32(5, args.reduction === 'mean' ? 1 : 0)
    .u32(6, args.scale?.offset ?? 0);
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

// ---------------------------------------------------------------------------------------------
// Float64 CPU references (independent of the rank ranges: they use the membership matrix)

export interface HxeCpuOptions {
  ignoreIndex?: number;
  /** 'hxe' (default) uses the table; 'xe' is plain cross-entropy (the table may be null). */
  mode?: 'hxe' | 'xe';
}

interface RowResult {
  loss: number;
  /** dloss/dz for the row, when asked for. */
  grad: Float64Array | null;
}

function checkTarget(target: number, row: number, C: number, ignoreIndex: number): void {
  if (!Number.isInteger(target) || target < 0 || target >= C) {
    throw new RangeError(
      `hxe: target ${target} in row ${row} is not a class id in 0..${C - 1} (nor the ignore index ${ignoreIndex})`,
    );
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

function hxeRow(
  z: ArrayLike<number>,
  target: number,
  table: HxeTableData,
  sizes: Int32Array,
  wantGrad: boolean,
): RowResult {
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
  let csum = 0;
  // Each entry's log mass relative to m, from its own max: exact however far below m it lies.
  const taken: { node: number; coef: number; logMass: number }[] = [];
  for (let j = 0; j < W; j++) {
    const node = table.nodes[target * W + j]!;
    const coef = table.coefficients[target * W + j]!;
    if (coef === 0) continue;
    let logMass: number;
    if (sizes[node] === 1) logMass = z[target]! - m;
    else {
      let mj = -Infinity;
      for (let k = 0; k < C; k++) if (M[node * C + k]) mj = Math.max(mj, z[k]!);
      let s = 0;
      for (let k = 0; k < C; k++) if (M[node * C + k]) s += Math.exp(z[k]! - mj);
      logMass = mj - m + Math.log(s);
    }
    loss -= coef * (logMass - logU);
    csum += coef;
    taken.push({ node, coef, logMass });
  }
  let grad: Float64Array | null = null;
  if (wantGrad) {
    grad = new Float64Array(C);
    for (let k = 0; k < C; k++) {
      let g = (e[k]! / U) * csum;
      for (const t of taken) if (M[t.node * C + k]) g -= t.coef * Math.exp(z[k]! - m - t.logMass);
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
  if (logits.length !== N * C)
    throw new RangeError(`hxe: logits hold ${logits.length} values, expected ${N} rows × ${C} classes`);
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
export function hxeForwardCpu(
  logits: ArrayLike<number>,
  numClasses: number,
  targets: ArrayLike<number>,
  table: HxeTableData | null,
  options: HxeCpuOptions = {},
): Float64Array {
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
  const weight = (i: number) =>
    options.gradLosses === undefined
      ? 1
      : typeof options.gradLosses === 'number'
        ? options.gradLosses
        : options.gradLosses[i]!;
  runCpu(
    logits,
    C,
    targets,
    table,
    options,
    (i, r) => {
      if (!r) return;
      const w = weight(i);
      for (let k = 0; k < C; k++) out[i * C + k] = r.grad![k]! * w;
    },
    true,
  );
  return out;
}
