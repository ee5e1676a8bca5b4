/**
 * Fused attention and RoPE (attention.ts): GPU vs the float64 CPU oracle on random shapes, masks and
 * causal settings; fully masked rows; the composed (L×L) reference; the oracle's backward vs central
 * differences; O(L·d) memory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as T from '../src/index.js';
import {
  attention,
  attentionBackward,
  attentionForward,
  attentionQkv,
  attentionQkvBackward,
  composedAttentionBackward,
  composedAttentionForward,
  releaseAttentionSaved,
  rope,
  ropeBackward,
} from '../src/attention.js';
import { assertClose, collectGarbage, rt, valuesFor } from './helpers.js';

type Dev = 'gpu' | 'cpu';

interface Case {
  B: number;
  H: number;
  L: number;
  D: number;
  causal: boolean;
  /** 'none', random holes, or right padding with sequence 0 fully padded. */
  mask: 'none' | 'random' | 'padded';
  seed: number;
}

function maskValues(c: Case): number[] | null {
  if (c.mask === 'none') return null;
  const out: number[] = [];
  let s = c.seed * 7 + 3;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let b = 0; b < c.B; b++) {
    const len = c.mask === 'padded' ? (b === 0 ? 0 : Math.floor(next() * (c.L + 1))) : c.L;
    for (let i = 0; i < c.L; i++) out.push(c.mask === 'random' ? (next() < 0.7 ? 1 : 0) : i < len ? 1 : 0);
  }
  return out;
}

interface Inputs {
  q: T.Tensor;
  k: T.Tensor;
  v: T.Tensor;
  dO: T.Tensor;
  mask: T.Tensor | null;
}

function inputs(c: Case, device: Dev): Inputs {
  const shape = [c.B, c.H, c.L, c.D];
  const mk = (k: number) => T.tensor(valuesFor(shape, c.seed * 4 + k + 1, -1.5, 1.5), { shape, device });
  const m = maskValues(c);
  return {
    q: mk(0),
    k: mk(1),
    v: mk(2),
    dO: mk(3),
    mask: m ? T.tensor(m, { shape: [c.B, c.L], dtype: 'i32', device }) : null,
  };
}

function disposeAll(...ts: (T.Tensor | null | undefined | Record<string, T.Tensor>)[]): void {
  for (const t of ts) {
    if (!t) continue;
    if (t instanceof T.Tensor) t.dispose();
    else for (const x of Object.values(t)) x.dispose();
  }
}

/** Forward and backward on both devices; every output compared with the float64 oracle. */
async function checkCase(c: Case): Promise<void> {
  const what = `B${c.B} H${c.H} L${c.L} D${c.D} ${c.causal ? 'causal' : 'full'} mask:${c.mask}`;
  const results = (['gpu', 'cpu'] as const).map((device) => {
    const x = inputs(c, device);
    const opts = { keyPaddingMask: x.mask, causal: c.causal };
    const { out, logsumexp } = attentionForward(x.q, x.k, x.v, opts);
    const grads = attentionBackward(x.dO, x.q, x.k, x.v, out, logsumexp, opts);
    return { x, out, logsumexp, grads };
  });
  const [g, cpu] = results as [(typeof results)[0], (typeof results)[0]];
  for (const [name, a, b, rtol, atol] of [
    ['out', g.out, cpu.out, 2e-4, 2e-5],
    ['logsumexp', g.logsumexp, cpu.logsumexp, 2e-5, 2e-5],
    ['dq', g.grads.dq, cpu.grads.dq, 5e-4, 5e-5],
    ['dk', g.grads.dk, cpu.grads.dk, 5e-4, 5e-5],
    ['dv', g.grads.dv, cpu.grads.dv, 5e-4, 5e-5],
  ] as const) {
    const [ga, cb] = await Promise.all([a.dataF64(), b.dataF64()]);
    assert.ok(
      ga.every((x) => !Number.isNaN(x)),
      `${what}: ${name} has NaN`,
    );
    assertClose(ga, cb, `${what}: ${name}`, rtol, atol);
  }
  for (const r of results) disposeAll(r.x.q, r.x.k, r.x.v, r.x.dO, r.x.mask, r.out, r.logsumexp, r.grads);
}

