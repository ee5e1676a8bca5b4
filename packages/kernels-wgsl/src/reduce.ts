/**
 * Reductions over any set of axes of a strided tensor: sum, mean, prod, max, min, argmax, argmin.
 *
 * The kept dims and the reduced dims each travel in the uniform block as (shape, strides), so the
 * input needs no permute or copy. Two schedules:
 *  - "row": one 64-thread workgroup per output; threads stride over the reduced elements, then a
 *    tree in workgroup memory (barriers on every level). For few, long reductions.
 *  - "thread": one thread per output, a sequential loop. For many short reductions, where a
 *    workgroup per output would leave 63 of 64 lanes idle (SwiftShader runs lanes in groups of 4).
 *
 * Versions (SwiftShader, 2 cores, machine loaded ~3×), sum over rows of [1024, 1024]:
 *  v1 unravel loops over uniform shape words, row schedule for reductions > 256: ≈0.03 GB/s.
 *  v2 unravels unrolled per rank, thread schedule whenever there are ≥ 32 outputs: bias-gradient sums [1024, 64] over
 *  rows 7.4 → 0.9 ms.
 */
import { KernelQueue, grid } from './queue.js';
import { IEEE_WGSL } from './math.js';
import {
  type CpuOperand,
  type DType,
  type GpuOperand,
  type View,
  MAX_RANK,
  UniformWriter,
  coalesce,
  numel,
  uniformBlock,
  wgslType,
} from './layout.js';

export type ReduceOpName = 'sum' | 'mean' | 'prod' | 'max' | 'min' | 'argmax' | 'argmin';

export function reduceOutType(op: ReduceOpName, input: DType): DType {
  if (op === 'argmax' || op === 'argmin') return 'i32';
  if (op === 'mean') return 'f32';
  if (op === 'max' || op === 'min') return input;
  return input === 'f32' ? 'f32' : 'i32';
}

/** Splits a view into the kept part and the reduced part, each coalesced. */
export function splitAxes(
  view: View,
  axes: readonly number[],
): { kept: { shape: number[]; strides: number[] }; reduced: { shape: number[]; strides: number[] } } {
  const keep = (d: number) => !axes.includes(d);
  const pick = (want: boolean) => {
    const dims = view.shape.map((_, d) => d).filter((d) => keep(d) === want);
    const c = coalesce(
      dims.map((d) => view.shape[d]!),
      [dims.map((d) => view.strides[d]!)],
    );
    return { shape: c.shape, strides: c.strides[0]! };
  };
  return { kept: pick(true), reduced: pick(false) };
}

const WORDS = 8 + 4 * MAX_RANK;
const WG = 64;
const THREAD_MODE_MAX = 256;

function accType(op: ReduceOpName, input: DType): 'f32' | 'i32' {
  return op === 'mean'
    ? 'f32'
    : wgslType(op === 'argmax' || op === 'argmin' || op === 'max' || op === 'min' ? input : reduceOutType(op, input));
}

function wgslInit(op: ReduceOpName, T: 'f32' | 'i32'): string {
  // ±inf cannot be WGSL constants; the launcher puts the right one in word 7.
  const lowest = T === 'f32' ? 'bitcast<f32>(word(7u))' : 'i32(-2147483647 - 1)';
  const highest = T === 'f32' ? 'bitcast<f32>(word(7u))' : '2147483647';
  switch (op) {
    case 'sum':
    case 'mean':
      return `${T}(0)`;
    case 'prod':
      return `${T}(1)`;
    case 'max':
    case 'argmax':
      return lowest;
    case 'min':
    case 'argmin':
      return highest;
  }
}

/**
 * WGSL statement folding candidate (v, vi) into accumulator (a, ai). Ties keep the lower index.
 * For f32, NaN propagates as in PyTorch: max/min of a slice holding NaN is NaN, and argmax/argmin
 * point at its first NaN. WGSL's max/min may drop NaN, so it is tested on the bits.
 */
