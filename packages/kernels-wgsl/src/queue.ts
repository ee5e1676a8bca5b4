/**
 * KernelQueue: the one place that talks to a GPUDevice for compute.
 *
 * - Pipelines are cached by a string key; the WGSL is generated only on a cache miss, so
 *   shapes must travel in uniforms, never in the source (one pipeline serves every shape).
 * - Dispatches are encoded into one shared command encoder and submitted in batches. Each
 *   dispatch gets its own 256-byte-aligned slot in a uniform arena that is uploaded with one
 *   `writeBuffer` right before the submit (queue order makes that write land before the work).
 * - `afterSubmit` callbacks let the owner recycle buffers only once the work that used them is
 *   submitted: a buffer returned to a pool while still referenced by unsubmitted commands could
 *   otherwise be overwritten by a `queue.writeBuffer`, which runs ahead of those commands.
 * - Bind groups are cached by (pipeline, storage buffers and ranges): the uniform slot is a
 *   dynamic offset, so a training loop whose pooled buffers recur reuses its bind groups. Creating
 *   one per dispatch cost ~25 µs of JavaScript plus garbage-collector time for its native wrapper;
 *   the layouts are read from the WGSL (explicit layouts are what allow the dynamic offset).
 */

export interface QueueStats {
  submits: number;
  dispatches: number;
  /** Pipelines created, synchronously on first dispatch or ahead of need by `prepare`. */
  pipelinesCreated: number;
  /** Those of `pipelinesCreated` that `prepare` compiled (createComputePipelineAsync). */
  pipelinesPrepared: number;
  pipelineCacheHits: number;
  bindGroupsCreated: number;
}

export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** What `prepare` needs to compile a pipeline ahead of its first dispatch. */
export type PipelineRequest = Pick<DispatchRequest, 'key' | 'source'>;

/** Called by `prepare` with the pipelines compiled so far and the number it compiles. */
export type CompileProgress = (done: number, total: number) => void;

export interface DispatchRequest {
  /** Cache key of the pipeline: op name plus everything that changes the WGSL text. */
  key: string;
  /**
   * Builds the WGSL on a cache miss. Binding 0 is the uniform block, storage buffers follow from 1,
   * all in group 0; the bind group layout is read from these declarations, so every declared
   * binding must be passed (unlike 'auto' layouts, which drop statically unused ones).
   */
  source: () => string;
  /** Storage buffers for @binding(1), @binding(2), ... in order. */
  storage: Binding[];
  /** Uniform block contents (binding 0), at most `UNIFORM_SLOT_BYTES`. Omit for kernels without one. */
  uniforms?: ArrayBufferView;
  /** Workgroup counts; each must be ≤ the device's maxComputeWorkgroupsPerDimension. */
  workgroups: [number, number?, number?];
  label?: string;
}

/** Size of one uniform slot: large enough for the biggest metadata block any kernel uses. */
export const UNIFORM_SLOT_BYTES = 512;
const SLOTS_PER_BATCH = 256;

/** Adapter names that mean a CPU implementation: kernels pick CPU-friendly schedules for them. */
const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|warp|software|unknown/i;

const adapterKeys = new WeakMap<KernelQueue, string>();

/**
 * Names the adapter behind a queue: kernels choose schedules by it (software or hardware) and the
 * matmul tunings are cached under it. Pass GPUAdapterInfo or any string.
 */
export function setAdapterName(
  queue: KernelQueue,
  info: string | { vendor?: string; architecture?: string; device?: string; description?: string },
): void {
  adapterKeys.set(
    queue,
    typeof info === 'string'
      ? info
      : [info.vendor, info.architecture, info.device, info.description].map((s) => s ?? '').join('|'),
  );
}

/**
 * The adapter's name: set by `setAdapterName`, else the device's adapterInfo where the platform has it, else 'unknown'.
 */
