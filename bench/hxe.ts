/**
 * HXE vs plain XE through the same kernels and vs the fused crossEntropy op, [16384, 70] logits (HELM's codon vocabulary),
 * codon tree at α = 0.2. Every sample is synchronised on GPU completion (queue.onSubmittedWorkDone).
 *
 *   node --import tsx bench/hxe.ts                 kernel and op level, default lanes per row
 *   node --import tsx bench/hxe.ts --variants      also every lanes-per-row variant (slow on SwiftShader)
 *   ROUNDS=5 ITERATIONS=25 node --import tsx bench/hxe.ts
 *
 * Tasks run in several interleaved rounds (tinybench per round, samples pooled), so slow drift
 * and other processes on the machine hit HXE and XE alike; the figure is the pooled median.
 */
import { interleavedSamples } from './lib/interleave.js';
import * as T from '@rnagrad/tensor';
import { codonTree, hxePathTable, leafMembership } from '@rnagrad/tokenizers';
import type { GpuOperand } from '@rnagrad/kernels-wgsl';
import {
  type HxeGpuTable,
  hierarchicalCrossEntropy,
  hxeDefaultThreadsPerRow,
  hxeBackwardGpu,
  hxeGpu,
  hxeKernelTable,
  hxeStatsWords,
  uploadHxeTable,
  xeKernelTable,
} from '@rnagrad/models';
import { requireGrad } from '@rnagrad/autograd';

const N = 16384;
const C = 70;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const ITERATIONS = Number(process.env.ITERATIONS ?? 15);
const variants = process.argv.includes('--variants');

const rt = await T.init({ quiet: true });
const queue = rt.queue;
const device = rt.device;
console.log(`device: ${rt.adapter.description || rt.adapter.device} (${rt.adapter.isSoftware ? 'software' : 'hardware'}); [${N}, ${C}], ${ROUNDS} rounds × ${ITERATIONS} iterations`);

let seed = 1;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const logitValues = Float32Array.from({ length: N * C }, () => 6 * rand() - 3);
const targetValues = Int32Array.from({ length: N }, (_, i) => (i % 7 === 3 ? -100 : Math.floor(rand() * C)));

const tree = codonTree();
const table = { ...hxePathTable(tree, 0.2), membership: leafMembership(tree) };
const hxeTable = uploadHxeTable(device, hxeKernelTable(table));
const xeTable = uploadHxeTable(device, xeKernelTable(C));

// Kernel level: raw buffers on the runtime's device.
const buffer = (bytes: number) => device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
const logitsBuf = buffer(N * C * 4);
const targetsBuf = buffer(N * 4);
const lossesBuf = buffer(N * 4);
const dlogitsBuf = buffer(N * C * 4);
device.queue.writeBuffer(logitsBuf, 0, logitValues);
device.queue.writeBuffer(targetsBuf, 0, targetValues);
const op = (b: GPUBuffer, shape: number[], dtype: 'f32' | 'i32' = 'f32'): GpuOperand => ({ buffer: b, dtype, shape, strides: shape.length === 2 ? [shape[1]!, 1] : [1], offset: 0 });

function kernel(tbl: HxeGpuTable, grad: boolean, threadsPerRow?: number): () => Promise<void> {
  const stats = buffer(N * hxeStatsWords(tbl) * 4);
  const gradOutput = buffer(16);
  device.queue.writeBuffer(gradOutput, 0, new Float32Array([1]));
  return async () => {
    const logits = op(logitsBuf, [N, C]);
    const targets = op(targetsBuf, [N], 'i32');
    const statsOp = op(stats, [N, hxeStatsWords(tbl)]);
    hxeGpu(queue, { logits, targets, table: tbl, losses: op(lossesBuf, [N]), stats: grad ? statsOp : null, threadsPerRow });
    if (grad) hxeBackwardGpu(queue, { logits, targets, table: tbl, stats: statsOp, dlogits: op(dlogitsBuf, [N, C]), gradOutput: op(gradOutput, [1]), perRow: false, threadsPerRow });
    await queue.sync();
  };
}

// Op level, through autograd as training uses it: loss, backward, wait for the GPU.
const logits = requireGrad(T.tensor(logitValues, { shape: [N, C] }));
const targets = T.tensor(targetValues, { dtype: 'i32' });
function tensorOp(loss: () => T.Tensor): () => Promise<void> {
  return async () => {
    logits.grad?.dispose();
    logits.grad = null;
    const l = loss();
    l.backward();
    await rt.sync();
    l.dispose();
  };
}

const tasks: [string, () => Promise<void>][] = [
  ['kernel HXE fwd+bwd', kernel(hxeTable, true)],
  ['kernel XE  fwd+bwd', kernel(xeTable, true)],
  ['kernel HXE fwd', kernel(hxeTable, false)],
  ['kernel XE  fwd', kernel(xeTable, false)],
  ['op HXE loss+backward', tensorOp(() => hierarchicalCrossEntropy(logits, targets, table))],
  ['op XE  loss+backward', tensorOp(() => hierarchicalCrossEntropy(logits, targets, table, { mode: 'xe' }))],
  ['op CE  loss+backward', tensorOp(() => T.crossEntropy(logits, targets))],
];
if (variants) {
  for (const lanes of [1, 4, 16, 64]) {
    tasks.push([`kernel HXE fwd+bwd ${lanes} lanes/row`, kernel(hxeTable, true, lanes)]);
    tasks.push([`kernel XE  fwd+bwd ${lanes} lanes/row`, kernel(xeTable, true, lanes)]);
  }
}

const { samples, median: med } = await interleavedSamples(tasks, { rounds: ROUNDS, iterations: ITERATIONS, firstWarmup: 3 });
const rows = [...samples].map(([name, xs]) => ({
  task: name,
  'median ms': med.get(name)!.toFixed(2),
  'min ms': Math.min(...xs).toFixed(2),
  samples: xs.length,
}));
console.table(rows);
const ratio = (a: string, b: string) => (med.get(a)! / med.get(b)!).toFixed(2);
console.log(`lanes per row (default for [${N}, ${C}]): ${hxeDefaultThreadsPerRow(C, N)}`);
console.log(`HXE / XE, kernel forward+backward: ${ratio('kernel HXE fwd+bwd', 'kernel XE  fwd+bwd')}× (target ≤ 1.3×)`);
console.log(`HXE / XE, kernel forward only:     ${ratio('kernel HXE fwd', 'kernel XE  fwd')}×`);
console.log(`HXE / XE, op loss + backward:      ${ratio('op HXE loss+backward', 'op XE  loss+backward')}×`);
console.log(`HXE / CE (fused crossEntropy op), loss + backward: ${ratio('op HXE loss+backward', 'op CE  loss+backward')}× (target ≤ 1.3×)`);
if (variants) {
  for (const lanes of [1, 4, 16, 64]) {
    console.log(`  ${lanes} lanes/row: HXE / XE ${ratio(`kernel HXE fwd+bwd ${lanes} lanes/row`, `kernel XE  fwd+bwd ${lanes} lanes/row`)}×`);
  }
}
T.destroyRuntime();
