/** `matmulGpu`: checks the operands, picks the plan, and dispatches the schedule (and split-K reduce). */
import { type KernelQueue, grid } from '../queue.js';
import type { GpuOperand } from '../layout.js';
import { type DirectConfig, type MatmulDims, type MatmulGpuOptions, type SubgroupConfig, configKey } from './types.js';
import { type Layout, type Mat, checkDtypes, resolveLayout, writeUniforms } from './layout.js';
import { type Flags, flagKey } from './wgsl.js';
import { REDUCE_WG, type VecMode, directSource, dotSource, reduceSource, tiledSource } from './schedules.js';
import { matmulPlanFor, subgroupPlanError, tileOf, validPlan } from './plan.js';

interface Scratch {
  buffer: GPUBuffer;
  bytes: number;
}
const scratch = new WeakMap<KernelQueue, Scratch>();

/** Split-K partials live in one scratch buffer per queue, reused in stream order and grown as needed. */
function scratchBuffer(queue: KernelQueue, bytes: number): GPUBuffer {
  const cur = scratch.get(queue);
  if (cur && cur.bytes >= bytes) return cur.buffer;
  if (cur) queue.afterSubmit(() => cur.buffer.destroy());
  const size = Math.max(bytes, 1 << 20);
  const buffer = queue.device.createBuffer({
    label: 'rnagrad matmul split-K partials',
    size,
    usage: GPUBufferUsage.STORAGE,
  });
  scratch.set(queue, { buffer, bytes: size });
  return buffer;
}

/**
 * Which operands the direct kernel reads as vec4: along k when k is the unit-stride dim, else along
 * m (A) or n (B), provided every row start is 16-byte aligned and the binding holds whole vec4s.
 */
function vectorModes(
  L: Layout,
  c: DirectConfig | SubgroupConfig,
  aBuf: GPUBuffer,
  bBuf: GPUBuffer,
): [VecMode, VecMode] {
  const al = (x: number) => x % 4 === 0;
  const batchOk = (k: number) => L.batchStrides[k]!.every(al);
  let va: VecMode = 's';
  let vb: VecMode = 's';
  if (aBuf.size % 16 === 0 && al(L.a.off) && batchOk(1)) {
    // The subgroup form shares A rows four at a time as vec4s along k.
    if (L.a.s1 === 1 && al(L.a.s0) && (c.kind === 'direct' || c.tm % 4 === 0)) va = 'k';
    else if (L.a.s0 === 1 && al(L.a.s1) && c.tm % 4 === 0 && al(L.m)) va = 'm';
  }
  if (bBuf.size % 16 === 0 && al(L.b.off) && batchOk(2)) {
    if (L.b.s1 === 1 && al(L.b.s0) && c.tn % 4 === 0 && al(L.n)) vb = 'n';
    else if (L.b.s0 === 1 && al(L.b.s1)) vb = 'k';
  }
  return [va, vb];
}

/** Whether C, bias and pre-activation can be bound as vec4 arrays with 16-byte aligned, unit-stride rows. */
function vectorStores(L: Layout, out: GpuOperand, opts: MatmulGpuOptions): boolean {
  const al = (x: number) => x % 4 === 0;
  const ok = (m: Mat | null, buf: GPUBuffer | undefined, k: number) =>
    !!m && !!buf && buf.size % 16 === 0 && m.s1 === 1 && al(m.off) && al(m.s0) && L.batchStrides[k]!.every(al);
  return (
    ok(L.c, out.buffer, 0) &&
    (!L.bias || ok(L.bias, opts.bias?.buffer, 3)) &&
    (!L.pre || ok(L.pre, opts.preActivation?.buffer, 4))
  );
}

/**
 * out = act(a @ b + bias) on the GPU. `out` is [...batch, M, N] (any strides, must not alias an
 * input); `a` is [..., M, K] and `b` [..., K, N], their batch dims broadcasting to out's; `bias`
 * broadcasts to out's shape. Transposed operands are views with swapped strides.
 */
