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
  /** [batch, heads, length, headDim], contiguous f32 (also k, v). */
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

/** The vector width the operands allow: vec4 when the head dim and every offset are multiples of 4. */
function widthOf(D: number, operands: GpuOperand[]): 1 | 4 {
  return D % 4 === 0 && operands.every((o) => o.offset % 4 === 0) ? 4 : 1;
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
  const u = baseUniforms(dims, blocks, scale, causal, args.keyPaddingMask, drop)
    .u32(U.Q, args.q.offset / W)
    .u32(U.K, args.k.offset / W)
    .u32(U.V, args.v.offset / W)
    .u32(U.O, args.out.offset / W)
    .u32(U.LSE, args.lse.offset);
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
    baseUniforms(dims, blocks, scale, causal, args.keyPaddingMask, drop)
      .u32(U.Q, args.q.offset / W)
      .u32(U.K, args.k.offset / W)
      .u32(U.V, args.v.offset / W)
      .u32(U.DO, args.dOut.offset / W)
      .u32(U.LSE, args.lse.offset)
      .u32(U.STATS, args.stats.offset / 2);

  queue.dispatch({
    key: `attn-stats:${D}:${W}`,
    source: () => statsSource(G),
    storage: [args.stats.buffer, args.out.buffer, args.dOut.buffer, args.lse.buffer],
    uniforms: common(1).u32(U.O, args.out.offset / W).data,
    workgroups: grid(Math.ceil((B * H * L) / 64), maxDim),
    label: 'attention backward stats',
  });

  const dqBlocks = Math.ceil(L / (dqCfg.wg * dqCfg.per));
  queue.dispatch({
    key: `attn-dq:${variant}:${tileKey(dqCfg)}${drop ? ':drop' : ''}`,
    source: () => dqSource(G, dqCfg, !!drop),
    storage: [args.dq.buffer, args.q.buffer, args.k.buffer, args.v.buffer, args.dOut.buffer, args.stats.buffer, mask],
    uniforms: common(dqBlocks).u32(U.O, args.dq.offset / W).data,
    workgroups: grid(B * H * dqBlocks, maxDim),
    label: 'attention backward dQ',
  });

  const kvBlocks = Math.ceil(L / (dkvCfg.wg * dkvCfg.per));
  queue.dispatch({
    key: `attn-dkv:${variant}:${tileKey(dkvCfg)}${drop ? ':drop' : ''}`,
    source: () => dkvSource(G, dkvCfg, !!drop),
    storage: [
      args.dk.buffer,
      args.dv.buffer,
      args.q.buffer,
      args.k.buffer,
      args.v.buffer,
      args.dOut.buffer,
      args.stats.buffer,
      mask,
    ],
    uniforms: common(kvBlocks)
      .u32(U.O, args.dk.offset / W)
      .u32(U.OUT2, args.dv.offset / W).data,
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
