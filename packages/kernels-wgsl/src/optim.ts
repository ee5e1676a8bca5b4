/**
 * Optimizer kernels: a multi-tensor AdamW step (param, m, v updated in place) and global-norm
 * gradient clipping (deterministic sum of squares → norm → in-place scale, all on the GPU), each
 * with a float64 reference.
 *
 * Multi-tensor launches: a dispatch handles several tensors ("segments"), each a contiguous range
 * in its own buffers, so one dispatch covers floor(maxStorageBuffersPerShaderStage / 4) parameters
 * for AdamW (2 under the default limit of 8, 3 with SwiftShader's 12) and up to limit−1 gradients for
 * the norm and scale kernels. Each segment owns a run of whole workgroups, so the segment test is
 * uniform per workgroup. A segment whose offsets and length are multiples of 4 is processed as vec4
 * words (SwiftShader turns those into vector loads: scalar copy ≈0.4–0.7 GB/s, vec4 ≈1.4 GB/s here).
 * All AdamW bindings except the gradient are read_write, so params that share one buffer (views of a
 * flat parameter store) are legal in one dispatch.
 *
 * Sum of squares: kernel 1 writes one partial per thread (each thread sums 16 coalesced units of its
 * workgroup's range: no barriers), kernel 2 — one 64-thread workgroup — adds the partials in a fixed
 * order, takes the square root and writes the norm; the scale kernel reads the norm from the GPU, so
 * clipping needs no readback. Same inputs ⇒ same bits, run to run.
 *
 * Versions (SwiftShader, 2 cores of a shared, noisy VM; "best / p50"), 1M parameters in 4 tensors
 * (7 words moved per element for AdamW):
 *  AdamW v1 one vec4 per thread: 126–188 / 211–228 ms; v2 16 vec4 per thread (WG apart): 21–33 /
 *    46–63 ms — chosen (8: 55 / 100, 32: 28 / 36–60, 64: 13 / 41: within noise of 16; 16 keeps
 *    4096 elements per workgroup so real GPUs still get many workgroups).
 *  Global norm + clip (3 dispatches): 1 unit per thread in the scale kernel 40–48 ms best; 16: 9–11 ms.
 */
import { KernelQueue, grid } from './queue.js';
import { type CpuOperand, type GpuOperand, UniformWriter, numel, uniformBlock } from './layout.js';

const WG = 64;
/** Units (vec4 words or scalars) each thread of the AdamW and scale kernels handles, WG apart. */
const ITEMS = 16;

function contiguousCheck(op: string, t: GpuOperand | CpuOperand): void {
  let expected = 1;
  for (let d = t.shape.length - 1; d >= 0; d--) {
    if (t.shape[d] !== 1 && t.strides[d] !== expected)
      throw new RangeError(
        `${op}: tensors must be contiguous (got strides [${t.strides.join(', ')}] for shape [${t.shape.join(', ')}])`,
      );
    expected *= t.shape[d]!;
  }
}

/** Splits `count` items into dispatches of at most `perDispatch` items. */
function chunksOf<T>(items: readonly T[], perDispatch: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += perDispatch) out.push(items.slice(i, i + perDispatch));
  return out;
}

function maxBuffers(queue: KernelQueue, requested?: number): number {
  return Math.min(requested ?? Infinity, queue.device.limits.maxStorageBuffersPerShaderStage, 16);
}

// ---------------------------------------------------------------------------------------------
// AdamW

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (default 0.01, PyTorch's AdamW default). */
  weightDecay?: number;
  /** 1-based step number, used for bias correction. */
  step: number;
  /** Cap on storage buffers per dispatch (default: the device limit, at most 16). */
  maxStorageBuffers?: number;
}

export interface AdamWItem<T> {
  param: T;
  grad: T;
  m: T;
  v: T;
  /** Overrides opts.weightDecay for this tensor (e.g. 0 for biases and norms). */
  weightDecay?: number;
}

// Uniform: 0 lr, 1 beta1, 2 beta2, 3 eps, 4 bc1, 5 bc2, 6 step, 7 segments; segment k at 8 + 8k:
// [firstGroup, groups, units, wd, offP, offG, offM, offV] (offsets in units).
const ADAM_WORDS = 8 + 8 * 4;

