/**
 * The browser subset of the test suite: the same ops, on the browser's navigator.gpu, against the
 * CPU oracle running in the same page. Bundled by scripts/browser-tests.ts and run in headless
 * Chromium; results are reported through `window.__rnagradResults`.
 */
import * as T from '@rnagrad/tensor';
import { requireGrad } from '@rnagrad/autograd';
import {
  HelmModel,
  MultiHeadAttention,
  RinalmoModel,
  blobSource,
  bytesSource,
  decodeSafetensors,
  generate,
  loadRinalmoWeights,
  lossFunction,
  readSafetensorsIndex,
  readSafetensorsTensor,
  rinalmoMlmLoss,
  trainHelm,
} from '@rnagrad/models';
import { edgeCases } from '../packages/tensor/test/edge-cases.js';
import { hxeEdgeCases } from '../packages/models/test/hxe-edge-cases.js';

interface Result {
  name: string;
  ok: boolean;
  error?: string;
}

const results: Result[] = [];
const tests: [string, () => Promise<void>][] = [];
const test = (name: string, fn: () => Promise<void>) => tests.push([name, fn]);

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

async function assertSame(g: T.Tensor, c: T.Tensor, what: string, tol = 1e-5): Promise<void> {
  check(g.shape.join() === c.shape.join(), `${what}: shape [${g.shape}] vs [${c.shape}]`);
  const [a, b] = await Promise.all([g.dataF64(), c.dataF64()]);
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i]! - b[i]!);
    check(
      diff <= tol + tol * Math.abs(b[i]!) || (Number.isNaN(a[i]) && Number.isNaN(b[i])),
      `${what}: element ${i} is ${a[i]}, expected ${b[i]}`,
    );
  }
}

function values(n: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 8 - 4);
}

function pair(shape: number[], seed: number): [T.Tensor, T.Tensor] {
  const v = values(
    shape.reduce((a, b) => a * b, 1),
    seed,
  );
  return [T.tensor(v, { shape }), T.tensor(v, { shape, device: 'cpu' })];
}

test('init() finds navigator.gpu', async () => {
  const rt = await T.init();
  check(rt.adapter.host === 'browser', `host is ${rt.adapter.host}`);
});

const unary: [string, (x: T.Tensor) => T.Tensor][] = [
  ['exp', T.exp],
  ['tanh', T.tanh],
  ['sigmoid', T.sigmoid],
  ['gelu', T.gelu],
  ['sin', T.sin],
  ['abs', T.abs],
  ['relu', T.relu],
];
for (const [name, fn] of unary) {
  test(`${name} on a transposed view matches the oracle`, async () => {
    const [g, c] = pair([3, 5, 7], name.length);
    await assertSame(fn(g.transpose(0, 2)), fn(c.transpose(0, 2)), name, 2e-5);
  });
}

test('broadcast binary ops and where', async () => {
  const [ga, ca] = pair([4, 1, 6], 1);
  const [gb, cb] = pair([5, 1], 2);
  await assertSame(ga.mul(gb).add(1), ca.mul(cb).add(1), 'mul+add');
  await assertSame(T.where(ga.gt(0), ga, gb), T.where(ca.gt(0), ca, cb), 'where');
  await assertSame(ga.div(gb.abs().add(0.5)), ca.div(cb.abs().add(0.5)), 'div');
});

test('reductions over several axes', async () => {
  const [g, c] = pair([3, 300, 5], 3);
  for (const op of ['sum', 'mean', 'max', 'min'] as const)
    await assertSame(T[op](g, [0, 1], true), T[op](c, [0, 1], true), op, 1e-4);
  await assertSame(T.argmax(g, 1), T.argmax(c, 1), 'argmax');
});

test('concat, gather, slices', async () => {
  const [g, c] = pair([4, 6], 4);
  await assertSame(T.concat([g, g.slice(0, 1, 3)], 0), T.concat([c, c.slice(0, 1, 3)], 0), 'concat');
  const ids = [3, 0, 5, 5];
  await assertSame(
    T.indexSelect(g, 1, T.tensor(new Int32Array(ids))),
    T.indexSelect(c, 1, T.tensor(new Int32Array(ids), { device: 'cpu' })),
    'indexSelect',
  );
});

// PyTorch edge semantics (NaN, ±inf, log-softmax precision, out-of-range indices): the Node cases, here on the
// browser's GPU.
for (const [name, run] of [...edgeCases(), ...hxeEdgeCases()]) test(`edge: ${name}`, run);

test('gather: gradient (deterministic scatter-add along the dim) equals the CPU oracle', async () => {
  const grads: Float64Array[] = [];
  for (const device of ['gpu', 'cpu'] as const) {
    const x = requireGrad(T.tensor(values(15, 21), { shape: [3, 5], device }));
    const index = T.tensor(Int32Array.from([4, 0, 4, 4, 1, 2, 3, 3, 0]), { shape: [3, 3], device });
    T.sum(T.mul(T.gather(x, 1, index), T.tensor(values(9, 22), { shape: [3, 3], device }))).backward();
    grads.push(await x.grad!.dataF64());
  }
  grads[0]!.forEach((v, i) => check(Math.abs(v - grads[1]![i]!) <= 1e-5, `dx[${i}]: ${v} vs ${grads[1]![i]}`));
});

