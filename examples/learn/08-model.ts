/**
 * Stop 8 — the model and its training (docs/learn/08-model.md): a functional GPT-2 trained a few
 * steps, HXE's "better mistakes" on the codon tree, and HELM's model with both losses.
 * Runs on the float64 CPU twin (seconds); with --gpu the same code runs on the GPU and prints the
 * same lines (most of its time goes to compiling shaders on a software adapter).
 * Run: node --import tsx examples/learn/08-model.ts [--gpu]
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import '@rnagrad/autograd';
import { CodonTokenizer, codonTree } from '@rnagrad/tokenizers';
import { HelmModel, lossFunction } from '@rnagrad/models';
import { type Gpt2Config, GPT2, initParams, makeBatches, paramSpecs } from '../../bench/lib/gpt2.js';

if (process.argv.includes('--gpu')) await T.init({ quiet: true });
else T.setDefaultDevice('cpu');

// 1. A functional GPT-2: parameters are a plain list (bench/lib/gpt2.ts), the model one function.
const c: Gpt2Config = { ...GPT2, layers: 1, d: 32, heads: 2, T: 16, B: 4, vocab: 32, lr: 1e-2 };
const names = paramSpecs(c).map((s) => s.name);
const params = paramSpecs(c).map((s, k) => T.tensor(initParams(c)[k]!, { shape: s.shape }).requireGrad());
const P = (name: string) => params[names.indexOf(name)]!;

function gpt2Loss(tokens: Tensor, targets: Tensor): Tensor {
  const { B, T: L, d, heads } = c;
  let x = T.add(T.embedding(P('wte'), tokens), P('wpe')).reshape([B * L, d]); // token + position
  for (let l = 0; l < c.layers; l++) {
    const p = (s: string) => P(`h.${l}.${s}`);
    const qkv = T.matmul(T.layerNorm(x, p('ln1.w'), p('ln1.b')), p('attn.qkv.w'), { bias: p('attn.qkv.b') });
    const split = qkv.reshape([B, L, 3, heads, d / heads]).permute([2, 0, 3, 1, 4]); // [3, B, H, L, Dh]
    const [q, k, v] = [0, 1, 2].map((i) => split.narrow(0, i, 1).squeeze(0)) as [Tensor, Tensor, Tensor];
    const a = T.attention(q, k, v, { causal: true })
      .permute([0, 2, 1, 3])
      .reshape([B * L, d]);
    x = T.add(x, T.matmul(a, p('attn.proj.w'), { bias: p('attn.proj.b') }));
    const h = T.matmul(T.layerNorm(x, p('ln2.w'), p('ln2.b')), p('mlp.fc.w'), {
      bias: p('mlp.fc.b'),
      activation: 'geluTanh',
    });
    x = T.add(x, T.matmul(h, p('mlp.proj.w'), { bias: p('mlp.proj.b') }));
  }
  const logits = T.matmul(T.layerNorm(x, P('lnf.w'), P('lnf.b')), P('wte').transpose(0, 1)); // tied LM head
  return T.crossEntropy(logits, targets);
}

const batch = makeBatches(1, c)[0]!;
const tokens = T.tensor(batch.tokens, { shape: [c.B, c.T] });
const targets = T.tensor(batch.targets);
const [m, v] = [params.map((p) => T.zerosLike(p)), params.map((p) => T.zerosLike(p))];
const losses: number[] = [];
for (let step = 1; step <= 10; step++) {
  const loss = T.tidy(() => {
    const l = gpt2Loss(tokens, targets);
    l.backward();
    return l;
  });
  T.adamwStep(
    params,
    params.map((p) => p.grad!),
    m,
    v,
    { ...c, step },
  );
  for (const p of params) {
    p.grad!.dispose();
    p.grad = null;
  }
  losses.push(await loss.item());
  loss.dispose();
}
const count = params.reduce((n, p) => n + p.size, 0);
console.log(`GPT-2 (${c.layers} layer, d ${c.d}, ${count} parameters), 10 AdamW steps on one batch:`);
console.log(`  loss ${losses.map((l) => l.toFixed(2)).join(' → ')}  (ln ${c.vocab} = ${Math.log(c.vocab).toFixed(2)})`);

// 2. HXE on the codon tree: a wrong guess that is a synonymous codon costs less than an unrelated one.
const tree = codonTree();
const tokenizer = new CodonTokenizer();
const pathOf = (codon: string) => {
  const path: string[] = [];
  for (let n = tree.leafIds[tokenizer.tokenToId(codon)]!; n >= 0; n = tree.parent[n]!) path.push(tree.labels[n]!);
  return path.join(' → ');
};
console.log(`codon tree: ${pathOf('AAA')}`);
// lossFunction('hxe', α) builds the per-class path table (hxePathTable) of this tree and calls the HXE op.
const [xeLoss, hxeLoss] = [lossFunction('xe', 0), lossFunction('hxe', 0.2)];
const target = T.tensor(Int32Array.from([tokenizer.tokenToId('AAA')]));
for (const guess of ['AAG', 'TGG']) {
  const logits = T.tensor(
    Array.from({ length: 70 }, (_, id) => (id === tokenizer.tokenToId(guess) ? 5 : 0)),
    { shape: [1, 70] },
  );
  const [xe, hxe] = await Promise.all([xeLoss(logits, target).item(), hxeLoss(logits, target).item()]);
  console.log(
    `  target AAA (K), the model bets on ${guess} (${pathOf(guess).split(' → ')[1]}):` +
      ` cross-entropy ${xe.toFixed(3)}, HXE α=0.2 ${hxe.toFixed(3)}`,
  );
}

// 3. HELM's model (a GPT-2 stack with PyTorch names) on a real gene start, with both losses.
T.manualSeed(0);
const helm = new HelmModel({ dModel: 32, layers: 1, heads: 2, dFF: 64, maxPositions: 64 });
const ids = tokenizer.encode('ATGAAACGCATTAGCACCACCATTACCACCACCATCACCATTACCACAGGTAACGGTGCGGGCTGA');
const labels = Int32Array.from(ids, (id, i) => (i % 4 === 2 ? id : -100)); // score every fourth position
const masked = Int32Array.from(ids, (id, i) => (i % 4 === 2 ? tokenizer.tokenToId('<mask>') : id));
const logits = helm.forward(T.tensor(masked, { shape: [1, ids.length] })).reshape([ids.length, 70]);
const [xe, hxe] = await Promise.all([xeLoss, hxeLoss].map((loss) => loss(logits, T.tensor(labels)).item()));
console.log(
  `HELM (${helm.parameterCount()} parameters), ${ids.length} tokens, ${labels.filter((t) => t >= 0).length} masked:`,
);
console.log(
  `  untrained: cross-entropy ${xe!.toFixed(2)} (uniform over 70 tokens: ${Math.log(70).toFixed(2)}), HXE ${hxe!.toFixed(3)}`,
);
console.log(
  `  named like PyTorch: ${helm
    .namedParameters()
    .slice(2, 5)
    .map(([n]) => n)
    .join(', ')}, …`,
);
