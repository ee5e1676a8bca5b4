/**
 * A size-class buffer pool. Allocating a GPUBuffer per op is slow and fragments memory; instead
 * buffers are rounded up to a size class and recycled.
 *
 * Two free lists keep reuse safe. A buffer released while commands that use it are still
 * unsubmitted goes to `recent`: a later kernel may write it (commands run in stream order), but an
 * upload may not, since `queue.writeBuffer` runs ahead of unsubmitted commands. After the submit
 * (KernelQueue.afterSubmit) recent buffers become `settled` and serve uploads too. So memory stays
 * flat within a batch of hundreds of ops, not only across batches.
 *
 * Each free list hands out its lowest-numbered buffer first (`KernelQueue.bufferId`, fixed when
 * the pool creates it). Which
 * buffer an op gets then depends only on which buffers are free, not on the order they were
 * released in, so a training loop's steps get the same buffers every time and the queue's
 * bind-group cache hits (with last-in-first-out lists the assignment kept permuting).
 */
import type { KernelQueue } from '@rnagrad/kernels-wgsl';

export interface PoolStats {
  /** Buffers held by live tensors. */
  liveBuffers: number;
  liveBytes: number;
  /** The most bytes live tensors held at once since the runtime started (or `resetPeak()`). */
  peakLiveBytes: number;
  /** Buffers kept for reuse. */
  pooledBuffers: number;
  pooledBytes: number;
  /** createBuffer calls so far, and acquisitions served from the pool. */
  allocations: number;
  reuses: number;
}

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** 256 B minimum, powers of two up to 1 MiB, then quarter steps of the power of two. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const pow = 2 ** Math.ceil(Math.log2(bytes));
  if (pow <= 2 ** 20) return pow;
  const step = pow / 8;
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  private readonly settled = new Map<number, GPUBuffer[]>();
  private readonly recent = new Map<number, GPUBuffer[]>();
  private settleScheduled = false;
  private readonly counters = {
    liveBuffers: 0,
    liveBytes: 0,
    peakLiveBytes: 0,
    pooledBuffers: 0,
    pooledBytes: 0,
    allocations: 0,
    reuses: 0,
  };

  /** `device.limits` and `buffer.size` are native getters (a call into Dawn each): read once. */
  private readonly maxBufferSize: number;

  constructor(
    private readonly device: GPUDevice,
    private readonly queue: KernelQueue,
    private readonly maxPooledBytes: number,
  ) {
    this.maxBufferSize = device.limits.maxBufferSize;
  }

  /** A buffer of at least `bytes`; `forUpload` when it will be filled by `queue.writeBuffer`. */
  acquire(bytes: number, forUpload = false): GPUBuffer {
    const size = sizeClass(Math.max(bytes, 4));
    if (size > this.maxBufferSize) {
      throw new RangeError(
        `rnagrad: a buffer of ${bytes} bytes exceeds this device's maxBufferSize (${this.maxBufferSize} bytes)`,
      );
    }
    let buffer = (forUpload ? undefined : this.recent.get(size)?.pop()) ?? this.settled.get(size)?.pop();
    if (buffer) {
      this.counters.reuses++;
      this.counters.pooledBuffers--;
      this.counters.pooledBytes -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage: USAGE() });
      this.queue.bufferId(buffer);
      this.counters.allocations++;
    }
    this.counters.liveBuffers++;
    this.counters.liveBytes += size;
    this.counters.peakLiveBytes = Math.max(this.counters.peakLiveBytes, this.counters.liveBytes);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = buffer.size;
    this.counters.liveBuffers--;
    this.counters.liveBytes -= size;
    if (this.counters.pooledBytes + size > this.maxPooledBytes) {
      // Destroy only once submitted work no longer needs it (destroy is immediate in WebGPU).
      if (this.queue.pending === 0) buffer.destroy();
      else this.queue.afterSubmit(() => buffer.destroy());
      return;
    }
    const pending = this.queue.pending > 0;
    this.push(pending ? this.recent : this.settled, buffer, size);
    this.counters.pooledBuffers++;
    this.counters.pooledBytes += size;
    if (pending && !this.settleScheduled) {
      this.settleScheduled = true;
      this.queue.afterSubmit(() => this.settle());
    }
  }

  stats(): PoolStats {
    return { ...this.counters };
  }

  /** Starts a new peak measurement from what is live now. */
  resetPeak(): void {
    this.counters.peakLiveBytes = this.counters.liveBytes;
  }

  /** Destroys every pooled buffer (live ones are untouched). */
  trim(): void {
    this.queue.flush();
    for (const map of [this.settled, this.recent]) {
      for (const list of map.values()) for (const b of list) b.destroy();
      map.clear();
    }
    this.counters.pooledBuffers = 0;
    this.counters.pooledBytes = 0;
  }

  destroy(): void {
    this.trim();
  }

  private settle(): void {
    this.settleScheduled = false;
    for (const [size, list] of this.recent) for (const b of list) this.push(this.settled, b, size);
    this.recent.clear();
  }

  /** Inserts in order of number, highest first, so `pop()` gives the lowest-numbered buffer. */
  private push(map: Map<number, GPUBuffer[]>, buffer: GPUBuffer, size: number): void {
    const list = map.get(size);
    if (!list) {
      map.set(size, [buffer]);
      return;
    }
    const n = this.queue.bufferId(buffer);
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.queue.bufferId(list[mid]!) > n) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, buffer);
  }
}
