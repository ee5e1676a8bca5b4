/**
 * The softmax lab: y = softmax(x) along the rows of a row-major f32 [R, C]. Version 1 is the naive
 * three-pass kernel, written here; versions 2–5 are the kept row kernel of kernels-wgsl (softmax.ts,
 * its header holds the measured version table) with its loads and schedule forced.
 * Run: pnpm lab softmax 1..5 [--shape R,C]
 */
import * as T from '@rnagrad/tensor';
import {
  type KernelQueue,
  type RowSchedule,
  UniformWriter,
  grid,
  softmaxGpu,
  uniformBlock,
} from '@rnagrad/kernels-wgsl';
import { type LabKernel, type LabVersion, UsageError } from './harness.js';

interface SoftmaxProblem {
  x: T.Tensor;
  y: T.Tensor;
  rows: number;
  cols: number;
}

/** Version 1, the naive kernel: one thread per row, three passes (max, Σ exp, write), scalar loads. */
const NAIVE_WG = 64;
const naiveSource = () => `${uniformBlock(2)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@compute @workgroup_size(${NAIVE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ${NAIVE_WG}u + lid;
  let R = word(0u);
  let C = word(1u);
  if (row >= R) { return; }
  let base = row * C;
  var m = x[base];
  for (var c = 1u; c < C; c++) { m = max(m, x[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < C; c++) { s += exp(x[base + c] - m); }
  for (var c = 0u; c < C; c++) { y[base + c] = exp(x[base + c] - m) / s; }
}`;

function naiveSoftmax(queue: KernelQueue, p: SoftmaxProblem): void {
  queue.dispatch({
    key: 'lab:softmax:naive',
    source: naiveSource,
    storage: [T.gpuOperand('lab', p.y).buffer, T.gpuOperand('lab', p.x).buffer],
    uniforms: new UniformWriter(2).u32(0, p.rows).u32(1, p.cols).data,
    workgroups: grid(Math.ceil(p.rows / NAIVE_WG), queue.device.limits.maxComputeWorkgroupsPerDimension),
    label: 'naive softmax',
  });
}

/** The kept row kernel (online max/Σ, then a write pass) with its loads and lanes per row forced. */
function kept(name: string, about: string, schedule: RowSchedule, allowVec: boolean): LabVersion<SoftmaxProblem> {
  return {
    name,
    about,
    launch: (queue, p) => softmaxGpu(queue, T.gpuOperand('lab', p.y), T.gpuOperand('lab', p.x), { schedule, allowVec }),
  };
}

export const softmaxLab: LabKernel<SoftmaxProblem, { rows: number; cols: number }> = {
  name: 'softmax',
  options: '--shape R,C (rows, columns; default 1024,1024)',
  versions: [
    {
      name: 'naive: a thread per row, 3 passes, scalar loads',
      about: 'lab/softmax.ts naiveSource',
      launch: naiveSoftmax,
    },
    kept(
      'online max/Σ in one pass, then write; scalar loads',
      'kernels-wgsl softmaxGpu, allowVec false',
      { lanes: 1 },
      false,
    ),
    kept('online, vec4 loads, a thread per row', 'the default when rows are many', { lanes: 1 }, true),
    kept('online, vec4 loads, 16 lanes per row (flat reduce)', 'few long rows: lanes share a row', { lanes: 16 }, true),
    kept('online, vec4 loads, 64 lanes per row (leader reduce)', 'one row per 64 threads', { lanes: 64 }, true),
  ],
  parse(flags) {
    const shape = flags.get('shape') ?? '1024,1024';
    const dims = shape.split(',').map(Number);
    if (
      dims.length !== 2 ||
      !dims.every((d) => Number.isInteger(d) && d >= 1 && d <= 1 << 20) ||
      dims[0]! * dims[1]! > 1 << 24
    ) {
      throw new UsageError(`softmax --shape must be R,C (integers ≥ 1, at most 16M elements), got "${shape}"`);
    }
    return { rows: dims[0]!, cols: dims[1]! };
  },
  async setup({ rows, cols }) {
    const xc = T.randn([rows, cols], { device: 'cpu', seed: 1 }).mul(4);
    const reference = await T.softmax(xc).dataF64(); // the float64 twin
    const x = await xc.to('gpu');
    const y = T.empty([rows, cols]);
    return {
      problem: { x, y, rows, cols },
      describe: `of [${rows}, ${cols}] along the last axis (f32)`,
      reference,
      output: y,
      tolerance: 2e-5, // probabilities ≤ 1; f32 exp on software adapters is off by a few ulp
      work: { unit: 'GB/s', amount: 2 * 4 * rows * cols }, // one read and one write of the matrix
      dispose: () => [xc, x, y].forEach((t) => t.dispose()),
    };
  },
};
