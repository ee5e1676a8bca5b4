import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { HelmModel, attentionProbabilities, inspectHelm } from '../src/index.js';

await T.init({ quiet: true });

const tokens = Int32Array.from([0, 20, 45, 54, 33, 61, 7, 2]);

for (const objective of ['mlm', 'clm'] as const) {
  const name = `inspectHelm (${objective}): logits equal forward's, attention rows are distributions`;
  test(`${name}${objective === 'clm' ? ' with no weight on later keys' : ''}`, async () => {
    T.manualSeed(5);
    const model = new HelmModel({ dModel: 16, layers: 2, heads: 2, dFF: 32, maxPositions: 16, objective });
    const inside = await inspectHelm(model, tokens);
    const L = tokens.length;
    const logits = model.forward(T.tensor(tokens, { shape: [1, L], dtype: 'i32' }));
    const expected = (await logits.data()) as Float32Array;
    logits.dispose();
    assert.equal(inside.logits.length, L * 70);
    inside.logits.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-6, `logit ${i}: ${v} vs ${expected[i]}`));
    assert.equal(inside.attention.length, 2 * 2 * L * L);
    for (let row = 0; row < 2 * 2 * L; row++) {
      const query = row % L;
      const p = inside.attention.subarray(row * L, (row + 1) * L);
      const sum = p.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5, `row ${row} sums to ${sum}`);
      if (objective === 'clm')
        assert.ok(
          p.slice(query + 1).every((v) => v === 0),
          `row ${row} attends to later keys`,
        );
    }
    const names = inside.tensors.map((t) => t.name);
    for (const n of ['transformer.h.1.attn.probs', 'transformer.h.0.mlp.c_fc']) assert.ok(names.includes(n), n);
    assert.is(names.at(-1), 'logits');
    const shape = (name: string) => inside.tensors.find((t) => t.name === name)!.shape;
    assert.equal(shape('transformer.h.0.attn.c_attn'), [1, L, 48]);
    assert.equal(shape('transformer.h.0.attn.q'), [1, 2, L, 8]);
    assert.equal(shape('transformer.h.0.attn.probs'), [1, 2, L, L]);
    assert.equal(shape('transformer.h.0.mlp.c_fc'), [1, L, 32]);
    assert.ok(inside.tensors.every((t) => t.source.startsWith('packages/')));
    model.dispose();
  });
}

test('attentionProbabilities · v equals the fused attention kernel, with padded keys masked', async () => {
  T.manualSeed(6);
  const [B, H, L, D] = [2, 3, 5, 4];
  const q = T.randn([B, H, L, D]);
  const k = T.randn([B, H, L, D]);
  const v = T.randn([B, H, L, D]);
  const keyPaddingMask = T.tensor(Int32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]), { shape: [B, L], dtype: 'i32' });
  for (const causal of [false, true]) {
    const explicit = T.matmul(attentionProbabilities(q, k, { keyPaddingMask, causal }), v);
    const fused = T.attention(q, k, v, { keyPaddingMask, causal });
    const [a, b] = await Promise.all([explicit.data(), fused.data()]);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-5, `causal ${causal}, element ${i}: ${x} vs ${b[i]}`));
    explicit.dispose();
    fused.dispose();
  }
  for (const t of [q, k, v, keyPaddingMask]) t.dispose();
});

test('inspectHelm refuses a sequence longer than maxPositions and out-of-vocabulary ids', async () => {
  const model = new HelmModel({ dModel: 8, layers: 1, heads: 2, dFF: 16, maxPositions: 4 });
  const cases = [
    [new Int32Array(5), /5 tokens; the model takes 1\.\.4/],
    [Int32Array.from([0, 70]), /0\.\.69/],
  ] as const;
  for (const [bad, pattern] of cases) {
    try {
      await inspectHelm(model, bad);
      assert.unreachable('no error');
    } catch (err) {
      assert.match((err as Error).message, pattern);
    }
  }
  model.dispose();
});

test.run();
