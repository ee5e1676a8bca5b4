import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '../src/index.js';
import { collectGarbage, rt } from './helpers.js';

test('the runtime reports its adapter and raised limits', () => {
  assert.type(rt.adapter.description, 'string');
  assert.is(rt.adapter.host, 'node');
  assert.ok(rt.device.limits.maxStorageBufferBindingSize >= 128 * 2 ** 20);
});

test('ops are batched: many ops, one submit at readback', async () => {
  await rt.sync();
  const before = { ...rt.stats() };
  const x = T.ones([64]);
  let y = x;
  for (let i = 0; i < 50; i++) y = T.tidy(() => y.add(1).mul(1));
  const after = rt.stats();
  assert.is(after.submits, before.submits, 'no submit while encoding');
  assert.ok(after.dispatches - before.dispatches >= 100);
  assert.is((await y.data())[0], 51);
  assert.is(rt.stats().submits - before.submits, 1, 'exactly one submit for 100+ ops and a readback');
});

test('one pipeline serves every shape of an op', async () => {
  const before = rt.stats().pipelinesCreated;
  for (let n = 1; n <= 40; n++) {
    T.tidy(() => {
      const a = T.ones([n, (n % 5) + 1]);
      a.mul(2).sum(1);
    });
  }
  await rt.sync();
  // ones (fill), mul, sum: at most one new pipeline each (sum has two schedules).
  assert.ok(
    rt.stats().pipelinesCreated - before <= 4,
    `${rt.stats().pipelinesCreated - before} pipelines for 40 shapes`,
  );
});

test('buffers are recycled through the pool', async () => {
  T.tidy(() => {
    T.ones([1000]).add(1);
  });
  await rt.sync();
  const before = rt.stats();
  T.tidy(() => {
    T.ones([1000]).add(1);
  });
  await rt.sync();
  const after = rt.stats();
  assert.is(after.allocations, before.allocations, 'no new GPU buffers for a repeat of the same work');
  assert.ok(after.reuses > before.reuses);
  assert.is(T.sizeClass(1), 256);
  assert.is(T.sizeClass(1000), 1024);
  assert.is(T.sizeClass(3 * 2 ** 20 + 1), 3.5 * 2 ** 20);
});

test(
  'a repeated step gets the same buffers, so the same bind groups, whatever order its tensors were freed ' + 'in',
  async () => {
    await collectGarbage();
    const x = T.randn([32, 16]);
    const w = T.randn([16, 16]);
    let seed = 5;
    const step = () => {
      const a = T.matmul(x, w);
      const ts = [a];
      for (let i = 0; i < 5; i++) ts.push(T.add(ts[i]!, a));
      // Free in a shuffled order (autograd and scopes release in orders that vary like this).
      for (let i = ts.length - 1; i > 0; i--) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        const j = seed % (i + 1);
        [ts[i], ts[j]] = [ts[j]!, ts[i]!];
      }
      for (const t of ts) t.dispose();
    };
    step();
    await rt.sync();
    const before = rt.stats().bindGroupsCreated;
    for (let i = 0; i < 6; i++) {
      step();
      await rt.sync();
    }
    assert.is(rt.stats().bindGroupsCreated, before, 'no new bind groups once the step has run');
    x.dispose();
    w.dispose();
  },
);

test('leak check: thousands of ops in scopes return live buffers to baseline', async () => {
  await rt.sync();
  const base = rt.stats();
  const baseTensors = T.liveTensorCount();
  const w = T.randn([32, 16]);
  for (let step = 0; step < 200; step++) {
    const [loss] = T.tidy(() => {
      const x = T.randn([8, 32]);
      const h = T.relu(T.sum(T.mul(x.unsqueeze(2), w), 1));
      const loss = h.square().mean();
      const parts = T.split(T.concat([h, h], 0), 3);
      return [loss, parts.length] as const;
    });
    loss.dispose();
  }
  w.dispose();
  await rt.sync();
  const end = rt.stats();
  // `<=`: the FinalizationRegistry may also reclaim handles that earlier tests never disposed.
  assert.ok(
    T.liveTensorCount() <= baseTensors,
    `live tensor handles back to baseline (${T.liveTensorCount()} vs ${baseTensors})`,
  );
  assert.ok(
    end.liveBuffers <= base.liveBuffers,
    `live GPU buffers back to baseline (${end.liveBuffers} vs ${base.liveBuffers})`,
  );
  assert.ok(end.liveBytes <= base.liveBytes);
  assert.ok(end.dispatches - base.dispatches > 1000, 'thousands of dispatches ran');
  assert.ok(
    end.allocations - base.allocations < 40,
    `pool keeps allocations flat (${end.allocations - base.allocations} new)`,
  );
});

