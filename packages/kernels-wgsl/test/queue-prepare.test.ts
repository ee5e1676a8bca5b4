/** KernelQueue cold start: `trace` records a run's pipelines without encoding, `prepare` compiles them ahead. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UniformWriter, uniformBlock } from '../src/layout.js';
import type { PipelineRequest } from '../src/queue.js';
import { plainDevice, readBack, upload } from './device.js';

const { queue } = await plainDevice();

// out[i] = src[i] * FACTOR + word(1) for i < word(0): FACTOR is baked into the text, one pipeline per factor.
const source = (factor: number) => `${uniformBlock(4)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < word(0u)) { out[gid.x] = src[gid.x] * ${factor.toFixed(1)} + f32(word(1u)); }
}`;

const request = (tag: string, factor: number): PipelineRequest => ({
  key: `test:prepare:${tag}:${factor}`,
  source: () => source(factor),
});

function affine(req: PipelineRequest, out: GPUBuffer, src: GPUBuffer, add: number, n: number): void {
  queue.dispatch({
    ...req,
    storage: [out, src],
    uniforms: new UniformWriter(4).u32(0, n).u32(1, add).data,
    workgroups: [Math.ceil(n / 64)],
  });
}

test('trace records each pipeline once in first-use order and runs nothing on the GPU', async () => {
  const src = upload([1, 2, 3]);
  const out = upload([7, 7, 7]);
  const [a, b] = [request('trace', 2), request('trace', 3)];
  const before = { ...queue.stats };
  const traced = queue.trace(() => {
    affine(a, out, src, 1, 3);
    affine(b, out, src, 1, 3);
    affine(a, out, src, 5, 3);
    queue.copy(src, 0, out, 0, 12);
    queue.clear(out, 0, 12);
  });
  assert.equal(
    traced.map((r) => r.key),
    [a.key, b.key],
  );
  assert.is(queue.stats.dispatches, before.dispatches);
  assert.is(queue.stats.pipelinesCreated, before.pipelinesCreated);
  assert.equal(Array.from(await readBack(out, 3)), [7, 7, 7]);
  // After the trace, dispatches encode again.
  affine(a, out, src, 1, 3);
  assert.equal(Array.from(await readBack(out, 3)), [3, 5, 7]);
  src.destroy();
  out.destroy();
});

test('prepared pipelines serve later dispatches with no synchronous creation', async () => {
  for (const callerCompiles of [false, true]) {
    const requests = [1, 2, 3, 4, 5].map((f) => request(`reuse-${callerCompiles}`, f));
    const before = { ...queue.stats };
    const compiled = await queue.prepare([...requests, requests[0]!], { callerCompiles });
    assert.is(compiled, 5);
    assert.is(queue.stats.pipelinesPrepared - before.pipelinesPrepared, 5);
    assert.is(queue.stats.pipelinesCreated - before.pipelinesCreated, 5);
    const src = upload([1, -2, 0.5]);
    const out = upload([0, 0, 0]);
    for (const [i, r] of requests.entries()) {
      affine(r, out, src, 1, 3);
      assert.equal(
        Array.from(await readBack(out, 3)),
        [1, -2, 0.5].map((x) => x * (i + 1) + 1),
      );
    }
    assert.is(queue.stats.pipelinesCreated - before.pipelinesCreated, 5, 'no pipeline created on dispatch');
    assert.is(await queue.prepare(requests), 0, 'a second prepare finds them cached');
    src.destroy();
    out.destroy();
  }
});

test('progress reports (0, m), then every completion up to (m, m), in order', async () => {
  for (const callerCompiles of [false, true]) {
    const seen: [number, number][] = [];
    const requests = [6, 7, 8, 9].map((f) => request(`progress-${callerCompiles}`, f));
    await queue.prepare(requests, { callerCompiles, onProgress: (done, total) => seen.push([done, total]) });
    assert.equal(
      seen,
      [0, 1, 2, 3, 4].map((done) => [done, 4]),
    );
    const none: [number, number][] = [];
    await queue.prepare(requests, { onProgress: (done, total) => none.push([done, total]) });
    assert.equal(none, [[0, 0]]);
  }
});

test('a shader that does not compile, or whose source throws, rejects naming its key; the others land', async () => {
  for (const callerCompiles of [false, true]) {
    const good = request(`bad-batch-${callerCompiles}`, 10);
    const bad: PipelineRequest = {
      key: `test:prepare:broken-${callerCompiles}`,
      source: () => source(11).replace('src[gid.x] *', 'undeclared[gid.x] *'),
    };
    const throwing: PipelineRequest = {
      key: `test:prepare:no-source-${callerCompiles}`,
      source: () => {
        throw new Error('no WGSL for this shape');
      },
    };
    const seen: number[] = [];
    try {
      await queue.prepare([bad, good, throwing], { callerCompiles, onProgress: (done) => seen.push(done) });
      assert.unreachable('prepare resolved');
    } catch (err) {
      assert.instance(err, Error);
      const message = (err as Error).message;
      assert.match(message, bad.key);
      assert.match(message, 'undeclared');
      assert.match(message, `${throwing.key}: no WGSL for this shape`);
      assert.not.match(message, good.key);
    }
    assert.equal(seen, [0, 1, 2, 3]);
    const before = queue.stats.pipelinesCreated;
    assert.is(await queue.prepare([good]), 0, 'the valid pipeline was kept');
    assert.is(queue.stats.pipelinesCreated, before);
  }
});

test('trace refuses to nest and recovers when the run throws', () => {
  assert.throws(() => queue.trace(() => queue.trace(() => {})), /already tracing/);
  assert.throws(() =>
    queue.trace(() => {
      throw new Error('boom');
    }),
  );
  assert.equal(
    queue.trace(() => {}),
    [],
  );
});

test.run();