const caseArb = (maxL: number, dims: readonly number[]) =>
  fc.record({
    B: fc.integer({ min: 1, max: 3 }),
    H: fc.integer({ min: 1, max: 3 }),
    L: fc.integer({ min: 1, max: maxL }),
    D: fc.constantFrom(...dims),
    causal: fc.boolean(),
    mask: fc.constantFrom('none' as const, 'random' as const, 'padded' as const),
    seed: fc.nat(1000),
  });

test(
  'attention forward and backward match the float64 oracle (short sequences, head dims ' + '16/24/32/64/160)',
  async () => {
    // Every head dim at least once (with and without masks/causal), then random cases.
    for (const D of [16, 24, 32, 64, 160])
      await checkCase({ B: 2, H: 1, L: 37, D, causal: D % 32 === 0, mask: D === 64 ? 'random' : 'padded', seed: D });
    await fc.assert(fc.asyncProperty(caseArb(64, [16, 24, 32, 64, 160]), checkCase), { numRuns: 14 });
  },
);

test('attentionQkv on a strided [B, L, 3, H, D] view: GPU equals the float64 oracle and the split heads', async () => {
  const check = async (c: Case) => {
    const what = `B${c.B} H${c.H} L${c.L} D${c.D} ${c.causal ? 'causal' : 'full'} mask:${c.mask}`;
    const { B, H, L, D } = c;
    // Stored [B, L, H, 3, D]: the [B, L, 3, H, D] operand is a permuted view (strided parts).
    const stored = valuesFor([B, L, H, 3, D], c.seed + 1, -1.5, 1.5);
    const dOutValues = valuesFor([B, L, H, D], c.seed + 2, -1.5, 1.5);
    const m = maskValues(c);
    const run = (device: Dev) => {
      const base = T.tensor(stored, { shape: [B, L, H, 3, D], device });
      const qkv = T.permute(base, [0, 1, 3, 2, 4]);
      const dOut = T.tensor(dOutValues, { shape: [B, L, H, D], device });
      const mask = m ? T.tensor(m, { shape: [B, L], dtype: 'i32', device }) : null;
      const opts = { keyPaddingMask: mask, causal: c.causal };
      const out = attentionQkv(qkv, opts);
      const { out: o2, logsumexp } = attentionForward(
        ...([0, 1, 2].map((p) => T.permute(T.squeeze(T.narrow(qkv, 2, p, 1), 2), [0, 2, 1, 3])) as [
          T.Tensor,
          T.Tensor,
          T.Tensor,
        ]),
        opts,
      );
      const dqkv = attentionQkvBackward(dOut, qkv, out, logsumexp, opts);
      return { tensors: [base, qkv, dOut, mask, o2, logsumexp], out, dqkv, split: T.permute(o2, [0, 2, 1, 3]) };
    };
    const [g, cpu] = [run('gpu'), run('cpu')];
    assert.ok(g.out.isContiguous && g.dqkv.isContiguous, `${what}: contiguous out and dqkv`);
    assert.equal(g.dqkv.shape, [B, L, 3, H, D]);
    assertClose(await g.out.dataF64(), await cpu.out.dataF64(), `${what}: out`, 2e-4, 2e-5);
    assertClose(await cpu.split.dataF64(), await cpu.out.dataF64(), `${what}: out vs split heads`, 1e-12, 1e-12);
    assertClose(await g.dqkv.dataF64(), await cpu.dqkv.dataF64(), `${what}: dqkv`, 5e-4, 5e-5);
    // The oracle's dqkv equals attentionBackward on the split heads, placed back into [B, L, 3, H, D].
    const heads = (t: T.Tensor, p: number) => T.permute(T.squeeze(T.narrow(t, 2, p, 1), 2), [0, 2, 1, 3]);
    const [q, k, v] = [0, 1, 2].map((p) => heads(cpu.tensors[1]!, p));
    const outHeads = T.permute(cpu.out, [0, 2, 1, 3]);
    const ref = attentionBackward(T.permute(cpu.tensors[2]!, [0, 2, 1, 3]), q!, k!, v!, outHeads, cpu.tensors[5]!, {
      keyPaddingMask: cpu.tensors[3],
      causal: c.causal,
    });
    for (const [p, name] of [
      [0, 'dq'],
      [1, 'dk'],
      [2, 'dv'],
    ] as const)
      assertClose(await heads(cpu.dqkv, p).dataF64(), await ref[name].dataF64(), `${what}: ${name}`, 1e-12, 1e-12);
    disposeAll(ref, q, k, v, outHeads);
    for (const r of [g, cpu]) disposeAll(...r.tensors, r.out, r.dqkv, r.split);
  };
  await check({ B: 2, H: 4, L: 64, D: 32, causal: true, mask: 'none', seed: 1 });
  await fc.assert(fc.asyncProperty(caseArb(40, [1, 3, 4, 16, 18]), check), { numRuns: 6 });
});

