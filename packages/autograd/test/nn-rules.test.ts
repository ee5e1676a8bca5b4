import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { gradcheck, requireGrad } from '../src/index.js';

await T.init({ quiet: true });

function values(n: number, seed: number, lo = -2, hi = 2): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => lo + ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * (hi - lo));
}
const make = (shape: number[], seed: number, device: T.Device = 'cpu', lo = -2, hi = 2) =>
  T.tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
    { shape, device },
  );
const ints = (vals: number[], device: T.Device = 'cpu', shape?: number[]) =>
  T.tensor(Int32Array.from(vals), { device, shape: shape ?? [vals.length] });

async function check(what: string, fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): Promise<void> {
  const r = await gradcheck(fn, inputs);
  assert.ok(r.ok, `${what}: ${r.detail} (score ${r.worst.toFixed(2)})`);
}

/** The same function on GPU and CPU: every input gradient must agree. */
async function gpuMatchesCpu(
  what: string,
  fn: (device: T.Device, ...xs: Tensor[]) => Tensor,
  shapes: number[][],
): Promise<void> {
  const grads: Float64Array[][] = [];
  for (const device of ['gpu', 'cpu'] as const) {
    const xs = shapes.map((s, k) => requireGrad(make(s, 10 + k, device)));
    const out = fn(device, ...xs);
    T.sum(T.mul(out, make(out.shape as number[], 99, device))).backward();
    grads.push(await Promise.all(xs.map((x) => x.grad!.dataF64())));
  }
  grads[0]!.forEach((g, k) =>
    g.forEach((v, i) =>
      assert.ok(
        Math.abs(v - grads[1]![k]![i]!) <= 1e-4 * (1 + Math.abs(grads[1]![k]![i]!)),
        `${what}: input ${k}[${i}] ${v} vs ${grads[1]![k]![i]}`,
      ),
    ),
  );
}

test('gradcheck softmax and logSoftmax along each dim', async () => {
  for (const dim of [-1, 0]) {
    await check(`softmax dim ${dim}`, (x) => T.softmax(x, dim), [make([3, 5], 1)]);
    await check(`logSoftmax dim ${dim}`, (x) => T.logSoftmax(x, dim), [make([3, 5], 2)]);
  }
});

test('gradcheck cross-entropy (mean, sum, none; ignored rows; label smoothing)', async () => {
  const targets = ints([2, -100, 0, 4]);
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    await check(`crossEntropy ${reduction}`, (x) => T.crossEntropy(x, targets, { reduction }), [make([4, 5], 3)]);
  }
  await check('crossEntropy smoothing', (x) => T.crossEntropy(x, targets, { labelSmoothing: 0.1 }), [make([4, 5], 4)]);
});

test('gradcheck LayerNorm (affine and not) and RMSNorm', async () => {
  await check('layerNorm affine', (x, w, b) => T.layerNorm(x, w, b, 1e-5), [
    make([3, 6], 5),
    make([6], 6),
    make([6], 7),
  ]);
  await check('layerNorm plain', (x) => T.layerNorm(x), [make([2, 7], 8)]);
  await check('layerNorm weight only', (x, w) => T.layerNorm(x, w), [make([2, 7], 8), make([7], 9)]);
  await check('rmsNorm', (x, w) => T.rmsNorm(x, w), [make([3, 5], 10), make([5], 11)]);
});

test('addLayerNorm (residual add + LayerNorm in one kernel): gradcheck of both outputs; GPU equals CPU', async () => {
  // Both outputs feed the loss: the sum is the residual stream, y the next sublayer's input.
  const both = (x: Tensor, r: Tensor, w: Tensor, b: Tensor) => {
    const { sum, y } = T.addLayerNorm(x, r, w, b);
    return T.add(T.mul(sum, 0.5), y);
  };
  await check('addLayerNorm', both, [make([3, 5], 1), make([3, 5], 2), make([5], 3), make([5], 4)]);
  await check('addLayerNorm, transposed residual', (x, rT, w, b) => both(x!, T.transpose(rT!), w!, b!), [
    make([4, 3], 5),
    make([3, 4], 6),
    make([3], 7),
    make([3], 8),
  ]);
  await gpuMatchesCpu('addLayerNorm', (_device, x, r, w, b) => both(x!, r!, w!, b!), [[7, 33], [7, 33], [33], [33]]);
});

