/**
 * conv1d, conv2d, instanceNorm (1-D and 2-D) and elu against PyTorch: outputs and the gradients
 * of Σ output·dy through autograd, on the GPU and the CPU oracle (fixture:
 * fixtures/make_conv_fixture.py, torch.nn.functional in float64 from float32-rounded inputs).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { readFile } from 'node:fs/promises';
import { requireGrad } from '../src/index.js';

await T.init({ quiet: true });

interface Stored {
  shape: number[];
  values: number[];
}
type Case = Record<string, Stored>;
const fixture = JSON.parse(await readFile(new URL('./fixtures/conv_fixture.json', import.meta.url), 'utf8')) as Record<
  string,
  Case
>;

function assertClose(actual: Float64Array, want: Stored, what: string, rtol: number, atol: number): void {
  assert.is(actual.length, want.values.length, `${what}: length`);
  want.values.forEach((e, i) => {
    const a = actual[i]!;
    assert.ok(Math.abs(a - e) <= atol + rtol * Math.abs(e), `${what}[${i}]: ${a}, PyTorch ${e}`);
  });
}

const CASES: [string, string[], (...xs: Tensor[]) => Tensor][] = [
  ['conv1d', ['x', 'weight', 'bias'], (x, w, b) => T.conv1d(x!, w!, b!, { padding: 'same' })],
  ['conv2d', ['x', 'weight', 'bias'], (x, w, b) => T.conv2d(x!, w!, b!, { padding: 'same' })],
  ['instanceNorm1d', ['x'], (x) => T.instanceNorm(x!)],
  ['instanceNorm2d', ['x'], (x) => T.instanceNorm(x!)],
  ['elu', ['x'], (x) => T.elu(x!)],
];

for (const [name, inputNames, fn] of CASES) {
  test(`${name}: output and input gradients match PyTorch (GPU and CPU)`, async () => {
    const c = fixture[name]!;
    for (const device of ['gpu', 'cpu'] as const) {
      const load = (s: Stored) => T.tensor(s.values, { shape: s.shape, device });
      const inputs = inputNames.map((n) => requireGrad(load(c[n]!)));
      const dy = load(c.dy!);
      const y = fn(...inputs);
      T.sum(T.mul(y, dy)).backward();
      const what = `${name} (${device})`;
      assertClose(await y.dataF64(), c.y!, `${what} output`, 1e-5, 1e-5);
      for (const [k, n] of inputNames.entries()) {
        assertClose(await inputs[k]!.grad!.dataF64(), c[`d${n}`]!, `${what} d${n}`, 1e-4, 1e-5);
      }
      [...inputs, ...inputs.map((t) => t.grad!), dy, y].forEach((t) => t.dispose());
    }
  });
}

test.run();
