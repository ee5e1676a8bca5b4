import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Module, decodeSafetensors, encodeSafetensors, loadCheckpoint, saveCheckpoint } from '../src/node.js';

await T.init({ quiet: true });

class Tiny extends Module {
  readonly w = this.param(
    'w',
    T.tensor([
      [1, 2],
      [3, 4],
    ]),
  );
  readonly inner = this.module(
    'inner',
    new (class extends Module {
      readonly b = this.param('bias', T.tensor([5, 6, 7]));
    })(),
  );
}

test('parameters have dotted PyTorch-style names', () => {
  const m = new Tiny();
  assert.equal(
    m.namedParameters().map(([k, p]) => [k, p.shape]),
    [
      ['w', [2, 2]],
      ['inner.bias', [3]],
    ],
  );
  assert.is(m.parameterCount(), 7);
  assert.ok(m.parameters().every((p) => p.requiresGrad));
});

test('safetensors round trip, with metadata', async () => {
  const m = new Tiny();
  const bytes = await encodeSafetensors(m.namedParameters(), { note: 'hello' });
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert.is(metadata.note, 'hello');
  assert.equal(Array.from(await tensors.get('inner.bias')!.data()), [5, 6, 7]);
  const other = new Tiny();
  T.assign(other.w, 0);
  other.loadStateDict(tensors);
  assert.equal(Array.from(await other.w.data()), [1, 2, 3, 4]);
});

test('strict loading names missing, unexpected and mismatched parameters', () => {
  const m = new Tiny();
  assert.throws(() => m.loadStateDict(new Map([['w', T.zeros([2, 2])]])), /missing inner\.bias/);
  assert.throws(
    () =>
      m.loadStateDict(
        new Map([
          ['w', T.zeros([2, 2])],
          ['inner.bias', T.zeros([3])],
          ['extra', T.zeros([1])],
        ]),
      ),
    /unexpected extra/,
  );
  assert.throws(
    () =>
      m.loadStateDict(
        new Map([
          ['w', T.zeros([3, 2])],
          ['inner.bias', T.zeros([3])],
        ]),
      ),
    /shape mismatch for w \(model \[2, 2\], given \[3, 2\]\)/,
  );
  const loose = m.loadStateDict(new Map([['w', T.zeros([2, 2])]]), { strict: false });
  assert.equal(loose.missing, ['inner.bias']);
});

test('corrupt checkpoints get errors that name the problem', async () => {
  const good = await encodeSafetensors([['a', T.tensor([1, 2, 3])]]);
  assert.throws(
    () => decodeSafetensors(good.subarray(0, 4), { source: 'x.safetensors' }),
    /x\.safetensors: corrupt safetensors file: only 4 bytes/,
  );
  assert.throws(
    () => decodeSafetensors(good.subarray(0, good.length - 4)),
    /tensor "a" \[3\] needs 12 bytes but its data_offsets are \[0, 12\] in 8 bytes of data/,
  );
  const badJson = good.slice();
  badJson[9] = 0x7b;
  badJson[10] = 0x7b;
  assert.throws(() => decodeSafetensors(badJson), /header is not valid JSON/);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 10n ** 9n, true);
  assert.throws(() => decodeSafetensors(huge), /header length 1000000000 exceeds the file size/);
  await assert.not.throws(() => decodeSafetensors(good));
});

test('checkpoint files are written atomically and missing files are reported', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rnagrad-'));
  const path = join(dir, 'nested', 'model.safetensors');
  await saveCheckpoint(path, new Tiny().namedParameters());
  assert.equal(await readdir(join(dir, 'nested')), ['model.safetensors'], 'no temporary file left behind');
  const { tensors } = await loadCheckpoint(path);
  assert.equal(Array.from(await tensors.get('w')!.data()), [1, 2, 3, 4]);
  await writeFile(path, (await readFile(path)).subarray(0, 20));
  try {
    await loadCheckpoint(path);
    assert.unreachable('a truncated file must not load');
  } catch (err) {
    assert.match((err as Error).message, /model\.safetensors: corrupt safetensors file/);
  }
  try {
    await loadCheckpoint(join(dir, 'absent.safetensors'));
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /cannot read .*absent\.safetensors: no such file/);
  }
});

test.run();
