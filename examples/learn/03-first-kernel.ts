/**
 * Stop 3 — a first kernel end to end (docs/learn/03-first-kernel.md): y = a·x + b written as WGSL,
 * launched through the engine's KernelQueue on tensors' buffers, checked against a float64 loop.
 * Run: node --import tsx examples/learn/03-first-kernel.ts
 */
import * as T from '@rnagrad/tensor';
import { UniformWriter, grid, uniformBlock } from '@rnagrad/kernels-wgsl';

const WG = 64; // threads per workgroup

/** The kernel: binding 0 is the uniform block (n, offsets, a, b), storage buffers follow from 1. */
const source = () => `${uniformBlock(5)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + lid;
  if (i >= word(0u)) { return; }
  let a = bitcast<f32>(word(3u));
  let b = bitcast<f32>(word(4u));
  y[word(2u) + i] = a * x[word(1u) + i] + b;
}`;

const rt = await T.init({ quiet: true });
const n = 1000;
const x = T.randn([n], { seed: 7 }); // on the GPU
const y = T.empty([n]);
const [a, b] = [0.5, -2];

// Shapes and scalars travel in the uniform block, so this one pipeline serves every n.
const uniforms = new UniformWriter(5).u32(0, n).u32(1, x.offset).u32(2, y.offset).f32(3, a).f32(4, b);
const workgroups = grid(Math.ceil(n / WG), rt.device.limits.maxComputeWorkgroupsPerDimension);
rt.queue.dispatch({
  key: 'learn:axpb', // the pipeline cache key: everything that changes the WGSL text
  source,
  storage: [T.gpuOperand('axpb', y).buffer, T.gpuOperand('axpb', x).buffer],
  uniforms: uniforms.data,
  workgroups,
  label: 'axpb',
});
console.log(`uniform words: [${Array.from(uniforms.data.slice(0, 3)).join(', ')}, a=${a}, b=${b}]`);
console.log(`dispatch: ${workgroups.join(' × ')} workgroups of ${WG} threads for n = ${n}`);

// Readback (the only asynchronous step) submits the queued work and waits for it.
const [got, xs] = await Promise.all([y.dataF64(), x.dataF64()]);
let worst = 0;
for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i]! - (a * xs[i]! + b)));
console.log(`max |GPU − float64| = ${worst < 1e-6 ? '< 1e-6' : worst}`);

// The same launch again with another n reuses the compiled pipeline.
const before = rt.stats().pipelinesCreated;
rt.queue.dispatch({
  key: 'learn:axpb',
  source,
  storage: [T.gpuOperand('axpb', y).buffer, T.gpuOperand('axpb', x).buffer],
  uniforms: new UniformWriter(5).u32(0, 10).u32(1, 0).u32(2, 0).f32(3, 1).f32(4, 0).data,
  workgroups: [1],
});
await rt.sync();
console.log(`pipelines compiled by the second launch: ${rt.stats().pipelinesCreated - before}`);
