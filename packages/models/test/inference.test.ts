/**
 * generate / score / embed: the sampler against known distributions (chi-square over 10,000
 * draws), greedy determinism, valid codons; log-likelihoods against sums computed by hand from
 * the logits; pseudo-log-likelihood against masking one codon at a time.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { noGrad } from '@rnagrad/autograd';
import { GENETIC_CODE, seededRandom, translateCds } from '@rnagrad/tokenizers';
import {
  GENERATION_TOKENS,
  HelmModel,
  embed,
  generate,
  sampleIndex,
  samplingDistribution,
  score,
  untrainedPositionsWarning,
} from '../src/index.js';

await T.init({ quiet: true });

const V = 70;
const tiny = (objective: 'mlm' | 'clm', seed = 1) => {
  T.manualSeed(seed);
  return new HelmModel({ dModel: 16, layers: 1, heads: 2, dFF: 32, maxPositions: 64, objective });
};

/** A real HELM model whose logits are `z` at every position: ln_f outputs e₀, lm_head's column 0 is z. */
function toyModel(z: Float32Array): HelmModel {
  const model = tiny('clm');
  const d = model.cfg.dModel;
  T.assign(model.transformer.ln_f.weight!, T.zeros([d]));
  T.assign(
    model.transformer.ln_f.bias!,
    T.tensor(
      Float32Array.from({ length: d }, (_, i) => (i === 0 ? 1 : 0)),
      { shape: [d] },
    ),
  );
  T.assign(
    model.lm_head.weight,
    T.tensor(
      Float32Array.from({ length: V * d }, (_, k) => (k % d === 0 ? z[k / d]! : 0)),
      { shape: [V, d] },
    ),
  );
  return model;
}

function randomLogits(seed: number): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: V }, () => 3 * (rng.next() - 0.5) + (rng.next() < 0.1 ? 2 : 0));
}

/** Independent reference: softmax(z/τ) over the allowed ids, top-k, then top-p, renormalised. */
function referenceDistribution(z: Float32Array, { temperature = 1, topK = 0, topP = 1 }): Map<number, number> {
  let items = GENERATION_TOKENS.map((id) => ({ id, logit: z[id]! / temperature })).sort(
    (a, b) => b.logit - a.logit || a.id - b.id,
  );
  if (topK) items = items.slice(0, topK);
  const max = items[0]!.logit;
  const total = items.reduce((s, x) => s + Math.exp(x.logit - max), 0);
  const probs = items.map((x) => ({ id: x.id, p: Math.exp(x.logit - max) / total }));
  const kept: typeof probs = [];
  let mass = 0;
  for (const x of probs) {
    kept.push(x);
    mass += x.p;
    if (mass >= topP - 1e-12) break;
  }
  const keptMass = kept.reduce((s, x) => s + x.p, 0);
  return new Map(kept.map((x) => [x.id, x.p / keptMass]));
}

