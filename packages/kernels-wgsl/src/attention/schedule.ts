/**
 * The schedules of the attention kernels: threads per workgroup, rows per thread, tile rows, and
 * the defaults chosen by measurement per kind of adapter (NOTES.md has the runs behind them).
 *
 * Chosen, software adapters (SwiftShader): 4-row tiles; L ≤ 256 and d ≤ 64: 4-thread workgroups,
 * per = 16 (d ≤ 32) or 4; longer sequences: 16 threads, per = 16 (d ≤ 32) or 8 (d ≤ 64); d > 64:
 * 16 threads, per = 1 (compile time grows with per·headDim).
 * Chosen, hardware GPUs (H200 through Dawn/Vulkan): one row per thread; 64 threads × 8-key tiles
 * (d ≤ 64), 32 × 4 (d > 64). GPU timestamps, ms fwd | dQ | dK/dV at L 1024, d 32 (wg×per×tile):
 *   16×16×4   7.9 | 13.2 | 24.1   (the SwiftShader schedule)
 *   32×1×32   1.05 | 1.44 | 3.60
 *   64×1×16   0.66 | 1.51 | 2.62
 *   64×1×8    0.72 | 1.31 | 2.16  (kept: best total)
 *   64×2×8    1.05 | 3.41 | 6.29
 */

/**
 * A kernel's schedule. `wg` threads per workgroup; each thread owns `per` rows of the side it keeps
 * in registers (query rows in the forward and dQ kernels, key rows in the dK/dV kernel), so a
 * workgroup covers `wg·per` rows; the other side streams through workgroup memory `tile` rows at a
 * time.
 */
export interface AttentionTileConfig {
  wg: number;
  per: number;
  tile: number;
}

export interface AttentionTiles {
  fwd: AttentionTileConfig;
  dq: AttentionTileConfig;
  dkv: AttentionTileConfig;
}

/** Workgroup memory every schedule stays within: the portable WebGPU default. */
export const ATTENTION_WORKGROUP_BYTES = 16384;

/** Bytes of workgroup memory a kernel of head dim `headDim` and tile `tile` uses. */
export function attentionWorkgroupBytes(kind: 'fwd' | 'dq' | 'dkv', headDim: number, tile: number): number {
  // Two [tile, headDim] f32 tiles, plus per-row extras (key bias: 1 word; query stats: 2 words).
  return 2 * tile * headDim * 4 + tile * (kind === 'dkv' ? 8 : 4);
}

/**
 * The default schedules for `headDim`, sequence `length` and the kind of adapter (chosen by
 * measurement: the header above, NOTES.md). On CPU adapters rows per thread trade workgroup-memory
 * loads (each feeds `per` FMAs) against registers and pipeline compile time (∝ per·headDim);
 * short sequences use fewer rows per workgroup so they are not mostly idle lanes. GPUs want many
 * threads instead: one row each, wide key tiles.
 */
export function attentionTiles(headDim: number, length: number, software = true): AttentionTiles {
  const fit = (kind: 'fwd' | 'dq' | 'dkv', want: number) => {
    let t = want;
    while (t > 1 && attentionWorkgroupBytes(kind, headDim, t) > ATTENTION_WORKGROUP_BYTES) t--;
    return t;
  };
  if (!software) {
    const wg = headDim <= 64 ? 64 : 32;
    const cfg = (kind: 'fwd' | 'dq' | 'dkv') => ({ wg, per: 1, tile: fit(kind, headDim <= 64 ? 8 : 4) });
    return { fwd: cfg('fwd'), dq: cfg('dq'), dkv: cfg('dkv') };
  }
  // Up to 256 keys: 4-thread workgroups (one SIMD group on SwiftShader, so barriers cost next to
  // nothing) with 16 (d ≤ 32) or 4 (d ≤ 64) rows per thread; longer sequences: 16 threads.
  const medium = length <= 256 && headDim <= 64;
  const per = headDim > 64 ? 1 : headDim <= 32 ? 16 : medium ? 4 : 8;
  const wg = medium ? 4 : 16;
  return {
    fwd: { wg, per, tile: fit('fwd', 4) },
    dq: { wg, per, tile: fit('dq', 4) },
    dkv: { wg, per, tile: fit('dkv', 4) },
  };
}
