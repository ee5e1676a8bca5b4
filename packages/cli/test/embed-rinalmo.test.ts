/**
 * `rnagrad embed --model rinalmo --weights …` on the committed tiny fixtures (official and
 * multimolecule layouts): the written "mean" and "representation" equal the model's own, computed
 * in this process; pad rows are zero; the ids are in the metadata in order.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '@rnagrad/tensor';
import '@rnagrad/autograd';
import { RinalmoModel, decodeSafetensors, embedRinalmo } from '@rnagrad/models';
import { loadRinalmoFile } from '@rnagrad/models/node';
import { NucleotideTokenizer } from '@rnagrad/tokenizers';

const bin = fileURLToPath(new URL('../bin/rnagrad.js', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../../models/fixtures/${name}`, import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'rnagrad-embed-rinalmo-'));
const seqs = [
  ['s1', 'ACGUAGCUAGGA'],
  ['s2', 'GGAUCCNRA'],
  ['s3', 'UUG'],
] as const;
writeFileSync(join(root, 'rna.fasta'), seqs.map(([n, s]) => `>${n}\n${s}\n`).join(''));

await T.init({ quiet: true });

for (const file of ['rinalmo_tiny_official.safetensors', 'rinalmo_tiny_mm28.safetensors']) {
  test(`embed --model rinalmo --weights ${file} --heads 4 --per-token equals the model's representation`, async () => {
    const out = join(root, `${file}.out.safetensors`);
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'embed',
        '--model',
        'rinalmo',
        '--weights',
        fixture(file),
        '--heads',
        '4',
        '--fasta',
        join(root, 'rna.fasta'),
        '--out',
        out,
        '--per-token',
        '--batch',
        '2',
      ],
      { encoding: 'utf8' },
    );
    assert.is(r.status, 0, r.stderr);
    const { tensors, metadata } = decodeSafetensors(readFileSync(out), { source: out });
    assert.equal(
      JSON.parse(metadata.ids!),
      seqs.map(([n]) => n),
    );
    const mean = (await tensors.get('mean')!.data()) as Float32Array;
    const rep = tensors.get('representation')!;
    assert.equal(rep.shape, [3, 14, 40]);
    const repValues = (await rep.data()) as Float32Array;

    const model = new RinalmoModel({ dim: 40, layers: 2, heads: 4 });
    await loadRinalmoFile(model, fixture(file));
    const tokens = seqs.map(([, s]) => new NucleotideTokenizer().encode(s));
    const expected = await embedRinalmo(model, tokens, { batchSize: 3, perToken: true });
    model.dispose();
    const close = (a: Float32Array, b: Float32Array) =>
      a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5 + 1e-4 * Math.abs(b[i]!));
    assert.ok(close(mean, expected.mean), 'mean');
    assert.ok(close(repValues, expected.representation!), 'representation');
    // s3 has 5 tokens: rows 5..13 are padding.
    assert.ok(
      repValues.subarray((2 * 14 + 5) * 40, 3 * 14 * 40).every((v) => v === 0),
      'pad rows are zero',
    );
    for (const t of tensors.values()) t.dispose();
  });
}

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