test('attention on long sequences (lengths 65…300, the long-sequence schedule) matches the oracle', async () => {
  await checkCase({ B: 1, H: 2, L: 300, D: 32, causal: true, mask: 'padded', seed: 5 });
  await fc.assert(
    fc.asyncProperty(
      caseArb(300, [32]).filter((c) => c.L > 64),
      checkCase,
    ),
    { numRuns: 2 },
  );
});

test('rows whose keys are all masked give zero output, -inf logsumexp and zero gradients, never NaN', async () => {
  const B = 2;
  const H = 2;
  const L = 9;
  const D = 16;
  const shape = [B, H, L, D];
  // Sequence 0 fully padded; sequence 1 has its first two keys padded, so causal rows 0 and 1 see no key.
  const mask = T.tensor([...Array(L).fill(0), 0, 0, ...Array(L - 2).fill(1)], { shape: [B, L], dtype: 'bool' });
  const mk = (k: number) => T.tensor(valuesFor(shape, k, -3, 3), { shape });
  const [q, k, v, dO] = [mk(1), mk(2), mk(3), mk(4)];
  for (const causal of [false, true]) {
    const { out, logsumexp: lse } = attentionForward(q, k, v, { keyPaddingMask: mask, causal });
    const { dq, dk, dv } = attentionBackward(dO, q, k, v, out, lse, { keyPaddingMask: mask, causal });
    const [o, l, gq, gk, gv] = await Promise.all([out, lse, dq, dk, dv].map((t) => t.dataF64()));
    for (const arr of [o, l, gq, gk, gv])
      assert.ok(
        arr!.every((x) => !Number.isNaN(x)),
        'no NaN',
      );
    const empty = (b: number, i: number) => b === 0 || (causal && i < 2);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < L; i++) {
          const row = (b * H + h) * L + i;
          if (empty(b, i)) {
            assert.is(l![row], -Infinity, `lse of empty row ${b},${h},${i}`);
            for (let d = 0; d < D; d++) {
              assert.is(o![row * D + d], 0, 'output of an empty row');
              assert.is(gq![row * D + d], 0, 'dq of an empty row');
            }
          } else assert.ok(Number.isFinite(l![row]!), 'lse of a row with keys');
          // Padded keys get no gradient.
          if (b === 0 || i < 2)
            for (let d = 0; d < D; d++)
              assert.ok(gk![row * D + d] === 0 && gv![row * D + d] === 0, `dk/dv of padded key ${b},${i}`);
        }
      }
    }
    disposeAll(out, lse, dq, dk, dv);
  }
  disposeAll(q, k, v, dO, mask);
});

