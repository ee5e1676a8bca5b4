/**
 * Tiled ("flash") multi-head attention, forward and backward, with key-padding masks and causal
 * masking, and float64 CPU references (straightforward O(L²·d)) beside the kernels.
 *
 * q, k, v, out, dOut, dq, dk, dv are contiguous f32 [batch, heads, length, headDim]; the key-padding
 * mask is [batch, length] i32/bool (any strides; 0 = padding: that key is masked).
 *
 *  - Forward (FlashAttention-2's online softmax): a workgroup owns wg·per query rows, each thread
 *    `per` rows held in registers (q pre-scaled by scale·log2 e, so exp2 does the softmax); K/V
 *    stream through workgroup memory `tile` keys at a time. Writes O and the per-row logsumexp.
 *  - Backward: (1) per-row stats (lse·log2 e, D = Σ dO⊙O); (2) dQ over query blocks, recomputing
 *    P = exp2(s − lse) tile by tile from K/V; (3) dK/dV over key blocks (each thread owns key rows),
 *    streaming Q/dO tiles. Deterministic: no atomics, no L×L buffers, every output written once.
 *  - Masks: padded keys get a −1e30 bias; causal pairs are selected to −1e30 against a per-row
 *    limit. Finite sentinels only (WGSL may assume no infinities): the running max starts at −5e29,
 *    so a row that has seen no key keeps m < −1e29 and is written as zeros with lse = −inf (passed
 *    in a uniform word); its stats row carries +1e30 so the backward's P is 0 for it. Causal and
 *    masked are uniform flags, so one pipeline per (headDim, schedule) serves every call.
 *  - Barriers: two per tile loop — after the cooperative tile write (read-after-write) and after
 *    the compute that reads it (write-after-read, before the next tile overwrites it).
 *  - Inner loops are fully unrolled with constant indices: SwiftShader turns a constant-index
 *    workgroup load into one broadcast load, but a dynamic index into a private array costs ~10×.
 *  - Dropout on the probabilities (`dropout` p): pair (bh, i, j) is kept iff
 *    uniform(key, base + (bh·L + i)·L + j) ≥ p (the counter RNG of random.ts), kept ones scaled
 *    by 1/(1 − p). The forward's normaliser uses the undropped probabilities (dropout acts after
 *    the softmax); both backward kernels regenerate the same mask, and D = Σ dO·O still holds
 *    because O already carries it. A separate pipeline (the hash per pair costs), so attention
 *    without dropout is unchanged.
 *
 * Files: schedule.ts (tile configs, the chosen defaults) · options.ts (options, operand checks) ·
 * wgsl.ts (uniform words, shared WGSL) · forward.ts, backward.ts (the kernels' WGSL) · launch.ts
 * (`attentionForwardGpu`, `attentionBackwardGpu`) · reference.ts (float64). NOTES.md: the lab
 * notebook (every version and bench run).
 *
 * Versions (SwiftShader, 2 cores, B 1, H 4, d 32; per-kernel minimum wall-clock, loaded machine):
 *  v1 one query row per thread, 32-key tiles                    L 256  fwd 100–276 ms, bwd 500–740 ms
 *  v2 each K/V word loaded once per tile for all rows, per 16   L 256  fwd 9–12 ms, dQ 15 ms
 *  v3 causal/masked as uniform flags, one RMW per tile          L 1024 fwd 118, dQ 126, dK/dV 193 ms
 *  v4 K/V straight from storage, no barriers (not kept: 3–4× slower compiles)   L 1024 fwd 87 ms
 *  v5 4-thread workgroups for L ≤ 256 (kept)          B 8, L 64, d 32: fwd + bwd 30 + 64 → 6.5 + 21.8 ms
 *  v6 hardware GPUs: one row per thread, 64 × 8-key tiles (kept)   H200, L 1024, GPU timestamps: fwd+bwd
 *     45.2 → 4.2 ms
 * Against the composed path (matmul → softmax → matmul): forward 2–3.5×, fwd+bwd 1.0–2.0× here;
 * the sure win is memory, O(L·d) instead of [L, L] matrices.
 */
export {
  ATTENTION_WORKGROUP_BYTES,
  type AttentionTileConfig,
  type AttentionTiles,
  attentionTiles,
  attentionWorkgroupBytes,
} from './schedule.js';
export { type AttentionDropout, type AttentionOptions, attentionDropoutFactor } from './options.js';
export {
  type AttentionBackwardArgs,
  type AttentionForwardArgs,
  attentionBackwardGpu,
  attentionForwardGpu,
  attentionSources,
} from './launch.js';
export { type AttentionCpuArgs, attentionBackwardCpu, attentionForwardCpu } from './reference.js';
