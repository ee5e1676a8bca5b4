/**
 * Deterministic scatter-add of rows: out[v, :] = Σ_{n : index[n] = v} src[n, :] — the embedding
 * backward (and index_add along dim 0) — without float atomics, with a float64 reference.
 *
 * Two strategies, both summing each output element over n in increasing order (so the result is
 * bitwise reproducible and the same for both):
 *  - 'scan': one thread per (row v, column word d) walks all N indices and adds the rows that match.
 *    No setup; cost ∝ V·N·D — right for small vocabularies (RNA tokens: V = 22..70).
 *  - 'sort': the (index, n) pairs are sorted by a bitonic sort over P = N rounded up to a power of
 *    two; the output is zero-filled and one thread per (sorted position, column) whose position starts
 *    a run adds that run. Every stage whose compared pairs lie within one tile of SORT_TILE keys runs in
 *    workgroup memory, many stages per dispatch: one dispatch builds and sorts each tile, and each
 *    later merge size k needs one dispatch per stage with pairs SORT_TILE or more apart plus one for
 *    the rest (N = 512: 1 dispatch instead of 46; N = 2048: 6 instead of 67).
 *    Cost ∝ sort(N) + V·D (fill) + N·D — right for large V.
 * 'scan' writes every output element once; 'sort' zero-fills and then writes the rows that are hit.
 * Indices outside [0, V), and `paddingIdx` if given, contribute nothing.
 *
 * Versions (SwiftShader, 2 cores of a shared, noisy VM; D = 128; "best / p50" ms):
 *  v1 'sort' output by one thread per (v, d) binary-searching v's run: V=50000, N=512: 380–590 ms
 *     (V·D threads × log N steps); v2 zero fill + one thread per run start: N=2048: 40 / 113 ms,
 *     N=8192: 100 / 187 ms — chosen.
 *  N, V:        scan            sort
 *  32, 22       0.5 / 0.6       0.8 / 2.1
 *  128, 22      2.0–3.0 / 5–6   2.0 / 8
 *  512, 22      7 / 16          2.3 / 2.9
 *  2048, 22     18 / 30         8 / 12–60
 *  8192, 22     147 / 196       32 / 112
 *  2048, 70     132 / 183       9 / 16
 *  8192, 70     515 / 800       27 / 52
 *  512, 1000    476 / 481       25 / 40
 *  512, 50000   25 s            (sort, above)
 *  → 'scan' only while N·V ≤ 4096 (`chooseScatter`).
 */
import { KernelQueue, grid } from './queue.js';
import { type CpuOperand, type GpuOperand, UniformWriter, uniformBlock } from './layout.js';

export type ScatterStrategy = 'scan' | 'sort';

export interface ScatterOptions {
  /** Rows with this index are skipped (PyTorch's padding_idx: that row's gradient stays 0). */
  paddingIdx?: number | null;
  strategy?: ScatterStrategy;
  /** Scratch for the sort (≥ scatterScratchBytes(N)); a temporary is made without it. */
  scratch?: GPUBuffer;
}

const WG = 64;

/** The strategy used when none is given: by the measured crossover (see the file comment). */
export function chooseScatter(n: number, v: number): ScatterStrategy {
  return v * n <= 4096 ? 'scan' : 'sort';
}

