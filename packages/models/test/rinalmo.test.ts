/**
 * RiNALMo against PyTorch (fixtures/make_rinalmo_fixture.py, float64): a tiny model (d 40, 2 blocks,
 * 4 heads) loaded from each of the four checkpoint files (official BF16 flash names, official F64
 * non-flash names under `lm.` with buffers and a head, multimolecule F16 with its 28- and 26-token
 * vocabularies) gives the same representation, MLM logits, loss and every parameter gradient for a
 * batch with padding, <mask>, <unk> and ambiguity codes, to 1e-4 relative ignoring pad rows.
 * Plus the configs, the token-dropout and pad-row behaviour, and a leak check.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { noGrad, zeroGrad } from '@rnagrad/autograd';
import { readFile } from 'node:fs/promises';
import {
  RINALMO_CONFIGS,
  RinalmoModel,
  bytesSource,
  decodeFloats,
  loadRinalmoWeights,
  readSafetensorsIndex,
  readSafetensorsTensor,
  rinalmoMlmLoss,
} from '../src/index.js';
import { loadRinalmoFile } from '../src/node/safetensors-file.js';
import { collectGarbage } from './gc.js';

const rt = await T.init({ quiet: true });
const fixturePath = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;
const expectedSource = bytesSource(
  await readFile(fixturePath('rinalmo_tiny_expected.safetensors')),
  'rinalmo_tiny_expected',
);
const expected = await readSafetensorsIndex(expectedSource);
const config = JSON.parse(expected.metadata.config!) as { dim: number; layers: number; heads: number; ffnDim: number };
const want = async (name: string) => {
  const e = expected.entries.get(name);
  if (!e) throw new Error(`rinalmo_tiny_expected: no tensor "${name}"`);
  return { values: await readSafetensorsTensor(expectedSource, e), shape: e.shape };
};
const asTensor = async (name: string) => {
  const { values, shape } = await want(name);
  return T.tensor(values, { shape, dtype: values instanceof Int32Array ? 'i32' : 'f32' });
};

/** max |have − want| ≤ tol · max |want| over the rows where `keep` is 1 (rows = all but the last dim). */
function assertClose(
  have: Float64Array | Float32Array,
  ref: Float32Array | Int32Array,
  what: string,
  keep?: Int32Array,
  tol = 1e-4,
): number {
  const width = keep ? ref.length / keep.length : ref.length;
  const counted = (i: number) => !keep || keep[Math.floor(i / width)] !== 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) if (counted(i)) scale = Math.max(scale, Math.abs(ref[i]!));
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!counted(i)) continue;
    const err = Math.abs(have[i]! - ref[i]!);
    worst = Math.max(worst, err / (scale || 1));
    if (!(err <= tol * scale + 1e-7))
      assert.unreachable(`${what}[${i}]: ${have[i]} vs PyTorch ${ref[i]} (max |ref| ${scale})`);
  }
  return worst;
}

const tokens = await asTensor('tokens');
const tokenIds = (await want('tokens')).values as Int32Array;
const notPad = Int32Array.from(tokenIds, (t) => (t === 1 ? 0 : 1));

const checkpoints = [
  ['rinalmo_tiny_official.safetensors', 'official', '', 'BF16'],
  ['rinalmo_tiny_finetuned.safetensors', 'official', 'lm.', 'F64'],
  ['rinalmo_tiny_mm28.safetensors', 'multimolecule', 'model.', 'F16'],
  ['rinalmo_tiny_mm26.safetensors', 'multimolecule', 'rinalmo.', 'F16'],
] as const;

