/** conv.ts on a plain GPUDevice: the three kernels vs their float64 references, caller scratch, refusals. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type ConvPadding,
  conv2dCpu,
  conv2dGpu,
  conv2dInputGradCpu,
  conv2dInputGradGpu,
  conv2dWeightGradCpu,
  conv2dWeightGradGpu,
  conv2dWeightGradScratchBytes,
  convGeometry,
} from '../src/conv.js';
import { close, cop, gop, plainDevice, readBack, upload, values } from './device.js';

const { device, queue } = await plainDevice();
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

test(
  'conv2d kernels on a bare device: forward with bias, input and weight gradients (caller scratch), asymmetric ' +
    'padding',
  async () => {
    const xs = [2, 12, 13, 5];
    const ws = [7, 5, 3, 2];
    const padding: ConvPadding = { top: 1, bottom: 0, left: 2, right: 1 };
    const g = convGeometry('test', xs, ws, padding);
    const ys = [g.batch, g.outHeight, g.outWidth, g.outChannels];
    assert.equal(ys, [2, 11, 15, 7]);
    const [xv, wv, bv, dyv] = [values(size(xs), 1), values(size(ws), 2, -1, 1), values(7, 3), values(size(ys), 4)];
    const [x, w, b, dy] = [upload(xv), upload(wv), upload(bv), upload(dyv)];
    const [y, dx, dw] = [
      upload(new Array(size(ys)).fill(0)),
      upload(new Array(size(xs)).fill(0)),
      upload(new Array(size(ws)).fill(0)),
    ];
    const bytes = conv2dWeightGradScratchBytes(g);
    assert.ok(bytes > 0, 'this shape splits the weight gradient over pixel chunks');
    const scratch = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE });
    conv2dGpu(queue, gop(y, ys), gop(x, xs), gop(w, ws), gop(b, [7]), padding);
    conv2dInputGradGpu(queue, gop(dx, xs), gop(dy, ys), gop(w, ws), padding);
    conv2dWeightGradGpu(queue, gop(dw, ws), gop(dy, ys), gop(x, xs), padding, scratch);
    const f64 = (v: number[]) => Float64Array.from(v);
    const want = { y: new Float64Array(size(ys)), dx: new Float64Array(size(xs)), dw: new Float64Array(size(ws)) };
    conv2dCpu(cop(want.y, ys), cop(f64(xv), xs), cop(f64(wv), ws), cop(f64(bv), [7]), padding);
    conv2dInputGradCpu(cop(want.dx, xs), cop(f64(dyv), ys), cop(f64(wv), ws), padding);
    conv2dWeightGradCpu(cop(want.dw, ws), cop(f64(dyv), ys), cop(f64(xv), xs), padding);
    close(await readBack(y, size(ys)), want.y, 'forward', 1e-4, 1e-4);
    close(await readBack(dx, size(xs)), want.dx, 'input gradient', 1e-4, 1e-4);
    close(await readBack(dw, size(ws)), want.dw, 'weight gradient', 1e-4, 1e-3);
    assert.throws(
      () =>
        conv2dWeightGradGpu(
          queue,
          gop(dw, ws),
          gop(dy, ys),
          gop(x, xs),
          padding,
          device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }),
        ),
      /conv2dWeightGrad: scratch of 16 bytes is smaller than the \d+ needed/,
    );
    [x, w, b, dy, y, dx, dw, scratch].forEach((t) => t.destroy());
  },
);

test('conv2d kernels refuse wrong shapes, non-contiguous views and non-f32 operands, naming the op', () => {
  const buf = upload(new Array(4096).fill(0));
  const pad: ConvPadding = { top: 1, bottom: 1, left: 1, right: 1 };
  assert.throws(
    () => conv2dGpu(queue, gop(buf, [1, 4, 4, 3]), gop(buf, [1, 4, 4, 2]), gop(buf, [2, 2, 3, 3]), null, pad),
    /conv2d: output must be \[1, 4, 4, 2\], got \[1, 4, 4, 3\]/,
  );
  assert.throws(
    () => conv2dGpu(queue, gop(buf, [1, 4, 4, 2]), gop(buf, [1, 4, 4, 2]), gop(buf, [2, 2, 3, 3]), gop(buf, [3]), pad),
    /conv2d: bias must be \[2\], got \[3\]/,
  );
  assert.throws(
    () =>
      conv2dGpu(
        queue,
        gop(buf, [1, 4, 4, 2]),
        gop(buf, [1, 4, 4, 2], 'f32', [32, 1, 4, 16]),
        gop(buf, [2, 2, 3, 3]),
        null,
        pad,
      ),
    /conv2d: operands must be contiguous, got a view of \[1, 4, 4, 2\]/,
  );
  assert.throws(
    () => conv2dInputGradGpu(queue, gop(buf, [1, 4, 4, 2], 'i32'), gop(buf, [1, 4, 4, 2]), gop(buf, [2, 2, 3, 3]), pad),
    /conv2dInputGrad: expects f32 operands, got i32/,
  );
  assert.throws(
    () => convGeometry('conv2d', [1, 2, 2, 1], [1, 1, 3, 3], { top: 0, bottom: 0, left: 1, right: 1 }),
    /conv2d: kernel 3×3 does not fit the padded input 2×4/,
  );
  buf.destroy();
});

test.run();
