/**
 * Strided layouts shared by every kernel launcher and CPU reference.
 *
 * A tensor's elements live at `offset + Σ coord[d]·strides[d]` in a flat buffer (units are
 * elements, not bytes). Broadcast dims have stride 0. Kernels receive shapes and strides in their
 * uniform block, so one compiled pipeline serves every shape.
 */

export type DType = 'f32' | 'i32' | 'bool';

export interface View {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

/** An operand on the GPU: a view into a storage buffer holding f32 or i32 words. */
export interface GpuOperand extends View {
  readonly buffer: GPUBuffer;
  readonly dtype: DType;
}

/** An operand of the CPU reference: the same view over float64 values. */
export interface CpuOperand extends View {
  readonly data: Float64Array;
  readonly dtype: DType;
}

/** Largest rank a kernel accepts after `coalesce`; tensors of higher rank rarely survive coalescing. */
export const MAX_RANK = 8;

export function numel(shape: readonly number[]): number {
  // Indexed loops in the per-op helpers: until V8 optimises a function, for…of allocates an iterator.
  let n = 1;
  for (let d = 0; d < shape.length; d++) n *= shape[d]!;
  return n;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  return strides;
}

export function isContiguous(view: View): boolean {
  let expected = 1;
  for (let d = view.shape.length - 1; d >= 0; d--) {
    if (view.shape[d] !== 1 && view.strides[d] !== expected) return false;
    expected *= view.shape[d]!;
  }
  return true;
}

/**
 * Merges adjacent dims that are laid out contiguously in every operand and drops size-1 dims.
 * A contiguous elementwise op becomes rank 1, so kernels spend no time on index arithmetic.
 */
export function coalesce(
  shape: readonly number[],
  stridesList: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = [];
  for (let k = 0; k < stridesList.length; k++) outStrides.push([]);
  for (let d = 0; d < shape.length; d++) {
    const size = shape[d]!;
    if (size === 1) continue;
    const last = outShape.length - 1;
    let merges = last >= 0;
    for (let k = 0; merges && k < stridesList.length; k++) merges = outStrides[k]![last] === stridesList[k]![d]! * size;
    if (merges) outShape[last]! *= size;
    else outShape.push(size);
    for (let k = 0; k < stridesList.length; k++) outStrides[k]![outShape.length - 1] = stridesList[k]![d]!;
  }
  return { shape: outShape, strides: outStrides };
}

/** WGSL word type that stores a dtype: booleans are stored as i32 0/1. */
export function wgslType(dtype: DType): 'f32' | 'i32' {
  return dtype === 'f32' ? 'f32' : 'i32';
}

/** The dtype two operands are promoted to: f32 wins, booleans count as integers. */
export function promote(a: DType, b: DType): DType {
  return a === 'f32' || b === 'f32' ? 'f32' : 'i32';
}

/** Rounds a float64 value the way storing it as `dtype` would (no-op for f32 in the f64 oracle). */
export function castValue(value: number, dtype: DType): number {
  if (dtype === 'f32') return value;
  if (dtype === 'bool') return value !== 0 ? 1 : 0;
  return Number.isFinite(value) ? Math.trunc(value) | 0 : 0;
}

/**
 * Walks every index of `shape` in row-major order, calling `visit` with the element offset of each
 * view: an odometer, so each step costs O(1) amortised instead of a full unravel.
 */
export function forEachIndex(
  shape: readonly number[],
  views: readonly View[],
  visit: (linear: number, offsets: number[]) => void,
): void {
  const n = numel(shape);
  if (n === 0) return;
  const rank = shape.length;
  const coord = new Array<number>(rank).fill(0);
  const offsets = views.map((v) => v.offset);
  for (let i = 0; i < n; i++) {
    visit(i, offsets);
    for (let d = rank - 1; d >= 0; d--) {
      coord[d]!++;
      views.forEach((v, k) => (offsets[k]! += v.strides[d]!));
      if (coord[d]! < shape[d]!) break;
      views.forEach((v, k) => (offsets[k]! -= v.strides[d]! * shape[d]!));
      coord[d] = 0;
    }
  }
}

/** Packs a uniform block of u32 words (floats are passed by bit pattern). */
export class UniformWriter {
  // One Uint32Array only (floats go through a shared scratch word): a writer is made per dispatch,
  // and three typed-array views over an ArrayBuffer cost more than the writes themselves.
  private readonly words: Uint32Array;
  constructor(wordCount: number) {
    this.words = new Uint32Array(Math.ceil(wordCount / 4) * 4);
  }
  u32(index: number, value: number): this {
    this.words[index] = value >>> 0;
    return this;
  }
  i32(index: number, value: number): this {
    // Two's complement: the low 32 bits of `value | 0` are the i32's bits.
    this.words[index] = value | 0;
    return this;
  }
  f32(index: number, value: number): this {
    SCRATCH_F32[0] = value;
    this.words[index] = SCRATCH_U32[0]!;
    return this;
  }
  /** Writes `values` at `start`, padding with `fill` up to `length` words. */
  array(start: number, values: readonly number[], length = values.length, fill = 0): this {
    for (let k = 0; k < length; k++) this.words[start + k] = (k < values.length ? values[k]! : fill) >>> 0;
    return this;
  }
  get data(): Uint32Array {
    return this.words;
  }
}

const SCRATCH_F32 = new Float32Array(1);
const SCRATCH_U32 = new Uint32Array(SCRATCH_F32.buffer);

/** The WGSL accessor matching `UniformWriter`: the block is an array of vec4<u32>. */
export function uniformBlock(wordCount: number): string {
  return `struct Params { m: array<vec4<u32>, ${Math.ceil(wordCount / 4)}> }
@group(0) @binding(0) var<uniform> params: Params;
fn word(i: u32) -> u32 { return params.m[i / 4u][i % 4u]; }`;
}