test(
  'attention takes strided inputs (a [B, L, H, D] projection transposed) and bool masks; errors name ' + 'shapes',
  async () => {
    const [B, L, H, D] = [2, 11, 3, 24];
    const base = (s: number) => T.tensor(valuesFor([B, L, H, D], s), { shape: [B, L, H, D] });
    const [q0, k0, v0] = [base(1), base(2), base(3)];
    const [q, k, v] = [q0, k0, v0].map((t) => T.transpose(t, 1, 2));
    const mask = T.tensor(
      Array.from({ length: B * L }, (_, i) => (i % 4 === 3 ? 0 : 1)),
      { shape: [B, L], dtype: 'bool' },
    );
    const out = attention(q!, k!, v!, { keyPaddingMask: mask, causal: true, scale: 0.3 });
    const [qc, kc, vc, mc] = await Promise.all([q!, k!, v!, mask].map((t) => T.to(t, 'cpu')));
    const ref = attention(qc!, kc!, vc!, { keyPaddingMask: mc, causal: true, scale: 0.3 });
    assertClose(await out.dataF64(), await ref.dataF64(), 'strided attention', 2e-4, 2e-5);
    assert.throws(() => attention(q!, k0, v!), /same shape/);
    assert.throws(
      () => attention(q!, k!, v!, { keyPaddingMask: T.ones([B, L + 1], { dtype: 'i32' }) }),
      /keyPaddingMask must be \[batch, length\]/,
    );
    disposeAll(q0, k0, v0, q, k, v, mask, out, qc, kc, vc, mc, ref);
  },
);

test('attention records its op with the output and logsumexp saved, and frees them when not taken', async () => {
  await collectGarbage();
  const shape = [1, 2, 5, 16];
  const [q, k, v] = [1, 2, 3].map((s) => T.tensor(valuesFor(shape, s), { shape }));
  const before = T.liveTensorCount();
  const out = attention(q!, k!, v!, { causal: true });
  out.dispose();
  assert.is(T.liveTensorCount(), before, 'no saved tensors leak when autograd does not take the op');
  const prev = T.hooks.record;
  let seen: { op: string; attrs: Record<string, unknown> } | null = null;
  T.hooks.record = (op, _i, output, attrs) => {
    seen = { op, attrs };
    output.gradNode = {};
  };
  q!.requiresGrad = true;
  const out2 = attention(q!, k!, v!, { causal: true });
  T.hooks.record = prev;
  q!.requiresGrad = false;
  const rec = seen as unknown as {
    op: string;
    attrs: {
      causal: boolean;
      scale: number;
      dropout: null;
      saved: { out: T.Tensor; logsumexp: T.Tensor; keyPaddingMask: null };
    };
  };
  assert.is(rec.op, 'attention');
  assert.is(rec.attrs.causal, true);
  assert.is(rec.attrs.scale, 0.25);
  assert.equal(rec.attrs.saved.logsumexp.shape, [1, 2, 5]);
  assertClose(await rec.attrs.saved.out.dataF64(), await out2.dataF64(), 'saved output');
  releaseAttentionSaved(rec.attrs);
  disposeAll(out2, q, k, v);
  assert.is(T.liveTensorCount(), before - 3);
});