for (const [file, layout, prefix, dtype] of checkpoints) {
  test(
    `${file} (${layout}, prefix "${prefix}", ${dtype}): representation, logits, loss and every gradient match ` +
      `PyTorch to 1e-4`,
    async () => {
      const model = new RinalmoModel({ dim: config.dim, layers: config.layers, heads: config.heads }).eval();
      assert.is(model.cfg.ffnDim, config.ffnDim, 'SwiGLU width int(8d/3)');
      const report = await loadRinalmoFile(model, fixturePath(file));
      assert.equal([report.keys.layout, report.keys.prefix], [layout, prefix]);
      assert.equal(Object.keys(report.dtypes), [dtype]);
      const targets = await asTensor('targets');
      const [wr, wl] = [await asTensor('loss_weights.representation'), await asTensor('loss_weights.logits')];
      const { representation, logits, loss, xe } = T.tidy(() => {
        const out = model.forward(tokens);
        const masked = rinalmoMlmLoss(out.logits!, targets);
        const l = T.add(T.add(T.sum(T.mul(out.representation, wr)), T.sum(T.mul(out.logits!, wl))), masked);
        l.backward();
        return { representation: out.representation, logits: out.logits!, loss: l, xe: masked };
      });
      const worst: Record<string, number> = {};
      worst.representation = assertClose(
        await representation.dataF64(),
        (await want('representation')).values,
        'representation',
        notPad,
      );
      worst.logits = assertClose(await logits.dataF64(), (await want('logits')).values, 'logits', notPad);
      const rep = await representation.dataF64();
      assert.ok(
        rep.every((v, i) => notPad[Math.floor(i / config.dim)] || v === 0),
        'pad rows of the representation are exactly 0',
      );
      const [gotLoss, gotXe] = [await loss.item(), await xe.item()];
      assert.ok(
        Math.abs(gotLoss - Number(expected.metadata.loss)) <= 1e-4 * Math.abs(Number(expected.metadata.loss)),
        `loss ${gotLoss} vs ${expected.metadata.loss}`,
      );
      assert.ok(Math.abs(gotXe - Number(expected.metadata.masked_cross_entropy)) <= 1e-4 * gotXe, `masked XE ${gotXe}`);
      for (const [name, p] of model.namedParameters()) {
        worst[name] = assertClose(await p.grad!.dataF64(), (await want(`grad.${name}`)).values, `d/d${name}`);
      }
      if (file.includes('official'))
        console.log(
          `    worst relative error: ${Object.entries(worst)
            .sort((a, b) => b[1] - a[1])
            .slice(0, 3)
            .map(([k, v]) => `${k} ${v.toExponential(1)}`)
            .join(', ')}`,
        );
      if (file.includes('finetuned')) {
        assert.equal([...report.aside.keys()], ['threshold', 'pred_head.linear_in.weight', 'pred_head.linear_in.bias']);
        assert.equal(report.verified.filter((k) => k.endsWith('inv_freq')).length, 2);
        assert.ok(Math.abs(report.aside.get('threshold')![0]! - 0.17) < 1e-7);
      }
      if (file.includes('mm')) {
        assert.ok(report.verified.includes('lm_head.bias'));
        assert.ok(report.droppedVocabRows.includes('X') && report.droppedVocabRows.includes('<null>'));
      }
      zeroGrad(model.parameters());
      for (const t of [representation, logits, loss, xe, targets, wr, wl]) t.dispose();
      model.dispose();
    },
  );
}

test('configs: nano/micro/mega/giga sizes, parameter counts (models.md B1) and SwiGLU widths', () => {
  const want = {
    nano: [6, 320, 853, 7.51e6],
    micro: [12, 480, 1280, 33.49e6],
    mega: [30, 640, 1706, 148.06e6],
    giga: [33, 1280, 3413, 650.9e6],
  };
  for (const [name, [layers, dim, ffn, params]] of Object.entries(want)) {
    const cfg = RINALMO_CONFIGS[name as keyof typeof want];
    assert.equal([cfg.layers, cfg.dim, cfg.heads], [layers, dim, 20]);
    // Count from shapes without allocating: embedding + blocks + final LN + MLM head.
    const d = dim!;
    const block = 3 * d * d + d * d + 4 * d + 2 * (ffn! * d + ffn!) + 1 + ffn! * d + d;
    const count = 22 * d + layers! * block + 2 * d + (d * d + d + 2 * d + 22 * d + 22);
    assert.ok(Math.abs(count - params!) / params! < 5e-4, `${name}: ${count} parameters vs ${params}`);
  }
  const nano = new RinalmoModel('pico');
  assert.is(nano.cfg.ffnDim, Math.floor((8 * 16) / 3));
  nano.dispose();
  assert.throws(() => new RinalmoModel({ dim: 30, layers: 1, heads: 4 }), /not divisible by heads 4/);
});

