/** Kernel-level tests of softmax.ts on a plain GPUDevice + KernelQueue (no tensor package). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CpuOperand, GpuOperand } from '../src/layout.js';
import type { RowSchedule } from '../src/rows.js';
import {
  crossEntropyBackwardCpu,
  crossEntropyBackwardGpu,
  crossEntropyCpu,
  crossEntropyGpu,
  softmaxBackwardCpu,
  softmaxBackwardGpu,
  softmaxCpu,
  softmaxGpu,
} from '../src/softmax.js';

import { close, cop, gop, plainDevice, readBack, upload, values } from './device.js';
const { queue } = await plainDevice();
// ---- end of helpers ----

const SHAPES: [number, number][] = [
  [1, 1],
  [3, 5],
  [7, 1],
  [5, 8],
  [4, 1024],
  [33, 70],
  [2, 300],
  [300, 12],
  [1, 4099],
];
const SCHEDULES: (RowSchedule | undefined)[] = [
  undefined,
  { lanes: 1 },
  { lanes: 4 },
  { lanes: 16 },
  { lanes: 64 },
  { lanes: 64, reduce: 'tree' },
  { lanes: 16, reduce: 'leader' },
  { lanes: 256 },
];

/** A [R, C] operand pair laid out as `layout`: 0 contiguous, 1 transposed storage, 2 offset rows with padding. */
function input(R: number, C: number, layout: number, vals: number[]): { g: GpuOperand; c: CpuOperand; size: number } {
  if (layout === 1) {
    const stored = new Array<number>(R * C);
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) stored[c * R + r] = vals[r * C + c]!;
    return {
      g: gop(upload(stored), [R, C], 'f32', [1, R]),
      c: cop(Float64Array.from(stored), [R, C], 'f32', [1, R]),
      size: R * C,
    };
  }
  if (layout === 2) {
    const rowStride = C + 3;
    const stored = new Array<number>(3 + R * rowStride).fill(99);
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) stored[3 + r * rowStride + c] = vals[r * C + c]!;
    return {
      g: gop(upload(stored), [R, C], 'f32', [rowStride, 1], 3),
      c: cop(Float64Array.from(stored), [R, C], 'f32', [rowStride, 1], 3),
      size: stored.length,
    };
  }
  return { g: gop(upload(vals), [R, C]), c: cop(Float64Array.from(vals), [R, C]), size: R * C };
}

test('softmax / log-softmax forward match the float64 reference for every schedule and layout', async () => {
  let seed = 1;
  for (const [R, C] of SHAPES) {
    for (const schedule of SCHEDULES) {
      for (const layout of [0, 1, 2]) {
        for (const log of [false, true]) {
          const x = input(R, C, layout, values(R * C, seed++, -6, 6));
          const out = upload(new Array(R * C).fill(0));
          softmaxGpu(queue, gop(out, [R, C]), x.g, { log, schedule });
          const ref = new Float64Array(R * C);
          softmaxCpu(cop(ref, [R, C]), x.c, { log });
          close(
            await readBack(out, R * C),
            ref,
            `${log ? 'log' : ''}softmax [${R},${C}] ${JSON.stringify(schedule)} layout ${layout}`,
            2e-5,
            2e-6,
          );
          x.g.buffer.destroy();
          out.destroy();
        }
      }
    }
  }
});

test('softmax backward and log-softmax backward match the reference', async () => {
  let seed = 100;
  for (const [R, C] of SHAPES) {
    for (const schedule of [undefined, { lanes: 1 }, { lanes: 4 }, { lanes: 64 }] as (RowSchedule | undefined)[]) {
      for (const log of [false, true]) {
        const xv = values(R * C, seed++, -3, 3);
        const y = new Float64Array(R * C);
        softmaxCpu(cop(y, [R, C]), cop(Float64Array.from(xv), [R, C]), { log });
        const yv = Array.from(y, Math.fround);
        const dyv = values(R * C, seed++);
        const layout = seed % 3;
        const dy = input(R, C, layout, dyv);
        const yb = upload(yv);
        const dx = upload(new Array(R * C).fill(0));
        softmaxBackwardGpu(queue, gop(dx, [R, C]), gop(yb, [R, C]), dy.g, { log, schedule });
        const ref = new Float64Array(R * C);
        softmaxBackwardCpu(cop(ref, [R, C]), cop(Float64Array.from(yv), [R, C]), dy.c, { log });
        close(
          await readBack(dx, R * C),
          ref,
          `${log ? 'log' : ''}softmaxBackward [${R},${C}] ${JSON.stringify(schedule)}`,
          1e-4,
          1e-5,
        );
        [yb, dx, dy.g.buffer].forEach((b) => b.destroy());
      }
    }
  }
});