test('gradcheck embedding (repeated ids accumulate), indexSelect, swiglu, dropout', async () => {
  const ids = ints([1, 3, 1, 0, 3, 3], 'cpu', [2, 3]);
  await check('embedding', (t) => T.embedding(t, ids), [make([4, 3], 12)]);
  await check('indexSelect dim 1', (x) => T.indexSelect(x, 1, ints([2, 0, 2])), [make([2, 3], 13)]);
  await check('swiglu', (u, v, b) => T.swiglu(u, v, b), [
    make([2, 3], 14),
    make([2, 3], 15),
    make([1], 16, 'cpu', 0.5, 1.5),
  ]);
  await check('dropout (fixed seed)', (x) => T.dropout(x, 0.3, true, { seed: 3 }), [make([4, 4], 17)]);
});

test('gradcheck gather (repeated indices accumulate; an index narrower than the input off its dim)', async () => {
  await check('gather dim 1', (x) => T.gather(x, 1, ints([2, 0, 2, 1, 1, 1], 'cpu', [2, 3])), [make([2, 4], 18)]);
  await check('gather dim 0, index [2, 2] of [3, 4]', (x) => T.gather(x, 0, ints([2, 0, 2, 2], 'cpu', [2, 2])), [
    make([3, 4], 19),
  ]);
  await check('gather rank 3 dim -1', (x) => T.gather(x, -1, ints([0, 0, 1, 2, 1, 0, 2, 2], 'cpu', [2, 2, 2])), [
    make([2, 2, 3], 20),
  ]);
});

test('GPU gradients of the fused ops equal the CPU oracle', async () => {
  await gpuMatchesCpu('softmax', (_, x) => T.softmax(x), [[4, 9]]);
  await gpuMatchesCpu('layerNorm', (_, x, w, b) => T.layerNorm(x, w, b), [[5, 8], [8], [8]]);
  await gpuMatchesCpu('crossEntropy', (d, x) => T.crossEntropy(x, ints([1, 0, -100, 6, 2], d)), [[5, 7]]);
  await gpuMatchesCpu('embedding', (d, t) => T.embedding(t, ints([2, 2, 0, 5, 1], d)), [[6, 4]]);
  await gpuMatchesCpu('swiglu', (_, u, v, b) => T.swiglu(u, v, b), [[3, 4], [3, 4], [1]]);
  await gpuMatchesCpu('gather', (d, x) => T.gather(x, 1, ints([4, 0, 4, 4, 1, 2, 3, 3, 0], d, [3, 3])), [[3, 5]]);
  await gpuMatchesCpu(
    'gather, transposed index view',
    (d, x) => T.gather(x, 0, ints([1, 0, 2, 2, 0, 1], d, [3, 2]).transpose(0, 1)),
    [[3, 3]],
  );
});

test(
  'gradcheck attention with dropout on the probabilities (fixed seed: the rule regenerates the mask); GPU equals ' +
    'CPU',
  async () => {
    const shape = [1, 2, 6, 4];
    const opts = { causal: true, dropout: 0.3, seed: 7 };
    await check('attention dropout', (q, k, v) => T.attention(q, k, v, opts), [
      make(shape, 20),
      make(shape, 21),
      make(shape, 22),
    ]);
    await gpuMatchesCpu('attention dropout', (_device, q, k, v) => T.attention(q, k, v, opts), [
      [2, 2, 9, 8],
      [2, 2, 9, 8],
      [2, 2, 9, 8],
    ]);
  },
);

test(
  'pairwiseLinear: gradcheck, and its gradients equal those through the materialised outer ' + 'concatenation',
  async () => {
    await check('pairwiseLinear', (x, w, b) => T.pairwiseLinear(x, w, b), [
      make([2, 3, 2], 70),
      make([3, 4], 71),
      make([3], 72),
    ]);
    await gpuMatchesCpu('pairwiseLinear', (_d, x, w, b) => T.pairwiseLinear(x, w, b), [[1, 5, 3], [4, 6], [4]]);
    const grads: Float64Array[][] = [];
    for (const route of ['split', 'materialised'] as const) {
      const xs = [make([2, 4, 3], 73, 'gpu'), make([5, 6], 74, 'gpu'), make([5], 75, 'gpu')].map((t) => requireGrad(t));
      const [x, w, b] = xs as [Tensor, Tensor, Tensor];
      const y = route === 'split' ? T.pairwiseLinear(x, w, b) : T.linear(T.outerConcat(x), w, b);
      T.sum(T.mul(y, make([2, 4, 4, 5], 76, 'gpu'))).backward();
      grads.push(await Promise.all(xs.map((t) => t.grad!.dataF64())));
    }
    grads[0]!.forEach((g, k) =>
      g.forEach((v, i) =>
        assert.ok(
          Math.abs(v - grads[1]![k]![i]!) <= 1e-4 * (1 + Math.abs(grads[1]![k]![i]!)),
          `input ${k}[${i}]: ${v} vs ${grads[1]![k]![i]}`,
        ),
      ),
    );
  },
);

test.run();