function adamSource(vecs: boolean[]): string {
  const decls: string[] = [];
  const bodies: string[] = [];
  vecs.forEach((vec, k) => {
    const T = vec ? 'vec4<f32>' : 'f32';
    decls.push(
      `@group(0) @binding(${4 * k + 1}) var<storage, read_write> p${k}: array<${T}>;`,
      `@group(0) @binding(${4 * k + 2}) var<storage, read> g${k}: array<${T}>;`,
      `@group(0) @binding(${4 * k + 3}) var<storage, read_write> m${k}: array<${T}>;`,
      `@group(0) @binding(${4 * k + 4}) var<storage, read_write> v${k}: array<${T}>;`,
    );
    const at = 8 + 8 * k;
    bodies.push(`if (wg >= word(${at}u) && wg < word(${at}u) + word(${at + 1}u)) {
    let start = (wg - word(${at}u)) * ${WG * ITEMS}u + lid;
    let units = word(${at + 2}u);
    let decay = 1.0 - lr * bitcast<f32>(word(${at + 3}u));
    for (var j = 0u; j < ${ITEMS}u; j++) {
      let i = start + j * ${WG}u;
      if (i >= units) { return; }
      let ip = word(${at + 4}u) + i; let ig = word(${at + 5}u) + i; let im = word(${at + 6}u) + i; let iv = word(${at + 7}u) + i;
      let g = g${k}[ig];
      let m = b1 * m${k}[im] + (1.0 - b1) * g;
      let v = b2 * v${k}[iv] + (1.0 - b2) * g * g;
      m${k}[im] = m;
      v${k}[iv] = v;
      p${k}[ip] = p${k}[ip] * decay - step * m / (sqrt(v) * rbc2 + eps);
    }
    return;
  }`);
  });
  return `${uniformBlock(ADAM_WORDS)}
${decls.join('\n')}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let lr = bitcast<f32>(word(0u));
  let b1 = bitcast<f32>(word(1u));
  let b2 = bitcast<f32>(word(2u));
  let eps = bitcast<f32>(word(3u));
  let step = lr / bitcast<f32>(word(4u));        // lr / (1 − β1^t)
  let rbc2 = 1.0 / sqrt(bitcast<f32>(word(5u)));  // 1 / √(1 − β2^t)
  ${bodies.join('\n  ')}
}`;
}

function isVecAligned(...ts: GpuOperand[]): boolean {
  const n = numel(ts[0]!.shape);
  return n % 4 === 0 && ts.every((t) => t.offset % 4 === 0);
}

function checkAdamItem(op: string, it: AdamWItem<GpuOperand> | AdamWItem<CpuOperand>): void {
  const n = numel(it.param.shape);
  for (const t of [it.param, it.grad, it.m, it.v]) {
    if (numel(t.shape) !== n)
      throw new RangeError(`${op}: param, grad, m and v must have the same size (${n} vs ${numel(t.shape)})`);
    contiguousCheck(op, t);
  }
}

function biasCorrections(opts: AdamWOptions): { b1: number; b2: number; bc1: number; bc2: number } {
  if (!Number.isInteger(opts.step) || opts.step < 1)
    throw new RangeError(`adamw: step must be an integer ≥ 1, got ${opts.step}`);
  const b1 = opts.beta1 ?? 0.9;
  const b2 = opts.beta2 ?? 0.999;
  return { b1, b2, bc1: 1 - b1 ** opts.step, bc2: 1 - b2 ** opts.step };
}

