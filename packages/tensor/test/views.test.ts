import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import { assertPairClose, both, disposePairs, pair, shapeArb, valuesFor } from './helpers.js';

test('views share storage and need no copy', async () => {
  const x = T.arange(0, 24, 1, { dtype: 'f32' }).reshape([2, 3, 4]);
  const allocations = T.runtime().stats().allocations;
  const views = [
    x.permute([2, 0, 1]),
    x.transpose(0, 2),
    x.slice(2, 1, 4, 2),
    x.narrow(1, 1, 2),
    x.unsqueeze(1).expand([2, 5, 3, 4]),
    x.reshape([6, 4]),
    x.unsqueeze(0).squeeze(0),
  ];
  assert.is(T.runtime().stats().allocations, allocations, 'no buffer allocated for views');
  for (const v of views) assert.is(v.storage, x.storage);
  assert.equal(Array.from(await x.slice(2, 1, 4, 2).data()), [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]);
  assert.equal(Array.from(await x.permute([2, 0, 1]).data()).slice(0, 6), [0, 4, 8, 12, 16, 20]);
  assert.equal(Array.from(await x.slice(1, -1).data()), [8, 9, 10, 11, 20, 21, 22, 23]);
  for (const v of views) v.dispose();
  x.dispose();
});

test('chains of views then contiguous() match the oracle', async () => {
  await fc.assert(
    fc.asyncProperty(
      shapeArb({ maxRank: 4 }),
      fc.array(fc.nat(20), { minLength: 1, maxLength: 4 }),
      fc.nat(),
      async (shape, steps, seed) => {
        const x = pair(shape, valuesFor(shape, seed));
        let cur = both((t) => t.view(t.shape, t.strides), x);
        const made = [cur];
        for (const s of steps) {
          const t = cur.c;
          let next: (v: T.Tensor) => T.Tensor;
          if (t.rank >= 2 && s % 5 === 0) next = (v) => v.transpose(0, t.rank - 1);
          else if (t.rank >= 1 && s % 5 === 1 && t.shape[0]! > 0)
            next = (v) => v.slice(0, s % t.shape[0]!, undefined, 1 + (s % 2));
          else if (s % 5 === 2) next = (v) => v.unsqueeze(s % (t.rank + 1));
          else if (s % 5 === 3) next = (v) => v.squeeze();
          else next = (v) => v.reshape([-1]);
          cur = both(next, cur);
          made.push(cur);
        }
        const c = both((v) => v.contiguous(), cur);
        assert.ok(c.g.isContiguous);
        await assertPairClose(c, `view chain on [${shape}]`);
        disposePairs(x, c, ...made);
      },
    ),
    { numRuns: 40 },
  );
});

test('reshape of a non-contiguous view copies, with -1 inferred', async () => {
  const x = T.arange(0, 6, 1, { dtype: 'f32' }).reshape([2, 3]);
  const t = x.transpose();
  const r = t.reshape([-1]);
  assert.is.not(r.storage, x.storage);
  assert.equal(Array.from(await r.data()), [0, 3, 1, 4, 2, 5]);
  assert.equal(x.reshape([3, -1]).shape, [3, 2]);
});

test('concat, stack and split', async () => {
  await fc.assert(
    fc.asyncProperty(
      shapeArb({ maxRank: 3, allowEmpty: true }).filter((s) => s.length > 0),
      fc.nat(),
      fc.integer({ min: 1, max: 3 }),
      fc.nat(2),
      async (shape, seed, count, dimPick) => {
        const dim = dimPick % shape.length;
        const parts = Array.from({ length: count }, (_, k) => {
          const s = shape.map((v, d) => (d === dim ? (v + k) % 4 : v));
          return pair(s, valuesFor(s, seed + k));
        });
        const cat = {
          g: T.concat(
            parts.map((p) => p.g),
            dim,
          ),
          c: T.concat(
            parts.map((p) => p.c),
            dim,
          ),
        };
        await assertPairClose(cat, `concat dim ${dim}`);
        const same = Array.from({ length: count }, (_, k) => pair(shape, valuesFor(shape, seed + 10 + k)));
        const st = {
          g: T.stack(
            same.map((p) => p.g),
            dim,
          ),
          c: T.stack(
            same.map((p) => p.c),
            dim,
          ),
        };
        assert.equal(st.g.shape, [...shape.slice(0, dim), count, ...shape.slice(dim)]);
        await assertPairClose(st, `stack dim ${dim}`);
        disposePairs(cat, st, ...parts, ...same);
      },
    ),
    { numRuns: 30 },
  );
  const x = T.arange(0, 10, 1, { dtype: 'f32' });
  const pieces = T.split(x, 4);
  assert.equal(
    pieces.map((p) => p.shape[0]),
    [4, 4, 2],
  );
  assert.equal(Array.from(await pieces[2]!.data()), [8, 9]);
});

test(
  'gather and indexSelect match the oracle; out-of-range indices raise an error, never read another ' + 'row',
  async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeArb({ maxRank: 3 }).filter((s) => s.length > 0),
        fc.nat(),
        fc.nat(2),
        async (shape, seed, dimPick) => {
          const dim = dimPick % shape.length;
          const x = pair(shape, valuesFor(shape, seed));
          const idxShape = shape.map((s, d) => (d === dim ? 1 + (seed % 4) : Math.max(1, s - (seed % 2))));
          const idx = pair(idxShape, valuesFor(idxShape, seed + 3, 0, shape[dim]! - 1, true), 'i32');
          const g = both((a, i) => T.gather(a, dim, i), x, idx);
          await assertPairClose(g, `gather dim ${dim}`);
          const list = pair([5], valuesFor([5], seed + 9, 0, shape[dim]! - 1, true), 'i32');
          const s = both((a, i) => T.indexSelect(a, dim, i), x, list);
          await assertPairClose(s, `indexSelect dim ${dim}`);
          disposePairs(x, idx, g, list, s);
        },
      ),
      { numRuns: 30 },
    );
    const table = T.tensor([
      [1, 2],
      [3, 4],
    ]);
    const bad = T.tensor(new Int32Array([1, 5, -1]));
    const picked = T.indexSelect(table, 0, bad);
    await picked.data().then(
      () => assert.unreachable('no error'),
      (err: Error) => assert.match(err.message, /indexSelect: index 5 is out of range: valid indices are 0…1/),
    );
    for (const t of [table, bad, picked]) t.dispose();
    assert.throws(
      () => T.indexSelect(T.tensor([[1, 2]], { device: 'cpu' }), 0, T.tensor(new Int32Array([2]), { device: 'cpu' })),
      /indexSelect: index 2 is out of range/,
    );
  },
);

test('empty tensors flow through views and ops', async () => {
  const e = T.zeros([0, 3]);
  assert.is(e.size, 0);
  const y = e.add(1).transpose().contiguous();
  assert.equal(y.shape, [3, 0]);
  assert.is((await y.data()).length, 0);
  assert.equal(T.concat([e, T.ones([2, 3])], 0).shape, [2, 3]);
});

test.run();
