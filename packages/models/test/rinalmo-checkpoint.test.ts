/**
 * RiNALMo checkpoints: bad files (truncated, wrong header length, null or non-object header,
 * missing key, wrong shape, wrong dtype, offsets out of range, NaN values with checkFinite, a wrong
 * inv_freq, a forced wrong layout) each fail with one error naming the problem and the file, leave
 * the model unchanged and leak no GPU buffer; exports to both layouts and dtypes load back; the
 * Node streaming writer and reader round-trip through a real file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  RinalmoModel,
  type RinalmoExportOptions,
  type TensorToWrite,
  type WritableDType,
  bytesSource,
  inferRinalmoConfig,
  loadRinalmoWeights,
  readSafetensorsIndex,
  readSafetensorsTensor,
  rinalmoExportEntries,
  rinalmoExportMetadata,
  safetensorsBytes,
} from '../src/index.js';
import { fileSource, loadRinalmoFile, writeSafetensorsFile } from '../src/node/safetensors-file.js';
import { collectGarbage } from './gc.js';

const rt = await T.init({ quiet: true });
const officialBytes = await readFile(new URL('../fixtures/rinalmo_tiny_official.safetensors', import.meta.url));
const officialIndex = await readSafetensorsIndex(bytesSource(officialBytes, 'official'));
const tiny = { dim: 40, layers: 2, heads: 4 };

/** The official fixture's tensors as f32 arrays, to be altered and rewritten. */
async function officialTensors(): Promise<Map<string, { shape: number[]; values: Float32Array | Int32Array }>> {
  const out = new Map<string, { shape: number[]; values: Float32Array | Int32Array }>();
  for (const e of officialIndex.entries.values())
    out.set(e.name, { shape: e.shape, values: await readSafetensorsTensor(bytesSource(officialBytes), e) });
  return out;
}

function toWrite(
  tensors: Map<string, { shape: number[]; values: Float32Array | Int32Array }>,
): [string, TensorToWrite][] {
  return [...tensors].map(([k, t]) => [k, { shape: t.shape, values: async () => t.values }]);
}

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await promise.then(
    () => null,
    (err: Error) => err,
  );
  assert.ok(error, `expected a rejection matching ${pattern}`);
  assert.match(error.message, pattern);
}

async function snapshot(model: RinalmoModel): Promise<number[]> {
  const all: number[] = [];
  for (const p of model.parameters()) all.push(...(await p.dataF64()));
  return all;
}

/** Loading `bytes` must fail with every pattern in the one message, change nothing and leak nothing. */
async function assertRejected(bytes: Uint8Array, name: string, patterns: RegExp[], opts = {}): Promise<void> {
  const model = new RinalmoModel(tiny);
  const before = await snapshot(model);
  await rt.sync();
  await collectGarbage();
  const buffers = rt.stats().liveBuffers;
  let message = '';
  try {
    await loadRinalmoWeights(model, bytesSource(bytes, name), opts);
  } catch (err) {
    message = (err as Error).message;
  }
  assert.ok(message, `${name}: loading should fail`);
  assert.ok(message.includes(name), `${name}: the error names the file: ${message}`);
  for (const p of patterns) assert.match(message, p);
  await rt.sync();
  assert.is(rt.stats().liveBuffers, buffers, `${name}: no GPU buffer leaked`);
  assert.equal(await snapshot(model), before, `${name}: the model is unchanged`);
  model.dispose();
}

