/** KernelQueue: explicit layouts read from the WGSL, cached bind groups, per-dispatch uniforms at dynamic offsets. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UniformWriter, uniformBlock } from '../src/layout.js';
import { KernelQueue, UNIFORM_SLOT_BYTES, bindGroupLayoutEntries } from '../src/queue.js';
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

test('pipelines alternating in a pass each get set; a non-u32 uniform view at an offset is copied whole', async () => {
  const n = 40;
  const src = upload(Array.from({ length: n }, (_, i) => i));
  const [a, b] = [upload(new Array(n).fill(0)), upload(new Array(n).fill(0))];
  // A second kernel (out = src + word(0) as f32 bits) between two dispatches of `scale`.
  const addSource = `${uniformBlock(4)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < word(1u)) { out[gid.x] = src[gid.x] + bitcast<f32>(word(0u)); }
}`;
  const block = new Float32Array(12);
  block.set([0.5, 0, 0, 0], 8); // the uniforms are the last 4 floats: a view with a byte offset
  const uniforms = new Float32Array(block.buffer, 32, 4);
  new Uint32Array(block.buffer, 36, 1)[0] = n;
  scale(a, src, 2, 0, n); // a = 2i
  queue.dispatch({ key: 'test:add-bits', source: () => addSource, storage: [b, a], uniforms, workgroups: [1] });
  scale(a, b, 1, 1, n); // a = 2i + 1.5
  assert.equal(
    Array.from(await readBack(a, n)),
    Array.from({ length: n }, (_, i) => 2 * i + 1.5),
  );
  [src, a, b].forEach((x) => x.destroy());
});

/** A stand-in GPUDevice that counts the calls the queue makes (no GPU work). */
function countingDevice() {
  const calls = { setPipeline: 0, setBindGroup: 0, dispatch: 0, createBindGroup: 0, offsets: [] as number[] };
  let written = new Uint32Array(0);
  const pass = {
    setPipeline: () => calls.setPipeline++,
    setBindGroup: (_i: number, _g: unknown, offsets?: number[]) => {
      calls.setBindGroup++;
      if (offsets) calls.offsets.push(offsets[0]!);
    },
    dispatchWorkgroups: () => calls.dispatch++,
    end: () => {},
  };
  const fake = {
    limits: { minUniformBufferOffsetAlignment: 256, maxComputeWorkgroupsPerDimension: 65535 },
    createBuffer: () => ({ destroy: () => {} }),
    createShaderModule: () => ({}),
    createBindGroupLayout: () => ({}),
    createPipelineLayout: () => ({}),
    createComputePipeline: () => ({}),
    createBindGroup: () => (calls.createBindGroup++, {}),
    createCommandEncoder: () => ({ beginComputePass: () => pass, finish: () => ({}) }),
    queue: {
      writeBuffer: (_b: unknown, _o: number, data: ArrayBuffer, _d: number, size: number) =>
        (written = new Uint32Array(data.slice(0, size))),
      submit: () => {},
    },
  };
  return { queue: new KernelQueue(fake as unknown as GPUDevice), calls, written: () => written };
}

test('a recurring dispatch sets its pipeline once per pass, makes one bind group, gets its own uniform slot', () => {
  const { queue: q, calls, written } = countingDevice();
  const [out, src] = [{ label: 'out' }, { label: 'src' }] as unknown as GPUBuffer[];
  for (let i = 0; i < 100; i++) {
    const uniforms = new UniformWriter(4).u32(0, i).u32(1, 7).data;
    q.dispatch({ key: 'test:scale', source: () => SOURCE, storage: [out!, src!], uniforms, workgroups: [1] });
  }
  assert.is(calls.dispatch, 100);
  assert.is(calls.setPipeline, 1, 'one setPipeline for 100 dispatches of one kernel in one pass');
  assert.is(calls.createBindGroup, 1);
  assert.is(q.stats.bindGroupsCreated, 1);
  q.flush();
  const slotWords = UNIFORM_SLOT_BYTES / 4;
  assert.equal(calls.offsets.slice(0, 3), [0, UNIFORM_SLOT_BYTES, 2 * UNIFORM_SLOT_BYTES]);
  for (const i of [0, 1, 99]) assert.equal(Array.from(written().subarray(i * slotWords, i * slotWords + 2)), [i, 7]);
  // After a submit the next pass sets the pipeline again.
  q.dispatch({
    key: 'test:scale',
    source: () => SOURCE,
    storage: [out!, src!],
    uniforms: new Uint32Array(4),
    workgroups: [1],
  });
  assert.is(calls.setPipeline, 2);
});

test('bind groups are keyed by buffer, range offset and range size', () => {
  const { queue: q, calls } = countingDevice();
  const [out, src] = [{ label: 'out' }, { label: 'src' }] as unknown as GPUBuffer[];
  const run = (binding: Parameters<KernelQueue['dispatch']>[0]['storage'][number]) =>
    q.dispatch({ key: 'test:scale', source: () => SOURCE, storage: [out!, binding], workgroups: [1] });
  run(src!);
  run({ buffer: src! }); // a range without offset or size is its own entry, not the plain buffer's
  run({ buffer: src!, offset: 256 });
  run({ buffer: src!, offset: 256, size: 64 });
  run({ buffer: src!, offset: 512, size: 64 });
  assert.is(calls.createBindGroup, 5);
  run(src!);
  run({ buffer: src!, offset: 256, size: 64 });
  run({ buffer: src!, offset: 256 });
  assert.is(calls.createBindGroup, 5, 'every one of them cached');
  run({ buffer: out!, offset: 256, size: 64 });
  assert.is(calls.createBindGroup, 6);
});

test.run();
