/** The solution to stop 2's exercise: softplus and its rule, checked against central differences and the GPU. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { gradcheck } from '@rnagrad/autograd';
import { softplus } from '../solutions/softplus.js';

await T.init({ quiet: true });

test('softplus: value and gradient match central differences (float64 twin)', async () => {
  const x = T.tensor([-30, -3, -0.5, 0, 0.25, 2, 30], { device: 'cpu' });
  const y = await softplus(x).dataF64();
  const expected = [-30, -3, -0.5, 0, 0.25, 2, 30].map((v) => Math.log1p(Math.exp(v)));
  y.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-6, `softplus(${i}) = ${v}, expected ${expected[i]}`));
  const r = await gradcheck(softplus, [x]);
  assert.ok(r.ok, r.detail);
});

test('softplus: one tape node, and the GPU agrees with the CPU', async () => {
  const values = [-5, -1, 0, 1, 5, 100];
  const g = T.tensor(values).requireGrad();
  const y = softplus(g);
  assert.is((y.gradNode as { op: string }).op, 'softplus');
  y.sum().backward();
  const [dy, gx] = await Promise.all([y.dataF64(), g.grad!.dataF64()]);
  values.forEach((v, i) => {
    assert.ok(Math.abs(dy[i]! - Math.log1p(Math.exp(v))) < 1e-4 * Math.max(1, v), `value ${v}`);
    assert.ok(Math.abs(gx[i]! - 1 / (1 + Math.exp(-v))) < 1e-6, `gradient at ${v}`);
  });
});

test.run();