test('rand gives the same bits as the CPU oracle (and so as Node)', async () => {
  T.manualSeed(5);
  const g = await T.rand([513]).data();
  T.manualSeed(5);
  const c = await T.rand([513], { device: 'cpu' }).data();
  check(
    g.every((v, i) => v === c[i]),
    'rand differs from the oracle',
  );
});

test('leak check: live buffers return to baseline', async () => {
  const rt = T.runtime();
  await rt.sync();
  const before = rt.stats().liveBuffers;
  for (let i = 0; i < 100; i++)
    T.tidy(() => {
      T.randn([16, 16]).exp().sum(1);
    });
  await rt.sync();
  check(rt.stats().liveBuffers <= before, `live buffers ${rt.stats().liveBuffers} vs ${before}`);
});

test('HELM masked LM with HXE: loss and gradients equal PyTorch in the browser too', async () => {
  const bytes = new Uint8Array(await (await fetch('/helm_fixture.safetensors')).arrayBuffer());
  const { tensors, metadata } = decodeSafetensors(bytes);
  const model = new HelmModel({ ...JSON.parse(metadata.config!), objective: 'mlm' });
  model.loadStateDict(new Map([...tensors].filter(([k]) => k.startsWith('param.')).map(([k, v]) => [k.slice(6), v])));
  const loss = T.tidy(() => {
    const logits = model.forward(tensors.get('mlm_hxe.ids')!, tensors.get('batch.mask')!).reshape([-1, 70]);
    const l = lossFunction('hxe', 0.2)(logits, tensors.get('mlm_hxe.targets')!.reshape([-1]));
    l.backward();
    return l;
  });
  const expected = Number(metadata['mlm_hxe.loss']);
  const got = await loss.item();
  check(Math.abs(got - expected) <= 1e-4 * expected, `loss ${got} vs PyTorch ${expected}`);
  for (const [name, p] of model.namedParameters()) {
    const want = await tensors.get(`mlm_hxe.grad.${name}`)!.dataF64();
    const have = await p.grad!.dataF64();
    const scale = Math.max(...want.map(Math.abs));
    want.forEach((w, i) => check(Math.abs(have[i]! - w) <= 1e-4 * scale + 1e-7, `${name}[${i}]: ${have[i]} vs ${w}`));
  }
  model.dispose();
});

test('fused attention (causal, key padding): output and dq, dk, dv equal the CPU oracle through autograd', async () => {
  const shape = [2, 2, 37, 16];
  const mask = [...Array(37).fill(1), ...Array(30).fill(1), ...Array(7).fill(0)];
  const run = async (device: 'gpu' | 'cpu') => {
    const [q, k, v, w] = [11, 12, 13, 14].map((seed) => T.tensor(values(2 * 2 * 37 * 16, seed), { shape, device }));
    for (const t of [q, k, v]) requireGrad(t!);
    const keyPaddingMask = T.tensor(new Int32Array(mask), { shape: [2, 37], device });
    const out = T.attention(q!, k!, v!, { causal: true, keyPaddingMask });
    T.sum(T.mul(out, w!)).backward();
    return [out, q!.grad!, k!.grad!, v!.grad!];
  };
  const [gpu, cpu] = [await run('gpu'), await run('cpu')];
  for (const [i, name] of ['out', 'dq', 'dk', 'dv'].entries())
    await assertSame(gpu[i]!, cpu[i]!, `attention ${name}`, 1e-4);
});

test(
  'MultiHeadAttention (Wqkv, RoPE, padding), bidirectional and causal: output and gradients equal PyTorch in the ' +
    'browser',
  async () => {
    const bytes = new Uint8Array(await (await fetch('/mha_fixture.safetensors')).arrayBuffer());
    const { tensors, metadata } = decodeSafetensors(bytes);
    const config = JSON.parse(metadata.config!) as { dim: number; heads: number };
    const get = (name: string) => tensors.get(name)!;
    const close = async (have: T.Tensor, want: T.Tensor, what: string) => {
      const [h, w] = [await have.dataF64(), await want.dataF64()];
      const scale = Math.max(...w.map(Math.abs));
      w.forEach((x, i) => check(Math.abs(h[i]! - x) <= 1e-4 * scale + 1e-7, `${what}[${i}]: ${h[i]} vs ${x}`));
    };
    for (const name of ['bidirectional', 'causal']) {
      const m = new MultiHeadAttention({ dim: config.dim, heads: config.heads, causal: name === 'causal' });
      m.loadStateDict(new Map([...tensors].filter(([k]) => k.startsWith('param.')).map(([k, v]) => [k.slice(6), v])));
      const x = requireGrad(get('x').clone());
      const out = m.forward(x, get('mask'));
      T.sum(T.mul(out, get('loss_weights'))).backward();
      await close(out, get(`${name}.out`), `${name} output`);
      await close(x.grad!, get(`${name}.grad.x`), `${name} d/dx`);
      for (const [pname, p] of m.namedParameters())
        await close(p.grad!, get(`${name}.grad.${pname}`), `${name} d/d${pname}`);
      m.dispose();
    }
  },
);

