/**
 * MultiHeadAttention (RiNALMo layout: fused Wqkv [3d, d], RoPE, key padding) against PyTorch:
 * output, loss and the gradients w.r.t. the input and both weights, bidirectional and causal
 * (fixture: fixtures/make_mha_fixture.py, float64); plus shape errors, the causal path against the
 * unfused composed reference, parameter names, and a leak check.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { requireGrad, zeroGrad } from '@rnagrad/autograd';
import { readFile } from 'node:fs/promises';
import { MultiHeadAttention, decodeSafetensors } from '../src/index.js';
import { collectGarbage } from './gc.js';

await T.init({ quiet: true });
const { tensors, metadata } = decodeSafetensors(
  await readFile(new URL('../fixtures/mha_fixture.safetensors', import.meta.url)),
  { source: 'mha_fixture' },
);
const config = JSON.parse(metadata.config!) as { batch: number; length: number; dim: number; heads: number };
const fixture = (name: string): T.Tensor => {
  const t = tensors.get(name);
  if (!t) throw new Error(`mha_fixture: no tensor "${name}"`);
  return t;
};

/** max |have − want| ≤ tol · max |want| (+ a tiny floor for all-zero references). */
async function assertClose(have: T.Tensor, want: T.Tensor, what: string, tol = 1e-4): Promise<void> {
  assert.equal(have.shape, want.shape, `${what}: shape`);
  const [h, w] = [await have.dataF64(), await want.dataF64()];
  const scale = Math.max(...w.map(Math.abs));
  for (let i = 0; i < w.length; i++) {
    if (!(Math.abs(h[i]! - w[i]!) <= tol * scale + 1e-7))
      assert.unreachable(`${what}[${i}]: ${h[i]} vs ${w[i]} (max |ref| ${scale})`);
  }
}

function loadFixtureWeights(m: MultiHeadAttention): void {
  m.loadStateDict(new Map([...tensors].filter(([k]) => k.startsWith('param.')).map(([k, v]) => [k.slice(6), v])));
}

for (const name of ['bidirectional', 'causal']) {
  test(`MultiHeadAttention ${name}: output, loss and gradients (x, Wqkv, out_proj) match PyTorch to 1e-4`, async () => {
    const m = new MultiHeadAttention({ dim: config.dim, heads: config.heads, causal: name === 'causal' });
    loadFixtureWeights(m);
    const x = requireGrad(fixture('x'));
    const { out, loss } = T.tidy(() => {
      const o = m.forward(x, fixture('mask'));
      const l = T.sum(T.mul(o, fixture('loss_weights')));
      l.backward();
      return { out: o, loss: l };
    });
    await assertClose(out, fixture(`${name}.out`), `${name} output`);
    const expected = Number(metadata[`${name}.loss`]);
    const got = await loss.item();
    assert.ok(Math.abs(got - expected) <= 1e-4 * Math.abs(expected), `loss ${got} vs PyTorch ${expected}`);
    await assertClose(x.grad!, fixture(`${name}.grad.x`), `${name} d/dx`);
    const names = m.namedParameters().map(([n]) => n);
    assert.equal(names, ['Wqkv.weight', 'out_proj.weight']);
    for (const [pname, p] of m.namedParameters())
      await assertClose(p.grad!, fixture(`${name}.grad.${pname}`), `${name} d/d${pname}`);
    zeroGrad([x, ...m.parameters()]);
    requireGrad(x, false);
    out.dispose();
    loss.dispose();
    m.dispose();
  });
}

test('a RiNALMo block state dict maps onto the parameter names once inv_freq is dropped', () => {
  const m = new MultiHeadAttention({ dim: 8, heads: 2 });
  const prefix = 'transformer.blocks.3.mh_attn.';
  const ckpt = new Map<string, T.Tensor>([
    [`${prefix}Wqkv.weight`, T.ones([24, 8])],
    [`${prefix}out_proj.weight`, T.ones([8, 8])],
    [`${prefix}rotary_emb.inv_freq`, T.ones([2])],
  ]);
  const state = new Map(
    [...ckpt]
      .filter(([k]) => k.startsWith(prefix) && !k.endsWith('inv_freq'))
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );
  const { missing, unexpected } = m.loadStateDict(state);
  assert.equal([missing, unexpected], [[], []]);
  assert.throws(
    () => m.loadStateDict(new Map([...ckpt].map(([k, v]) => [k.slice(prefix.length), v]))),
    /unexpected rotary_emb\.inv_freq/,
  );
  const withBias = new MultiHeadAttention({ dim: 8, heads: 2, bias: true });
  assert.equal(
    withBias.namedParameters().map(([n, p]) => `${n} [${p.shape.join(', ')}]`),
    ['Wqkv.weight [24, 8]', 'Wqkv.bias [24]', 'out_proj.weight [8, 8]', 'out_proj.bias [8]'],
  );
  for (const t of ckpt.values()) t.dispose();
  withBias.dispose();
  m.dispose();
});

