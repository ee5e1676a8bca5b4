/**
 * Matrix multiplication: C[b] = act(A[b] @ B[b] + bias), batched with broadcast batch dims, any
 * operand strides (a transposed operand is just a view with swapped strides, never a copy), an
 * optional second output holding the pre-activation value (for autograd), and a float64 reference.
 *
 * Schedules (schedules.ts): `direct` (register-blocked, operands straight from storage: the
 * CPU-adapter choice), `subgroup` (direct with A shared across subgroup lanes: the CPU-adapter
 * choice where the device has the `subgroups` feature), `tiled` (workgroup-memory tiles, 4×4 per
 * thread: the default on hardware GPUs), `dot` (one workgroup per output with a tree reduction:
 * tiny outputs, long K), and split-K over any tile kernel (partials to a scratch buffer, then a
 * fixed-order reduce: deterministic, no atomics). plan.ts picks one per shape; tuner.ts times
 * candidates per adapter and shape class.
 *
 * Files: types.ts (configs, plans, options) · layout.ts (operand checks, uniform block) ·
 * reference.ts (float64) · wgsl.ts (bindings, epilogue) · schedules.ts (the kernels) · plan.ts
 * (defaults, tuned plans) · launch.ts (`matmulGpu`) · tuner.ts (`tuneMatmul`). NOTES.md: the lab
 * notebook (conditions, micro-benchmarks, what was tried and dropped).
 *
 * Versions, GFLOP/s on SwiftShader (2 shared vCPUs; f32, square, contiguous; "cpu" = flop per
 * process CPU time, used while the machine was loaded):
 *  v1 one thread per output (direct 1×1)                                    512³ 0.30
 *  v2 workgroup-memory tiles, 4×4/thread, bk 16, vec4 tile reads            512³ 0.75, 1024³ 1.0 cpu
 *  v3 register-blocked from storage, scalar loads, 16×8/thread              512³ 2.9–3.1, 1024³ 2.3–2.7 cpu
 *  v4 + vec4 loads, 16×32/thread                                            1024³ 3.55
 *  v5 + vec4 stores, epilogue loop, 32×16/thread, 4×2 threads              512³ 4.25, 1024³ 5.10
 *  v6 + A shared across subgroup lanes (`subgroup`), 32×16/thread, 4 threads   256³/512³ ≈20% less CPU than v5
 * Tried, not kept: A rows shared through workgroup memory (0.6 at 512³), texture loads (no gain),
 * split-K at 1024³ (slower).
 */
export {
  type DirectConfig,
  type DotConfig,
  type MatmulActivation,
  type MatmulConfig,
  type MatmulDims,
  type MatmulGpuOptions,
  type MatmulOptions,
  type MatmulPlan,
  type SubgroupConfig,
  type TiledConfig,
  MATMUL_ACTIVATIONS,
  configKey,
  planKey,
} from './types.js';
export { MAX_MATMUL_BATCH_RANK } from './layout.js';
export { activationCpu, matmulCpu } from './reference.js';
export type { VecMode } from './schedules.js';
export {
  clearMatmulTunings,
  defaultMatmulPlan,
  exportMatmulTunings,
  importMatmulTunings,
  matmulPlanFor,
  matmulShapeClass,
  subgroupSizes,
} from './plan.js';
export { matmulGpu } from './launch.js';
export { type MatmulTiming, type MatmulTuneResult, matmulCandidates, tuneMatmul } from './tuner.js';
