/** Kernel-level tests of optim.ts (AdamW, global-norm clipping) on a plain GPUDevice + KernelQueue. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CpuOperand, GpuOperand } from '../src/layout.js';
import {
  type AdamWItem,
  adamwCpu,
  adamwGpu,
  clipGradNormCpu,
  clipGradNormGpu,
  gradNormCpu,
  gradNormGpu,
} from '../src/optim.js';

import { close, cop, gop, plainDevice, readBack, upload, values } from './device.js';
const { queue } = await plainDevice();
// ---- end of helpers ----

const SIZES = [1, 3, 4, 17, 64, 1000, 4099];

interface Param {
  buffers: GPUBuffer[];
  gpu: AdamWItem<GpuOperand>;
  cpu: AdamWItem<CpuOperand>;
  size: number;
}

/** param, grad, m, v for each size; every third tensor lives at an offset inside a larger buffer. */
function makeParams(seed: number, wdOverride = false): Param[] {
  return SIZES.map((n, k) => {
    const offset = k % 3 === 2 ? (k % 2 === 0 ? 8 : 5) : 0;
    const arrays = [
      values(n, seed + 10 * k, -1, 1),
      values(n, seed + 10 * k + 1, -0.5, 0.5),
      values(n, seed + 10 * k + 2, -0.1, 0.1),
      values(n, seed + 10 * k + 3, 0, 0.01),
    ];
    const padded = arrays.map((a) => [...new Array(offset).fill(7), ...a, 7, 7]);
    const buffers = padded.map((a) => upload(a));
    const g = buffers.map((b) => gop(b, [n], 'f32', [1], offset));
    const c = padded.map((a) => cop(Float64Array.from(a), [n], 'f32', [1], offset));
    const wd = wdOverride && k % 2 === 1 ? { weightDecay: 0 } : {};
    return {
      buffers,
      size: n + offset + 2,
      gpu: { param: g[0]!, grad: g[1]!, m: g[2]!, v: g[3]!, ...wd },
      cpu: { param: c[0]!, grad: c[1]!, m: c[2]!, v: c[3]!, ...wd },
    };
  });
}

test('AdamW matches the float64 reference over several steps, any per-dispatch packing', async () => {
  for (const maxStorageBuffers of [4, 8, 12, 16]) {
    const params = makeParams(maxStorageBuffers, maxStorageBuffers === 8);
    for (let step = 1; step <= 3; step++) {
      const opts = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step, maxStorageBuffers };
      adamwGpu(
        queue,
        params.map((p) => p.gpu),
        opts,
      );
      adamwCpu(
        params.map((p) => p.cpu),
        opts,
      );
    }
    for (const [k, p] of params.entries()) {
      for (const [j, name] of ['param', 'grad', 'm', 'v'].entries()) {
        const got = await readBack(p.buffers[j]!, p.size);
        close(
          got,
          (p.cpu as unknown as Record<string, CpuOperand>)[name]!.data,
          `adamw ${name} #${k} (n=${SIZES[k]}, ≤${maxStorageBuffers} buffers)`,
          2e-5,
          1e-6,
        );
      }
    }
    params.forEach((p) => p.buffers.forEach((b) => b.destroy()));
  }
});

test(
  'AdamW: bias correction at step 1 gives a step of ≈ lr·sign(g) (plus decay); zero-size tensors are ' + 'skipped',
  async () => {
    const p = upload([1, -2, 3, 0]);
    const g = upload([0.5, -0.25, 1e-3, 0]);
    const m = upload([0, 0, 0, 0]);
    const v = upload([0, 0, 0, 0]);
    const empty = upload([0]);
    const e = gop(empty, [0]);
    adamwGpu(
      queue,
      [
        { param: gop(p, [4]), grad: gop(g, [4]), m: gop(m, [4]), v: gop(v, [4]) },
        { param: e, grad: e, m: e, v: e },
      ],
      { lr: 0.1, weightDecay: 0, step: 1 },
    );
    const got = await readBack(p, 4);
    close(got, [0.9, -1.9, 3 - 0.1 * (1e-3 / (1e-3 + 1e-8)), 0], 'adamw step 1', 1e-5, 1e-6);
  },
);

test('global grad norm: matches the reference, deterministic to the bit, and clipping scales on the GPU', async () => {
  for (const maxStorageBuffers of [2, 8, 12]) {
    const grads = SIZES.map((n, k) => ({ vals: values(n, 500 + k, -2, 2), offset: k % 2 === 1 ? 4 : 0, n }));
    const gb = grads.map((x) => upload([...new Array(x.offset).fill(1e3), ...x.vals]));
    const gg = grads.map((x, k) => gop(gb[k]!, [x.n], 'f32', [1], x.offset));
    const gc = grads.map((x) =>
      cop(Float64Array.from([...new Array(x.offset).fill(1e3), ...x.vals]), [x.n], 'f32', [1], x.offset),
    );
    const norm = upload([0, 0, 0, 0]);
    gradNormGpu(queue, gop(norm, [1], 'f32', [1], 2), gg, { maxStorageBuffers });
    const n1 = (await readBack(norm, 4))[2]!;
    gradNormGpu(queue, gop(norm, [1], 'f32', [1], 2), gg, { maxStorageBuffers });
    const n2 = (await readBack(norm, 4))[2]!;
    assert.is(n1, n2, 'same bits run to run');
    const ref = new Float64Array(1);
    gradNormCpu(cop(ref, [1]), gc);
    close([n1], ref, `norm (≤${maxStorageBuffers} buffers)`, 1e-5);
    // clip to a third of the norm: every grad scales by maxNorm / (norm + 1e-6)
    const maxNorm = ref[0]! / 3;
    clipGradNormGpu(queue, gop(norm, [1]), gg, maxNorm, { maxStorageBuffers });
    clipGradNormCpu(cop(ref, [1]), gc, maxNorm);
    for (const [k, x] of grads.entries())
      close(await readBack(gb[k]!, x.n + x.offset), gc[k]!.data, `clipped grad #${k}`, 1e-5, 1e-6);
    // already within the limit: unchanged
    const before = await readBack(gb[5]!, grads[5]!.n + grads[5]!.offset);
    clipGradNormGpu(queue, gop(norm, [1]), gg, 1e9, { maxStorageBuffers });
    close(await readBack(gb[5]!, grads[5]!.n + grads[5]!.offset), before, 'unclipped');
    gb.forEach((b) => b.destroy());
    norm.destroy();
  }
});

test('global grad norm of no elements is 0', async () => {
  const norm = upload([5]);
  const e = upload([0]);
  gradNormGpu(queue, gop(norm, [1]), [gop(e, [0])]);
  assert.equal(Array.from(await readBack(norm, 1)), [0]);
});

test.run();