test('tidy keeps returned tensors and moves them to the parent scope', async () => {
  const outer = T.tidy(() => {
    const inner = T.tidy(() => {
      const a = T.ones([2]);
      const b = a.add(1);
      return { b };
    });
    assert.not.ok(inner.b.isDisposed);
    return inner.b.mul(2);
  });
  assert.equal(Array.from(await outer.data()), [4, 4]);
  const kept = T.tidy(() => T.keep(T.ones([1])));
  assert.not.ok(kept.isDisposed);
  assert.throws(() => T.tidy(() => Promise.resolve(1) as unknown as number), /only takes synchronous functions/);
});

test('disposed tensors give a clear error; dispose is idempotent', () => {
  const a = T.ones([2, 3]);
  const v = a.transpose();
  a.dispose();
  a.dispose();
  assert.throws(() => a.add(1), /add: tensor of shape \[2, 3\] was already disposed/);
  // The view still holds the storage.
  assert.ok(v.storage.alive);
  v.dispose();
  assert.not.ok(v.storage.alive);
});

test('tensors over the binding limit are refused with a clear error', () => {
  const saved = rt.bindingLimit;
  rt.bindingLimit = 1024;
  try {
    const big = T.empty([1000]);
    assert.throws(
      () => big.add(1),
      /add: tensor \[1000\] occupies 4096 bytes, more than this device's maxStorageBufferBindingSize \(1024 bytes\)/,
    );
    big.dispose();
  } finally {
    rt.bindingLimit = saved;
  }
  assert.throws(() => T.empty([2 ** 31]), /exceeds this device's maxBufferSize/);
});

test('shape errors name the op and the shapes', () => {
  const a = T.ones([2, 3]);
  const b = T.ones([4]);
  assert.throws(() => a.add(b), /add: shapes \[2, 3\] and \[4\] cannot be broadcast \(dim -1: 3 vs 4\)/);
  assert.throws(() => a.reshape([4, 2]), /reshape: cannot reshape \[2, 3\] \(6 elements\) to \[4, 2\]/);
  assert.throws(() => a.permute([0, 0]), /permute: \[0, 0\] is not a permutation of 2 dims/);
  assert.throws(() => a.sum(2), /sum: dim 2 is out of range for a tensor of rank 2/);
  assert.throws(() => a.narrow(1, 2, 2), /narrow: \[2, 4\) is outside dim 1 of size 3/);
  assert.throws(() => a.expand([3, 3]), /expand: cannot expand \[2, 3\] to \[3, 3\]/);
  assert.throws(() => T.concat([a, b]), /concat: shapes \[2, 3\], \[4\] differ outside dim 0/);
  assert.throws(() => T.gather(a, 0, T.ones([2, 3])), /gather: index must be i32/);
  assert.throws(() => T.zeros([2, -1]), /invalid shape \[2, -1\]/);
  const c = T.ones([2], { device: 'cpu' });
  assert.throws(() => a.add(c), /add: tensors are on different devices \(gpu and cpu\)/);
});

test('the pool records the peak of live bytes since resetPeak', async () => {
  rt.pool.resetPeak();
  const base = rt.stats().liveBytes;
  const a = T.zeros([256, 1024]); // 1 MiB
  const b = T.zeros([512, 1024]); // 2 MiB
  a.dispose();
  b.dispose();
  await rt.sync();
  const after = rt.stats();
  assert.ok(after.peakLiveBytes >= base + 3 * 2 ** 20, `peak ${after.peakLiveBytes} covers both tensors`);
  assert.ok(after.liveBytes <= base);
  rt.pool.resetPeak();
  assert.equal(rt.stats().peakLiveBytes, rt.stats().liveBytes);
});

test('device loss surfaces as a clear error, not a hang; init() then gives a new device', async () => {
  const lost = T.runtime();
  const x = T.ones([4]);
  lost.device.destroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(lost.isLost);
  assert.throws(() => x.add(1), /the GPU device was lost \(destroyed/);
  try {
    await x.data();
    assert.unreachable('readback after loss must fail');
  } catch (err) {
    assert.match((err as Error).message, /device was lost/);
  }
  const fresh = await T.init({ quiet: true });
  assert.is.not(fresh, lost);
  assert.equal(Array.from(await T.ones([2]).add(1).data()), [2, 2]);
});

test.run();