test(
  'token dropout, also in eval mode: <mask> rows zeroed, the rest × 0.88 / (1 − masks / tokens) per ' + 'sequence',
  async () => {
    T.manualSeed(3);
    const model = new RinalmoModel('pico').eval();
    const rows = [
      [0, 5, 4, 7, 8, 4, 2],
      [0, 6, 6, 2, 1, 1, 1],
      [0, 4, 5, 2, 1, 1, 1],
    ];
    const ids = T.tensor(rows, { dtype: 'i32' });
    // The embedding stage written out by hand: factor per row from counts done here in JS.
    const factors = rows.map((r) => {
      const tokensInRow = r.filter((t) => t !== 1).length;
      return 0.88 / (1 - r.filter((t) => t === 4).length / tokensInRow);
    });
    const [got, ref] = T.tidy(() => {
      const keep = T.tensor(rows.map((r, b) => r.map((t) => (t === 4 ? 0 : factors[b]!))));
      let x = T.mul(T.embedding(model.embedding.weight, ids), keep.unsqueeze(2));
      const isToken = T.ne(ids, 1);
      for (const block of model.transformer.blocks.items) x = block.forward(x, isToken);
      const manual = T.mul(model.transformer.final_layer_norm.forward(x), T.cast(isToken, 'f32').unsqueeze(2));
      return [model.forward(ids).representation, manual];
    });
    assert.equal(
      factors.map((f) => +f.toFixed(4)),
      [1.232, 0.88, 1.1733],
    );
    const [g, r] = [await got.dataF64(), await ref.dataF64()];
    g.forEach((v, i) => assert.ok(Math.abs(v - r[i]!) <= 1e-5, `element ${i}: ${v} vs ${r[i]}`));
    for (const t of [ids, got, ref]) t.dispose();
    model.dispose();
  },
);

test(
  'inference (no tape) frees each block as it goes: 6 blocks need the memory of one, same output as with a ' + 'tape',
  async () => {
    const allocated = async (layers: number) => {
      T.manualSeed(7);
      const model = new RinalmoModel({ dim: 32, layers, heads: 4 }).eval();
      const ids = T.tensor(
        Int32Array.from({ length: 2 * 64 }, (_, i) => (i % 64 === 0 ? 0 : 5 + (i % 4))),
        { shape: [2, 64], dtype: 'i32' },
      );
      await rt.sync();
      rt.pool.trim();
      const before = rt.stats();
      const rep = noGrad(() => T.tidy(() => model.forward(ids).representation));
      const values = await rep.dataF64();
      const after = rt.stats();
      const withTape = T.tidy(() => model.forward(ids).representation);
      const taped = await withTape.dataF64();
      values.forEach((v, i) => assert.ok(Math.abs(v - taped[i]!) <= 1e-5, `no-grad vs taped element ${i}`));
      for (const t of [ids, rep, withTape]) t.dispose();
      model.dispose();
      return after.liveBytes + after.pooledBytes - before.liveBytes - before.pooledBytes;
    };
    const [one, six] = [await allocated(1), await allocated(6)];
    assert.ok(six < 1.5 * one, `6 blocks allocated ${six} bytes, 1 block ${one}`);
  },
);

test('safetensors: F16 and BF16 decode exactly, including subnormals, infinities and NaN', () => {
  const f16 = new Uint8Array(
    new Uint16Array([0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x8000]).buffer,
  );
  const got = decodeFloats(f16, 'F16');
  assert.equal([...got.slice(0, 7)], [1, -2, 2 ** -24, 1023 * 2 ** -24, 65504, Infinity, -Infinity]);
  assert.ok(Number.isNaN(got[7]) && Object.is(got[8], -0));
  const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc2f7, 0x0001, 0x7f80]).buffer);
  assert.equal([...decodeFloats(bf16, 'BF16')], [1, -123.5, Math.fround(2 ** -133), Infinity]);
});

test("no tensors leak: a forward + backward inside tidy returns to the model's own tensors", async () => {
  const model = new RinalmoModel({ dim: config.dim, layers: config.layers, heads: config.heads });
  await loadRinalmoWeights(model, bytesSource(await readFile(fixturePath('rinalmo_tiny_official.safetensors'))));
  await collectGarbage(); // before counting: a finalizer run mid-test would lower the count
  const start = T.liveTensorCount();
  for (let i = 0; i < 2; i++) {
    const loss = T.tidy(() => {
      const l = T.sum(model.forward(tokens).logits!);
      l.backward();
      return l;
    });
    await loss.item();
    loss.dispose();
    zeroGrad(model.parameters());
    assert.is(T.liveTensorCount(), start, `step ${i}`);
  }
  model.dispose();
});

test.run();