test(
  'dropout on the probabilities: the same stream on GPU and CPU, the backward regenerates it, seeds ' + 'reproduce',
  async () => {
    const c: Case = { B: 2, H: 2, L: 23, D: 16, causal: true, mask: 'random', seed: 11 };
    const results = [];
    for (const device of ['gpu', 'cpu'] as const) {
      const x = inputs(c, device);
      const opts = { keyPaddingMask: x.mask, causal: true, dropout: 0.3, seed: 5 };
      const { out, logsumexp, dropout } = attentionForward(x.q, x.k, x.v, opts);
      assert.ok(dropout && dropout.p === 0.3, 'the stream is returned');
      const grads = attentionBackward(x.dO, x.q, x.k, x.v, out, logsumexp, {
        keyPaddingMask: x.mask,
        causal: true,
        dropout,
      });
      results.push({ x, out, logsumexp, grads });
    }
    const [g, cpu] = results as [(typeof results)[0], (typeof results)[0]];
    for (const name of ['dq', 'dk', 'dv'] as const)
      assertClose(await g.grads[name].dataF64(), await cpu.grads[name].dataF64(), `dropout ${name}`, 5e-4, 5e-5);
    const outG = await g.out.dataF64();
    assertClose(outG, await cpu.out.dataF64(), 'dropout out', 2e-4, 2e-5);
    // Without dropout the output differs; with p = 0 it is exactly the plain op.
    const plain = attentionForward(g.x.q, g.x.k, g.x.v, { keyPaddingMask: g.x.mask, causal: true });
    const zero = attentionForward(g.x.q, g.x.k, g.x.v, { keyPaddingMask: g.x.mask, causal: true, dropout: 0 });
    const plainV = await plain.out.dataF64();
    assert.ok(
      plainV.some((v, i) => Math.abs(v - outG[i]!) > 1e-3),
      'dropout changes the output',
    );
    assert.equal(Array.from(await zero.out.dataF64()), Array.from(plainV), 'p = 0 is no dropout');
    assert.is(zero.dropout, null);
    // The same seed reproduces, the global generator moves on between calls.
    const again = attentionForward(g.x.q, g.x.k, g.x.v, {
      keyPaddingMask: g.x.mask,
      causal: true,
      dropout: 0.3,
      seed: 5,
    });
    assert.equal(Array.from(await again.out.dataF64()), Array.from(outG), 'same seed, same output');
    const a1 = attentionForward(g.x.q, g.x.k, g.x.v, { causal: true, dropout: 0.3 });
    const a2 = attentionForward(g.x.q, g.x.k, g.x.v, { causal: true, dropout: 0.3 });
    assert.ok(a1.dropout!.base !== a2.dropout!.base, 'fresh counters per call');
    const a2v = await a2.out.dataF64();
    assert.ok(
      (await a1.out.dataF64()).some((v, i) => Math.abs(v - a2v[i]!) > 1e-3),
      'different streams, different outputs',
    );
    assert.throws(
      () => composedAttentionForward(g.x.q, g.x.k, g.x.v, { dropout: 0.1 }),
      /dropout is not supported by the composed reference/,
    );
    assert.throws(() => attentionForward(g.x.q, g.x.k, g.x.v, { dropout: 1 }), /dropout must be in \[0, 1\), got 1/);
    for (const r of results) {
      disposeAll(r.x.q, r.x.k, r.x.v, r.x.dO, r.x.mask, r.out, r.logsumexp, r.grads);
    }
    disposeAll(
      plain.out,
      plain.logsumexp,
      zero.out,
      zero.logsumexp,
      again.out,
      again.logsumexp,
      a1.out,
      a1.logsumexp,
      a2.out,
      a2.logsumexp,
    );
  },
);

test('composedAttention (matmul → masked softmax → matmul) and its backward agree with the fused op', async () => {
  for (const c of [
    { B: 2, H: 2, L: 19, D: 16, causal: true, mask: 'padded', seed: 3 },
    { B: 1, H: 3, L: 40, D: 32, causal: false, mask: 'random', seed: 4 },
  ] as Case[]) {
    const x = inputs(c, 'gpu');
    const opts = { keyPaddingMask: x.mask, causal: c.causal };
    const { out: fused, logsumexp: lse } = attentionForward(x.q, x.k, x.v, opts);
    const { out: composed, probs } = composedAttentionForward(x.q, x.k, x.v, opts);
    assertClose(await composed.dataF64(), await fused.dataF64(), 'composed vs fused forward', 2e-4, 2e-5);
    const gf = attentionBackward(x.dO, x.q, x.k, x.v, fused, lse, opts);
    const gc = composedAttentionBackward(x.dO, x.q, x.k, x.v, probs, opts);
    for (const n of ['dq', 'dk', 'dv'] as const)
      assertClose(await gc[n].dataF64(), await gf[n].dataF64(), `composed vs fused ${n}`, 5e-4, 5e-5);
    disposeAll(x.q, x.k, x.v, x.dO, x.mask, fused, composed, probs, lse, gf, gc);
  }
});

