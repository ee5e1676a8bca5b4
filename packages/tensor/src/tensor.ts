/**
 * Tensor: a typed view (shape, strides, offset) over reference-counted storage on the GPU or the
 * CPU. Views share storage; `dispose()` drops this handle's reference, and the buffer returns to
 * the pool when the last handle goes. `tidy()` disposes every tensor made inside it except the
 * ones it returns; a FinalizationRegistry releases storage of handles that were never disposed,
 * as a safety net only (GC timing is not a memory policy).
 */
import type { DType, View } from '@rnagrad/kernels-wgsl';
import { contiguousStrides, isContiguous, numel } from '@rnagrad/kernels-wgsl';
import type { BufferPool } from './pool.js';

export type Device = 'gpu' | 'cpu';

export class Storage {
  private refs = 0;
  constructor(
    readonly device: Device,
    /** Number of elements the storage holds. */
    readonly length: number,
    readonly buffer: GPUBuffer | null,
    readonly data: Float64Array | null,
    private readonly pool: BufferPool | null,
  ) {}

  get alive(): boolean {
    return this.refs > 0;
  }
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0 && this.buffer && this.pool) this.pool.release(this.buffer);
  }
}

const finalizer = new FinalizationRegistry<Storage>((storage) => {
  liveTensors--;
  storage.release();
});
const scopes: Set<Tensor>[] = [];
let liveTensors = 0;

export class Tensor implements View {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  readonly storage: Storage;
  /** Set by @rnagrad/autograd: whether gradients flow to this tensor. */
  requiresGrad = false;
  /** Accumulated gradient after `backward()` (autograd). */
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor (opaque here). */
  gradNode: unknown = null;
  private disposedFlag = false;

  constructor(storage: Storage, shape: readonly number[], strides: readonly number[], offset: number, dtype: DType) {
    this.storage = storage;
    // slice, not spread: spread walks an iterator until V8 optimises the constructor.
    this.shape = Object.freeze(shape.slice());
    this.strides = Object.freeze(strides.slice());
    this.offset = offset;
    this.dtype = dtype;
    storage.retain();
    liveTensors++;
    finalizer.register(this, storage, this);
    scopes.at(-1)?.add(this);
  }

  get device(): Device {
    return this.storage.device;
  }
  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  get isDisposed(): boolean {
    return this.disposedFlag;
  }
  get isContiguous(): boolean {
    return isContiguous(this);
  }

  /** A new handle on the same storage with another shape/stride layout (no copy). */
  view(shape: readonly number[], strides: readonly number[] = contiguousStrides(shape), offset = this.offset): Tensor {
    this.assertAlive('view');
    return new Tensor(this.storage, shape, strides, offset, this.dtype);
  }

  /** Drops this handle; storage is freed once no handle uses it. Idempotent. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    liveTensors--;
    finalizer.unregister(this);
    for (const s of scopes) s.delete(this);
    this.storage.release();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    this.gradNode = null;
  }

  assertAlive(op: string): void {
    if (this.disposedFlag) throw new Error(`${op}: tensor of shape [${this.shape.join(', ')}] was already disposed`);
  }

  /** Backpropagates from this tensor (installed by @rnagrad/autograd). */
  backward(_seed?: Tensor): void {
    throw new Error('backward: gradients need @rnagrad/autograd; import it once (import "@rnagrad/autograd")');
  }
  /** Marks this tensor as a leaf that receives gradients (installed by @rnagrad/autograd). */
  requireGrad(_on = true): Tensor {
    throw new Error('requireGrad: gradients need @rnagrad/autograd; import it once (import "@rnagrad/autograd")');
  }
  /** A handle on the same values, cut off from the autograd graph. */
  detach(): Tensor {
    return this.view(this.shape, this.strides, this.offset);
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device})`;
  }
}

/** Number of tensor handles not yet disposed (for leak tests). */
export function liveTensorCount(): number {
  return liveTensors;
}

/** Removes `t` from every open scope so `tidy` will not dispose it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

/**
 * Runs `fn` and disposes every tensor created inside it except those in its result (a tensor, or
 * arrays/objects of tensors), which move to the enclosing scope. `fn` must be synchronous: an
 * async callback would let tensors of unrelated work land in this scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise)
      throw new TypeError('tidy(): the callback returned a Promise; tidy() only takes synchronous functions');
  } finally {
    scopes.splice(scopes.lastIndexOf(scope), 1);
  }
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  for (const t of scope) if (!kept.has(t)) t.dispose();
  const parent = scopes.at(-1);
  if (parent) for (const t of kept) if (scope.has(t)) parent.add(t);
  return result;
}

function collectTensors(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectTensors(v, into, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, into, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
}
