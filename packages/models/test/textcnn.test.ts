/**
 * The TextCNN head against PyTorch (fixture: fixtures/make_textcnn_fixture.py, HELM's Conv2d head in float64,
 * each row run on its real codons alone): output and the gradients of the features and every parameter.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import * as T from '@rnagrad/tensor';
import { requireGrad } from '@rnagrad/autograd';
import { TextCnnHead, decodeSafetensors } from '../src/index.js';

await T.init({ quiet: true });
const { tensors, metadata } = decodeSafetensors(
  await readFile(new URL('../fixtures/textcnn_fixture.safetensors', import.meta.url)),
  { source: 'textcnn_fixture' },
);
const config = JSON.parse(metadata.config!) as {
  inputSize: number;
  outputs: number;
  filters: number;
  kernels: number[];
};
const lengths = JSON.parse(metadata.lengths!) as number[];

async function near(got: Tensor, want: Tensor, what: string, tol = 1e-4): Promise<void> {
  const [g, w] = [await got.dataF64(), await want.dataF64()];
  assert.equal(got.shape, want.shape, `${what} shape`);
  const scale = Math.max(1e-3, ...w.map(Math.abs));
  w.forEach((v, i) => assert.ok(Math.abs(g[i]! - v) <= tol * scale, `${what}[${i}]: ${g[i]} vs PyTorch ${v}`));
}
type Tensor = T.Tensor;

test('TextCNN head: output and every gradient match PyTorch (padding excluded from the max-pool)', async () => {
  const head = new TextCnnHead(config).eval();
  head.loadStateDict(new Map([...tensors].filter(([k]) => k.startsWith('param.')).map(([k, v]) => [k.slice(6), v])));
  const features = requireGrad(T.clone(tensors.get('features')!));
  const out = T.tidy(() => {
    const o = head.forward(features, lengths);
    T.sum(T.mul(o, tensors.get('probe')!)).backward();
    return o;
  });
  await near(out, tensors.get('output')!, 'output');
  await near(features.grad!, tensors.get('grad.features')!, 'd features');
  for (const [name, p] of head.namedParameters()) await near(p.grad!, tensors.get(`grad.${name}`)!, `d ${name}`);
  head.dispose();
});

test('TextCNN head: bad shapes and lengths are refused by name', () => {
  const head = new TextCnnHead({ inputSize: 4, outputs: 1, filters: 2 });
  const x = T.zeros([2, 6, 4]);
  assert.throws(() => head.forward(x, [6]), /1 lengths for a batch of 2/);
  assert.throws(() => head.forward(x, [6, 4]), /row 1 has length 4; it must be in 5\.\.6/);
  assert.throws(
    () => head.forward(T.zeros([2, 6, 3]), [6, 6]),
    /features must be \[batch, length, 4\], got \[2, 6, 3\]/,
  );
  assert.throws(() => new TextCnnHead({ inputSize: 4, outputs: 1, kernels: [0] }), /kernels must be integers ≥ 1/);
  head.dispose();
});

test.run();
