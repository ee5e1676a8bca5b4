/** Kernel-level tests of norm.ts (LayerNorm / RMSNorm forward and backward) on a plain GPUDevice. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import type { RowSchedule } from '../src/rows.js';
import {
  layerNormBackwardCpu,
  layerNormBackwardGpu,
  layerNormCpu,
  layerNormGpu,
  normBackwardScratchBytes,
} from '../src/norm.js';

import { close, cop, gop, plainDevice, readBack, upload, values } from './device.js';
const { device, queue } = await plainDevice();
// ---- end of helpers ----

const SHAPES: [number, number][] = [
  [1, 1],
  [3, 5],
  [6, 1],
  [4, 8],
  [33, 70],
  [2, 300],
  [300, 12],
  [17, 1024],
];

test(
  'LayerNorm / RMSNorm forward and backward match the float64 reference (affine on/off, schedules, ' + 'layouts)',
  async () => {
    let seed = 1;
    for (const [R, C] of SHAPES) {
      for (const rms of [false, true]) {
        for (const affine of [0, 1, 2, 3]) {
          const hasW = (affine & 1) !== 0;
          const hasB = (affine & 2) !== 0 && !rms;
          const schedule: RowSchedule | undefined = [undefined, { lanes: 1 }, { lanes: 4 }, { lanes: 64 }][seed % 4] as
            RowSchedule | undefined;
          const transposed = seed % 3 === 1;
          const xv = values(R * C, seed++, -3, 5);
          const stored = transposed
            ? Array.from({ length: R * C }, (_, i) => xv[(i % R) * C + Math.floor(i / R)]!)
            : xv;
          const xs = transposed ? [1, R] : [C, 1];
          const xb = upload(stored);
          const xg = gop(xb, [R, C], 'f32', xs);
          const xc = cop(Float64Array.from(stored), [R, C], 'f32', xs);
          const wv = values(C, seed++, 0.5, 1.5);
          const bv = values(C, seed++, -1, 1);
          const wb = upload(wv);
          const bb = upload(bv);
          const y = upload(new Array(R * C).fill(0));
          const mean = upload(new Array(R).fill(0));
          const rstd = upload(new Array(R).fill(0));
          const eps = rms ? 1e-6 : 1e-5;
          layerNormGpu(
            queue,
            { y: gop(y, [R, C]), mean: rms ? null : gop(mean, [R]), rstd: gop(rstd, [R]) },
            xg,
            hasW ? gop(wb, [C]) : null,
            hasB ? gop(bb, [C]) : null,
            { rms, eps, schedule },
          );
          const ry = new Float64Array(R * C);
          const rm = new Float64Array(R);
          const rr = new Float64Array(R);
          const wc = hasW ? cop(Float64Array.from(wv), [C]) : null;
          layerNormCpu(
            { y: cop(ry, [R, C]), mean: rms ? null : cop(rm, [R]), rstd: cop(rr, [R]) },
            xc,
            wc,
            hasB ? cop(Float64Array.from(bv), [C]) : null,
            { rms, eps },
          );
          const what =
            `${rms ? 'rms' : 'layer'}Norm [${R},${C}] w=${hasW} b=${hasB} ${JSON.stringify(schedule)} ` +
            `T=${transposed}`;
          close(await readBack(y, R * C), ry, `${what} y`, 1e-4, 2e-5);
          close(await readBack(rstd, R), rr, `${what} rstd`, 1e-4, 1e-5);
          if (!rms) close(await readBack(mean, R), rm, `${what} mean`, 1e-5, 1e-5);
          // backward from the reference's saved statistics (f32-rounded, as the GPU stores them)
          const dyv = values(R * C, seed++);
          const dyb = upload(dyv);
          const rmF = Array.from(rm, Math.fround);
          const rrF = Array.from(rr, Math.fround);
          const mb2 = upload(rmF);
          const rb2 = upload(rrF);
          const dx = upload(new Array(R * C).fill(0));
          const dw = upload(new Array(C).fill(0));
          const db = upload(new Array(C).fill(0));
          const useScratch = seed % 2 === 0;
          const scratch = useScratch
            ? device.createBuffer({ size: normBackwardScratchBytes(R, C), usage: GPUBufferUsage.STORAGE })
            : undefined;
          layerNormBackwardGpu(
            queue,
            { dx: gop(dx, [R, C]), dweight: hasW ? gop(dw, [C]) : null, dbias: hasB ? gop(db, [C]) : null },
            {
              x: xg,
              weight: hasW ? gop(wb, [C]) : null,
              mean: rms ? null : gop(mb2, [R]),
              rstd: gop(rb2, [R]),
              dy: gop(dyb, [R, C]),
            },
            { rms, schedule, scratch },
          );
          const rdx = new Float64Array(R * C);
          const rdw = new Float64Array(C);
          const rdb = new Float64Array(C);
          layerNormBackwardCpu(
            { dx: cop(rdx, [R, C]), dweight: hasW ? cop(rdw, [C]) : null, dbias: hasB ? cop(rdb, [C]) : null },
            {
              x: xc,
              weight: wc,
              mean: rms ? null : cop(Float64Array.from(rmF), [R]),
              rstd: cop(Float64Array.from(rrF), [R]),
              dy: cop(Float64Array.from(dyv), [R, C]),
            },
            { rms },
          );
          close(await readBack(dx, R * C), rdx, `${what} dx`, 2e-4, 5e-5);
          if (hasW) close(await readBack(dw, C), rdw, `${what} dweight`, 1e-4, 1e-4);
          if (hasB) close(await readBack(db, C), rdb, `${what} dbias`, 1e-4, 1e-4);
          [xb, wb, bb, y, mean, rstd, dyb, mb2, rb2, dx, dw, db].forEach((b) => b.destroy());
          scratch?.destroy();
        }
      }
    }
  },
);

test('residual LayerNorm / RMSNorm: normalises x + r and writes the sum; equals the twin and the unfused', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        R: fc.integer({ min: 1, max: 40 }),
        C: fc.integer({ min: 1, max: 300 }),
        rms: fc.boolean(),
        affine: fc.boolean(),
        transposed: fc.boolean(),
        seed: fc.integer({ min: 1, max: 1e6 }),
      }),
      async ({ R, C, rms, affine, transposed, seed }) => {
        const xv = values(R * C, seed, -3, 5);
        // r is a transposed view of [C, R] storage when `transposed` (non-contiguous residual).
        const rv = values(R * C, seed + 1, -2, 2);
        const rStored = transposed ? Array.from({ length: R * C }, (_, i) => rv[(i % R) * C + Math.floor(i / R)]!) : rv;
        const rStrides = transposed ? [1, R] : [C, 1];
        const wv = values(C, seed + 2, 0.5, 1.5);
        const bv = values(C, seed + 3, -1, 1);
        const [xb, rb, wb, bb] = [xv, rStored, wv, bv].map((v) => upload(v));
        const [y, sum, y2] = [0, 1, 2].map(() => upload(new Array(R * C).fill(0)));
        const [mean, rstd, mean2, rstd2] = [0, 1, 2, 3].map(() => upload(new Array(R).fill(0)));
        const w = affine ? gop(wb!, [C]) : null;
        const b = affine && !rms ? gop(bb!, [C]) : null;
        const opts = { rms, eps: rms ? 1e-6 : 1e-5 };
        layerNormGpu(
          queue,
          { y: gop(y!, [R, C]), mean: rms ? null : gop(mean!, [R]), rstd: gop(rstd!, [R]), sum: gop(sum!, [R, C]) },
          gop(xb!, [R, C]),
          w,
          b,
          opts,
          gop(rb!, [R, C], 'f32', rStrides),
        );
        // The unfused kernel on the written sum, for the comparison below.
        layerNormGpu(
          queue,
          { y: gop(y2!, [R, C]), mean: rms ? null : gop(mean2!, [R]), rstd: gop(rstd2!, [R]) },
          gop(sum!, [R, C]),
          w,
          b,
          opts,
        );
        const ref = { y: new Float64Array(R * C), sum: new Float64Array(R * C), mean: new Float64Array(R) };
        const refRstd = new Float64Array(R);
        layerNormCpu(
          {
            y: cop(ref.y, [R, C]),
            mean: rms ? null : cop(ref.mean, [R]),
            rstd: cop(refRstd, [R]),
            sum: cop(ref.sum, [R, C]),
          },
          cop(Float64Array.from(xv), [R, C]),
          affine ? cop(Float64Array.from(wv), [C]) : null,
          affine && !rms ? cop(Float64Array.from(bv), [C]) : null,
          opts,
          cop(Float64Array.from(rStored), [R, C], 'f32', rStrides),
        );
        const what = `R${R} C${C} rms ${rms} affine ${affine} transposed ${transposed}`;
        close(await readBack(sum!, R * C), ref.sum, `${what}: sum`, 1e-6, 1e-6);
        close(await readBack(y!, R * C), ref.y, `${what}: y`, 2e-4, 2e-4);
        close(await readBack(rstd!, R), refRstd, `${what}: rstd`, 2e-4, 2e-4);
        if (!rms) close(await readBack(mean!, R), ref.mean, `${what}: mean`, 2e-4, 2e-4);
        // The unfused kernel on the written sum agrees to f32 rounding (its reduction order may differ).
        close(await readBack(y!, R * C), await readBack(y2!, R * C), `${what}: fused vs unfused`, 1e-5, 1e-5);
        [xb, rb, wb, bb, y, sum, y2, mean, rstd, mean2, rstd2].forEach((x) => x!.destroy());
      },
    ),
    { numRuns: 12 },
  );
});

test('LayerNorm with two non-mergeable lead dims (x is [4,3,C] storage viewed as [3,4,C])', async () => {
  for (const C of [8, 5]) {
    const shape = [3, 4, C];
    const strides = [C, 3 * C, 1];
    const stored = values(3 * 4 * C, C, -2, 2);
    const xb = upload(stored);
    const dyv = values(3 * 4 * C, C + 1);
    const dyb = upload(dyv);
    const wv = values(C, 9, 0.5, 1.5);
    const wb = upload(wv);
    const y = upload(new Array(12 * C).fill(0));
    const mean = upload(new Array(12).fill(0));
    const rstd = upload(new Array(12).fill(0));
    layerNormGpu(
      queue,
      { y: gop(y, shape), mean: gop(mean, [3, 4]), rstd: gop(rstd, [3, 4]) },
      gop(xb, shape, 'f32', strides),
      gop(wb, [C]),
      null,
    );
    const ry = new Float64Array(12 * C);
    const rm = new Float64Array(12);
    const rr = new Float64Array(12);
    const xc = cop(Float64Array.from(stored), shape, 'f32', strides);
    layerNormCpu(
      { y: cop(ry, shape), mean: cop(rm, [3, 4]), rstd: cop(rr, [3, 4]) },
      xc,
      cop(Float64Array.from(wv), [C]),
      null,
    );
    close(await readBack(y, 12 * C), ry, `y C=${C}`, 1e-4, 2e-5);
    const dx = upload(new Array(12 * C).fill(0));
    const dw = upload(new Array(C).fill(0));
    const db = upload(new Array(C).fill(0));
    layerNormBackwardGpu(
      queue,
      { dx: gop(dx, shape), dweight: gop(dw, [C]), dbias: gop(db, [C]) },
      {
        x: gop(xb, shape, 'f32', strides),
        weight: gop(wb, [C]),
        mean: gop(mean, [3, 4]),
        rstd: gop(rstd, [3, 4]),
        dy: gop(dyb, shape),
      },
    );
    const rdx = new Float64Array(12 * C);
    const rdw = new Float64Array(C);
    const rdb = new Float64Array(C);
    const rmF = Float64Array.from(await readBack(mean, 12));
    const rrF = Float64Array.from(await readBack(rstd, 12));
    layerNormBackwardCpu(
      { dx: cop(rdx, shape), dweight: cop(rdw, [C]), dbias: cop(rdb, [C]) },
      {
        x: xc,
        weight: cop(Float64Array.from(wv), [C]),
        mean: cop(rmF, [3, 4]),
        rstd: cop(rrF, [3, 4]),
        dy: cop(Float64Array.from(dyv), shape),
      },
    );
    close(await readBack(dx, 12 * C), rdx, `dx C=${C}`, 2e-4, 5e-5);
    close(await readBack(dw, C), rdw, `dweight C=${C}`, 1e-4, 1e-4);
    close(await readBack(db, C), rdb, `dbias C=${C}`, 1e-4, 1e-4);
    [xb, dyb, wb, y, mean, rstd, dx, dw, db].forEach((b) => b.destroy());
  }
});

test('LayerNorm backward: dweight/dbias are bitwise deterministic', async () => {
  const R = 257;
  const C = 24;
  const x = upload(values(R * C, 3));
  const dy = upload(values(R * C, 4));
  const w = upload(values(C, 5, 0.5, 1.5));
  const y = upload(new Array(R * C).fill(0));
  const mean = upload(new Array(R).fill(0));
  const rstd = upload(new Array(R).fill(0));
  layerNormGpu(
    queue,
    { y: gop(y, [R, C]), mean: gop(mean, [R]), rstd: gop(rstd, [R]) },
    gop(x, [R, C]),
    gop(w, [C]),
    null,
  );
  const runs: Float64Array[] = [];
  for (let k = 0; k < 3; k++) {
    const dx = upload(new Array(R * C).fill(0));
    const dw = upload(new Array(C).fill(0));
    const db = upload(new Array(C).fill(0));
    layerNormBackwardGpu(
      queue,
      { dx: gop(dx, [R, C]), dweight: gop(dw, [C]), dbias: gop(db, [C]) },
      { x: gop(x, [R, C]), weight: gop(w, [C]), mean: gop(mean, [R]), rstd: gop(rstd, [R]), dy: gop(dy, [R, C]) },
    );
    runs.push(Float64Array.from([...(await readBack(dw, C)), ...(await readBack(db, C))]));
  }
  assert.equal(Array.from(runs[1]!), Array.from(runs[0]!));
  assert.equal(Array.from(runs[2]!), Array.from(runs[0]!));
});

test.run();