/** Upper 0.1% point of χ²(df) (Wilson–Hilferty). */
function chiSquareCritical(df: number): number {
  const z = 3.0902;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

/** χ² goodness of fit; bins with expected count < 5 are pooled. Fails on any draw outside the support. */
function assertMatches(draws: number[], expected: Map<number, number>, what: string): void {
  const counts = new Map<number, number>();
  for (const d of draws) {
    assert.ok(expected.has(d), `${what}: drew token ${d}, which has probability 0`);
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  const n = draws.length;
  let chi = 0;
  let bins = 0;
  let pooledE = 0;
  let pooledO = 0;
  for (const [id, p] of expected) {
    const e = n * p;
    const o = counts.get(id) ?? 0;
    if (e < 5) {
      pooledE += e;
      pooledO += o;
      continue;
    }
    chi += (o - e) ** 2 / e;
    bins++;
  }
  if (pooledE > 0) {
    chi += (pooledO - pooledE) ** 2 / Math.max(pooledE, 1e-9);
    bins++;
  }
  if (bins === 1) return assert.is(counts.size, 1, `${what}: one outcome expected`);
  assert.ok(
    chi < chiSquareCritical(bins - 1),
    `${what}: χ² ${chi.toFixed(1)} over ${bins - 1} df exceeds ${chiSquareCritical(bins - 1).toFixed(1)}`,
  );
}

test('the toy model has the intended logits at every position', async () => {
  const z = randomLogits(1);
  const model = toyModel(z);
  const logits = noGrad(() => model.forward(T.tensor(Int32Array.from([0, 20, 45]), { shape: [1, 3], dtype: 'i32' })));
  const got = (await logits.data()) as Float32Array;
  for (let p = 0; p < 3; p++)
    for (let i = 0; i < V; i++) assert.ok(Math.abs(got[p * V + i]! - z[i]!) < 1e-5, `position ${p}, token ${i}`);
  logits.dispose();
  model.dispose();
});

test('generate: the first token of 10,000 sequences follows the model distribution (χ²)', async () => {
  const z = randomLogits(2);
  const model = toyModel(z);
  const seqs = await generate(model, { count: 10000, maxCodons: 1, seed: 3 });
  const draws = seqs.map((s) => (s.finished === 'eos' && s.ids.length === 0 ? 2 : s.ids[0]!));
  assertMatches(draws, referenceDistribution(z, {}), 'plain sampling');
  model.dispose();
});

for (const opts of [
  { temperature: 0.5 },
  { temperature: 2 },
  { topK: 5 },
  { topP: 0.6 },
  { topK: 10, topP: 0.8, temperature: 0.7 },
]) {
  test(`sampler with ${JSON.stringify(opts)}: 10,000 draws follow the reference distribution (χ²)`, async () => {
    const z = randomLogits(4);
    const model = toyModel(z);
    const logits = noGrad(() => model.forward(T.tensor(Int32Array.from([0]), { shape: [1, 1], dtype: 'i32' })));
    const fromModel = (await logits.data()) as Float32Array;
    logits.dispose();
    const probs = samplingDistribution(fromModel, opts, GENERATION_TOKENS);
    const rng = seededRandom(5);
    const draws = Array.from({ length: 10000 }, () => sampleIndex(probs, rng));
    assertMatches(draws, referenceDistribution(z, opts), JSON.stringify(opts));
    if (opts.topK) assert.ok(new Set(draws).size <= opts.topK);
    model.dispose();
  });
}

test('top-k = 1 is deterministic (any seed) and equals greedy decoding done by hand', async () => {
  const model = tiny('clm', 6);
  const a = await generate(model, { count: 2, maxCodons: 8, topK: 1, seed: 1 });
  const b = await generate(model, { count: 1, maxCodons: 8, topK: 1, seed: 99 });
  assert.equal(Array.from(a[0]!.ids), Array.from(b[0]!.ids));
  assert.equal(Array.from(a[1]!.ids), Array.from(b[0]!.ids));
  // By hand: argmax over codons and <eos> of the last position, token by token.
  const tokens = [0];
  for (;;) {
    const logits = noGrad(() =>
      model.forward(T.tensor(Int32Array.from(tokens), { shape: [1, tokens.length], dtype: 'i32' })),
    );
    const all = (await logits.data()) as Float32Array;
    logits.dispose();
    const last = all.subarray((tokens.length - 1) * V);
    const best = GENERATION_TOKENS.reduce((m, id) => (last[id]! > last[m]! ? id : m), GENERATION_TOKENS[0]!);
    if (best === 2 || tokens.length - 1 >= 8) break;
    tokens.push(best);
  }
  assert.equal(Array.from(a[0]!.ids), tokens.slice(1));
  model.dispose();
});

test('generated sequences are whole codons that translate; a prompt is kept as their start', async () => {
  const model = tiny('clm', 7);
  const prompt = Int32Array.from([20, 6, 7]); // ATG AAA AAC
  const seqs = await generate(model, { count: 6, maxCodons: 12, prompts: [prompt], temperature: 1.5, seed: 8 });
  for (const s of seqs) {
    assert.equal(Array.from(s.ids.subarray(0, 3)), [20, 6, 7]);
    assert.ok(
      s.ids.every((id) => id >= 6 && id < 70),
      'codon ids only',
    );
    assert.is(s.nucleotides.length, 3 * s.ids.length);
    assert.ok(/^[ACGT]+$/.test(s.nucleotides));
    assert.equal(s.codons.join(''), s.nucleotides);
    const translated = translateCds(s.nucleotides);
    assert.is(translated.length, s.ids.length);
    assert.ok(translated.startsWith(s.protein) && s.protein.startsWith('MKN'));
    assert.ok(/^[ACDEFGHIKLMNPQRSTVWY]*$/.test(s.protein), s.protein);
    assert.is(s.protein, translated.split('*')[0]);
    assert.ok(s.codons.every((c) => c in GENETIC_CODE));
  }
  model.dispose();
});

test('generate refuses a masked model and bad options by name', async () => {
  const model = tiny('mlm');
  try {
    await generate(model, { count: 1 });
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /generate needs a causal \(clm\) model/);
  }
  model.dispose();
  assert.throws(() => samplingDistribution(new Float32Array(V), { topP: 0 }), /topP must be in \(0, 1\]/);
  assert.throws(() => samplingDistribution(new Float32Array(V), { temperature: -1 }), /temperature must be ≥ 0/);
});

/** f64 log-softmax of one row. */
function logSoftmax(row: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(row));
  const lse = max + Math.log(Array.from(row).reduce((s, v) => s + Math.exp(v - max), 0));
  return Array.from(row, (v) => v - lse);
}

