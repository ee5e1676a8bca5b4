/**
 * Hierarchical cross-entropy (HELM's HXE) and plain cross-entropy as one tensor op over a class
 * tree given as plain data — an op added outside the core engine. It runs its own kernels
 * (kernel.ts), reports itself to autograd under the name 'hxe' (declared below in tensor's
 * `ExtensionOps` map, so `record` type-checks its attrs) and registers its gradient rule with
 * autograd's `registerRule`, typed against the same declaration.
 *
 * On the GPU the forward kernel computes the per-row losses and, when autograd is tracking the
 * logits, a few statistics per row (the row max, Σc/U and one value per group entry of the
 * target's path); rows whose group mass underflows go through a log-domain fix-up pass, and a
 * reduction kernel gives the mean or sum. The backward is one kernel that recomputes the softmax
 * from the saved logits and stats and writes the scaled gradient, as cross-entropy's does. Target
 * ids are checked (`checkIndices`): an out-of-range one raises an error at the next readback.
 *
 * The table is duck-typed, so `@rnagrad/tokenizers` output is accepted as is:
 *
 *   const table = { ...hxePathTable(codonTree(), 0.2), membership: leafMembership(codonTree()) };
 *   const loss = hierarchicalCrossEntropy(logits, targets, table);            // mean over rows
 *   const xe = hierarchicalCrossEntropy(logits, targets, table, { mode: 'xe' }); // same kernel, flat CE
 */
import { registerRule } from '@rnagrad/autograd';
import {
  type Device,
  Tensor,
  assign,
  checkIndices,
  deviceOf,
  empty,
  gpuOperand,
  isRecording,
  record,
  runtime,
  tensor,
} from '@rnagrad/tensor';
import { numel } from '@rnagrad/kernels-wgsl';
import {
  type HxeGpuTable,
  type HxeKernelTable,
  type HxeTableData,
  hxeBackwardCpu,
  hxeBackwardGpu,
  hxeForwardCpu,
  hxeGpu,
  hxeKernelTable,
  hxeReduceGpu,
  hxeStatsWords,
  uploadHxeTable,
  xeKernelTable,
} from './kernel.js';

/**
 * A class tree for the loss, as plain data (tokenizers' `hxePathTable(tree, α)` plus
 * `membership: leafMembership(tree)`):
 * - `nodes`, `coefficients`: [numClasses, width] row-major; class c's entries are
 *   `(nodes[c·width + j], coefficients[c·width + j])`, leaf first and then up the path, such that
 *   loss = −Σ_j coefficient_j · log(softmax mass under node_j). α and Z(α) are already folded in.
 * - `membership`: 0/1 [numNodes, numClasses], 1 where the class's leaf lies under the node.
 * The table is read once per (table object, device) and cached; do not mutate it afterwards.
 */
export interface HxeTable extends HxeTableData {
  numClasses: number;
  width: number;
  nodes: ArrayLike<number>;
  coefficients: ArrayLike<number>;
  membership: ArrayLike<number>;
}

export type HxeReduction = 'mean' | 'sum' | 'none';

export interface HierarchicalCrossEntropyOptions {
  /** Rows whose target equals this get loss 0 and no gradient, and do not count in the mean (default -100). */
  ignoreIndex?: number;
  /**
   * 'mean' (default): Σ losses / number of non-ignored rows (0 when every row is ignored; PyTorch
   * gives NaN there). HELM averages over all rows it passes in, which are the masked positions
   * only, so passing every position with the unmasked ones set to `ignoreIndex` gives HELM's
   * value. 'sum': Σ losses. 'none': one loss per row, shaped like the targets.
   */
  reduction?: HxeReduction;
  /**
   * 'hxe' (default): the tree loss. 'xe': plain cross-entropy through the same kernel (each class's
   * path is just itself with coefficient 1), so a run switches loss with this flag; the table
   * may then be null.
   */
  mode?: 'hxe' | 'xe';
  /** GPU tuning: lanes per row, a power of two ≤ 64 (default chosen from the class count). */
  threadsPerRow?: number;
}