export function adapterKey(queue: KernelQueue): string {
  const known = adapterKeys.get(queue);
  if (known) return known;
  const info = (queue.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const key = info ? [info.vendor, info.architecture, info.device, info.description].join('|') : 'unknown';
  adapterKeys.set(queue, key);
  return key;
}

/** Whether the queue's adapter is a CPU implementation (SwiftShader, llvmpipe, WARP) or unnamed. */
export function isSoftwareAdapter(queue: KernelQueue): boolean {
  return SOFTWARE_ADAPTER.test(adapterKey(queue));
}

/**
 * Bind groups kept per queue: a training step uses a few hundred. A full cache starts over (cheaper
 * to keep than an LRU order, and a working set larger than the cache would miss under LRU as well).
 */
const BIND_GROUP_CACHE_SIZE = 4096;

/**
 * One level of the bind-group cache, a trie over small integers: the pipeline's id, then per storage
 * binding its buffer's id (a range adds −id, offset, size). Walking it costs a few integer Map
 * lookups and allocates nothing, where a string key cost a concatenation per binding.
 */
interface BindGroupTrie {
  next: Map<number, BindGroupTrie> | null;
  group: GPUBindGroup | null;
}

/** `@group(0) @binding(N) var<uniform|storage[, access]>` declarations of a kernel's WGSL. */
const BINDING_DECL = /@group\(0\)\s*@binding\((\d+)\)\s*var<\s*(uniform|storage)\s*(?:,\s*(read_write|read))?\s*>/g;

/** The bind group layout entries a WGSL module declares in group 0; the uniform block gets a dynamic offset. */
export function bindGroupLayoutEntries(wgsl: string): GPUBindGroupLayoutEntry[] {
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (const m of wgsl.matchAll(BINDING_DECL)) {
    const type: GPUBufferBindingType =
      m[2] === 'uniform' ? 'uniform' : m[3] === 'read_write' ? 'storage' : 'read-only-storage';
    entries.push({
      binding: Number(m[1]),
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type, hasDynamicOffset: type === 'uniform' },
    });
  }
  return entries.sort((a, b) => a.binding - b.binding);
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** Small integer naming the pipeline in bind-group cache keys. */
  id: number;
}

export class KernelQueue {
  readonly device: GPUDevice;
  readonly stats: QueueStats = {
    submits: 0,
    dispatches: 0,
    pipelinesCreated: 0,
    pipelinesPrepared: 0,
    pipelineCacheHits: 0,
    bindGroupsCreated: 0,
  };
  private readonly pipelines = new Map<string, CachedPipeline>();
  private bindGroups: BindGroupTrie = { next: null, group: null };
  private bindGroupsCached = 0;
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private readonly uniformArena: ArrayBuffer;
  /** Word view of the arena: a Uint32Array uniform block (UniformWriter's) is copied word by word, no view made. */
  private readonly arenaWords: Uint32Array;
  private readonly uniformBuffer: GPUBuffer;
  /** `device.limits` is a native getter (a call into Dawn per read): read it once. */
  readonly maxWorkgroupsPerDimension: number;
  /** setBindGroup's dynamic-offset list, refilled per dispatch (WebGPU copies it during the call). */
  private readonly dynamicOffset = [0];
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** The pipeline last set on `pass`: consecutive dispatches of one kernel skip setPipeline. */
  private passPipeline: GPUComputePipeline | null = null;
  private slotsUsed = 0;
  private afterSubmitCallbacks: (() => void)[] = [];
  private readonly slotBytes: number;
  private profiler: Profiler | null = null;
  /** Set while `trace` runs: dispatches land here instead of the encoder. */
  private traced: Map<string, PipelineRequest> | null = null;