async function logitsOf(model: HelmModel, ids: Int32Array): Promise<Float32Array> {
  const t = noGrad(() => model.forward(T.tensor(ids, { shape: [1, ids.length], dtype: 'i32' })));
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

const sequences = [
  Int32Array.from([0, 20, 45, 54, 33, 2]),
  Int32Array.from([0, 20, 2]),
  Int32Array.from([0, 20, 61, 61, 8, 9, 10, 11, 54, 2]),
];

test('causal score = Σ log p(next token) computed by hand from the logits (batched with padding)', async () => {
  const model = tiny('clm', 9);
  const results = await score(model, sequences, { batchSize: 2 });
  for (const [k, s] of sequences.entries()) {
    const logits = await logitsOf(model, s);
    let want = 0;
    for (let i = 0; i + 1 < s.length; i++) want += logSoftmax(logits.subarray(i * V, (i + 1) * V))[s[i + 1]!]!;
    assert.is(results[k]!.tokens, s.length - 1);
    assert.ok(
      Math.abs(results[k]!.logLikelihood - want) < 1e-4 * Math.abs(want),
      `sequence ${k}: ${results[k]!.logLikelihood} vs ${want}`,
    );
  }
  model.dispose();
});

test('masked score = pseudo-log-likelihood: each codon masked alone, one forward each', async () => {
  const model = tiny('mlm', 10);
  const results = await score(model, sequences, { batchSize: 3 });
  for (const [k, s] of sequences.entries()) {
    let want = 0;
    let count = 0;
    for (let i = 0; i < s.length; i++) {
      if (s[i]! < 6) continue;
      const masked = Int32Array.from(s);
      masked[i] = 3;
      want += logSoftmax((await logitsOf(model, masked)).subarray(i * V, (i + 1) * V))[s[i]!]!;
      count++;
    }
    assert.is(results[k]!.tokens, count);
    assert.ok(
      Math.abs(results[k]!.logLikelihood - want) < 1e-4 * Math.abs(want),
      `sequence ${k}: ${results[k]!.logLikelihood} vs ${want}`,
    );
  }
  model.dispose();
});

test('embed: mean over codon positions and CLS of the chosen layer; per-token states; long inputs warned', async () => {
  const model = tiny('mlm', 11);
  const D = model.cfg.dModel;
  for (const layer of [0, -1]) {
    const e = await embed(model, sequences, { layer, batchSize: 2, perToken: true });
    for (const [k, s] of sequences.entries()) {
      const h = noGrad(() => model.hiddenStates(T.tensor(s, { shape: [1, s.length], dtype: 'i32' }), { layer }));
      const states = (await h.data()) as Float32Array;
      h.dispose();
      assert.is(e.perToken![k]!.length, s.length * D);
      for (let j = 0; j < D; j++) {
        let sum = 0;
        let n = 0;
        s.forEach((id, i) => {
          if (id >= 6) {
            sum += states[i * D + j]!;
            n++;
          }
        });
        assert.ok(Math.abs(e.mean[k * D + j]! - sum / n) < 1e-4, `mean, layer ${layer}, sequence ${k}, dim ${j}`);
        assert.ok(Math.abs(e.cls[k * D + j]! - states[j]!) < 1e-4, `cls, layer ${layer}`);
      }
    }
  }
  assert.is(untrainedPositionsWarning(sequences, 100), null);
  assert.match(
    untrainedPositionsWarning(sequences, 6)!,
    /1 of 3 sequences are longer than 6 tokens, the furthest position this model was trained on \(the longest has 10\)/,
  );
  model.dispose();
});

test.run();