/** Central differences of Σ w ⊙ f(x) over the float64 storage of CPU tensor `x`. */
function numericGrad(x: T.Tensor, w: Float64Array, f: () => T.Tensor, h = 1e-5): Float64Array {
  const data = x.storage.data!;
  const out = new Float64Array(x.size);
  const loss = () => {
    const y = f();
    const yd = y.storage.data!;
    let s = 0;
    for (let i = 0; i < w.length; i++) s += yd[i]! * w[i]!;
    y.dispose();
    return s;
  };
  for (let i = 0; i < x.size; i++) {
    const keep = data[i]!;
    data[i] = keep + h;
    const plus = loss();
    data[i] = keep - h;
    const minus = loss();
    data[i] = keep;
    out[i] = (plus - minus) / (2 * h);
  }
  return out;
}

/** A CPU tensor with exact float64 values (no f32 rounding). */
function f64Tensor(shape: number[], seed: number, lo = -1, hi = 1): T.Tensor {
  const t = T.empty(shape, 'f32', 'cpu');
  t.storage.data!.set(valuesFor(shape, seed, lo, hi));
  return t;
}

test('the float64 oracle: attention backward matches central differences (masks, causal)', async () => {
  const [B, H, L, D] = [2, 1, 5, 4];
  const shape = [B, H, L, D];
  const mask = T.tensor([1, 1, 0, 1, 1, 0, 0, 0, 0, 0], { shape: [B, L], dtype: 'i32', device: 'cpu' });
  for (const causal of [false, true]) {
    const [q, k, v] = [f64Tensor(shape, 11), f64Tensor(shape, 12), f64Tensor(shape, 13)];
    const w = Float64Array.from(valuesFor(shape, 14));
    const dO = T.empty(shape, 'f32', 'cpu');
    dO.storage.data!.set(w);
    const opts = { keyPaddingMask: mask, causal, scale: 0.7 };
    const { out, logsumexp } = attentionForward(q, k, v, opts);
    const { dq, dk, dv } = attentionBackward(dO, q, k, v, out, logsumexp, opts);
    const f = () => attention(q, k, v, opts);
    assertClose(dq.storage.data!, numericGrad(q, w, f), `dq (causal ${causal})`, 1e-6, 1e-8);
    assertClose(dk.storage.data!, numericGrad(k, w, f), `dk (causal ${causal})`, 1e-6, 1e-8);
    assertClose(dv.storage.data!, numericGrad(v, w, f), `dv (causal ${causal})`, 1e-6, 1e-8);
    disposeAll(q, k, v, dO, out, logsumexp, dq, dk, dv);
  }
  mask.dispose();
});

// ---------------------------------------------------------------------------------------------
// RoPE

test('rope: rotate-half convention on a hand-computed case', async () => {
  // D = 4: inv_freq = [1, 1/100]; position 1 rotates the pair (x0, x2) by 1 rad and (x1, x3) by 0.01 rad.
  const x = T.tensor(
    [
      [
        [0, 0, 0, 0],
        [1, 2, 0, 0],
      ],
    ],
    { device: 'cpu' },
  );
  const y = await rope(x).dataF64();
  const c1 = Math.cos(1);
  const s1 = Math.sin(1);
  const a = Math.fround(0.01);
  assertClose(y, [0, 0, 0, 0, c1, 2 * Math.cos(a), s1, 2 * Math.sin(a)], 'rope by hand', 1e-7, 1e-7);
  x.dispose();
});

