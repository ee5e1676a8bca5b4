/** Launchers of the attention kernels: operand checks, schedule choice, uniforms, dispatches. */
import { type KernelQueue, grid, isSoftwareAdapter } from '../queue.js';
import { type GpuOperand, UniformWriter, numel } from '../layout.js';
import { type AttentionTileConfig, type AttentionTiles, attentionTiles, attentionWorkgroupBytes } from './schedule.js';
import {
  type AttentionDropout,
  type AttentionOptions,
  type Dims,
  checkGpuOperand,
  checkMask,
  dimsOf,
  dropoutOf,
} from './options.js';
import { LOG2E, U, WORDS, gen } from './wgsl.js';
import { forwardSource } from './forward.js';
import { dkvSource, dqSource, statsSource } from './backward.js';

export interface AttentionForwardArgs extends AttentionOptions {
  /** [batch, heads, length, headDim] f32, headDim unit-stride, any other strides (also k, v, out). */
  q: GpuOperand;
  k: GpuOperand;
  v: GpuOperand;
  /** [batch, heads, length, headDim] output. */
  out: GpuOperand;
  /** [batch, heads, length]: natural-log logsumexp of each row's scaled scores (−inf for rows with no key). */
  lse: GpuOperand;
  /** [batch, length] i32/bool, any strides: 1 = token, 0 = padding (that key is masked). */
  keyPaddingMask?: GpuOperand | null;
  /** Schedule override (benchmarks, tests). */
  tiles?: Partial<AttentionTiles>;
}

export interface AttentionBackwardArgs extends AttentionOptions {
  q: GpuOperand;
  k: GpuOperand;
  v: GpuOperand;
  /** The forward's output and logsumexp. */
  out: GpuOperand;
  lse: GpuOperand;
  /** Gradient of the output. */
  dOut: GpuOperand;
  dq: GpuOperand;
  dk: GpuOperand;
  dv: GpuOperand;
  /** Scratch of 2·batch·heads·length f32 (offset even): per-row (lse·log2 e, Σ dO·O). */
  stats: GpuOperand;
  keyPaddingMask?: GpuOperand | null;
  tiles?: Partial<AttentionTiles>;
}

/** The vector width the operands allow: vec4 when the head dim, every offset and stride are multiples of 4. */
function widthOf(D: number, operands: GpuOperand[]): 1 | 4 {
  const aligned = (o: GpuOperand) => [o.offset, ...rowStrides(o)].every((x) => x % 4 === 0);
  return D % 4 === 0 && operands.every(aligned) ? 4 : 1;
}

/** Batch, head and length strides (0 for a size-1 dim, whose stride is never used). */
function rowStrides(o: GpuOperand): [number, number, number] {
  return [0, 1, 2].map((d) => (o.shape[d] === 1 ? 0 : o.strides[d]!)) as [number, number, number];
}

/** Writes the offset and row strides of each operand, in vectors of W, to the four words of its slot. */
function setRows(u: UniformWriter, W: number, ...slots: [number, GpuOperand][]): UniformWriter {
  for (const [slot, o] of slots) {
    const [sb, sh, sl] = rowStrides(o);
    u.u32(slot, o.offset / W)
      .u32(slot + 1, sb / W)
      .u32(slot + 2, sh / W)
      .u32(slot + 3, sl / W);
  }
  return u;
}

function baseUniforms(
  dims: Dims,
  blocks: number,
  scale: number,
  causal: boolean,
  mask: GpuOperand | null | undefined,
  drop: AttentionDropout | null,
): UniformWriter {
  const u = new UniformWriter(WORDS)
    .u32(U.CAUSAL, causal ? 1 : 0)
    .u32(U.BH, dims.B * dims.H)
    .u32(U.H, dims.H)
    .u32(U.L, dims.L)
    .u32(U.BLOCKS, blocks)
    .f32(U.C, scale * LOG2E)
    .f32(U.SCALE, scale)
    .f32(U.NEG_INF, -Infinity);
  if (mask)
    u.u32(U.MASKED, 1).u32(U.MASK, mask.offset).u32(U.MASK_SB, mask.strides[0]!).u32(U.MASK_SL, mask.strides[1]!);
  if (drop)
    u.f32(U.DROP_P, drop.p)
      .u32(U.DROP_KEY, drop.key >>> 0)
      .u32(U.DROP_BASE, drop.base >>> 0);
  return u;
}