function wgslCombine(op: ReduceOpName, T: 'f32' | 'i32'): string {
  const nan = T === 'f32';
  const better = (cmp: '>' | '<') =>
    nan
      ? `(is_nan(v) && (!is_nan(a) || vi < ai)) || (!is_nan(a) && !is_nan(v) && (v ${cmp} a || (v == a && vi < ai)))`
      : `v ${cmp} a || (v == a && vi < ai)`;
  switch (op) {
    case 'sum':
    case 'mean':
      return 'a = a + v;';
    case 'prod':
      return 'a = a * v;';
    case 'max':
      return nan ? 'a = max_nan(a, v);' : 'a = max(a, v);';
    case 'min':
      return nan ? 'a = min_nan(a, v);' : 'a = min(a, v);';
    case 'argmax':
      return `if (${better('>')} || ai < 0) { a = v; ai = vi; }`;
    case 'argmin':
      return `if (${better('<')} || ai < 0) { a = v; ai = vi; }`;
  }
}

function source(
  op: ReduceOpName,
  input: DType,
  out: DType,
  mode: 'row' | 'thread',
  keptRank: number,
  redRank: number,
): string {
  const T = accType(op, input);
  const O = wgslType(out);
  const isArg = op === 'argmax' || op === 'argmin';
  const finalValue = isArg ? 'ai' : op === 'mean' ? 'a * bitcast<f32>(word(6u))' : 'a';
  // Unravels unrolled for the ranks at hand (part of the pipeline key): a loop over uniform shape
  // words per element is several times slower on SwiftShader.
  const unravel = (name: string, idx: string, shapeAt: number, strideAt: number, rank: number) => {
    if (rank === 0) return `let ${name} = 0u;`;
    if (rank === 1) return `let ${name} = ${idx} * word(${strideAt}u);`;
    const steps: string[] = [];
    for (let d = rank - 1; d >= 0; d--)
      steps.push(
        `${name} += (rem % word(${shapeAt + d}u)) * word(${strideAt + d}u); rem = rem / word(${shapeAt + d}u);`,
      );
    return `var ${name} = 0u; { var rem = ${idx}; ${steps.join(' ')} }`;
  };
  const head = `${uniformBlock(WORDS)}
@group(0) @binding(1) var<storage, read_write> out: array<${O}>;
@group(0) @binding(2) var<storage, read> inp: array<${wgslType(input)}>;
${IEEE_WGSL}`;
  const scan = (start: string, step: string) => `
  var a = ${wgslInit(op, T)};
  var ai = -1;
  for (var r = ${start}; r < word(1u); r += ${step}) {
    ${unravel('ro', 'r', 8 + 2 * MAX_RANK, 8 + 3 * MAX_RANK, redRank)}
    let v = ${T}(inp[base + ro]);
    let vi = i32(r);
    ${wgslCombine(op, T)}
  }`;
  if (mode === 'thread') {
    return `${head}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  if (row >= word(0u)) { return; }
  ${unravel('ko', 'row', 8, 8 + MAX_RANK, keptRank)}
  let base = word(4u) + ko;
  ${scan('0u', '1u')}
  out[word(5u) + row] = ${O}(${finalValue});
}`;
  }
  return `${head}
var<workgroup> sa: array<${T}, ${WG}>;
var<workgroup> si: array<i32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= word(0u)) { return; }
  ${unravel('ko', 'row', 8, 8 + MAX_RANK, keptRank)}
  let base = word(4u) + ko;
  ${scan('lid', `${WG}u`)}
  sa[lid] = a;
  si[lid] = ai;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      a = sa[lid];
      ai = si[lid];
      let v = sa[lid + s];
      let vi = si[lid + s];
      if (vi >= 0 || ${!isArg}) { ${wgslCombine(op, T)} }
      sa[lid] = a;
      si[lid] = ai;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    a = sa[0];
    ai = si[0];
    out[word(5u) + row] = ${O}(${finalValue});
  }
}`;
}

