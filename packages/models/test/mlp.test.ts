/**
 * A tiny MLP (Linear → GELU → Linear, cross-entropy) against PyTorch: loss and every gradient
 * (fixture: fixtures/make_mlp_fixture.py); then it trains on the fixed batch and its loss falls.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { zeroGrad } from '@rnagrad/autograd';
import { readFile } from 'node:fs/promises';
import { AdamW, BlockList, Linear, Module, decodeSafetensors } from '../src/index.js';

await T.init({ quiet: true });
const { tensors, metadata } = decodeSafetensors(
  await readFile(new URL('../fixtures/mlp_fixture.safetensors', import.meta.url)),
  { source: 'mlp_fixture' },
);

/** PyTorch's nn.Sequential(Linear(8, 16), GELU(), Linear(16, 4)): parameters "0.*" and "2.*". */
class Mlp extends Module {
  readonly layers = this.module('seq', new BlockList([new Linear(8, 16), new Linear(16, 4)]));
  forward(x: T.Tensor): T.Tensor {
    const [a, b] = this.layers.items;
    return b!.forward(T.gelu(a!.forward(x)));
  }
}

function load(model: Mlp): void {
  const byName = new Map([
    ['seq.0.weight', tensors.get('param.0.weight')!],
    ['seq.0.bias', tensors.get('param.0.bias')!],
    ['seq.1.weight', tensors.get('param.2.weight')!],
    ['seq.1.bias', tensors.get('param.2.bias')!],
  ]);
  model.loadStateDict(byName);
}

test('MLP loss and all gradients match PyTorch to 1e-4 relative', async () => {
  const model = new Mlp();
  load(model);
  const loss = T.tidy(() => {
    const l = T.crossEntropy(model.forward(tensors.get('input')!), tensors.get('targets')!);
    l.backward();
    return l;
  });
  const expected = Number(metadata.loss);
  const got = await loss.item();
  assert.ok(Math.abs(got - expected) <= 1e-4 * expected, `loss ${got} vs ${expected}`);
  const names: [string, string][] = [
    ['seq.0.weight', '0.weight'],
    ['seq.0.bias', '0.bias'],
    ['seq.1.weight', '2.weight'],
    ['seq.1.bias', '2.bias'],
  ];
  const params = new Map(model.namedParameters());
  for (const [ours, theirs] of names) {
    const want = await tensors.get(`grad.${theirs}`)!.dataF64();
    const have = await params.get(ours)!.grad!.dataF64();
    const scale = Math.max(...want.map(Math.abs));
    want.forEach((w, i) =>
      assert.ok(Math.abs(have[i]! - w) <= 1e-4 * scale + 1e-8, `${ours}[${i}]: ${have[i]} vs ${w}`),
    );
  }
  model.dispose();
});

test('the MLP trains: loss on the fixed batch falls below a third', async () => {
  const model = new Mlp();
  load(model);
  const opt = new AdamW(model.namedParameters(), { lr: 0.02, weightDecay: 0 });
  const step = () =>
    T.tidy(() => {
      const l = T.crossEntropy(model.forward(tensors.get('input')!), tensors.get('targets')!);
      l.backward();
      return l;
    });
  const first = step();
  const start = await first.item();
  first.dispose();
  opt.update();
  zeroGrad(model.parameters());
  let last = start;
  for (let i = 0; i < 60; i++) {
    const l = step();
    opt.update();
    zeroGrad(model.parameters());
    if (i === 59) last = await l.item();
    l.dispose();
  }
  assert.ok(last < start / 3, `loss ${start} → ${last}`);
  opt.dispose();
  model.dispose();
});

test.run();