function tileKey(t: AttentionTileConfig): string {
  return `${t.wg}x${t.per}x${t.tile}`;
}

function checkTiles(
  op: string,
  kind: 'fwd' | 'dq' | 'dkv',
  t: AttentionTileConfig,
  D: number,
  device: GPUDevice,
): void {
  const bytes = attentionWorkgroupBytes(kind, D, t.tile);
  if (bytes > device.limits.maxComputeWorkgroupStorageSize) {
    throw new RangeError(
      `${op}: ${kind} tile of ${t.tile} rows × headDim ${D} needs ${bytes} bytes of workgroup memory, more than ` +
        `this device's ${device.limits.maxComputeWorkgroupStorageSize}`,
    );
  }
}

/** Forward attention on the GPU: writes `out` and `lse`. Never materialises the L×L scores. */
export function attentionForwardGpu(queue: KernelQueue, args: AttentionForwardArgs): void {
  const op = 'attention';
  const dims = dimsOf(op, args.q, [args.k, args.v, args.out]);
  checkMask(op, args.keyPaddingMask, dims);
  for (const [name, t] of [
    ['q', args.q],
    ['k', args.k],
    ['v', args.v],
    ['out', args.out],
  ] as const)
    checkGpuOperand(op, name, t);
  if (args.lse.dtype !== 'f32' || numel(args.lse.shape) !== dims.B * dims.H * dims.L)
    throw new RangeError(`${op}: lse must be f32 [batch, heads, length]`);
  const { B, H, L, D } = dims;
  if (B * H * L === 0) return;
  const W = widthOf(D, [args.q, args.k, args.v, args.out]);
  const G = gen(D, W);
  const cfg = { ...attentionTiles(D, L, isSoftwareAdapter(queue)).fwd, ...args.tiles?.fwd };
  checkTiles(op, 'fwd', cfg, D, queue.device);
  const causal = args.causal ?? false;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const blocks = Math.ceil(L / (cfg.wg * cfg.per));
  const drop = dropoutOf(op, args.dropout);
  const u = setRows(
    baseUniforms(dims, blocks, scale, causal, args.keyPaddingMask, drop).u32(U.LSE, args.lse.offset),
    W,
    [U.Q, args.q],
    [U.K, args.k],
    [U.V, args.v],
    [U.O, args.out],
  );
  queue.dispatch({
    key: `attn-fwd:${D}:${W}:${tileKey(cfg)}${drop ? ':drop' : ''}`,
    source: () => forwardSource(G, cfg, !!drop),
    storage: [
      args.out.buffer,
      args.lse.buffer,
      args.q.buffer,
      args.k.buffer,
      args.v.buffer,
      (args.keyPaddingMask ?? args.q).buffer,
    ],
    uniforms: u.data,
    workgroups: grid(B * H * blocks, queue.device.limits.maxComputeWorkgroupsPerDimension),
    label: 'attention forward',
  });
}

/**
 * Backward attention on the GPU: three dispatches — per-row statistics (D = Σ dO·O and the lse),
 * dQ over query blocks, dK/dV over key blocks. Deterministic (no atomics); no L×L buffers.
 */
