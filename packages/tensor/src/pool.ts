/**
 * A size-class buffer pool. Allocating a GPUBuffer per op is slow and fragments memory; instead
 * buffers are rounded up to a size class and recycled. A released buffer goes back to the pool
 * only after the commands that use it are submitted (see KernelQueue.afterSubmit), so a later
 * `queue.writeBuffer` into a recycled buffer can never overtake reads still waiting in the encoder.
 */
import type { KernelQueue } from '@rnagrad/kernels-wgsl';

export interface PoolStats {
  /** Buffers held by live tensors. */
  liveBuffers: number;
  liveBytes: number;
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
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly counters = { liveBuffers: 0, liveBytes: 0, pooledBuffers: 0, pooledBytes: 0, allocations: 0, reuses: 0 };

  constructor(
    private readonly device: GPUDevice,
    private readonly queue: KernelQueue,
    private readonly maxPooledBytes: number,
  ) {}

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(Math.max(bytes, 4));
    if (size > this.device.limits.maxBufferSize) {
      throw new RangeError(`rnagrad: a buffer of ${bytes} bytes exceeds this device's maxBufferSize (${this.device.limits.maxBufferSize} bytes)`);
    }
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.counters.reuses++;
      this.counters.pooledBuffers--;
      this.counters.pooledBytes -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage: USAGE() });
      this.counters.allocations++;
    }
    this.counters.liveBuffers++;
    this.counters.liveBytes += size;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    this.counters.liveBuffers--;
    this.counters.liveBytes -= buffer.size;
    if (this.queue.pending === 0) this.recycle(buffer);
    else this.queue.afterSubmit(() => this.recycle(buffer));
  }

  stats(): PoolStats {
    return { ...this.counters };
  }

  /** Destroys every pooled buffer (live ones are untouched). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.counters.pooledBuffers = 0;
    this.counters.pooledBytes = 0;
  }

  destroy(): void {
    this.trim();
  }

  private recycle(buffer: GPUBuffer): void {
    if (this.counters.pooledBytes + buffer.size > this.maxPooledBytes) {
      buffer.destroy();
      return;
    }
    const list = this.free.get(buffer.size) ?? [];
    list.push(buffer);
    this.free.set(buffer.size, list);
    this.counters.pooledBuffers++;
    this.counters.pooledBytes += buffer.size;
  }
}