/** One AdamW step (PyTorch semantics) over every item, in place, in ⌈items / per-dispatch⌉ dispatches. */
export function adamwGpu(queue: KernelQueue, items: readonly AdamWItem<GpuOperand>[], opts: AdamWOptions): void {
  const { b1, b2, bc1, bc2 } = biasCorrections(opts);
  for (const it of items) checkAdamItem('adamw', it);
  const per = Math.max(1, Math.min(4, Math.floor(maxBuffers(queue, opts.maxStorageBuffers) / 4)));
  const live = items.filter((it) => numel(it.param.shape) > 0);
  for (const batch of chunksOf(live, per)) {
    const u = new UniformWriter(ADAM_WORDS)
      .f32(0, opts.lr)
      .f32(1, b1)
      .f32(2, b2)
      .f32(3, opts.eps ?? 1e-8)
      .f32(4, bc1)
      .f32(5, bc2)
      .u32(6, opts.step)
      .u32(7, batch.length);
    let groups = 0;
    const vecs: boolean[] = [];
    const storage: GPUBuffer[] = [];
    batch.forEach((it, k) => {
      const vec = isVecAligned(it.param, it.grad, it.m, it.v);
      const div = vec ? 4 : 1;
      const units = numel(it.param.shape) / div;
      const g = Math.ceil(units / (WG * ITEMS));
      const at = 8 + 8 * k;
      u.u32(at, groups)
        .u32(at + 1, g)
        .u32(at + 2, units)
        .f32(at + 3, it.weightDecay ?? opts.weightDecay ?? 0.01);
      u.u32(at + 4, it.param.offset / div)
        .u32(at + 5, it.grad.offset / div)
        .u32(at + 6, it.m.offset / div)
        .u32(at + 7, it.v.offset / div);
      groups += g;
      vecs.push(vec);
      storage.push(it.param.buffer, it.grad.buffer, it.m.buffer, it.v.buffer);
    });
    queue.dispatch({
      key: `adamw:${vecs.map((v) => (v ? 'v' : 's')).join('')}`,
      source: () => adamSource(vecs),
      storage,
      uniforms: u.data,
      workgroups: grid(groups, queue.maxWorkgroupsPerDimension),
      label: 'adamw',
    });
  }
}