export function attentionBackwardGpu(queue: KernelQueue, args: AttentionBackwardArgs): void {
  const op = 'attentionBackward';
  const dims = dimsOf(op, args.q, [args.k, args.v, args.out, args.dOut, args.dq, args.dk, args.dv]);
  checkMask(op, args.keyPaddingMask, dims);
  const named = [
    ['q', args.q],
    ['k', args.k],
    ['v', args.v],
    ['out', args.out],
    ['dOut', args.dOut],
    ['dq', args.dq],
    ['dk', args.dk],
    ['dv', args.dv],
  ] as const;
  for (const [name, t] of named) checkGpuOperand(op, name, t);
  const { B, H, L, D } = dims;
  if (args.lse.dtype !== 'f32' || numel(args.lse.shape) !== B * H * L)
    throw new RangeError(`${op}: lse must be f32 [batch, heads, length]`);
  if (args.stats.dtype !== 'f32' || numel(args.stats.shape) < 2 * B * H * L || args.stats.offset % 2 !== 0) {
    throw new RangeError(`${op}: stats scratch must hold 2·batch·heads·length f32 at an even offset`);
  }
  if (B * H * L === 0) return;
  const W = widthOf(
    D,
    named.map(([, t]) => t),
  );
  const G = gen(D, W);
  const tiles = attentionTiles(D, L, isSoftwareAdapter(queue));
  const dqCfg = { ...tiles.dq, ...args.tiles?.dq };
  const dkvCfg = { ...tiles.dkv, ...args.tiles?.dkv };
  checkTiles(op, 'dq', dqCfg, D, queue.device);
  checkTiles(op, 'dkv', dkvCfg, D, queue.device);
  const causal = args.causal ?? false;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const drop = dropoutOf(op, args.dropout);
  const maxDim = queue.device.limits.maxComputeWorkgroupsPerDimension;
  const mask = (args.keyPaddingMask ?? args.q).buffer;
  const variant = `${D}:${W}`;
  const common = (blocks: number) =>
    setRows(
      baseUniforms(dims, blocks, scale, causal, args.keyPaddingMask, drop)
        .u32(U.LSE, args.lse.offset)
        .u32(U.STATS, args.stats.offset / 2),
      W,
      [U.Q, args.q],
      [U.K, args.k],
      [U.V, args.v],
      [U.DO, args.dOut],
    );

  queue.dispatch({
    key: `attn-stats:${D}:${W}`,
    source: () => statsSource(G),
    storage: [args.stats.buffer, args.out.buffer, args.dOut.buffer, args.lse.buffer],
    uniforms: setRows(common(1), W, [U.O, args.out]).data,
    workgroups: grid(Math.ceil((B * H * L) / 64), maxDim),
    label: 'attention backward stats',
  });

  const dqBlocks = Math.ceil(L / (dqCfg.wg * dqCfg.per));
  queue.dispatch({
    key: `attn-dq:${variant}:${tileKey(dqCfg)}${drop ? ':drop' : ''}`,
    source: () => dqSource(G, dqCfg, !!drop),
    storage: [args.dq.buffer, args.q.buffer, args.k.buffer, args.v.buffer, args.dOut.buffer, args.stats.buffer, mask],
    uniforms: setRows(common(dqBlocks), W, [U.O, args.dq]).data,
    workgroups: grid(B * H * dqBlocks, maxDim),
    label: 'attention backward dQ',
  });

  const kvBlocks = Math.ceil(L / (dkvCfg.wg * dkvCfg.per));
  const shared = args.dk.buffer === args.dv.buffer;
  queue.dispatch({
    key: `attn-dkv:${variant}:${tileKey(dkvCfg)}${drop ? ':drop' : ''}${shared ? ':shared' : ''}`,
    source: () => dkvSource(G, dkvCfg, !!drop, shared),
    storage: [
      args.dk.buffer,
      ...(shared ? [] : [args.dv.buffer]),
      args.q.buffer,
      args.k.buffer,
      args.v.buffer,
      args.dOut.buffer,
      args.stats.buffer,
      mask,
    ],
    uniforms: setRows(common(kvBlocks), W, [U.O, args.dk], [U.OUT2, args.dv]).data,
    workgroups: grid(B * H * kvBlocks, maxDim),
    label: 'attention backward dK dV',
  });
}

/** WGSL of each attention kernel for a configuration (inspection and tests). */
export function attentionSources(
  headDim: number,
  opts: { length?: number; width?: 1 | 4; tiles?: Partial<AttentionTiles>; dropout?: boolean; software?: boolean } = {},
): Record<'fwd' | 'stats' | 'dq' | 'dkv', string> {
  const W = opts.width ?? (headDim % 4 === 0 ? 4 : 1);
  const G = gen(headDim, W);
  const t = { ...attentionTiles(headDim, opts.length ?? 1024, opts.software ?? true), ...opts.tiles };
  const drop = opts.dropout ?? false;
  return {
    fwd: forwardSource(G, t.fwd, drop),
    stats: statsSource(G),
    dq: dqSource(G, t.dq, drop),
    dkv: dkvSource(G, t.dkv, drop),
  };
}