export function scatterScratchBytes(n: number): number {
  return Math.max(16, 8 * nextPow2(n));
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

// Uniform words: 0 N, 1 V, 2 D (columns, in units), 3 padding (or -1 as i32 when none... stored as u32
// 0xffffffff), 4 index offset, 5 index stride, 6 src offset, 7 src row stride, 8 src col stride,
// 9 out offset, 10 out row stride, 11 P, 12 j, 13 k, 14 keys per sort tile.
const WORDS = 16;

function scanSource(vec: boolean, unit: boolean): string {
  const T = vec ? 'vec4<f32>' : 'f32';
  return `${uniformBlock(WORDS)}
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read> src: array<${T}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  let D = word(2u);
  if (i >= word(1u) * D) { return; }
  let v = i / D;
  let d = i % D;
  var acc = ${T}(0.0);
  if (v != word(3u)) {
    let N = word(0u);
    for (var n = 0u; n < N; n++) {
      if (index[word(4u) + n * word(5u)] == i32(v)) {
        let so = word(6u) + n * word(7u);
        acc += ${unit ? 'src[so + d]' : 'src[so + d * word(8u)]'};
      }
    }
  }
  out[word(9u) + v * word(10u) + d] = acc;
}`;
}

function fillSource(vec: boolean): string {
  const T = vec ? 'vec4<f32>' : 'f32';
  return `${uniformBlock(WORDS)}
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  let D = word(2u);
  if (i >= word(1u) * D) { return; }
  out[word(9u) + (i / D) * word(10u) + i % D] = ${T}(0.0);
}`;
}

/** One thread per (sorted position j, column d); the first position of each run adds the run. */
function segmentSource(vec: boolean, unit: boolean): string {
  const T = vec ? 'vec4<f32>' : 'f32';
  return `${uniformBlock(WORDS)}
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read> keys: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> src: array<${T}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  let D = word(2u);
  let N = word(0u);
  if (i >= N * D) { return; }
  let j = i / D;
  let d = i % D;
  let v = keys[j].x;
  if (v >= word(1u) || v == word(3u)) { return; }
  if (j > 0u && keys[j - 1u].x == v) { return; }
  var acc = ${T}(0.0);
  for (var k = j; k < N; k++) {
    let kv = keys[k];
    if (kv.x != v) { break; }
    let so = word(6u) + kv.y * word(7u);
    acc += ${unit ? 'src[so + d]' : 'src[so + d * word(8u)]'};
  }
  out[word(9u) + v * word(10u) + d] = acc;
}`;
}

/** The (index, n) key of position n: out-of-range indices sort after every real row, padding last. */
const KEY_OF = `fn keyOf(n: u32) -> vec2<u32> {
  if (n >= word(0u)) { return vec2<u32>(0xffffffffu, 0xffffffffu); }
  let t = index[word(4u) + n * word(5u)];
  return vec2<u32>(select(0xfffffffeu, u32(t), t >= 0 && u32(t) < word(1u)), n);
}`;
const LESS = 'fn less(a: vec2<u32>, b: vec2<u32>) -> bool { return a.x < b.x || (a.x == b.x && a.y < b.y); }';

/** Keys per workgroup-memory tile (4 KiB of vec2<u32>), two per thread. */
const SORT_TILE = 512;
const SORT_WG = SORT_TILE / 2;

/**
 * The stages j = j0, j0/2, …, 1 of merge size k on one tile of `word(14)` keys (≤ SORT_TILE) held in
 * `tile`; the direction comes from the global position so the tiles join the global network.
 * With `build`, the tile is first filled from `index` and sorted through every k ≤ tile.
 */
function tileSortSource(build: boolean): string {
  const load = build ? 'keyOf(base + e)' : 'keys[base + e]';
  const stages = (k: string, j0: string) => `for (var j = ${j0}; j >= 1u; j /= 2u) {
    workgroupBarrier();
    if (lid < half) {
      let a = 2u * j * (lid / j) + (lid % j);
      let x = tile[a];
      let y = tile[a + j];
      if (less(y, x) == (((base + a) & ${k}) == 0u)) { tile[a] = y; tile[a + j] = x; }
    }
  }`;
  return `${uniformBlock(WORDS)}
@group(0) @binding(1) var<storage, read_write> keys: array<vec2<u32>>;
${LESS}
${build ? '@group(0) @binding(2) var<storage, read> index: array<i32>;\n' + KEY_OF : ''}
var<workgroup> tile: array<vec2<u32>, ${SORT_TILE}>;
@compute @workgroup_size(${SORT_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let size = word(14u);
  let half = size / 2u;
  let base = (wid.x + wid.y * nwg.x) * size;
  if (base >= word(11u)) { return; }
  for (var e = lid; e < size; e += ${SORT_WG}u) { tile[e] = ${load}; }
  ${
    build
      ? `for (var k = 2u; k <= size; k *= 2u) {
    ${stages('k', 'k / 2u')}
  }`
      : stages('word(13u)', 'half')
  }
  workgroupBarrier();
  for (var e = lid; e < size; e += ${SORT_WG}u) { keys[base + e] = tile[e]; }
}`;
}

/** One stage (merge size k, pairs j ≥ SORT_TILE apart) in global memory. */
const BITONIC_SOURCE = `${uniformBlock(WORDS)}
@group(0) @binding(1) var<storage, read_write> keys: array<vec2<u32>>;
${LESS}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  let j = word(12u);
  let k = word(13u);
  if (i >= word(11u) / 2u) { return; }
  let a = 2u * j * (i / j) + (i % j);
  let b = a + j;
  let x = keys[a];
  let y = keys[b];
  let ascending = (a & k) == 0u;
  if (less(y, x) == ascending) {
    keys[a] = y;
    keys[b] = x;
  }
}`;

/**
 * out [V, D] (contiguous rows: row stride ≥ D, column stride 1) = scatter-add of src [N, D] rows by
 * i32 index [N]. src may be any 2-D view.
 */
export function scatterAddRowsGpu(
  queue: KernelQueue,
  out: GpuOperand,
  index: GpuOperand,
  src: GpuOperand,
  opts: ScatterOptions = {},
): void {
  const [V, D] = out.shape as [number, number];
  const N = index.shape[0]!;
  if (
    out.shape.length !== 2 ||
    src.shape.length !== 2 ||
    index.shape.length !== 1 ||
    src.shape[0] !== N ||
    src.shape[1] !== D
  ) {
    throw new RangeError(
      `scatterAdd: expected out [V, D], index [N], src [N, D]; got [${out.shape}], [${index.shape}], [${src.shape}]`,
    );
  }
  if (D > 1 && out.strides[1] !== 1) throw new RangeError('scatterAdd: out rows must be contiguous (column stride 1)');
  if (V * D === 0) return;
  const strategy = opts.strategy ?? chooseScatter(N, V);
  const outRow = V > 1 ? out.strides[0]! : D;
  const srcRow = N > 1 ? src.strides[0]! : D;
  const srcCol = D > 1 ? src.strides[1]! : 1;
  const vec =
    D % 4 === 0 && srcCol === 1 && src.offset % 4 === 0 && srcRow % 4 === 0 && out.offset % 4 === 0 && outRow % 4 === 0;
  const unit = srcCol === 1;
  const div = vec ? 4 : 1;
  const P = nextPow2(N);
  const u = () =>
    new UniformWriter(WORDS)
      .u32(0, N)
      .u32(1, V)
      .u32(2, D / div)
      .i32(3, opts.paddingIdx ?? -1)
      .u32(4, index.offset)
      .u32(5, N > 1 ? index.strides[0]! : 1)
      .u32(6, src.offset / div)
      .u32(7, srcRow / div)
      .u32(8, srcCol)
      .u32(9, out.offset / div)
      .u32(10, outRow / div)
      .u32(11, P);
  const maxDim = queue.maxWorkgroupsPerDimension;
  let second: GPUBuffer = index.buffer;
  if (strategy === 'sort') {
    const bytes = scatterScratchBytes(N);
    let keys = opts.scratch;
    if (keys && keys.size < bytes)
      throw new RangeError(`scatterAdd: scratch of ${keys.size} bytes is smaller than the ${bytes} needed`);
    if (!keys) {
      const tmp = queue.device.createBuffer({ label: 'scatterAdd keys', size: bytes, usage: GPUBufferUsage.STORAGE });
      queue.afterSubmit(() => tmp.destroy());
      keys = tmp;
    }
    const size = Math.min(P, SORT_TILE);
    const tiles = grid(P / size, maxDim);
    queue.dispatch({
      key: 'scatter:sort-tiles',
      source: () => tileSortSource(true),
      storage: [keys, index.buffer],
      uniforms: u().u32(14, size).data,
      workgroups: tiles,
      label: 'scatter sort tiles',
    });
    for (let k = 2 * size; k <= P; k *= 2) {
      for (let j = k / 2; j >= size; j /= 2) {
        queue.dispatch({
          key: 'scatter:bitonic',
          source: () => BITONIC_SOURCE,
          storage: [keys],
          uniforms: u().u32(12, j).u32(13, k).data,
          workgroups: grid(Math.ceil(P / 2 / WG), maxDim),
          label: 'bitonic',
        });
      }
      queue.dispatch({
        key: 'scatter:merge-tiles',
        source: () => tileSortSource(false),
        storage: [keys],
        uniforms: u().u32(13, k).u32(14, size).data,
        workgroups: tiles,
        label: 'scatter merge tiles',
      });
    }
    second = keys;
  }
  const kind = vec ? 'v' : unit ? 'u' : 's';
  const outGroups = grid(Math.ceil((V * D) / div / WG), maxDim);
  if (strategy === 'scan') {
    queue.dispatch({
      key: `scatter:scan:${kind}`,
      source: () => scanSource(vec, unit),
      storage: [out.buffer, index.buffer, src.buffer],
      uniforms: u().data,
      workgroups: outGroups,
      label: 'scatter scan',
    });
    return;
  }
  queue.dispatch({
    key: `scatter:fill:${vec}`,
    source: () => fillSource(vec),
    storage: [out.buffer],
    uniforms: u().data,
    workgroups: outGroups,
    label: 'scatter fill',
  });
  queue.dispatch({
    key: `scatter:segments:${kind}`,
    source: () => segmentSource(vec, unit),
    storage: [out.buffer, second, src.buffer],
    uniforms: u().data,
    workgroups: grid(Math.ceil((N * D) / div / WG), maxDim),
    label: 'scatter segments',
  });
}

/** Float64 reference of `scatterAddRowsGpu` (same order of summation). */
export function scatterAddRowsCpu(
  out: CpuOperand,
  index: CpuOperand,
  src: CpuOperand,
  opts: { paddingIdx?: number | null } = {},
): void {
  const [V, D] = out.shape as [number, number];
  const N = index.shape[0]!;
  for (let v = 0; v < V; v++)
    for (let d = 0; d < D; d++) out.data[out.offset + v * out.strides[0]! + d * out.strides[1]!] = 0;
  for (let n = 0; n < N; n++) {
    const v = index.data[index.offset + n * index.strides[0]!]!;
    if (v < 0 || v >= V || v === opts.paddingIdx) continue;
    for (let d = 0; d < D; d++) {
      out.data[out.offset + v * out.strides[0]! + d * out.strides[1]!]! +=
        src.data[src.offset + n * src.strides[0]! + d * src.strides[1]!]!;
    }
  }
}