/**
 * Reduces `input` over `axes` into `out` (contiguous, `outNumel` elements from `out.offset`).
 * Reducing zero elements gives the op's identity (0 for sum, 1 for prod, NaN for mean, ±inf and
 * index -1 for max/min/arg*); callers that want an error for those check first.
 */
export function reduceGpu(
  queue: KernelQueue,
  op: ReduceOpName,
  out: GpuOperand,
  input: GpuOperand,
  axes: readonly number[],
): void {
  const { kept, reduced } = splitAxes(input, axes);
  const outNumel = numel(kept.shape);
  const redNumel = numel(reduced.shape);
  if (outNumel === 0) return;
  if (kept.shape.length > MAX_RANK || reduced.shape.length > MAX_RANK)
    throw new RangeError(`${op}: too many non-mergeable dims (max ${MAX_RANK} kept and ${MAX_RANK} reduced)`);
  // Workgroup trees only pay off with few outputs: barriers are expensive on CPU rasterizers.
  const mode = redNumel <= THREAD_MODE_MAX || outNumel >= 32 ? 'thread' : 'row';
  const u = new UniformWriter(WORDS)
    .u32(0, outNumel)
    .u32(1, redNumel)
    .u32(2, kept.shape.length)
    .u32(3, reduced.shape.length)
    .u32(4, input.offset)
    .u32(5, out.offset)
    .f32(6, 1 / redNumel)
    .f32(7, op === 'min' || op === 'argmin' ? Infinity : -Infinity)
    .array(8, kept.shape, MAX_RANK, 1)
    .array(8 + MAX_RANK, kept.strides, MAX_RANK)
    .array(8 + 2 * MAX_RANK, reduced.shape, MAX_RANK, 1)
    .array(8 + 3 * MAX_RANK, reduced.strides, MAX_RANK);
  const groups = mode === 'thread' ? Math.ceil(outNumel / WG) : outNumel;
  queue.dispatch({
    key: `reduce:${op}:${input.dtype}:${out.dtype}:${mode}:${kept.shape.length}:${reduced.shape.length}`,
    source: () => source(op, input.dtype, out.dtype, mode, kept.shape.length, reduced.shape.length),
    storage: [out.buffer, input.buffer],
    uniforms: u.data,
    workgroups: grid(groups, queue.maxWorkgroupsPerDimension),
    label: op,
  });
}

/** Float64 reference of `reduceGpu`: output element k is the reduction of kept index k. */
export function reduceCpu(op: ReduceOpName, out: CpuOperand, input: CpuOperand, axes: readonly number[]): void {
  const { kept, reduced } = splitAxes(input, axes);
  const outNumel = numel(kept.shape);
  const redNumel = numel(reduced.shape);
  const offsetOf = (idx: number, shape: number[], strides: number[]) => {
    let off = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      off += (idx % shape[d]!) * strides[d]!;
      idx = Math.floor(idx / shape[d]!);
    }
    return off;
  };
  for (let k = 0; k < outNumel; k++) {
    const base = input.offset + offsetOf(k, kept.shape, kept.strides);
    let acc =
      op === 'prod' ? 1 : op === 'sum' || op === 'mean' ? 0 : op === 'max' || op === 'argmax' ? -Infinity : Infinity;
    let accIndex = -1;
    for (let r = 0; r < redNumel; r++) {
      const v = input.data[base + offsetOf(r, reduced.shape, reduced.strides)]!;
      if (op === 'sum' || op === 'mean') acc += v;
      else if (op === 'prod') acc *= v;
      else if (op === 'max') acc = Math.max(acc, v);
      else if (op === 'min') acc = Math.min(acc, v);
      else if (Number.isNaN(acc))
        continue; // the first NaN wins, as in PyTorch
      else if ((op === 'argmax' ? v > acc : v < acc) || Number.isNaN(v) || accIndex < 0) {
        acc = v;
        accIndex = r;
      }
    }
    const value = op === 'argmax' || op === 'argmin' ? accIndex : op === 'mean' ? acc / redNumel : acc;
    out.data[out.offset + k] = out.dtype === 'f32' ? value : Math.trunc(value) | 0;
  }
}
