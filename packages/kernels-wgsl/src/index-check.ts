/**
 * Index range checks for the ops that read indices (gather, index_select, embedding, index_add,
 * cross-entropy and HXE targets). GPU work cannot throw, so one thread per index tests it and the
 * first index outside [0, size) — other than an allowed ignore value — is stored with a tag in a
 * 16-byte flag buffer owned by the queue. The host reads the flag with its next readback
 * (`encodeIndexErrorRead` + `indexErrorFrom`) and raises an error naming the op, the value and
 * the range there. The CPU twin throws at once.
 */
import { KernelQueue, grid } from './queue.js';
import { type CpuOperand, type GpuOperand, UniformWriter, numel, uniformBlock } from './layout.js';

export interface IndexCheck {
  /** Op named in the error. */
  op: string;
  /** Valid indices are [0, size). */
  size: number;
  /** A value that is allowed besides the range (cross-entropy's ignore index). */
  ignore?: number;
}

const WG = 64;
const FLAG_BYTES = 16;

/** Per queue: the flag buffer, the checks behind each tag, and whether a check ran since the last read. */
interface FlagState {
  buffer: GPUBuffer;
  tags: Map<string, number>;
  checks: IndexCheck[];
  dirty: boolean;
}
const flags = new WeakMap<KernelQueue, FlagState>();

function flagState(queue: KernelQueue): FlagState {
  let state = flags.get(queue);
  if (!state) {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    state = {
      buffer: queue.device.createBuffer({ size: FLAG_BYTES, usage }),
      tags: new Map(),
      checks: [],
      dirty: false,
    };
    flags.set(queue, state);
  }
  return state;
}

const SOURCE = `${uniformBlock(8)}
@group(0) @binding(1) var<storage, read> index: array<i32>;
@group(0) @binding(2) var<storage, read_write> flag: array<atomic<i32>, 4>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  if (i >= word(0u)) { return; }
  let j = index[word(1u) + i];
  let ignored = word(4u) != 0u && j == bitcast<i32>(word(3u));
  if (ignored || (j >= 0 && u32(j) < word(2u))) { return; }
  // The first report wins: (tag, value) stay a consistent pair.
  loop {
    let r = atomicCompareExchangeWeak(&flag[0], 0, i32(word(5u)));
    if (r.exchanged) { atomicStore(&flag[1], j); return; }
    if (r.old_value != 0) { return; }
  }
}`;

/** Checks the indices of a contiguous i32 operand; a bad one is reported at the next readback. */
export function checkIndicesGpu(queue: KernelQueue, index: GpuOperand, check: IndexCheck): void {
  const n = numel(index.shape);
  if (n === 0) return;
  const state = flagState(queue);
  const key = `${check.op}:${check.size}:${check.ignore ?? ''}`;
  let tag = state.tags.get(key);
  if (tag === undefined) {
    state.checks.push(check);
    tag = state.checks.length;
    state.tags.set(key, tag);
  }
  state.dirty = true;
  const u = new UniformWriter(8)
    .u32(0, n)
    .u32(1, index.offset)
    .u32(2, check.size)
    .i32(3, check.ignore ?? 0)
    .u32(4, check.ignore === undefined ? 0 : 1)
    .u32(5, tag);
  queue.dispatch({
    key: 'checkIndices',
    source: () => SOURCE,
    storage: [index.buffer, state.buffer],
    uniforms: u.data,
    workgroups: grid(Math.ceil(n / WG), queue.maxWorkgroupsPerDimension),
    label: `checkIndices:${check.op}`,
  });
}

/** The CPU twin: throws the error the GPU path reports at readback. */
export function checkIndicesCpu(index: CpuOperand, check: IndexCheck): void {
  const n = numel(index.shape);
  for (let i = 0; i < n; i++) {
    const j = index.data[index.offset + i]!;
    if (j === check.ignore) continue;
    if (!(j >= 0 && j < check.size)) throw indexError(check, j);
  }
}

function indexError(check: IndexCheck, value: number): RangeError {
  const ignore = check.ignore === undefined ? '' : ` (or the ignore index ${check.ignore})`;
  return new RangeError(`${check.op}: index ${value} is out of range: valid indices are 0…${check.size - 1}${ignore}`);
}

/** Bytes `encodeIndexErrorRead` writes. */
export const INDEX_ERROR_BYTES = FLAG_BYTES;

/**
 * If checks ran since the last read, copies the flag to `dst` at `dstOffset` and clears it (both
 * encoded in order with the work before) and returns true; otherwise encodes nothing.
 */
export function encodeIndexErrorRead(queue: KernelQueue, dst: GPUBuffer, dstOffset: number): boolean {
  const state = flags.get(queue);
  if (!state?.dirty) return false;
  state.dirty = false;
  queue.copy(state.buffer, 0, dst, dstOffset, FLAG_BYTES);
  queue.clear(state.buffer, 0, FLAG_BYTES);
  return true;
}

/** The error described by flag words read back from `encodeIndexErrorRead`'s copy, or null. */
export function indexErrorFrom(queue: KernelQueue, words: Int32Array): RangeError | null {
  const tag = words[0]!;
  if (tag === 0) return null;
  const check = flags.get(queue)?.checks[tag - 1];
  if (!check) return new RangeError(`an index was out of range (unknown check ${tag}, value ${words[1]})`);
  const err = indexError(check, words[1]!);
  err.message += ' (found on the GPU; reported at the next readback)';
  return err;
}
