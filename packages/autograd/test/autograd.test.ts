import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '@rnagrad/tensor';
import { type Tensor } from '@rnagrad/tensor';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gradcheck, noGrad, requireGrad, zeroGrad } from '../src/index.js';

await T.init({ quiet: true });

function values(n: number, seed: number, lo: number, hi: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => lo + ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * (hi - lo));
}
const cpu = (shape: number[], seed: number, lo = -2, hi = 2) =>
  T.tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
    { shape, device: 'cpu' },
  );

async function check(what: string, fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], tol = {}): Promise<void> {
  const r = await gradcheck(fn, inputs, tol);
  assert.ok(r.ok, `${what}: ${r.detail} (score ${r.worst.toFixed(2)})`);
}

const UNARY: [string, (x: Tensor) => Tensor, number, number][] = [
  ['neg', T.neg, -2, 2],
  ['abs', T.abs, 0.1, 2],
  ['square', T.square, -2, 2],
  ['relu', T.relu, 0.1, 2],
  ['exp', T.exp, -2, 2],
  ['log', T.log, 0.2, 3],
  ['sqrt', T.sqrt, 0.2, 3],
  ['rsqrt', T.rsqrt, 0.2, 3],
  ['reciprocal', T.reciprocal, 0.3, 3],
  ['sin', T.sin, -3, 3],
  ['cos', T.cos, -3, 3],
  ['tanh', T.tanh, -3, 3],
  ['sigmoid', T.sigmoid, -4, 4],
  ['erf', T.erf, -2, 2],
  ['gelu', T.gelu, -3, 3],
  ['geluTanh', T.geluTanh, -3, 3],
  ['silu', T.silu, -4, 4],
];
for (const [name, fn, lo, hi] of UNARY) {
  test(`gradcheck ${name}`, async () => {
    await check(name, fn, [cpu([3, 4], name.length, lo, hi)]);
    // relu at x<0 too
    if (name === 'relu') await check(name, fn, [cpu([5], 3, -2, -0.1)]);
  });
}

const BINARY: [string, (a: T.TensorLike, b: T.TensorLike) => Tensor, number, number][] = [
  ['add', T.add, -2, 2],
  ['sub', T.sub, -2, 2],
  ['mul', T.mul, -2, 2],
  ['div', T.div, 0.5, 2],
  ['pow', T.pow, 0.5, 2],
  ['maximum', T.maximum, -2, 2],
  ['minimum', T.minimum, -2, 2],
];
for (const [name, fn, lo, hi] of BINARY) {
  test(`gradcheck ${name} with broadcasting and scalar operands`, async () => {
    await check(`${name} [2,3]x[3]`, fn, [cpu([2, 3], 1, lo, hi), cpu([3], 2, lo, hi)]);
    await check(`${name} [4,1]x[1,5]`, fn, [cpu([4, 1], 3, lo, hi), cpu([1, 5], 4, lo, hi)]);
    await check(`${name} x and 1.5`, (a) => fn(a, 1.5), [cpu([3], 5, lo, hi)]);
    await check(`${name} 1.5 and x`, (a) => fn(1.5, a), [cpu([3], 6, lo, hi)]);
  });
}

test('gradcheck where', async () => {
  const cond = T.tensor([1, 0, 1, 0, 0, 1], { shape: [2, 3], dtype: 'bool', device: 'cpu' });
  await check('where', (a, b) => T.where(cond, a, b), [cpu([2, 3], 1), cpu([3], 2)]);
});

test('gradcheck reductions over random axes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
      fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
      fc.boolean(),
      fc.nat(),
      async (shape, pick, keepdim, seed) => {
        const axes = shape.map((_, d) => d).filter((d) => pick[d]);
        for (const op of ['sum', 'mean', 'prod', 'max', 'min'] as const) {
          await check(`${op}([${shape}], [${axes}])`, (x) => T[op](x, axes, keepdim), [
            cpu(shape, seed, op === 'prod' ? 0.5 : -2, op === 'prod' ? 1.5 : 2),
          ]);
        }
      },
    ),
    { numRuns: 10 },
  );
});