test(
  'bad files: truncated, wrong header length, null / non-object / non-JSON header, offsets out of ' + 'range',
  async () => {
    await assertRejected(officialBytes.subarray(0, officialBytes.length - 100), 'truncated.safetensors', [
      /run past the \d+ data bytes \(file truncated\?\)/,
    ]);
    await assertRejected(officialBytes.subarray(0, 5), 'stub.safetensors', [/truncated: 5 bytes/]);
    const headerOf = (json: string) => {
      const body = new TextEncoder().encode(json);
      const out = new Uint8Array(8 + body.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
      out.set(body, 8);
      return out;
    };
    const longLength = new Uint8Array(officialBytes);
    new DataView(longLength.buffer).setBigUint64(0, BigInt(officialBytes.length), true);
    await assertRejected(longLength, 'long-header.safetensors', [/header length \d+ exceeds/]);
    const shortLength = new Uint8Array(officialBytes);
    new DataView(shortLength.buffer).setBigUint64(0, 100n, true);
    await assertRejected(shortLength, 'short-header.safetensors', [/header is not valid UTF-8 JSON/]);
    await assertRejected(headerOf('null'), 'null.safetensors', [/header must be a JSON object, got null/]);
    await assertRejected(headerOf('[1, 2]'), 'array.safetensors', [/header must be a JSON object, got an array/]);
    await assertRejected(
      headerOf('{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}'),
      'offsets.safetensors',
      [/tensor "a": data_offsets \[0, 16\] run past the 0 data bytes/],
    );
    await assertRejected(
      headerOf('{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}'),
      'size.safetensors',
      [/F32 \[4\] needs 16 bytes but data_offsets \[0, 8\] hold 8/],
    );
    await assertRejected(headerOf('{"a": {"dtype": "Q8", "shape": [], "data_offsets": [0, 0]}}'), 'dtype.safetensors', [
      /unknown dtype "Q8"/,
    ]);
  },
);

test('bad contents: missing, unexpected, mis-shaped and mis-typed keys are reported together', async () => {
  const tensors = await officialTensors();
  tensors.delete('transformer.blocks.1.out_layer_norm.bias');
  tensors.set('transformer.blocks.0.transition.0.beta', { shape: [2], values: new Float32Array([1, 1]) });
  tensors.set('transformer.blocks.7.attn_layer_norm.weight', { shape: [40], values: new Float32Array(40) });
  // The decoder bias as I32: a mis-typed key.
  tensors.set('lm_mask_head.linear2.bias', { shape: [22], values: new Int32Array(22) });
  const typed = await safetensorsBytes(toWrite(tensors), { intNames: new Set(['lm_mask_head.linear2.bias']) });
  await assertRejected(typed, 'several.safetensors', [
    /the model is unchanged/,
    /missing 1: transformer\.blocks\.1\.out_layer_norm\.bias/,
    /unexpected 1: transformer\.blocks\.7\.attn_layer_norm\.weight F32 \[40\]/,
    /wrong shape: transformer\.blocks\.0\.transition\.0\.beta is \[2\], model needs \[1\]/,
    /wrong dtype: lm_mask_head\.linear2\.bias is I32/,
  ]);
});

test(
  'NaN values are refused with checkFinite (and named), a wrong inv_freq always; a forced wrong layout ' + 'fails',
  async () => {
    const tensors = await officialTensors();
    const w = tensors.get('transformer.blocks.1.transition.2.weight')!;
    w.values = new Float32Array(w.values.length).fill(NaN);
    const nan = await safetensorsBytes(toWrite(tensors), { dtype: 'BF16' });
    await assertRejected(
      nan,
      'nan.safetensors',
      [/transformer\.blocks\.1\.transition\.2\.weight has 4240 non-finite values \(first NaN at element 0\)/],
      { checkFinite: true },
    );
    const clean = await officialTensors();
    clean.set('transformer.blocks.0.mh_attn.rotary_emb.inv_freq', {
      shape: [5],
      values: new Float32Array([1, 0.5, 0.1, 0.01, 0.001]),
    });
    await assertRejected(await safetensorsBytes(toWrite(clean)), 'invfreq.safetensors', [
      /inv_freq\[1\] = 0\.5 is not the recomputed RoPE frequency 0\.158/,
    ]);
    clean.set('transformer.blocks.0.mh_attn.rotary_emb.inv_freq', { shape: [10], values: new Float32Array(10) });
    await assertRejected(await safetensorsBytes(toWrite(clean)), 'heads.safetensors', [
      /head dim 10 needs \[5\] \(wrong number of heads\?\)/,
    ]);
    await assertRejected(officialBytes, 'forced.safetensors', [/no multimolecule RiNALMo keys found/], {
      layout: 'multimolecule',
    });
  },
);

test(
  'export: official (F32, BF16, split attention) and multimolecule (F16) load back to the same ' + 'weights',
  async () => {
    const model = new RinalmoModel(tiny);
    await loadRinalmoWeights(model, bytesSource(officialBytes));
    const want = await snapshot(model);
    // The fixture's weights are exact in BF16 and F16, so every round trip is exact.
    const cases: (RinalmoExportOptions & { dtype: WritableDType })[] = [
      { layout: 'official', dtype: 'F32' },
      { layout: 'official', dtype: 'BF16', splitAttention: true, prefix: 'lm.' },
      { layout: 'multimolecule', dtype: 'F16' },
      { layout: 'multimolecule', dtype: 'F32', prefix: 'rinalmo.' },
    ];
    for (const c of cases) {
      const bytes = await safetensorsBytes(rinalmoExportEntries(model, c), {
        dtype: c.dtype,
        metadata: rinalmoExportMetadata(c),
      });
      const index = await readSafetensorsIndex(bytesSource(bytes));
      assert.equal(inferRinalmoConfig(index), { dim: 40, layers: 2, ffnDim: 106, mlmHead: true, heads: null });
      if (c.layout === 'multimolecule') {
        assert.equal(index.entries.get(`${c.prefix ?? 'model.'}embeddings.word_embeddings.weight`)!.shape, [28, 40]);
        assert.equal(
          index.entries.get(`${c.prefix ?? 'model.'}encoder.layer.1.intermediate.bias`)!.shape,
          [1],
          'β as intermediate.bias',
        );
        assert.ok(index.entries.has('lm_head.bias'));
      }
      const back = new RinalmoModel(tiny);
      const report = await loadRinalmoWeights(back, bytesSource(bytes, `export ${JSON.stringify(c)}`));
      assert.equal(
        [report.keys.layout, report.keys.prefix, Object.keys(report.dtypes)],
        [c.layout, c.prefix ?? (c.layout === 'official' ? '' : 'model.'), [c.dtype]],
      );
      assert.equal(await snapshot(back), want, `round trip ${JSON.stringify(c)}`);
      back.dispose();
    }
    model.dispose();
  },
);

test("streaming: a load reads the header and then one tensor's byte range at a time, never the file", async () => {
  const inner = bytesSource(officialBytes, 'counted');
  let largest = 0;
  let total = 0;
  const counted = {
    ...inner,
    read: (offset: number, length: number) => (
      (largest = Math.max(largest, length)),
      (total += length),
      inner.read(offset, length)
    ),
  };
  const model = new RinalmoModel(tiny);
  await loadRinalmoWeights(model, counted);
  const biggestTensor = Math.max(...[...officialIndex.entries.values()].map((e) => e.end - e.begin));
  assert.is(
    largest,
    Math.max(
      biggestTensor,
      officialBytes.length - [...officialIndex.entries.values()].reduce((n, e) => n + e.end - e.begin, 0) - 8,
    ),
  );
  assert.ok(largest < officialBytes.length / 5, `largest read ${largest} of ${officialBytes.length}`);
  assert.ok(total < 1.05 * officialBytes.length, 'each byte read about once without checkFinite');
  model.dispose();
});

test('Node: streaming writer and file reader round-trip; missing file and F16 overflow are named errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rinalmo-'));
  try {
    const model = new RinalmoModel(tiny);
    await loadRinalmoFile(model, new URL('../fixtures/rinalmo_tiny_mm28.safetensors', import.meta.url).pathname);
    const path = join(dir, 'out', 'giga-like.safetensors');
    await writeSafetensorsFile(path, rinalmoExportEntries(model, { layout: 'official' }), { dtype: 'BF16' });
    const inMemory = await safetensorsBytes(rinalmoExportEntries(model, { layout: 'official' }), { dtype: 'BF16' });
    assert.ok((await readFile(path)).equals(inMemory), 'the streamed file equals the in-memory encoding');
    const back = new RinalmoModel(tiny);
    await loadRinalmoFile(back, path);
    assert.equal(await snapshot(back), await snapshot(model));
    back.dispose();
    await rejects(
      loadRinalmoFile(model, join(dir, 'nope.safetensors')),
      /nope\.safetensors: cannot open: no such file/,
    );
    const big = new Map([['x', { shape: [2], values: new Float32Array([1, 70000]) }]]);
    await rejects(
      writeSafetensorsFile(join(dir, 'big.safetensors'), toWrite(big), { dtype: 'F16' }),
      /"x": 70000 does not fit in F16/,
    );
    const source = await fileSource(path);
    assert.is(source.size, (await readFile(path)).length);
    await source.close();
    await writeFile(join(dir, 'cut.safetensors'), (await readFile(path)).subarray(0, 1000));
    await rejects(loadRinalmoFile(model, join(dir, 'cut.safetensors')), /cut\.safetensors: corrupt safetensors file/);
    model.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
