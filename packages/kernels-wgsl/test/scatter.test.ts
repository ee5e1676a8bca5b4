/** Kernel-level tests of scatter.ts (deterministic scatter-add of rows) on a plain GPUDevice. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { chooseScatter, scatterAddRowsCpu, scatterAddRowsGpu } from '../src/scatter.js';

import { close, cop, gop, plainDevice, readBack, upload, values } from './device.js';
const { queue } = await plainDevice();
// ---- end of helpers ----

test('scatter-add rows: scan and sort agree with the reference (padding, out-of-range, strided src)', async () => {
  let seed = 1;
  for (const [N, V, D] of [
    [0, 3, 4],
    [1, 1, 1],
    [5, 3, 2],
    [37, 22, 8],
    [100, 70, 5],
    [513, 300, 12],
    [64, 5, 128],
  ] as [number, number, number][]) {
    for (const strategy of ['scan', 'sort'] as const) {
      for (const variant of [0, 1, 2]) {
        const ids = values(N, seed++, -1, V + 1).map(Math.floor); // includes -1 and V: ignored
        const paddingIdx = variant === 1 ? 1 : null;
        // variant 2: src is a transposed view of a [D, N] buffer
        const sv = values(N * D, seed++);
        const stored =
          variant === 2 ? Array.from({ length: N * D }, (_, i) => sv[(i % N) * D + Math.floor(i / N)]!) : sv;
        const strides = variant === 2 ? [1, N] : [D, 1];
        const ib = upload(ids, 'i32');
        const sb = upload(stored);
        const ob = upload(new Array(V * D).fill(123));
        scatterAddRowsGpu(queue, gop(ob, [V, D]), gop(ib, [N], 'i32'), gop(sb, [N, D], 'f32', strides), {
          strategy,
          paddingIdx,
        });
        const ref = new Float64Array(V * D);
        scatterAddRowsCpu(
          cop(ref, [V, D]),
          cop(Float64Array.from(ids), [N], 'i32'),
          cop(Float64Array.from(stored), [N, D], 'f32', strides),
          { paddingIdx },
        );
        close(
          await readBack(ob, V * D),
          ref,
          `scatter ${strategy} N=${N} V=${V} D=${D} variant ${variant}`,
          1e-5,
          1e-5,
        );
        [ib, sb, ob].forEach((b) => b.destroy());
      }
    }
  }
});

test('scatter-add: both strategies give the same bits (same summation order) and repeat exactly', async () => {
  const N = 700;
  const V = 9;
  const D = 16;
  const ib = upload(values(N, 42, 0, V).map(Math.floor), 'i32');
  const sb = upload(values(N * D, 43, -1e3, 1e3));
  const results: number[][] = [];
  for (const strategy of ['scan', 'sort', 'sort', 'scan'] as const) {
    const ob = upload(new Array(V * D).fill(0));
    scatterAddRowsGpu(queue, gop(ob, [V, D]), gop(ib, [N], 'i32'), gop(sb, [N, D]), { strategy });
    results.push(Array.from(await readBack(ob, V * D)));
    ob.destroy();
  }
  for (const r of results) assert.equal(r, results[0]);
});

test('sort strategy on random sizes across several sort tiles (global stages + tile merges)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        n: fc.integer({ min: 1, max: 2600 }),
        v: fc.integer({ min: 1, max: 3000 }),
        d: fc.integer({ min: 1, max: 5 }),
        seed: fc.integer({ min: 1, max: 1e6 }),
      }),
      async ({ n, v, d, seed }) => {
        const ids = values(n, seed, -1, v + 1).map(Math.floor);
        const src = values(n * d, seed + 1);
        const ib = upload(ids, 'i32');
        const sb = upload(src);
        const ob = upload(new Array(v * d).fill(7));
        scatterAddRowsGpu(queue, gop(ob, [v, d]), gop(ib, [n], 'i32'), gop(sb, [n, d]), { strategy: 'sort' });
        const ref = new Float64Array(v * d);
        scatterAddRowsCpu(
          cop(ref, [v, d]),
          cop(Float64Array.from(ids), [n], 'i32'),
          cop(Float64Array.from(src), [n, d]),
        );
        close(await readBack(ob, v * d), ref, `scatter sort N=${n} V=${v} D=${d}`, 1e-5, 1e-5);
        [ib, sb, ob].forEach((b) => b.destroy());
      },
    ),
    { numRuns: 8 },
  );
});

test('sort strategy: stages within a 512-key tile share one dispatch', () => {
  const dispatchesFor = (n: number) => {
    const ib = upload(new Array(n).fill(0), 'i32');
    const sb = upload(new Array(n).fill(1));
    const ob = upload([0]);
    const before = queue.stats.dispatches;
    scatterAddRowsGpu(queue, gop(ob, [1, 1]), gop(ib, [n], 'i32'), gop(sb, [n, 1]), { strategy: 'sort' });
    const count = queue.stats.dispatches - before;
    queue.flush();
    [ib, sb, ob].forEach((b) => b.destroy());
    return count;
  };
  // sort tiles + fill + segments; then per doubling beyond 512: the global stages and one tile merge
  assert.is(dispatchesFor(512), 3);
  assert.is(dispatchesFor(1024), 5);
  assert.is(dispatchesFor(2048), 8);
});

test('strategy choice follows the measured crossover', () => {
  assert.is(chooseScatter(64, 22), 'scan');
  assert.is(chooseScatter(512, 22), 'sort');
  assert.is(chooseScatter(8192, 70), 'sort');
  assert.is(chooseScatter(2048, 50000), 'sort');
});

test.run();