test(
  'gradcheck views: reshape, permute, transpose, slice, narrow, expand, squeeze, unsqueeze, concat, stack, ' +
    'contiguous',
  async () => {
    await check('reshape', (x) => T.reshape(x, [6, 2]), [cpu([3, 4], 1)]);
    await check('permute', (x) => T.permute(x, [2, 0, 1]), [cpu([2, 3, 4], 2)]);
    await check('transpose+reshape', (x) => T.reshape(T.transpose(x), [-1]), [cpu([3, 4], 3)]);
    await check('slice step 2', (x) => T.slice(x, 1, 1, 5, 2), [cpu([3, 5], 4)]);
    await check('narrow', (x) => T.narrow(x, 0, 1, 2), [cpu([4, 2], 5)]);
    await check('expand', (x) => T.expand(x, [3, 4, 2]), [cpu([4, 1], 6)]);
    await check('squeeze/unsqueeze', (x) => T.unsqueeze(T.squeeze(x), 0), [cpu([3, 1, 2], 7)]);
    await check('concat', (a, b) => T.concat([a, b, a], 1), [cpu([2, 3], 8), cpu([2, 1], 9)]);
    await check('stack', (a, b) => T.stack([a, b], 0), [cpu([2, 3], 10), cpu([2, 3], 11)]);
    await check('contiguous', (x) => T.contiguous(T.transpose(x)), [cpu([2, 3], 12)]);
  },
);

test('GPU gradients match the CPU oracle for a composite function', async () => {
  const f = (x: Tensor, w: Tensor, b: Tensor) =>
    T.mean(T.square(T.sub(T.tanh(T.sum(T.mul(T.unsqueeze(x, 2), w), 1)), T.gelu(b))), [0, 1]);
  const shapes = [[5, 4], [4, 3], [3]];
  const grads: Float64Array[][] = [];
  for (const device of ['gpu', 'cpu'] as const) {
    const xs = shapes.map((s, k) =>
      requireGrad(
        T.tensor(
          values(
            s.reduce((a, b) => a * b, 1),
            k + 1,
            -1,
            1,
          ),
          { shape: s, device },
        ),
      ),
    );
    const loss = f(xs[0]!, xs[1]!, xs[2]!);
    loss.backward();
    grads.push(await Promise.all(xs.map((x) => x.grad!.dataF64())));
  }
  grads[0]!.forEach((g, k) =>
    g.forEach((v, i) =>
      assert.ok(Math.abs(v - grads[1]![k]![i]!) < 1e-5, `input ${k}[${i}]: ${v} vs ${grads[1]![k]![i]}`),
    ),
  );
});

test('gradients accumulate over uses and over backward calls; zeroGrad clears', async () => {
  const x = requireGrad(T.tensor([1, 2, 3]));
  T.sum(T.add(T.mul(x, x), x)).backward();
  assert.equal(Array.from(await x.grad!.data()), [3, 5, 7]);
  T.sum(x).backward();
  assert.equal(Array.from(await x.grad!.data()), [4, 6, 8]);
  zeroGrad([x]);
  assert.is(x.grad, null);
});

test('backward needs a scalar or a seed; a used graph cannot run again; noGrad records nothing', async () => {
  const x = requireGrad(T.tensor([1, 2]));
  const y = T.mul(x, 3);
  assert.throws(() => y.backward(), /a seed gradient is needed for a non-scalar output of shape \[2\]/);
  y.backward(T.tensor([1, 10]));
  assert.equal(Array.from(await x.grad!.data()), [3, 30]);
  assert.throws(() => y.backward(T.tensor([1, 1])), /graph was already used|does not depend/);
  const z = noGrad(() => T.mul(x, 2));
  assert.is(z.gradNode, null);
  assert.not.ok(z.requiresGrad);
  assert.throws(() => T.sum(T.tensor([1])).backward(), /does not depend on any tensor that requires grad/);
  assert.throws(() => requireGrad(T.tensor(new Int32Array([1]))), /only f32 tensors can require grad/);
});

/**
 * Runs the garbage collector and the finalizers it queues: handles that earlier tests dropped
 * without dispose() are released by a FinalizationRegistry at GC time, which would otherwise land
 * in the middle of a buffer count (it did on an H200, where the tests allocate at another pace).
 */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

test('the graph survives disposal of intermediate handles; saved values are freed after backward', async () => {
  const rt = T.runtime();
  await rt.sync();
  await collectGarbage(); // before counting, not after: a collection then could hide a missed release
  const before = rt.stats().liveBuffers;
  const w = requireGrad(T.randn([16, 8]));
  for (let step = 0; step < 20; step++) {
    const loss = T.tidy(() => {
      const h = T.tanh(T.sum(T.mul(T.unsqueeze(T.randn([4, 16]), 2), w), 1));
      return T.mean(T.square(h));
    });
    // Every intermediate handle is gone now; the recorded graph still holds what backward needs.
    loss.backward();
    loss.dispose();
  }
  await rt.sync();
  // Only w and its gradient remain.
  assert.is(rt.stats().liveBuffers, before + 2);
  assert.ok(Number.isFinite((await w.grad!.dataF64())[0]!));
});

test('detach cuts the graph', async () => {
  const x = requireGrad(T.tensor([2]));
  const y = T.mul(T.mul(x, x).detach(), x);
  y.backward(T.tensor([1]));
  assert.equal(Array.from(await x.grad!.data()), [4]);
});

test.run();