test('the shared trainer learns a cyclic codon language in the browser, and generate continues it', async () => {
  const cycle = [20, 45, 54, 33, 61];
  const make = (n: number, salt: number) =>
    Array.from({ length: n }, (_, i) => Int32Array.from({ length: 30 }, (_, j) => cycle[(i * 7 + salt + j) % 5]!));
  T.manualSeed(1);
  const model = new HelmModel({ dModel: 32, layers: 1, heads: 2, dFF: 64, maxPositions: 40, objective: 'clm' });
  const corpus = { train: make(20, 0), validation: make(4, 3), names: { train: [], validation: [] } };
  const { history } = await trainHelm(model, corpus, {
    steps: 40,
    batchSize: 8,
    length: 16,
    loss: 'xe',
    lr: 1e-2,
    minLr: 1e-3,
    warmupSteps: 5,
    evalEvery: 40,
    validationBatches: 1,
    accumulate: 2,
  });
  const [before, after] = [history.evaluations[0]!.metrics, history.evaluations.at(-1)!.metrics];
  check(
    after.crossEntropy! < 0.5 * before.crossEntropy!,
    `cross-entropy ${before.crossEntropy} → ${after.crossEntropy}`,
  );
  const [seq] = await generate(model, { count: 1, prompts: [Int32Array.from([20, 45])], maxCodons: 12, topK: 1 });
  check(
    seq!.codons.length >= 2 && seq!.codons.every((c) => /^[ACGT]{3}$/.test(c)),
    `generated ${seq!.codons.join(' ')}`,
  );
  model.dispose();
});

test(
  'RiNALMo from official (BF16) and multimolecule (F16) files: representation, logits and every gradient equal ' +
    'PyTorch',
  async () => {
    const expectedSource = bytesSource(
      new Uint8Array(await (await fetch('/rinalmo_tiny_expected.safetensors')).arrayBuffer()),
      'expected',
    );
    const expected = await readSafetensorsIndex(expectedSource);
    const get = async (name: string) => {
      const e = expected.entries.get(name)!;
      const values = await readSafetensorsTensor(expectedSource, e);
      return T.tensor(values, { shape: e.shape, dtype: values instanceof Int32Array ? 'i32' : 'f32' });
    };
    const config = JSON.parse(expected.metadata.config!) as { dim: number; layers: number; heads: number };
    const tokens = await get('tokens');
    const keep = Array.from(await tokens.data(), (t) => t !== 1);
    const close = async (have: T.Tensor, want: T.Tensor, what: string, rows: boolean) => {
      const [h, w] = [await have.dataF64(), await want.dataF64()];
      const width = rows ? w.length / keep.length : w.length;
      const counted = (i: number) => !rows || keep[Math.floor(i / width)];
      const scale = Math.max(...w.map((x, i) => (counted(i) ? Math.abs(x) : 0)));
      w.forEach((x, i) =>
        check(!counted(i) || Math.abs(h[i]! - x) <= 1e-4 * scale + 1e-7, `${what}[${i}]: ${h[i]} vs ${x}`),
      );
    };
    for (const file of ['rinalmo_tiny_official', 'rinalmo_tiny_mm28']) {
      const model = new RinalmoModel(config).eval();
      // A Blob source: the browser path reads each tensor's byte range on its own.
      const blob = await (await fetch(`/${file}.safetensors`)).blob();
      await loadRinalmoWeights(model, blobSource(blob, file));
      const out = model.forward(tokens);
      const loss = T.add(
        T.add(
          T.sum(T.mul(out.representation, await get('loss_weights.representation'))),
          T.sum(T.mul(out.logits!, await get('loss_weights.logits'))),
        ),
        rinalmoMlmLoss(out.logits!, await get('targets')),
      );
      loss.backward();
      check(
        Math.abs((await loss.item()) - Number(expected.metadata.loss)) <= 1e-4 * Number(expected.metadata.loss),
        `${file}: loss`,
      );
      await close(out.representation, await get('representation'), `${file} representation`, true);
      await close(out.logits!, await get('logits'), `${file} logits`, true);
      for (const [name, p] of model.namedParameters())
        await close(p.grad!, await get(`grad.${name}`), `${file} d/d${name}`, false);
      model.dispose();
    }
  },
);

async function main(): Promise<void> {
  for (const [name, fn] of tests) {
    try {
      await fn();
      results.push({ name, ok: true });
    } catch (err) {
      results.push({ name, ok: false, error: String((err as Error)?.stack ?? err) });
    }
  }
  (window as unknown as { __rnagradResults: Result[] }).__rnagradResults = results;
}
void main();
