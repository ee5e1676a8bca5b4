/**
 * Embedding lookup and index_add, whose gradients are the deterministic scatter-add of
 * kernels-wgsl scatter.ts (no float atomics: the same bits run to run).
 */
import { numel, scatterAddRowsCpu, scatterAddRowsGpu, scatterScratchBytes } from '@rnagrad/kernels-wgsl';
import * as ops from './ops.js';
import { deviceOf, empty, launch, normalizeDim, record } from './ops.js';
import { requireF32, untracked } from './op.js';
import type { Tensor } from './tensor.js';

function flatIds(op: string, ids: Tensor): Tensor {
  if (ids.dtype !== 'i32') throw new TypeError(`${op}: ids must be i32, got ${ids.dtype}`);
  return untracked(() => ops.reshape(ids, [ids.size]));
}

/**
 * Rows of `table` [V, D] picked by i32 `ids` (any shape) → [...ids.shape, D]. `paddingIdx` only
 * affects the gradient (that row gets none), as in PyTorch. Records 'embedding' on [table] with
 * attrs { numEmbeddings, paddingIdx, saved: { ids } }.
 */
export function embedding(table: Tensor, ids: Tensor, opts: { paddingIdx?: number | null } = {}): Tensor {
  const op = 'embedding';
  deviceOf(op, [table, ids]);
  if (table.rank !== 2) throw new RangeError(`${op}: table must be [V, D], got [${table.shape.join(', ')}]`);
  const flat = flatIds(op, ids);
  const rows = untracked(() => ops.indexSelect(table, 0, flat, { op }));
  flat.dispose();
  const out = untracked(() => ops.reshape(rows, [...ids.shape, table.shape[1]!]));
  rows.dispose();
  return record(
    op,
    [table],
    out,
    { numEmbeddings: table.shape[0]!, paddingIdx: opts.paddingIdx ?? null },
    { ids: ids.detach() },
  );
}

/** Deterministic scatter-add of dy [...ids.shape, D] rows into [numEmbeddings, D]. */
export function embeddingBackward(
  ids: Tensor,
  dy: Tensor,
  numEmbeddings: number,
  opts: { paddingIdx?: number | null } = {},
): Tensor {
  const op = 'embeddingBackward';
  const device = deviceOf(op, [ids, dy]);
  requireF32(op, dy);
  if (dy.rank !== ids.rank + 1 || ids.shape.some((s, d) => s !== dy.shape[d])) {
    throw new RangeError(`${op}: dy [${dy.shape.join(', ')}] must be [${[...ids.shape, 'D'].join(', ')}]`);
  }
  const D = dy.shape[dy.rank - 1]!;
  const flat = flatIds(op, ids);
  ops.checkIndices(flat, { op, size: numEmbeddings });
  const rows = untracked(() => ops.reshape(dy, [ids.size, D]));
  const out = empty([numEmbeddings, D], 'f32', device);
  scatterRows(op, out, flat, rows, opts.paddingIdx ?? null);
  flat.dispose();
  rows.dispose();
  return out;
}

function scatterRows(op: string, out: Tensor, index: Tensor, src: Tensor, paddingIdx: number | null): void {
  launch(op, out.device, {
    gpu: (at, queue) => {
      const keys = empty([scatterScratchBytes(index.size) / 4], 'f32', 'gpu');
      scatterAddRowsGpu(queue, at(out), at(index), at(src), { paddingIdx, scratch: keys.storage.buffer! });
      keys.dispose();
    },
    cpu: (at) => scatterAddRowsCpu(at(out), at(index), at(src), { paddingIdx }),
  });
}

/**
 * PyTorch's index_add (out of place): x with src's slices along `dim` added at positions `index`
 * (1-D i32; repeats accumulate, deterministically). Records 'indexAdd' on [x, src] with attrs
 * { dim, saved: { index } } (grads: dx = dy, dsrc = indexSelect(dy, dim, index)).
 */
export function indexAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const op = 'indexAdd';
  const device = deviceOf(op, [x, index, src]);
  requireF32(op, x, src);
  const d = normalizeDim(op, dim, x.rank);
  if (index.dtype !== 'i32' || index.rank !== 1) throw new TypeError(`${op}: index must be a 1-D i32 tensor`);
  if (src.rank !== x.rank || src.shape.some((s, k) => (k === d ? s !== index.shape[0] : s !== x.shape[k]))) {
    throw new RangeError(
      `${op}: src [${src.shape.join(', ')}] must match x [${x.shape.join(', ')}] with dim ${d} of ` +
        `size ${index.shape[0]}`,
    );
  }
  const V = x.shape[d]!;
  ops.checkIndices(index, { op, size: V });
  const rest = x.shape.filter((_, k) => k !== d);
  const D = numel(rest);
  const out = untracked(() => {
    // src with `dim` first, as [N, D] rows (a copy only when the permuted view is not contiguous)
    const perm = [d, ...x.shape.keys()].filter((k, i) => i === 0 || k !== d);
    const moved = ops.permute(src, perm);
    const rows = ops.reshape(moved, [index.shape[0]!, D]);
    moved.dispose();
    const summed = empty([V, D], 'f32', device);
    scatterRows(op, summed, index, rows, null);
    rows.dispose();
    const shaped = ops.reshape(summed, [V, ...rest]);
    summed.dispose();
    const inverse = perm.map((_, k) => perm.indexOf(k));
    const back = ops.permute(shaped, inverse);
    shaped.dispose();
    const result = ops.add(x, back);
    back.dispose();
    return result;
  });
  return record(op, [x, src], out, { dim: d }, { index: index.detach() });
}