/**
 * What the op records for autograd: `record('hxe', [logits], out, attrs, saved)`. Configuration, plus
 * - `saved.logits`, `saved.targets`: contiguous handles on the inputs ([N, C] f32, [N] i32);
 * - `saved.stats` (GPU only): [N, width + 2] f32 from the forward kernel (`hxeStatsWords`);
 * - `saved.scale` ('mean' only): [1] f32 holding 1 / (number of non-ignored rows), 0 when none.
 * `saved` is present only when autograd took the op (the output got a `gradNode`); the graph
 * node owns those tensors and disposes them (they are kept out of `tidy` scopes). The gradient
 * rule (registered at the end of this file) needs no saved inputs. `targets` is the argument as
 * passed, used only to recompute when `saved` is absent.
 */
export type HxeAttrs = {
  mode: 'hxe' | 'xe';
  reduction: HxeReduction;
  ignoreIndex: number;
  numClasses: number;
  logitsShape: readonly number[];
  table: HxeTable | null;
  targets: Tensor | ArrayLike<number>;
  threadsPerRow: number | undefined;
  saved?: HxeSaved;
};

export type HxeSaved = { logits: Tensor; targets: Tensor; stats?: Tensor; scale?: Tensor };

// The op's entry in tensor's map of recorded ops: `record('hxe', …)` and `registerRule('hxe', …)`
// are checked against these attrs like a core op's.
declare module '@rnagrad/tensor' {
  interface ExtensionOps {
    hxe: HxeAttrs;
  }
}

const OP = 'hierarchicalCrossEntropy';

// ---------------------------------------------------------------------------------------------
// Table caches: the kernel form once per table object, the upload once per (table, device).

interface CachedTable {
  kernel: HxeKernelTable;
  gpu: WeakMap<GPUDevice, HxeGpuTable>;
}
const tableCache = new WeakMap<object, CachedTable>();
const xeCache = new Map<number, CachedTable>();

function cachedTable(table: HxeTable | null, mode: 'hxe' | 'xe', numClasses: number): CachedTable {
  if (mode === 'xe') {
    let entry = xeCache.get(numClasses);
    if (!entry) xeCache.set(numClasses, (entry = { kernel: xeKernelTable(numClasses), gpu: new WeakMap() }));
    return entry;
  }
  let entry = tableCache.get(table!);
  if (!entry) {
    let kernel: HxeKernelTable;
    try {
      kernel = hxeKernelTable(table!);
    } catch (err) {
      throw new RangeError(`${OP}: invalid table: ${(err as Error).message}`);
    }
    tableCache.set(table!, (entry = { kernel, gpu: new WeakMap() }));
  }
  return entry;
}

function gpuTable(entry: CachedTable, device: GPUDevice): HxeGpuTable {
  let t = entry.gpu.get(device);
  if (!t) entry.gpu.set(device, (t = uploadHxeTable(device, entry.kernel)));
  return t;
}

// ---------------------------------------------------------------------------------------------
// Validation

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

function checkInputs(logits: Tensor, targets: Tensor | ArrayLike<number>, table: HxeTable | null, mode: string, ignoreIndex: number): void {
  logits.assertAlive(OP);
  if (mode !== 'hxe' && mode !== 'xe') throw new TypeError(`${OP}: mode must be 'hxe' or 'xe', got '${mode}'`);
  if (logits.dtype !== 'f32') throw new TypeError(`${OP}: logits must be f32, got ${logits.dtype}`);
  if (logits.rank < 1) throw new RangeError(`${OP}: logits must have a class dim (shape [..., C]), got a scalar`);
  const C = logits.shape.at(-1)!;
  if (C < 1) throw new RangeError(`${OP}: logits ${shapeText(logits.shape)} have no classes`);
  const rows = logits.shape.slice(0, -1);
  if (targets instanceof Tensor) {
    targets.assertAlive(OP);
    if (targets.dtype !== 'i32') throw new TypeError(`${OP}: targets must be i32 class ids, got ${targets.dtype}`);
    if (targets.rank !== rows.length || targets.shape.some((s, d) => s !== rows[d])) {
      throw new RangeError(`${OP}: targets ${shapeText(targets.shape)} do not match logits ${shapeText(logits.shape)} (targets must have shape ${shapeText(rows)}, the logits shape without its class dim)`);
    }
  } else if (targets.length !== numel(rows)) {
    throw new RangeError(`${OP}: ${targets.length} targets for logits ${shapeText(logits.shape)} (expected ${numel(rows)}, one per row of ${shapeText(rows)})`);
  }
  if (!Number.isInteger(ignoreIndex)) throw new RangeError(`${OP}: ignoreIndex must be an integer, got ${ignoreIndex}`);
  if (mode === 'hxe') {
    if (!table) throw new TypeError(`${OP}: mode 'hxe' needs a table (or pass mode: 'xe' for plain cross-entropy)`);
    if (table.numClasses !== C) {
      throw new RangeError(`${OP}: the table has ${table.numClasses} classes but logits ${shapeText(logits.shape)} have ${C} (their last dim)`);
    }
  } else if (table && table.numClasses !== C) {
    throw new RangeError(`${OP}: the table has ${table.numClasses} classes but logits ${shapeText(logits.shape)} have ${C} (their last dim)`);
  }
}