test('MultiHeadAttention rejects a wrong input shape and a dim not divisible by heads', () => {
  assert.throws(() => new MultiHeadAttention({ dim: 30, heads: 4 }), /dim 30 is not divisible by heads 4/);
  assert.throws(() => new MultiHeadAttention({ dim: 12, heads: 4 }), /RoPE needs an even head dim, got 3/);
  const m = new MultiHeadAttention({ dim: 16, heads: 2 });
  T.tidy(() => {
    assert.throws(() => m.forward(T.zeros([2, 5, 12])), /x must be \[batch, length, 16\], got \[2, 5, 12\]/);
    assert.throws(() => m.forward(T.zeros([5, 16])), /got \[5, 16\]/);
    assert.throws(
      () => m.forward(T.zeros([2, 5, 16]), T.ones([2, 4], { dtype: 'i32' })),
      /keyPaddingMask must be \[batch, length\] = \[2, 5\], got \[2, 4\]/,
    );
  });
  m.dispose();
});

test('causal mode equals the composed reference (separate q/k/v matmuls, RoPE, unfused masked softmax)', async () => {
  T.manualSeed(5);
  const [B, L, D, H] = [2, 6, 16, 2];
  const hd = D / H;
  const m = new MultiHeadAttention({ dim: D, heads: H, causal: true });
  const x = T.randn([B, L, D]);
  const mask = T.tensor([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], { shape: [B, L], dtype: 'i32' });
  const [got, want] = T.tidy(() => {
    const W = m.Wqkv.weight;
    const heads = (t: T.Tensor) => t.reshape([B, L, H, hd]).permute([0, 2, 1, 3]);
    const [q, k, v] = [0, 1, 2].map((i) => heads(T.linear(x, W.narrow(0, i * D, D)))) as [T.Tensor, T.Tensor, T.Tensor];
    const att = T.composedAttention(T.rope(q), T.rope(k), v, { causal: true, keyPaddingMask: mask });
    const ref = T.linear(att.permute([0, 2, 1, 3]).reshape([B, L, D]), m.out_proj.weight);
    return [m.forward(x, mask), ref];
  });
  await assertClose(got, want, 'causal vs composed', 2e-4);
  for (const t of [x, mask, got, want]) t.dispose();
  m.dispose();
});

test('no tensors leak: forward + backward inside tidy, then zeroGrad/dispose, returns to baseline', async () => {
  await collectGarbage(); // before counting: a finalizer run mid-test would lower the count
  const start = T.liveTensorCount();
  const m = new MultiHeadAttention({ dim: config.dim, heads: config.heads });
  loadFixtureWeights(m);
  const afterModel = T.liveTensorCount();
  for (let i = 0; i < 2; i++) {
    const loss = T.tidy(() => {
      const l = T.sum(T.mul(m.forward(fixture('x'), fixture('mask')), fixture('loss_weights')));
      l.backward();
      return l;
    });
    await loss.item();
    loss.dispose();
    zeroGrad(m.parameters());
    assert.is(T.liveTensorCount(), afterModel, `step ${i}: live tensors back to the model's own`);
  }
  m.dispose();
  assert.is(T.liveTensorCount(), start, 'disposing the module frees its parameters');
});

test('attention dropout: active in training mode only, reproducible under manualSeed', async () => {
  const m = new MultiHeadAttention({ dim: config.dim, heads: config.heads, dropout: 0.5 });
  loadFixtureWeights(m);
  const x = fixture('x');
  const run = async () => {
    const y = m.forward(x, fixture('mask'));
    const v = await y.dataF64();
    y.dispose();
    return v;
  };
  T.manualSeed(1);
  const a = await run();
  T.manualSeed(1);
  const b = await run();
  const c = await run();
  m.train(false);
  const evalOut = await run();
  m.train(true);
  assert.equal(Array.from(a), Array.from(b), 'same seed, same dropout');
  assert.ok(
    a.some((v, i) => Math.abs(v - c[i]!) > 1e-4),
    'the next call draws a new mask',
  );
  await assertClose(
    T.tensor(evalOut, { shape: [evalOut.length] }),
    fixture('bidirectional.out').reshape([evalOut.length]),
    'eval mode equals the dropout-free fixture',
  );
  assert.ok(
    a.some((v, i) => Math.abs(v - evalOut[i]!) > 1e-3),
    'training mode differs from eval',
  );
  assert.throws(() => new MultiHeadAttention({ dim: 8, heads: 2, dropout: 1 }), /dropout must be in \[0, 1\), got 1/);
  x.dispose();
  m.dispose();
});

test.run();