test('rope forward and backward match the float64 oracle on GPU (lengths 1…300, offsets, bases)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 300 }),
      fc.constantFrom(2, 8, 16, 24, 32, 64, 160, 320),
      fc.constantFrom(10000, 500),
      fc.integer({ min: 0, max: 50 }),
      fc.nat(),
      async (H, L, D, base, positionOffset, seed) => {
        const shape = [H, L, D];
        const vals = valuesFor(shape, seed, -2, 2);
        const xs = (['gpu', 'cpu'] as const).map((device) => T.tensor(vals, { shape, device }));
        const ys = xs.map((x) => rope(x, { base, positionOffset }));
        const what = `rope [${shape}] base ${base} offset ${positionOffset}`;
        // Heads wider than the uniform table compute inv_freq in the kernel (exp2): a looser bound.
        const tol = D > 240 ? 2e-4 : 1e-5;
        assertClose(await ys[0]!.dataF64(), await ys[1]!.dataF64(), what, tol, tol);
        const back = ys.map((y) => ropeBackward(y, { base, positionOffset }));
        assertClose(await back[0]!.dataF64(), await back[1]!.dataF64(), `${what} backward`, tol, tol);
        assertClose(await back[0]!.dataF64(), vals.map(Math.fround), `${what}: backward inverts forward`, tol, tol);
        disposeAll(...xs, ...ys, ...back);
      },
    ),
    { numRuns: 16 },
  );
});

test('rope: backward matches central differences on the float64 path; strided input; records attrs', async () => {
  const shape = [2, 7, 8];
  const x = f64Tensor(shape, 3);
  const w = Float64Array.from(valuesFor(shape, 4));
  const dy = T.empty(shape, 'f32', 'cpu');
  dy.storage.data!.set(w);
  const opts = { base: 10000, positionOffset: 3 };
  const dx = ropeBackward(dy, opts);
  assertClose(
    dx.storage.data!,
    numericGrad(x, w, () => rope(x, opts)),
    'rope gradcheck',
    1e-7,
    1e-9,
  );
  // A non-contiguous GPU input equals the contiguous result.
  const g = T.tensor(valuesFor([7, 2, 8], 5), { shape: [7, 2, 8] });
  const gt = T.transpose(g, 0, 1);
  const [a, b] = [rope(gt), rope(T.clone(gt))];
  assertClose(await a.dataF64(), await b.dataF64(), 'strided rope');
  const prev = T.hooks.record;
  let rec: unknown = null;
  T.hooks.record = (op, _i, _o, attrs) => (rec = { op, attrs });
  gt.requiresGrad = true;
  const r = rope(gt, { positionOffset: 2 });
  T.hooks.record = prev;
  assert.equal(rec, { op: 'rope', attrs: { base: 10000, positionOffset: 2 } });
  assert.throws(() => rope(T.zeros([3, 5])), /even/);
  disposeAll(x, dy, dx, g, gt, a, b, r);
});

// ---------------------------------------------------------------------------------------------
// Memory

test('forward + backward at L = 2048 allocates O(L·d) bytes, not an L×L score matrix', async () => {
  const [B, H, L, D] = [1, 1, 2048, 32];
  const shape = [B, H, L, D];
  const [q, k, v, dO] = [1, 2, 3, 4].map((s) => T.tensor(valuesFor(shape, s, -1, 1), { shape }));
  await rt.sync();
  const pool = rt.pool;
  const acquire = pool.acquire.bind(pool);
  const base = pool.stats().liveBytes;
  let peak = base;
  pool.acquire = (bytes: number, forUpload?: boolean) => {
    const b = acquire(bytes, forUpload);
    peak = Math.max(peak, pool.stats().liveBytes);
    return b;
  };
  try {
    const { out, logsumexp: lse } = attentionForward(q!, k!, v!, { causal: true });
    const { dq, dk, dv } = attentionBackward(dO!, q!, k!, v!, out, lse, { causal: true });
    await rt.sync();
    const scoreBytes = L * L * 4;
    const used = peak - base;
    assert.ok(used < scoreBytes / 4, `fused attention acquired ${used} bytes; an L×L score matrix is ${scoreBytes}`);
    assert.ok(
      used <= 8 * L * D * 4 + 4 * L * 4 * 4,
      `fused attention acquired ${used} bytes, more than a few [L, d] buffers`,
    );
    disposeAll(out, lse, dq, dk, dv);
  } finally {
    pool.acquire = acquire;
  }
  disposeAll(q, k, v, dO);
});

test.run();
