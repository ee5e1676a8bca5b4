/** Public types of the matmul kernels: schedule configs, plans, dims and options. */
import type { GpuOperand } from '../layout.js';

export type MatmulActivation = 'none' | 'relu' | 'gelu' | 'geluTanh';
export const MATMUL_ACTIVATIONS: readonly MatmulActivation[] = ['none', 'relu', 'gelu', 'geluTanh'];

/**
 * Register-blocked: each thread keeps a tm×tn block of C in registers and reads A and B straight
 * from storage (vec4 loads where the layout allows), 4 k-steps per loop iteration.
 */
export interface DirectConfig {
  kind: 'direct';
  tm: number;
  tn: number;
  wx: number;
  wy: number;
}
/**
 * Workgroup-memory tiled: (wy·tm)×bk tiles of A and bk×(wx·tn) tiles of B are staged in workgroup memory; each thread
 * computes tm×tn.
 */
export interface TiledConfig {
  kind: 'tiled';
  tm: number;
  tn: number;
  wx: number;
  wy: number;
  bk: number;
}
/**
 * One workgroup of `wg` threads per output element: threads stride over K, then a tree reduction in workgroup memory.
 */
export interface DotConfig {
  kind: 'dot';
  wg: number;
}
/**
 * Register-blocked like `direct`, for adapters with the `subgroups` feature: one row of threads per workgroup (so
 * every thread of a subgroup shares its tm rows, however the adapter groups threads), and each block of 4 k-steps of
 * A is loaded once per subgroup (lane l loads k-step l mod 4) and handed to every lane by `subgroupBroadcast` from
 * lanes 0–3. Correct for any subgroup size ≥ 4; `wx` must be a multiple of the adapter's largest subgroup size.
 */
export interface SubgroupConfig {
  kind: 'subgroup';
  tm: number;
  tn: number;
  wx: number;
}
export type MatmulConfig = DirectConfig | TiledConfig | DotConfig | SubgroupConfig;

/**
 * A kernel choice: the config and the number of K splits (1 = none; >1 writes partials, then a second dispatch reduces
 * them in a fixed order).
 */
export interface MatmulPlan {
  config: MatmulConfig;
  splitK: number;
}

export interface MatmulDims {
  batch: number;
  m: number;
  n: number;
  k: number;
}

export interface MatmulOptions<T> {
  /** Added before the activation; any view that broadcasts to the output shape (e.g. [N] for a linear layer). */
  bias?: T;
  activation?: MatmulActivation;
  /** Optional second output with out's shape: the value before the activation (what its gradient needs). */
  preActivation?: T;
}

export interface MatmulGpuOptions extends MatmulOptions<GpuOperand> {
  /** Forces a kernel choice (tests, the tuner); otherwise the tuned or default plan for the shape is used. */
  plan?: MatmulPlan;
}

export function configKey(c: MatmulConfig): string {
  switch (c.kind) {
    case 'dot':
      return `dot${c.wg}`;
    case 'direct':
      return `direct${c.tm}x${c.tn}/${c.wx}x${c.wy}`;
    case 'subgroup':
      return `subgroup${c.tm}x${c.tn}/${c.wx}`;
    case 'tiled':
      return `tiled${c.tm}x${c.tn}/${c.wx}x${c.wy}/k${c.bk}`;
  }
}
export const planKey = (p: MatmulPlan): string => `${configKey(p.config)}${p.splitK > 1 ? `/split${p.splitK}` : ''}`;
