/**
 * gather along one dim: out[c] = x[c with c[dim] replaced by index[c]], over strided operands.
 * index_select is the same kernel with an index view broadcast (stride 0) over the other dims.
 * An index outside [0, size) yields NaN for f32 (0 for integer dtypes) rather than reading
 * another row; the tensor ops also run `checkIndicesGpu`, so it raises an error at the next readback.
 * Also gather's gradient (a deterministic scatter-add along the dim).
 */
import { KernelQueue, grid } from './queue.js';
import {
  type CpuOperand,
  type GpuOperand,
  MAX_RANK,
  UniformWriter,
  contiguousStrides,
  forEachIndex,
  numel,
  uniformBlock,
  wgslType,
} from './layout.js';

const WORDS = 8 + 4 * MAX_RANK;
const WG = 64;

/** Both kernels: thread i takes element i, and unravels it (dim, the index offset oi) over the shape. */
const MAIN_HEAD = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  if (i >= word(0u)) { return; }
  let dim = word(5u);
  var rem = i;
  var oi = word(3u);`;

function source(out: 'f32' | 'i32'): string {
  const bad = out === 'f32' ? 'bitcast<f32>(word(7u))' : '0'; // NaN cannot be a WGSL constant
  return `${uniformBlock(WORDS)}
@group(0) @binding(1) var<storage, read_write> out: array<${out}>;
@group(0) @binding(2) var<storage, read> x: array<${out}>;
@group(0) @binding(3) var<storage, read> index: array<i32>;
${MAIN_HEAD}
  var ox = word(2u);
  var oo = word(4u);
  for (var d = word(1u); d > 0u; d--) {
    let size = word(8u + d - 1u);
    let c = rem % size;
    rem = rem / size;
    oi += c * word(${8 + MAX_RANK}u + d - 1u);
    oo += c * word(${8 + 3 * MAX_RANK}u + d - 1u);
    if (d - 1u != dim) { ox += c * word(${8 + 2 * MAX_RANK}u + d - 1u); }
  }
  let j = index[oi];
  if (j < 0 || u32(j) >= word(6u)) {
    out[oo] = ${bad};
  } else {
    out[oo] = x[ox + u32(j) * word(${8 + 2 * MAX_RANK}u + dim)];
  }
}`;
}

/** `index` must already have `out.shape` (broadcast views allowed); `x` agrees with it off `dim`. */
export function gatherGpu(queue: KernelQueue, out: GpuOperand, x: GpuOperand, index: GpuOperand, dim: number): void {
  const n = numel(out.shape);
  if (n === 0) return;
  if (out.shape.length > MAX_RANK) throw new RangeError(`gather: rank ${out.shape.length} exceeds ${MAX_RANK}`);
  const u = new UniformWriter(WORDS)
    .u32(0, n)
    .u32(1, out.shape.length)
    .u32(2, x.offset)
    .u32(3, index.offset)
    .u32(4, out.offset)
    .u32(5, dim)
    .u32(6, x.shape[dim]!)
    .f32(7, NaN)
    .array(8, out.shape, MAX_RANK, 1)
    .array(8 + MAX_RANK, index.strides, MAX_RANK)
    .array(8 + 2 * MAX_RANK, x.strides, MAX_RANK)
    .array(8 + 3 * MAX_RANK, out.strides, MAX_RANK);
  queue.dispatch({
    key: `gather:${wgslType(out.dtype)}`,
    source: () => source(wgslType(out.dtype)),
    storage: [out.buffer, x.buffer, index.buffer],
    uniforms: u.data,
    workgroups: grid(Math.ceil(n / WG), queue.maxWorkgroupsPerDimension),
    label: 'gather',
  });
}

export function gatherCpu(out: CpuOperand, x: CpuOperand, index: CpuOperand, dim: number): void {
  const xNoDim = { shape: x.shape, strides: x.strides.map((s, d) => (d === dim ? 0 : s)), offset: x.offset };
  forEachIndex(out.shape, [out, index, xNoDim], (_, [oo, oi, ox]) => {
    const j = index.data[oi!]!;
    out.data[oo!] = j < 0 || j >= x.shape[dim]! ? (out.dtype === 'f32' ? NaN : 0) : x.data[ox! + j * x.strides[dim]!]!;
  });
}

/**
 * gather's gradient, a scatter-add along `dim`: dx[c] = Σ_k [index[c with c_dim = k] = c_dim] ·
 * dy[c with c_dim = k], over positions c of x that the index covers (0 elsewhere). One thread per
 * element of dx walks k in increasing order, so the sum is deterministic (no atomics).
 * `dx` is contiguous; `dy` and `index` have the gather output's shape (any strides).
 */
function backwardSource(): string {
  const R = MAX_RANK;
  return `${uniformBlock(WORDS)}
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> index: array<i32>;
${MAIN_HEAD}
  var od = word(2u);
  var slot = 0u;
  var covered = true;
  for (var d = word(1u); d > 0u; d--) {
    let size = word(8u + d - 1u);
    let c = rem % size;
    rem = rem / size;
    if (d - 1u == dim) {
      slot = c;
    } else {
      covered = covered && c < word(${8 + R}u + d - 1u);
      oi += c * word(${8 + 2 * R}u + d - 1u);
      od += c * word(${8 + 3 * R}u + d - 1u);
    }
  }
  var acc = 0.0;
  if (covered) {
    let si = word(${8 + 2 * R}u + dim);
    let sd = word(${8 + 3 * R}u + dim);
    for (var k = 0u; k < word(6u); k++) {
      if (index[oi + k * si] == i32(slot)) { acc += dy[od + k * sd]; }
    }
  }
  dx[word(4u) + i] = acc;
}`;
}

export function gatherBackwardGpu(
  queue: KernelQueue,
  dx: GpuOperand,
  dy: GpuOperand,
  index: GpuOperand,
  dim: number,
): void {
  const n = numel(dx.shape);
  if (n === 0) return;
  if (dx.shape.length > MAX_RANK) throw new RangeError(`gatherBackward: rank ${dx.shape.length} exceeds ${MAX_RANK}`);
  const u = new UniformWriter(WORDS)
    .u32(0, n)
    .u32(1, dx.shape.length)
    .u32(2, dy.offset)
    .u32(3, index.offset)
    .u32(4, dx.offset)
    .u32(5, dim)
    .u32(6, index.shape[dim]!)
    .array(8, dx.shape, MAX_RANK, 1)
    .array(8 + MAX_RANK, index.shape, MAX_RANK)
    .array(8 + 2 * MAX_RANK, index.strides, MAX_RANK)
    .array(8 + 3 * MAX_RANK, dy.strides, MAX_RANK);
  queue.dispatch({
    key: 'gatherBackward',
    source: backwardSource,
    storage: [dx.buffer, dy.buffer, index.buffer],
    uniforms: u.data,
    workgroups: grid(Math.ceil(n / WG), queue.maxWorkgroupsPerDimension),
    label: 'gatherBackward',
  });
}

/** Float64 reference of `gatherBackwardGpu`; `dx` is contiguous and is overwritten. */
export function gatherBackwardCpu(dx: CpuOperand, dy: CpuOperand, index: CpuOperand, dim: number): void {
  dx.data.fill(0, dx.offset, dx.offset + numel(dx.shape));
  const dxStrides = contiguousStrides(dx.shape);
  const dxNoDim = { shape: dx.shape, strides: dxStrides.map((s, d) => (d === dim ? 0 : s)), offset: dx.offset };
  forEachIndex(index.shape, [index, dy, dxNoDim], (_, [oi, od, ox]) => {
    const j = index.data[oi!]!;
    if (j >= 0 && j < dx.shape[dim]!) dx.data[ox! + j * dxStrides[dim]!] += dy.data[od!]!;
  });
}
