/**
 * ONNX Runtime Web's WebGPU execution provider on this machine's adapter: why it is not a peer of the
 * bench (see bench/README.md, "Peers we tried"). Not part of `pnpm bench`; onnxruntime-web is not a
 * dependency (≈145 MB installed), so install it outside the workspace and name its WebGPU bundle:
 *
 *   npm i --prefix /tmp/ort onnxruntime-web@1.31.1
 *   ORT_WEB=/tmp/ort/node_modules/onnxruntime-web/dist/ort.webgpu.bundle.min.mjs \
 *     node --import tsx bench/peers/ort-probe.ts [N]
 *
 * Runs an N×N·N×N matmul (default 256), checks five entries against float64 sums, and prints the
 * session time, the first run (shader compilation) and the median of ten warm runs with the output
 * left on the GPU.
 */
import { SWIFTSHADER_ICDS } from '@rnagrad/kernels-wgsl/node';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { installPeerEnv } from './env.js';

/** The ONNX graph `c = MatMul(a, b)` with dynamic shapes (opset 13), as torch.onnx.export writes it. */
const MATMUL_ONNX =
  'CAcSB3B5dG9yY2gaBjEuMTMuMDpsChoKAWEKAWISAWMaBy9NYXRNdWwiBk1hdE11bBIJdG9yY2hfaml0WhUKAWESEAoOCAESCgoDEgFtCgMSAW' +
  'taFQoBYhIQCg4IARIKCgMSAWsKAxIBbmIVCgFjEhAKDggBEgoKAxIBbQoDEgFuQgIQDQ==';

const N = Number(process.argv[2] ?? 256);
process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICDS.find((p) => existsSync(p));
const env = await installPeerEnv();
// Dawn's Node binding rejects writeBuffer from a view of a SharedArrayBuffer ("Invalid argument"), and
// ORT's wasm heap is one: hand it a copy.
const queueProto = (globalThis as unknown as { GPUQueue: { prototype: GPUQueue } }).GPUQueue.prototype;
const writeBuffer = queueProto.writeBuffer;
queueProto.writeBuffer = function (this: GPUQueue, buffer, offset, data, dataOffset, size) {
  // A typed array's slice() is a copy in a plain ArrayBuffer, of the same element type (offsets count elements).
  const shared = ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer;
  const plain = shared ? (data as unknown as Uint8Array).slice() : data;
  return writeBuffer.call(this, buffer, offset, plain as BufferSource, dataOffset, size);
} as GPUQueue['writeBuffer'];

/** The part of onnxruntime-web's API this probe uses. */
interface OrtTensor {
  getData(): Promise<unknown>;
  dispose(): void;
}
interface OrtWeb {
  env: { wasm: { numThreads: number }; versions: { common: string }; webgpu: { device: GPUDevice } };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
  InferenceSession: {
    create(
      model: Uint8Array,
      options: object,
    ): Promise<{ run(feeds: object): Promise<Record<string, OrtTensor>>; release(): Promise<void> }>;
  };
}
const bundle = process.env.ORT_WEB;
if (!bundle || !existsSync(bundle)) {
  console.error('ort-probe: set ORT_WEB to onnxruntime-web/dist/ort.webgpu.bundle.min.mjs (see the header)');
  process.exit(2);
}
const ort = (await import(pathToFileURL(bundle).href)) as OrtWeb;
ort.env.wasm.numThreads = 1;
console.log(`onnxruntime-web ${ort.env.versions.common} on ${env.adapterDescription}; matmul ${N}³`);

let t = performance.now();
const session = await ort.InferenceSession.create(Buffer.from(MATMUL_ONNX, 'base64'), {
  executionProviders: ['webgpu'],
  preferredOutputLocation: 'gpu-buffer',
});
console.log(`session: ${(performance.now() - t).toFixed(0)} ms`);
let seed = 1;
const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
const a = Float32Array.from({ length: N * N }, rand);
const b = Float32Array.from({ length: N * N }, rand);
const feeds = { a: new ort.Tensor('float32', a, [N, N]), b: new ort.Tensor('float32', b, [N, N]) };
const device = ort.env.webgpu.device;
const run = async () => {
  const out = (await session.run(feeds)).c!;
  await device.queue.onSubmittedWorkDone();
  return out;
};

t = performance.now();
const first = await run();
console.log(`first run (compiles its shaders): ${(performance.now() - t).toFixed(0)} ms`);
const c = (await first.getData()) as Float32Array;
first.dispose();
let err = 0;
for (let i = 0; i < 5; i++) {
  const [r, q] = [(i * 7919) % N, (i * 104729) % N];
  let s = 0;
  for (let k = 0; k < N; k++) s += a[r * N + k]! * b[k * N + q]!;
  err = Math.max(err, Math.abs(s - c[r * N + q]!));
}
const times: number[] = [];
for (let i = 0; i < 10; i++) {
  t = performance.now();
  (await run()).dispose();
  times.push(performance.now() - t);
}
const median = times.sort((x, y) => x - y)[5]!;
const gflops = (2 * N ** 3) / median / 1e6;
console.log(`max |error| ${err.toExponential(1)}; warm median ${median.toFixed(1)} ms = ${gflops.toFixed(3)} GFLOP/s`);
await session.release();
process.exit(0);