/** Targets on the CPU can be checked before any work: each must be a class id or ignoreIndex. */
function checkTargetValues(values: ArrayLike<number>, C: number, ignoreIndex: number): void {
  for (let i = 0; i < values.length; i++) {
    const t = values[i]!;
    if (t === ignoreIndex) continue;
    if (!Number.isInteger(t) || t < 0 || t >= C) {
      throw new RangeError(`${OP}: target ${t} at row ${i} is not a class id in 0..${C - 1} and not ignoreIndex (${ignoreIndex}); the logits have ${C} classes`);
    }
  }
}

/** A contiguous handle on `x` (itself when already contiguous), without recording an op. */
function contiguousUnrecorded(x: Tensor, device: Device): { t: Tensor; owned: boolean } {
  if (x.isContiguous) return { t: x, owned: false };
  const c = empty(x.shape, x.dtype, device);
  assign(c, x);
  return { t: c, owned: true };
}

function contiguousValues(x: Tensor): Float64Array {
  const { t, owned } = contiguousUnrecorded(x, 'cpu');
  const values = t.storage.data!.slice(t.offset, t.offset + t.size);
  if (owned) t.dispose();
  return values;
}

// ---------------------------------------------------------------------------------------------
// The op

/**
 * HXE (or plain XE with `mode: 'xe'`) of `logits` [..., C] against integer `targets` [...]
 * (an i32 tensor on the logits' device, or plain numbers). Rows with `ignoreIndex` cost 0.
 *
 * Targets given as numbers or as a CPU tensor are checked up front (an out-of-range target throws,
 * naming its row). A GPU target tensor cannot be read without a stall, so there an out-of-range
 * target (neither a class id nor ignoreIndex) makes that row's loss and gradient NaN instead.
 */