export function adamwCpu(items: readonly AdamWItem<CpuOperand>[], opts: AdamWOptions): void {
  const { b1, b2, bc1, bc2 } = biasCorrections(opts);
  const eps = opts.eps ?? 1e-8;
  const lr = opts.lr;
  for (const it of items) {
    checkAdamItem('adamw', it);
    const wd = it.weightDecay ?? opts.weightDecay ?? 0.01;
    const n = numel(it.param.shape);
    for (let i = 0; i < n; i++) {
      const g = it.grad.data[it.grad.offset + i]!;
      const m = b1 * it.m.data[it.m.offset + i]! + (1 - b1) * g;
      const v = b2 * it.v.data[it.v.offset + i]! + (1 - b2) * g * g;
      it.m.data[it.m.offset + i] = m;
      it.v.data[it.v.offset + i] = v;
      const p = it.param.data[it.param.offset + i]! * (1 - lr * wd);
      it.param.data[it.param.offset + i] = p - ((lr / bc1) * m) / (Math.sqrt(v) / Math.sqrt(bc2) + eps);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Global gradient norm and clipping

/** Units each thread of the sum-of-squares kernel adds (coalesced, WG apart). */
const SUMSQ_ITEMS = 16;
const UNITS_PER_GROUP = WG * SUMSQ_ITEMS;

// Sum-of-squares uniform: 0 segments; segment k at 4 + 4k: [firstGroup, groups, units, offset].
const SUMSQ_WORDS = 4 + 4 * 15;

function sumsqSource(vecs: boolean[]): string {
  const decls = [`@group(0) @binding(1) var<storage, read_write> part: array<f32>;`];
  const bodies: string[] = [];
  vecs.forEach((vec, k) => {
    decls.push(`@group(0) @binding(${k + 2}) var<storage, read> x${k}: array<${vec ? 'vec4<f32>' : 'f32'}>;`);
    const at = 4 + 4 * k;
    bodies.push(`if (wg >= word(${at}u) && wg < word(${at}u) + word(${at + 1}u)) {
    let start = (wg - word(${at}u)) * ${UNITS_PER_GROUP}u + lid;
    let units = word(${at + 2}u);
    let off = word(${at + 3}u);
    for (var j = 0u; j < ${SUMSQ_ITEMS}u; j++) {
      let i = start + j * ${WG}u;
      if (i < units) { let v = x${k}[off + i]; acc += ${vec ? 'dot(v, v)' : 'v * v'}; }
    }
  }`);
  });
  return `${uniformBlock(SUMSQ_WORDS)}
${decls.join('\n')}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  var acc = 0.0;
  ${bodies.join('\n  ')}
  part[word(1u) + wg * ${WG}u + lid] = acc;
}`;
}

const FINAL_SOURCE = `${uniformBlock(4)}
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  let count = word(0u);
  var acc = 0.0;
  for (var i = lid; i < count; i += ${WG}u) { acc += part[i]; }
  red[lid] = acc;
  workgroupBarrier();
  if (lid == 0u) {
    var s = 0.0;
    for (var i = 0u; i < ${WG}u; i++) { s += red[i]; }
    norm[word(1u)] = sqrt(s);
  }
}`;

// Scale uniform: 0 segments, 1 maxNorm, 2 norm offset; segment k at 4 + 4k: [firstGroup, groups, units, offset].
function scaleSource(vecs: boolean[]): string {
  const decls = [`@group(0) @binding(1) var<storage, read> norm: array<f32>;`];
  const bodies: string[] = [];
  vecs.forEach((vec, k) => {
    decls.push(`@group(0) @binding(${k + 2}) var<storage, read_write> x${k}: array<${vec ? 'vec4<f32>' : 'f32'}>;`);
    const at = 4 + 4 * k;
    bodies.push(`if (wg >= word(${at}u) && wg < word(${at}u) + word(${at + 1}u)) {
    let start = (wg - word(${at}u)) * ${WG * ITEMS}u + lid;
    for (var j = 0u; j < ${ITEMS}u; j++) {
      let i = start + j * ${WG}u;
      if (i >= word(${at + 2}u)) { return; }
      let o = word(${at + 3}u) + i;
      x${k}[o] = x${k}[o] * coef;
    }
    return;
  }`);
  });
  return `${uniformBlock(SUMSQ_WORDS)}
${decls.join('\n')}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let coef = min(1.0, bitcast<f32>(word(1u)) / (norm[word(2u)] + 1e-6));
  ${bodies.join('\n  ')}
}`;
}

/** Bytes of scratch `gradNormGpu` needs for its partial sums. */
export function gradNormScratchBytes(grads: readonly GpuOperand[]): number {
  let partials = 0;
  for (const g of grads) {
    const units = isVecAligned(g) ? numel(g.shape) / 4 : numel(g.shape);
    partials += Math.ceil(units / UNITS_PER_GROUP) * WG;
  }
  return Math.max(16, partials * 4);
}

/**
 * Writes the global L2 norm √(Σ over all grads of Σ g²) into `norm` (one element). Deterministic.
 * `scratch` (≥ gradNormScratchBytes) holds the partial sums; without it a temporary is made.
 */
export function gradNormGpu(
  queue: KernelQueue,
  norm: GpuOperand,
  grads: readonly GpuOperand[],
  opts: { scratch?: GPUBuffer; maxStorageBuffers?: number } = {},
): void {
  for (const g of grads) contiguousCheck('gradNorm', g);
  const bytes = gradNormScratchBytes(grads);
  let scratch = opts.scratch;
  if (scratch && scratch.size < bytes)
    throw new RangeError(`gradNorm: scratch of ${scratch.size} bytes is smaller than the ${bytes} needed`);
  if (!scratch) {
    const tmp = queue.device.createBuffer({ label: 'gradNorm scratch', size: bytes, usage: GPUBufferUsage.STORAGE });
    queue.afterSubmit(() => tmp.destroy());
    scratch = tmp;
  }
  const per = Math.max(1, Math.min(15, maxBuffers(queue, opts.maxStorageBuffers) - 1));
  let partBase = 0;
  for (const batch of chunksOf(
    grads.filter((g) => numel(g.shape) > 0),
    per,
  )) {
    const u = new UniformWriter(SUMSQ_WORDS).u32(0, batch.length).u32(1, partBase);
    let groups = 0;
    const vecs = batch.map((g, k) => {
      const vec = isVecAligned(g);
      const units = vec ? numel(g.shape) / 4 : numel(g.shape);
      const n = Math.ceil(units / UNITS_PER_GROUP);
      u.u32(4 + 4 * k, groups)
        .u32(5 + 4 * k, n)
        .u32(6 + 4 * k, units)
        .u32(7 + 4 * k, vec ? g.offset / 4 : g.offset);
      groups += n;
      return vec;
    });
    queue.dispatch({
      key: `sumsq:${vecs.map((v) => (v ? 'v' : 's')).join('')}`,
      source: () => sumsqSource(vecs),
      storage: [scratch, ...batch.map((g) => g.buffer)],
      uniforms: u.data,
      workgroups: grid(groups, queue.maxWorkgroupsPerDimension),
      label: 'sumsq',
    });
    partBase += groups * WG;
  }
  queue.dispatch({
    key: 'gradNorm:final',
    source: () => FINAL_SOURCE,
    storage: [scratch, norm.buffer],
    uniforms: new Uint32Array([partBase, norm.offset, 0, 0]),
    workgroups: [1],
    label: 'gradNorm final',
  });
}

/**
 * In place: every grad *= min(1, maxNorm / (norm + 1e-6)), reading `norm` (one element) on the GPU.
 */
export function scaleByNormGpu(
  queue: KernelQueue,
  grads: readonly GpuOperand[],
  norm: GpuOperand,
  maxNorm: number,
  opts: { maxStorageBuffers?: number } = {},
): void {
  for (const g of grads) contiguousCheck('clipGradNorm', g);
  const per = Math.max(1, Math.min(15, maxBuffers(queue, opts.maxStorageBuffers) - 1));
  for (const batch of chunksOf(
    grads.filter((g) => numel(g.shape) > 0),
    per,
  )) {
    const u = new UniformWriter(SUMSQ_WORDS).u32(0, batch.length).f32(1, maxNorm).u32(2, norm.offset);
    let groups = 0;
    const vecs = batch.map((g, k) => {
      const vec = isVecAligned(g);
      const units = vec ? numel(g.shape) / 4 : numel(g.shape);
      const n = Math.ceil(units / (WG * ITEMS));
      u.u32(4 + 4 * k, groups)
        .u32(5 + 4 * k, n)
        .u32(6 + 4 * k, units)
        .u32(7 + 4 * k, vec ? g.offset / 4 : g.offset);
      groups += n;
      return vec;
    });
    queue.dispatch({
      key: `clipScale:${vecs.map((v) => (v ? 'v' : 's')).join('')}`,
      source: () => scaleSource(vecs),
      storage: [norm.buffer, ...batch.map((g) => g.buffer)],
      uniforms: u.data,
      workgroups: grid(groups, queue.maxWorkgroupsPerDimension),
      label: 'clipScale',
    });
  }
}

/** Global-norm clipping in place; the norm (before clipping) is written to `norm`. */
export function clipGradNormGpu(
  queue: KernelQueue,
  norm: GpuOperand,
  grads: readonly GpuOperand[],
  maxNorm: number,
  opts: { scratch?: GPUBuffer; maxStorageBuffers?: number } = {},
): void {
  gradNormGpu(queue, norm, grads, opts);
  scaleByNormGpu(queue, grads, norm, maxNorm, opts);
}

export function gradNormCpu(norm: CpuOperand, grads: readonly CpuOperand[]): void {
  let s = 0;
  for (const g of grads) {
    contiguousCheck('gradNorm', g);
    const n = numel(g.shape);
    for (let i = 0; i < n; i++) s += g.data[g.offset + i]! ** 2;
  }
  norm.data[norm.offset] = Math.sqrt(s);
}

export function clipGradNormCpu(norm: CpuOperand, grads: readonly CpuOperand[], maxNorm: number): void {
  gradNormCpu(norm, grads);
  const coef = Math.min(1, maxNorm / (norm.data[norm.offset]! + 1e-6));
  for (const g of grads) {
    const n = numel(g.shape);
    for (let i = 0; i < n; i++) g.data[g.offset + i] = g.data[g.offset + i]! * coef;
  }
}