  constructor(device: GPUDevice) {
    this.device = device;
    this.slotBytes = Math.max(UNIFORM_SLOT_BYTES, device.limits.minUniformBufferOffsetAlignment);
    this.maxWorkgroupsPerDimension = device.limits.maxComputeWorkgroupsPerDimension;
    this.uniformArena = new ArrayBuffer(this.slotBytes * SLOTS_PER_BATCH);
    this.arenaWords = new Uint32Array(this.uniformArena);
    this.uniformBuffer = device.createBuffer({
      label: 'rnagrad uniform arena',
      size: this.slotBytes * SLOTS_PER_BATCH,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  /** Number of commands encoded but not yet submitted. */
  get pending(): number {
    return this.slotsUsed + (this.encoder ? 1 : 0);
  }

  pipeline(key: string, source: () => string): GPUComputePipeline {
    return this.cachedPipeline(key, source).pipeline;
  }

  private cachedPipeline(key: string, source: () => string): CachedPipeline {
    const cached = this.pipelines.get(key);
    if (cached) {
      this.stats.pipelineCacheHits++;
      return cached;
    }
    const code = source();
    const { layout, pipelineLayout } = this.layoutOf(key, code);
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: pipelineLayout,
      compute: { module: this.device.createShaderModule({ label: key, code }), entryPoint: 'main' },
    });
    return this.remember(key, pipeline, layout);
  }

  private layoutOf(key: string, code: string) {
    const layout = this.device.createBindGroupLayout({ label: key, entries: bindGroupLayoutEntries(code) });
    return { layout, pipelineLayout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }) };
  }

  private remember(key: string, pipeline: GPUComputePipeline, layout: GPUBindGroupLayout): CachedPipeline {
    const entry = { pipeline, layout, id: this.pipelines.size + 1 };
    this.pipelines.set(key, entry);
    this.stats.pipelinesCreated++;
    return entry;
  }

  /**
   * Runs `run` with dispatches recorded instead of encoded (copies and clears are dropped too): nothing
   * reaches the GPU, so the numbers `run` computes are meaningless. Returns each pipeline it asked
   * for once, in first-use order, for `prepare`.
   */
  trace(run: () => void): PipelineRequest[] {
    if (this.traced) throw new Error('KernelQueue.trace: already tracing');
    this.flush();
    const traced = new Map<string, PipelineRequest>();
    this.traced = traced;
    try {
      run();
    } finally {
      this.traced = null;
      this.flush();
    }
    return [...traced.values()];
  }

  /**
   * Compiles the pipelines of `requests` that are not cached yet, ahead of their first dispatch,
   * with createComputePipelineAsync: all at once by default (the driver spreads them over its
   * threads). With `callerCompiles`, one compiles asynchronously at a time while the calling thread
   * compiles the others synchronously: for Dawn in Node, which waits for async results by polling
   * the event loop and so keeps a core busy for nothing (measured on SwiftShader: async alone
   * costs 2× the CPU of synchronous creation). `onProgress` sees (0, m), then each completion.
   * A shader that fails rejects with an error naming its key and the compiler's message; the
   * others still land. Resolves to the number compiled.
   */
  async prepare(
    requests: readonly PipelineRequest[],
    opts: { onProgress?: CompileProgress; callerCompiles?: boolean } = {},
  ): Promise<number> {
    const missing = new Map<string, PipelineRequest>();
    for (const r of requests) if (!this.pipelines.has(r.key) && !missing.has(r.key)) missing.set(r.key, r);
    const total = missing.size;
    let done = 0;
    opts.onProgress?.(0, total);
    const failures: string[] = [];
    const compile = async ({ key, code }: { key: string; code: string }, inline: boolean) => {
      try {
        const { layout, pipelineLayout } = this.layoutOf(key, code);
        this.device.pushErrorScope('validation');
        const descriptor: GPUComputePipelineDescriptor = {
          label: key,
          layout: pipelineLayout,
          compute: { module: this.device.createShaderModule({ label: key, code }), entryPoint: 'main' },
        };
        const created = inline ? this.device.createComputePipeline(descriptor) : null;
        const invalid = await this.device.popErrorScope();
        if (invalid) throw new Error(invalid.message);
        const pipeline = created ?? (await this.device.createComputePipelineAsync(descriptor));
        // A dispatch while this one compiled may have created it synchronously.
        if (!this.pipelines.has(key)) {
          this.remember(key, pipeline, layout);
          this.stats.pipelinesPrepared++;
        }
      } catch (err) {
        failures.push(`${key}: ${(err as Error).message}`);
      }
      opts.onProgress?.(++done, total);
    };
    // Longest WGSL first (the unrolled kernels, which cost most to compile): the lanes end together.
    const pending: { key: string; code: string }[] = [];
    for (const { key, source } of missing.values()) {
      try {
        pending.push({ key, code: source() });
      } catch (err) {
        failures.push(`${key}: ${(err as Error).message}`);
        opts.onProgress?.(++done, total);
      }
    }
    pending.sort((a, b) => b.code.length - a.code.length);
    if (!opts.callerCompiles) {
      await Promise.all(pending.map((r) => compile(r, false)));
    } else {
      const asyncLane = (async () => {
        for (let r = pending.shift(); r; r = pending.shift()) await compile(r, false);
      })();
      for (let r = pending.shift(); r; r = pending.shift()) {
        await compile(r, true);
        // Lets the event loop deliver the async lane's result before the next synchronous compile.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      await asyncLane;
    }
    if (failures.length)
      throw new Error(`KernelQueue.prepare: ${failures.length} pipeline(s) failed to compile:\n${failures.join('\n')}`);
    return total;
  }

  /** A small integer naming `buffer`, fixed at first sight: bind-group cache keys and the pool's reuse order use it. */
  bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }

  /** The bind group of these storage bindings (and the uniform arena at binding 0 if `uniform`), cached. */
  private bindGroup(p: CachedPipeline, storage: Binding[], uniform: boolean, label: string): GPUBindGroup {
    if (this.bindGroupsCached >= BIND_GROUP_CACHE_SIZE) {
      this.bindGroups = { next: null, group: null };
      this.bindGroupsCached = 0;
    }
    let node = trieStep(this.bindGroups, p.id);
    for (let i = 0; i < storage.length; i++) {
      const b = storage[i]!;
      if ('buffer' in b) {
        node = trieStep(trieStep(trieStep(node, -this.bufferId(b.buffer)), b.offset ?? 0), b.size ?? -1);
      } else {
        node = trieStep(node, this.bufferId(b));
      }
    }
    if (node.group) return node.group;
    const entries: GPUBindGroupEntry[] = [];
    if (uniform)
      entries.push({ binding: 0, resource: { buffer: this.uniformBuffer, offset: 0, size: UNIFORM_SLOT_BYTES } });
    storage.forEach((b, i) => entries.push({ binding: i + 1, resource: 'buffer' in b ? b : { buffer: b } }));
    node.group = this.device.createBindGroup({ label, layout: p.layout, entries });
    this.stats.bindGroupsCreated++;
    this.bindGroupsCached++;
    return node.group;
  }

  dispatch(req: DispatchRequest): void {
    if (this.traced) {
      if (!this.traced.has(req.key)) this.traced.set(req.key, { key: req.key, source: req.source });
      return;
    }
    const wg = req.workgroups;
    const x = wg[0];
    const y = wg[1] ?? 1;
    const z = wg[2] ?? 1;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.maxWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new RangeError(
        `${req.key}: dispatch of [${x}, ${y}, ${z}] workgroups exceeds this device's limit of ${max} per dimension`,
      );
    }
    const uniforms = req.uniforms;
    if (uniforms && uniforms.byteLength > UNIFORM_SLOT_BYTES)
      throw new RangeError(`${req.key}: uniform block of ${uniforms.byteLength} bytes exceeds ${UNIFORM_SLOT_BYTES}`);
    if (this.slotsUsed === SLOTS_PER_BATCH) this.flush();
    const p = this.cachedPipeline(req.key, req.source);
    const bindGroup = this.bindGroup(p, req.storage, uniforms !== undefined, req.key);
    const pass = this.profiler ? this.profiledPass(req.key) : this.computePass();
    if (this.passPipeline !== p.pipeline) {
      pass.setPipeline(p.pipeline);
      this.passPipeline = p.pipeline;
    }
    if (uniforms) {
      const offset = this.slotsUsed * this.slotBytes;
      this.writeUniforms(offset, uniforms);
      this.slotsUsed++;
      this.dynamicOffset[0] = offset;
      pass.setBindGroup(0, bindGroup, this.dynamicOffset);
    } else {
      pass.setBindGroup(0, bindGroup);
    }
    pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
    if (this.profiler) this.endPass();
  }

  /** Copies a uniform block into the arena at byte `offset` (a multiple of 256). */
  private writeUniforms(offset: number, uniforms: ArrayBufferView): void {
    if (uniforms instanceof Uint32Array) {
      // Blocks are a few dozen words: a loop beats making two typed-array views per dispatch.
      const words = this.arenaWords;
      const base = offset >>> 2;
      for (let i = 0; i < uniforms.length; i++) words[base + i] = uniforms[i]!;
    } else {
      const bytes = uniforms.byteLength;
      new Uint8Array(this.uniformArena, offset, bytes).set(new Uint8Array(uniforms.buffer, uniforms.byteOffset, bytes));
    }
  }

  /**
   * Profiling mode (needs the 'timestamp-query' feature): every dispatch gets its own compute pass
   * with GPU timestamps. `readProfile()` returns per-kernel GPU time of the work since.
   */
  startProfiling(capacity = 2048): void {
    if (!this.device.features.has('timestamp-query'))
      throw new Error('startProfiling: this device lacks the timestamp-query feature');
    this.flush();
    this.profiler = {
      querySet: this.device.createQuerySet({ type: 'timestamp', count: 2 * capacity }),
      resolve: this.device.createBuffer({
        size: 16 * capacity,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
      keys: [],
      capacity,
    };
  }

  /** Stops profiling and returns GPU milliseconds per pipeline key (summed), largest first. */
  async readProfile(): Promise<{ key: string; ms: number; count: number }[]> {
    const prof = this.profiler;
    if (!prof) throw new Error('readProfile: profiling was not started');
    this.profiler = null;
    const n = prof.keys.length;
    const out = this.device.createBuffer({
      size: Math.max(16, 16 * n),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    if (n > 0) {
      const encoder = this.commandEncoder();
      this.endPass();
      encoder.resolveQuerySet(prof.querySet, 0, 2 * n, prof.resolve, 0);
      encoder.copyBufferToBuffer(prof.resolve, 0, out, 0, 16 * n);
    }
    this.flush();
    await out.mapAsync(GPUMapMode.READ);
    const times = new BigUint64Array(out.getMappedRange().slice(0));
    out.unmap();
    out.destroy();
    prof.querySet.destroy();
    prof.resolve.destroy();
    const totals = new Map<string, { ms: number; count: number }>();
    prof.keys.forEach((key, i) => {
      const t = totals.get(key) ?? { ms: 0, count: 0 };
      t.ms += Number(times[2 * i + 1]! - times[2 * i]!) / 1e6;
      t.count++;
      totals.set(key, t);
    });
    return [...totals].map(([key, t]) => ({ key, ...t })).sort((a, b) => b.ms - a.ms);
  }

  /** Encodes a buffer-to-buffer copy in stream order with the dispatches around it. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (this.traced) return;
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** Zero-fills `size` bytes of `buffer` from `offset`, in order with the work before. */
  clear(buffer: GPUBuffer, offset: number, size: number): void {
    if (this.traced) return;
    this.endPass();
    this.commandEncoder().clearBuffer(buffer, offset, size);
  }

  /** Runs `fn` once the commands encoded so far have been submitted. */
  afterSubmit(fn: () => void): void {
    this.afterSubmitCallbacks.push(fn);
  }

  /** Submits everything encoded so far as one command buffer. */
  flush(): void {
    if (this.encoder) {
      this.endPass();
      if (this.slotsUsed > 0) {
        this.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformArena, 0, this.slotsUsed * this.slotBytes);
      }
      this.device.queue.submit([this.encoder.finish()]);
      this.stats.submits++;
      this.encoder = null;
      this.slotsUsed = 0;
    }
    const callbacks = this.afterSubmitCallbacks;
    this.afterSubmitCallbacks = [];
    for (const fn of callbacks) fn();
  }

  /** Submits pending work and resolves when the GPU has finished all of it. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    this.uniformBuffer.destroy();
    this.pipelines.clear();
    this.bindGroups = { next: null, group: null };
    this.bindGroupsCached = 0;
  }

  private commandEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'rnagrad batch' });
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private profiledPass(key: string): GPUComputePassEncoder {
    const prof = this.profiler!;
    this.endPass();
    const i = prof.keys.length;
    if (i >= prof.capacity) {
      this.profiler = null;
      return this.computePass();
    }
    prof.keys.push(key);
    this.pass = this.commandEncoder().beginComputePass({
      timestampWrites: { querySet: prof.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    });
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
      this.passPipeline = null;
    }
  }
}

/** The child of `node` under `key`, made on first use. */
function trieStep(node: BindGroupTrie, key: number): BindGroupTrie {
  node.next ??= new Map();
  let child = node.next.get(key);
  if (!child) {
    child = { next: null, group: null };
    node.next.set(key, child);
  }
  return child;
}

interface Profiler {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  keys: string[];
  capacity: number;
}

/**
 * Splits `count` workgroups over x and y so that neither exceeds the per-dimension limit.
 * Kernels rebuild the linear workgroup index as `wid.x + wid.y * nwg.x`.
 */
export function grid(count: number, maxPerDim = 65535): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  if (y > maxPerDim) throw new RangeError(`dispatch of ${count} workgroups exceeds ${maxPerDim}² workgroups`);
  return [Math.ceil(count / y), y];
}
