/** KernelQueue: explicit layouts read from the WGSL, cached bind groups, per-dispatch uniforms at dynamic offsets. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UniformWriter, uniformBlock } from '../src/layout.js';
import { bindGroupLayoutEntries } from '../src/queue.js';
import { plainDevice, readBack, upload } from './device.js';

const { device, queue } = await plainDevice();

// out[i] = src[i] * word(0) + word(1), for i < word(2).
const SOURCE = `${uniformBlock(4)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < word(2u)) { out[gid.x] = src[gid.x] * f32(word(0u)) + f32(word(1u)); }
}`;

function scale(out: GPUBuffer, src: GPUBuffer, mul: number, add: number, n: number): void {
  const uniforms = new UniformWriter(4).u32(0, mul).u32(1, add).u32(2, n).data;
  queue.dispatch({
    key: 'test:scale',
    source: () => SOURCE,
    storage: [out, src],
    uniforms,
    workgroups: [Math.ceil(n / 64)],
  });
}

test('layouts come from the WGSL: uniform with a dynamic offset, read and read_write storage', () => {
  const entries = bindGroupLayoutEntries(`@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(0) var<uniform> u: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage> c: array<f32>;`);
  assert.equal(
    entries.map((e) => [e.binding, e.buffer?.type, e.buffer?.hasDynamicOffset]),
    [
      [0, 'uniform', true],
      [1, 'storage', false],
      [2, 'read-only-storage', false],
      [3, 'read-only-storage', false],
    ],
  );
});

test('bind groups are reused for the same buffers; each dispatch in a batch sees its own uniforms', async () => {
  const n = 70;
  const src = upload(Array.from({ length: n }, (_, i) => i));
  const [a, b] = [upload(new Array(n).fill(0)), upload(new Array(n).fill(0))];
  const created = queue.stats.bindGroupsCreated;
  scale(a, src, 2, 1, n);
  scale(a, src, 3, 0, n); // same buffers: cached group, new uniforms (a now holds 3i)
  scale(b, a, 1, 5, n); // other buffers: a new group
  scale(b, a, 1, 5, 10); // same group again, smaller count
  assert.is(queue.stats.bindGroupsCreated - created, 2);
  const [ra, rb] = [await readBack(a, n), await readBack(b, n)];
  assert.equal(
    Array.from(ra),
    Array.from({ length: n }, (_, i) => 3 * i),
  );
  assert.equal(
    Array.from(rb),
    Array.from({ length: n }, (_, i) => 3 * i + 5),
  );
  // A destroyed buffer's replacement is a new object: it gets its own group, never a stale one.
  a.destroy();
  const c = upload(new Array(n).fill(0));
  scale(c, src, 1, 0, n);
  assert.is(queue.stats.bindGroupsCreated - created, 3);
  assert.equal(
    Array.from(await readBack(c, n)),
    Array.from({ length: n }, (_, i) => i),
  );
  [src, b, c].forEach((x) => x.destroy());
  void device;
});

test.run();
