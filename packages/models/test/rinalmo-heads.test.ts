/**
 * RiNALMo's secondary-structure and regression heads against PyTorch (fixture:
 * fixtures/make_downstream_fixture.py): output, loss, every parameter gradient and the gradient
 * into the encoder's representation; plus the classification head's shapes and the parameter
 * names of the official fine-tuned checkpoints.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { readFile } from 'node:fs/promises';
import {
  ClassificationHead,
  RegressionHead,
  SecondaryStructureHead,
  decodeSafetensors,
  pairLoss,
} from '../src/index.js';
import type { Module } from '../src/index.js';

await T.init({ quiet: true });
const { tensors, metadata } = decodeSafetensors(
  await readFile(new URL('../fixtures/downstream_fixture.safetensors', import.meta.url)),
  { source: 'downstream_fixture' },
);
const fixture = (name: string) => {
  const t = tensors.get(name);
  if (!t) throw new Error(`fixture has no ${name}`);
  return t;
};

function loadFromFixture(head: Module, prefix: string): void {
  head.loadStateDict(new Map(head.namedParameters().map(([n]) => [n, fixture(`${prefix}.param.${n}`)])));
}

/** max |a − b| ≤ tol · max(1, max |b|). */
async function assertClose(actual: T.Tensor, expected: T.Tensor, tol: number, what: string): Promise<void> {
  assert.equal(actual.shape, expected.shape, `${what} shape`);
  const [a, b] = [await actual.dataF64(), await expected.dataF64()];
  const scale = Math.max(1, ...b.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst <= tol * scale, `${what}: max error ${worst.toExponential(2)} > ${tol} · ${scale.toFixed(3)}`);
}

test('secondary-structure head: logits, BCE on the upper triangle and every gradient match PyTorch', async () => {
  const head = new SecondaryStructureHead({ dim: 8, channels: 6, blocks: 2 });
  assert.equal(
    head.namedParameters().map(([n]) => n),
    [
      'linear_in.weight',
      'linear_in.bias',
      'resnet.blocks.0.conv_net.0.weight',
      'resnet.blocks.0.conv_net.3.weight',
      'resnet.blocks.0.conv_net.6.weight',
      'resnet.blocks.1.conv_net.0.weight',
      'resnet.blocks.1.conv_net.3.weight',
      'resnet.blocks.1.conv_net.6.weight',
      'conv_out.weight',
      'conv_out.bias',
    ],
  );
  loadFromFixture(head, 'ss');
  const x = T.keep(T.clone(fixture('ss.input')).requireGrad());
  const [logits, loss] = T.tidy(() => {
    const out = head.forward(x);
    const l = pairLoss(out, fixture('ss.target').reshape([1, 11, 11]));
    l.backward();
    return [out, l];
  });
  await assertClose(logits!, fixture('ss.output'), 1e-4, 'logits');
  const want = Number(metadata['ss.loss']);
  const got = await loss!.item();
  assert.ok(Math.abs(got - want) <= 1e-5 * want, `loss ${got} vs ${want}`);
  for (const [name, p] of head.namedParameters())
    await assertClose(p.grad!, fixture(`ss.grad.${name}`), 1e-4, `grad ${name}`);
  await assertClose(x.grad!, fixture('ss.grad.input'), 1e-4, 'grad input');
  for (const t of [logits!, loss!, x]) t.dispose();
  head.dispose();
});

test('regression head on a padded batch: predictions, MSE and every gradient match PyTorch', async () => {
  const head = new RegressionHead({ dim: 8, channels: 6, blocks: 2, dropout: 0.2 });
  head.eval(); // the fixture has no dropout
  loadFromFixture(head, 'mrl');
  const x = T.keep(T.clone(fixture('mrl.input')).requireGrad());
  const mask = T.keep(T.sub(1, T.cast(fixture('mrl.pad'), 'f32')));
  const [pred, loss] = T.tidy(() => {
    const out = head.forward(x, mask);
    const l = T.mean(T.square(T.sub(out, fixture('mrl.target'))));
    l.backward();
    return [out, l];
  });
  await assertClose(pred!, fixture('mrl.output'), 1e-4, 'predictions');
  const want = Number(metadata['mrl.loss']);
  assert.ok(Math.abs((await loss!.item()) - want) <= 1e-5 * want, 'loss');
  for (const [name, p] of head.namedParameters())
    await assertClose(p.grad!, fixture(`mrl.grad.${name}`), 1e-4, `grad ${name}`);
  await assertClose(x.grad!, fixture('mrl.grad.input'), 1e-4, 'grad input');
  for (const t of [pred!, loss!, x, mask]) t.dispose();
  head.dispose();
});

test('classification head: <cls> row → Linear → GELU → Linear', async () => {
  const head = new ClassificationHead({ dim: 4, hidden: 5, classes: 3 });
  const rep = T.randn([2, 6, 4]);
  const logits = head.forward(rep);
  assert.equal(logits.shape, [2, 3]);
  // Only the <cls> row matters: changing the other rows leaves the logits alone.
  const other = T.concat([T.narrow(rep, 1, 0, 1), T.randn([2, 5, 4])], 1);
  await assertClose(head.forward(other), logits, 1e-6, 'logits from <cls> only');
  head.dispose();
});

test.run();