export function matmulGpu(
  queue: KernelQueue,
  out: GpuOperand,
  a: GpuOperand,
  b: GpuOperand,
  opts: MatmulGpuOptions = {},
): void {
  checkDtypes([out, a, b, opts.bias, opts.preActivation]);
  const L = resolveLayout(out, a, b, opts.bias, opts.preActivation);
  if (L.batch === 0 || L.m === 0 || L.n === 0) return;
  const dims: MatmulDims = { batch: L.batch, m: L.m, n: L.n, k: L.k };
  const plan = opts.plan ?? matmulPlanFor(queue, dims);
  if (!validPlan(plan))
    throw new RangeError(
      `matmul: invalid plan ${JSON.stringify(plan)} (tiled tiles must fit 16 KiB of workgroup memory; at most 256 ` +
        `threads)`,
    );
  if (plan.config.kind === 'subgroup') {
    const why = subgroupPlanError(queue, plan.config);
    if (why) throw new RangeError(`matmul: ${why}`);
  }
  const act = opts.activation ?? 'none';
  const f: Flags = { act, bias: !!opts.bias, pre: !!opts.preActivation, split: false };
  const extraStorage: GPUBuffer[] = [];
  if (opts.bias) extraStorage.push(opts.bias.buffer);
  if (opts.preActivation) extraStorage.push(opts.preActivation.buffer);
  const maxDim = queue.maxWorkgroupsPerDimension;
  const base = { splits: 1, kChunk: L.k, partOff: 0, rowStart: 0, colStart: 0, batchStart: 0 };
  const c = plan.config;

  if (c.kind === 'dot') {
    queue.dispatch({
      key: `matmul:${configKey(c)}:${flagKey(f)}`,
      source: () => dotSource(c, f),
      storage: [out.buffer, a.buffer, b.buffer, ...extraStorage],
      uniforms: writeUniforms(L, base).data,
      workgroups: grid(L.batch * L.m * L.n, maxDim),
      label: 'matmul dot',
    });
    return;
  }

  const splits = Math.max(1, Math.min(plan.splitK, L.k));
  // K chunks are multiples of 4 so vec4 reads along k stay aligned.
  const kChunk = splits > 1 ? Math.ceil(Math.ceil(L.k / splits) / 4) * 4 : L.k;
  let fMain: Flags = splits > 1 ? { ...f, split: true } : f;
  let key: string;
  let source: () => string;
  const vecStorage: GPUBuffer[] = [];
  if (c.kind === 'direct' || c.kind === 'subgroup') {
    if (splits === 1 && c.tn % 4 === 0 && vectorStores(L, out, opts)) fMain = { ...f, vstore: true };
    const [va, vb] = vectorModes(L, c, a.buffer, b.buffer);
    key = `matmul:${configKey(c)}:${va}${vb}:${flagKey(fMain)}`;
    source = () => directSource(c, fMain, va, vb);
    if (va !== 's') vecStorage.push(a.buffer);
    if (vb !== 's') vecStorage.push(b.buffer);
  } else {
    const aKFast = L.a.s1 === 1;
    const bNFast = L.b.s1 === 1;
    key = `matmul:${configKey(c)}:${aKFast ? 'ak' : 'am'}${bNFast ? 'bn' : 'bk'}:${flagKey(fMain)}`;
    source = () => tiledSource(c, fMain, aKFast, bNFast);
  }
  let target: GPUBuffer = out.buffer;
  if (splits > 1) target = scratchBuffer(queue, splits * L.batch * L.m * L.n * 4);
  const storage =
    splits > 1
      ? [target, a.buffer, b.buffer, ...vecStorage]
      : [target, a.buffer, b.buffer, ...extraStorage, ...vecStorage];
  const [bm, bn] = tileOf(c);
  const tilesY = Math.ceil(L.m / bm);
  const tilesX = Math.ceil(L.n / bn);
  const zPer = Math.max(1, Math.floor(maxDim / splits));
  for (let b0 = 0; b0 < L.batch; b0 += zPer) {
    const bCount = Math.min(zPer, L.batch - b0);
    for (let y0 = 0; y0 < tilesY; y0 += maxDim) {
      for (let x0 = 0; x0 < tilesX; x0 += maxDim) {
        const u = writeUniforms(L, {
          splits,
          kChunk,
          partOff: 0,
          rowStart: y0 * bm,
          colStart: x0 * bn,
          batchStart: b0,
        });
        queue.dispatch({
          key,
          source,
          storage,
          uniforms: u.data,
          workgroups: [Math.min(maxDim, tilesX - x0), Math.min(maxDim, tilesY - y0), bCount * splits],
          label: `matmul ${c.kind}`,
        });
      }
    }
  }
  if (splits > 1) {
    queue.dispatch({
      key: `matmul:reduce:${flagKey(f)}`,
      source: () => reduceSource(f),
      storage: [out.buffer, target, b.buffer, ...extraStorage],
      uniforms: writeUniforms(L, { ...base, splits }).data,
      workgroups: grid(Math.ceil((L.batch * L.m * L.n) / REDUCE_WG), maxDim),
      label: 'matmul split-K reduce',
    });
  }
}