test('softmax is stable for large-magnitude logits and rows starting with -inf', async () => {
  const R = 4;
  const C = 9;
  const vals = values(R * C, 7, -3e4, 3e4);
  for (let c = 0; c < 4; c++) vals[c] = -Infinity; // row 0 begins masked
  vals[C + 2] = 88.8; // row 1: near the f32 exp overflow point
  const x = input(R, C, 0, vals);
  for (const schedule of [{ lanes: 1 }, { lanes: 4 }, { lanes: 16 }] as RowSchedule[]) {
    const out = upload(new Array(R * C).fill(0));
    softmaxGpu(queue, gop(out, [R, C]), x.g, { schedule });
    const got = await readBack(out, R * C);
    const ref = new Float64Array(R * C);
    softmaxCpu(cop(ref, [R, C]), x.c);
    assert.ok(got.every(Number.isFinite), `all finite (${JSON.stringify(schedule)})`);
    close(got, ref, `large logits ${JSON.stringify(schedule)}`, 1e-5, 1e-6);
    for (let r = 0; r < R; r++) assert.ok(Math.abs(got.slice(r * C, r * C + C).reduce((a, b) => a + b, 0) - 1) < 1e-5);
    out.destroy();
  }
});

test('fused cross-entropy forward/backward: ignore index, smoothing, per-row and broadcast dloss', async () => {
  let seed = 300;
  for (const [N, C] of [
    [1, 1],
    [5, 3],
    [16, 8],
    [33, 70],
    [7, 1030],
    [260, 22],
  ] as [number, number][]) {
    for (const labelSmoothing of [0, 0.1]) {
      for (const schedule of [undefined, { lanes: 1 }, { lanes: 4 }, { lanes: 64 }] as (RowSchedule | undefined)[]) {
        const big = seed % 2 === 0;
        const xv = values(N * C, seed++, big ? -2e3 : -5, big ? 2e3 : 5);
        const tv = values(N, seed++, 0, C).map((v, i) => (i % 4 === 1 ? -100 : Math.floor(v)));
        const x = input(N, C, seed % 3, xv);
        const t = upload(tv, 'i32');
        const loss = upload(new Array(N).fill(0));
        const lse = upload(new Array(N).fill(0));
        const opts = { labelSmoothing, schedule };
        crossEntropyGpu(queue, gop(loss, [N]), gop(lse, [N]), x.g, gop(t, [N], 'i32'), opts);
        const rl = new Float64Array(N);
        const rs = new Float64Array(N);
        crossEntropyCpu(cop(rl, [N]), cop(rs, [N]), x.c, cop(Float64Array.from(tv), [N], 'i32'), opts);
        const what = `CE [${N},${C}] ε=${labelSmoothing} ${JSON.stringify(schedule)}`;
        // f32 rounding of |logits| ~ 2e3 leaves ~1e-4 absolute error after the cancellation in loss.
        const atol = big ? 1e-3 : 2e-5;
        close(await readBack(loss, N), rl, `${what} loss`, 2e-5, atol);
        close(await readBack(lse, N), rs, `${what} lse`, 2e-5, atol);
        // backward with a per-row dloss, and with one broadcast value times a scale (the mean case)
        const lseF = Array.from(rs, Math.fround);
        const lseB = upload(lseF);
        for (const perRow of [true, false]) {
          const dv = perRow ? values(N, seed++) : [Math.fround(0.75)];
          const dl = upload(dv);
          const dlG = gop(dl, [N], 'f32', [perRow ? 1 : 0]);
          const dlC = cop(Float64Array.from(dv), [N], 'f32', [perRow ? 1 : 0]);
          const scale = perRow ? 1 : 1 / 3;
          const dx = upload(new Array(N * C).fill(0));
          crossEntropyBackwardGpu(queue, gop(dx, [N, C]), x.g, gop(t, [N], 'i32'), gop(lseB, [N]), dlG, {
            ...opts,
            scale,
          });
          const ref = new Float64Array(N * C);
          crossEntropyBackwardCpu(
            cop(ref, [N, C]),
            x.c,
            cop(Float64Array.from(tv), [N], 'i32'),
            cop(Float64Array.from(lseF), [N]),
            dlC,
            { ...opts, scale },
          );
          close(await readBack(dx, N * C), ref, `${what} dlogits perRow=${perRow}`, 1e-4, 1e-5);
          dl.destroy();
          dx.destroy();
        }
        [x.g.buffer, t, loss, lse, lseB].forEach((b) => b.destroy());
      }
    }
  }
});

test('cross-entropy: an out-of-range target gives NaN, the ignore index gives 0', async () => {
  const x = upload([1, 2, 3, 4, 5, 6]);
  const t = upload([5, -100], 'i32');
  const loss = upload([0, 0]);
  const lse = upload([0, 0]);
  crossEntropyGpu(queue, gop(loss, [2]), gop(lse, [2]), gop(x, [2, 3]), gop(t, [2], 'i32'));
  const got = await readBack(loss, 2);
  assert.ok(Number.isNaN(got[0]!));
  assert.is(got[1], 0);
});

test('one pipeline per (kernel, schedule, addressing mode): shapes travel in uniforms', async () => {
  const before = queue.stats.pipelinesCreated;
  for (const R of [3, 5, 9]) {
    const x = upload(values(R * 40, R));
    const out = upload(new Array(R * 40).fill(0));
    softmaxGpu(queue, gop(out, [R, 40]), gop(x, [R, 40]), { schedule: { lanes: 4 } });
    await queue.sync();
    x.destroy();
    out.destroy();
  }
  assert.ok(queue.stats.pipelinesCreated - before <= 1);
});

test.run();