export function hierarchicalCrossEntropy(
  logits: Tensor,
  targets: Tensor | ArrayLike<number>,
  table: HxeTable | null,
  options: HierarchicalCrossEntropyOptions = {},
): Tensor {
  const ignoreIndex = options.ignoreIndex ?? -100;
  const reduction = options.reduction ?? 'mean';
  const mode = options.mode ?? 'hxe';
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new TypeError(`${OP}: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
  }
  checkInputs(logits, targets, table, mode, ignoreIndex);
  const device = deviceOf(OP, targets instanceof Tensor ? [logits, targets] : [logits]);
  const C = logits.shape.at(-1)!;
  const rows = logits.shape.slice(0, -1);
  const N = numel(rows);
  const entry = cachedTable(table, mode, C);
  if (!(targets instanceof Tensor)) checkTargetValues(targets, C, ignoreIndex);
  else if (device === 'cpu') checkTargetValues(contiguousValues(targets), C, ignoreIndex);
  // The forward saves per-row statistics for the backward only when autograd will take the op.
  const wantGrad = isRecording([logits]);
  const attrs: HxeAttrs = { mode, reduction, ignoreIndex, numClasses: C, logitsShape: [...logits.shape], table, targets, threadsPerRow: options.threadsPerRow };
  const { out, saved } = device === 'gpu'
    ? forwardGpu(logits, targets, entry, attrs, rows, N, wantGrad)
    : forwardCpu(logits, targets, attrs, rows, wantGrad);
  // Autograd takes `saved` with the op; otherwise (e.g. under noGrad) `record` frees it.
  return record('hxe', [logits], out, attrs, saved);
}

function disposeSaved(saved: HxeSaved): void {
  for (const t of Object.values(saved)) t.dispose();
}

function forwardGpu(logits: Tensor, targets: Tensor | ArrayLike<number>, entry: CachedTable, attrs: HxeAttrs, rows: readonly number[], N: number, wantGrad: boolean): { out: Tensor; saved: HxeSaved | null } {
  const rt = runtime();
  rt.check(OP);
  const C = attrs.numClasses;
  const z = contiguousUnrecorded(logits, 'gpu');
  const t = targets instanceof Tensor ? contiguousUnrecorded(targets, 'gpu') : { t: tensor(Int32Array.from(targets), { dtype: 'i32', device: 'gpu' }), owned: true };
  checkIndices(t.t, { op: OP, size: C, ignore: attrs.ignoreIndex });
  const table = gpuTable(entry, rt.device);
  const losses = empty(attrs.reduction === 'none' ? rows : [N], 'f32', 'gpu');
  const stats = wantGrad ? empty([N, hxeStatsWords(table)], 'f32', 'gpu') : null;
  const view1d = (x: Tensor) => ({ shape: [N], strides: [1], offset: x.offset });
  hxeGpu(rt.queue, {
    logits: gpuOperand(OP, z.t, { shape: [N, C], strides: [C, 1], offset: z.t.offset }),
    targets: gpuOperand(OP, t.t, view1d(t.t)),
    table,
    losses: gpuOperand(OP, losses, view1d(losses)),
    stats: stats ? gpuOperand(OP, stats) : null,
    ignoreIndex: attrs.ignoreIndex,
    threadsPerRow: attrs.threadsPerRow,
  });
  let out = losses;
  let scale: Tensor | null = null;
  if (attrs.reduction !== 'none') {
    out = empty([], 'f32', 'gpu');
    scale = wantGrad && attrs.reduction === 'mean' ? empty([1], 'f32', 'gpu') : null;
    hxeReduceGpu(rt.queue, {
      losses: gpuOperand(OP, losses, view1d(losses)),
      targets: gpuOperand(OP, t.t, view1d(t.t)),
      out: gpuOperand(OP, out),
      scale: scale ? gpuOperand(OP, scale) : null,
      reduction: attrs.reduction,
      ignoreIndex: attrs.ignoreIndex,
    });
    losses.dispose();
  }
  if (!stats) {
    if (z.owned) z.t.dispose();
    if (t.owned) t.t.dispose();
    return { out, saved: null };
  }
  const saved: HxeSaved = { logits: z.owned ? z.t : z.t.detach(), targets: t.owned ? t.t : t.t.detach(), stats };
  if (scale) saved.scale = scale;
  return { out, saved };
}

function forwardCpu(logits: Tensor, targets: Tensor | ArrayLike<number>, attrs: HxeAttrs, rows: readonly number[], wantGrad: boolean): { out: Tensor; saved: HxeSaved | null } {
  const z = contiguousValues(logits);
  const t = targets instanceof Tensor ? contiguousValues(targets) : Float64Array.from(targets);
  const losses = hxeForwardCpu(z, attrs.numClasses, t, attrs.table, { ignoreIndex: attrs.ignoreIndex, mode: attrs.mode });
  let count = 0;
  for (const v of t) if (v !== attrs.ignoreIndex) count++;
  const inv = count > 0 ? 1 / count : 0;
  let out: Tensor;
  if (attrs.reduction === 'none') {
    out = empty(rows, 'f32', 'cpu');
    out.storage.data!.set(losses); // float64, as every CPU twin
  } else {
    let sum = 0;
    for (const v of losses) sum += v;
    out = empty([], 'f32', 'cpu');
    out.storage.data![0] = attrs.reduction === 'mean' ? sum * inv : sum;
  }
  if (!wantGrad) return { out, saved: null };
  const saved: HxeSaved = { logits: tensor(z, { shape: attrs.logitsShape, device: 'cpu' }), targets: tensor(Int32Array.from(t), { dtype: 'i32', device: 'cpu' }) };
  if (attrs.reduction === 'mean') saved.scale = tensor([inv], { device: 'cpu' });
  return { out, saved };
}

// ---------------------------------------------------------------------------------------------
// Backward

/**
 * Gradient of the op's output with respect to the logits, given the gradient of the output (a
 * scalar for 'mean'/'sum', one value per row for 'none'): d loss_i/d logits_i · gradOutput (per
 * row for 'none') · `saved.scale` (1/count for 'mean'), one kernel on the GPU from the saved
 * logits and stats. Without `attrs.saved` (the forward ran untracked) it reruns the forward first,
 * which needs `logits` (and the targets kept in attrs). Returns a new contiguous tensor shaped like the logits; `attrs.saved` is left
 * to its owner.
 */
export function hierarchicalCrossEntropyBackward(gradOutput: Tensor, attrs: HxeAttrs, logits?: Tensor): Tensor {
  const op = `${OP} backward`;
  gradOutput.assertAlive(op);
  const shape = attrs.logitsShape;
  const rows = shape.slice(0, -1);
  const expected = attrs.reduction === 'none' ? numel(rows) : 1;
  if (gradOutput.size !== expected) {
    throw new RangeError(`${op}: gradOutput ${shapeText(gradOutput.shape)} has ${gradOutput.size} values, expected ${expected} for reduction '${attrs.reduction}' over logits ${shapeText(shape)}`);
  }
  if (gradOutput.dtype !== 'f32') throw new TypeError(`${op}: gradOutput must be f32, got ${gradOutput.dtype}`);
  let saved = attrs.saved ?? null;
  let recomputed = false;
  if (!saved) {
    if (!logits) throw new TypeError(`${op}: nothing was saved by the forward (it ran without gradient tracking); pass the logits to recompute`);
    if (logits.shape.length !== shape.length || logits.shape.some((s, d) => s !== shape[d])) {
      throw new RangeError(`${op}: logits ${shapeText(logits.shape)} are not the forward's ${shapeText(shape)}`);
    }
    const device = deviceOf(op, [logits]);
    const again = device === 'gpu'
      ? forwardGpu(logits, attrs.targets, cachedTable(attrs.table, attrs.mode, attrs.numClasses), attrs, rows, numel(rows), true)
      : forwardCpu(logits, attrs.targets, attrs, rows, true);
    again.out.dispose();
    saved = again.saved!;
    recomputed = true;
  }
  const { logits: z, targets: t, stats, scale } = saved;
  z.assertAlive(`${op} (saved logits)`);
  const device = deviceOf(op, [gradOutput, z]);
  const out = empty(shape, 'f32', device);
  const perRow = attrs.reduction === 'none';
  const C = attrs.numClasses;
  const N = numel(rows);
  if (device === 'gpu') {
    const rt = runtime();
    rt.check(op);
    const g = contiguousUnrecorded(gradOutput, 'gpu');
    hxeBackwardGpu(rt.queue, {
      logits: gpuOperand(op, z, { shape: [N, C], strides: [C, 1], offset: z.offset }),
      targets: gpuOperand(op, t, { shape: [N], strides: [1], offset: t.offset }),
      table: gpuTable(cachedTable(attrs.table, attrs.mode, C), rt.device),
      stats: gpuOperand(op, stats!),
      dlogits: gpuOperand(op, out, { shape: [N, C], strides: [C, 1], offset: 0 }),
      gradOutput: gpuOperand(op, g.t, { shape: [g.t.size], strides: [1], offset: g.t.offset }),
      perRow,
      scale: scale ? gpuOperand(op, scale) : null,
      ignoreIndex: attrs.ignoreIndex,
      threadsPerRow: attrs.threadsPerRow,
    });
    if (g.owned) g.t.dispose();
  } else {
    const g = contiguousValues(gradOutput);
    const s = scale ? scale.storage.data![scale.offset]! : 1;
    const gradLosses = perRow ? g.map((v) => v * s) : g[0]! * s;
    const d = hxeBackwardCpu(contiguousValues(z), C, contiguousValues(t), attrs.table, { ignoreIndex: attrs.ignoreIndex, mode: attrs.mode, gradLosses });
    out.storage.data!.set(d.map(Math.fround));
  }
  if (recomputed) disposeSaved(saved);
  return out;
}

registerRule('hxe', { save: [], backward: (g, ctx) => [hierarchicalCrossEntropyBackward(g, ctx.attrs)] });
