/**
 * GPU time per kernel through timestamp queries, for one stretch of work (e.g. one training step):
 * while active, every dispatch of the runtime's KernelQueue gets its own compute pass with
 * `timestampWrites`, and the durations are summed per pipeline key. Serialising dispatches into
 * separate passes changes timing a little (it is a profile, not the benchmark figure).
 *
 * Works on the KernelQueue's internals (TypeScript-private members are plain properties at run
 * time); if they change, `startProfile` returns null and the bench reports no breakdown.
 */
import type { Runtime } from '@rnagrad/tensor';

interface QueueInternals {
  encoder: GPUCommandEncoder | null;
  pass: GPUComputePassEncoder | null;
  dispatch(req: { key: string }): void;
  flush(): void;
  commandEncoder(): GPUCommandEncoder;
  computePass(): GPUComputePassEncoder;
  endPass(): void;
}

export interface KernelTime {
  key: string;
  ms: number;
  count: number;
}

export interface Profile {
  /** Restores the queue and returns GPU ms per kernel key (largest first), after the GPU is done. */
  stop(): Promise<{ kernels: KernelTime[]; totalMs: number; dispatches: number }>;
}

const MAX_PASSES = 2000;

export function startProfile(rt: Runtime): Profile | null {
  const q = rt.queue as unknown as QueueInternals;
  if (!rt.device.features.has('timestamp-query')) return null;
  if (
    typeof q.computePass !== 'function' ||
    typeof q.endPass !== 'function' ||
    typeof q.commandEncoder !== 'function' ||
    !('pass' in q)
  )
    return null;
  const device = rt.device;
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * MAX_PASSES });
  const resolve = device.createBuffer({
    size: 2 * MAX_PASSES * 8,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const batches: { buffer: GPUBuffer; keys: string[] }[] = [];
  let keys: string[] = [];
  let pendingKey = '?';
  const orig = { dispatch: q.dispatch, flush: q.flush, computePass: q.computePass };
  const own = q as unknown as Record<string, unknown>;
  own.computePass = function (this: QueueInternals) {
    if (!this.pass) {
      const i = keys.length;
      keys.push(pendingKey);
      this.pass = this.commandEncoder().beginComputePass({
        timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
    }
    return this.pass;
  };
  own.dispatch = function (this: QueueInternals, req: { key: string }) {
    if (keys.length >= MAX_PASSES) this.flush();
    pendingKey = req.key;
    orig.dispatch.call(this, req);
    this.endPass();
  };
  own.flush = function (this: QueueInternals) {
    if (this.encoder && keys.length > 0) {
      this.endPass();
      const n = keys.length;
      const buffer = device.createBuffer({ size: n * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      this.encoder.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
      this.encoder.copyBufferToBuffer(resolve, 0, buffer, 0, n * 16);
      batches.push({ buffer, keys });
      keys = [];
    }
    orig.flush.call(this);
  };
  return {
    async stop() {
      await rt.sync();
      delete own.computePass;
      delete own.dispatch;
      delete own.flush;
      const byKey = new Map<string, KernelTime>();
      let totalMs = 0;
      let dispatches = 0;
      for (const b of batches) {
        await b.buffer.mapAsync(GPUMapMode.READ);
        const t = new BigUint64Array(b.buffer.getMappedRange());
        b.keys.forEach((key, i) => {
          const ms = Number(t[2 * i + 1]! - t[2 * i]!) / 1e6;
          if (!(ms >= 0 && ms < 1e6)) return;
          const e = byKey.get(key) ?? { key, ms: 0, count: 0 };
          e.ms += ms;
          e.count++;
          byKey.set(key, e);
          totalMs += ms;
          dispatches++;
        });
        b.buffer.unmap();
        b.buffer.destroy();
      }
      querySet.destroy();
      resolve.destroy();
      return { kernels: [...byKey.values()].sort((a, b) => b.ms - a.ms), totalMs, dispatches };
    },
  };
}
