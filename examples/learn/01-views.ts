/**
 * Stop 1 — views and strides (docs/learn/01-views.md). CPU only: the float64 twin needs no GPU.
 * A tensor is (storage, shape, strides, offset); transpose, slice and expand only change the
 * last three, so they copy nothing. Run: node --import tsx examples/learn/01-views.ts
 */
import * as T from '@rnagrad/tensor';

T.setDefaultDevice('cpu');

async function show(name: string, t: T.Tensor): Promise<void> {
  const values = Array.from(await t.dataF64()).join(' ');
  console.log(
    `${name.padEnd(21)} shape [${t.shape.join(', ')}] strides [${t.strides.join(', ')}] offset ${t.offset}  → ${values}`,
  );
}

const x = T.arange(0, 12, 1, { dtype: 'f32' }).reshape([3, 4]);
await show('x', x);
const xt = x.transpose(0, 1); // PyTorch: x.T
await show('x.transpose(0, 1)', xt);
const s = x.slice(1, 1, 4, 2); // x[:, 1:4:2]
await show('x.slice(1, 1, 4, 2)', s);
// Element [i, j] of a view lives at offset + i·strides[0] + j·strides[1] of the shared storage.
console.log(
  `s[2, 1] is storage[${s.offset} + 2·${s.strides[0]} + 1·${s.strides[1]}]` +
    ` = storage[${s.offset + 2 * s.strides[0]! + s.strides[1]!}]`,
);
await show('x.narrow(0, 2, 1)', x.narrow(0, 2, 1)); // x[2:3]
await show('row.expand([3, 4])', T.tensor([10, 20, 30, 40]).expand([3, 4])); // stride 0: one row read 3 times

// Every view above shares x's storage: writing through one changes x.
const column = x.slice(1, 3, 4); // x[:, 3:4]
T.assign(column, -1);
await show('x after x[:, 3] = -1', x);
console.log(`x.transpose is contiguous: ${xt.isContiguous}; shares storage with x: ${xt.storage === x.storage}`);
// reshape needs row-major order: a transposed view must be copied first.
const flat = xt.reshape([-1]);
console.log(`x.transpose(0, 1).reshape([-1]) copied: ${flat.storage !== x.storage}`);
