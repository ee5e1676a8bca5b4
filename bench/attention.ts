/**
 * Fused tiled ("flash") attention vs the composed path (matmul → masked softmax → matmul, with an
 * L×L score matrix), forward and forward+backward, causal and not: B = 1, H = 4, d = 32 at
 * L = 256 and 1024. Every sample ends with a wait on GPU completion (runtime.sync()).
 *
 *   node --import tsx bench/attention.ts
 *   ROUNDS=3 ITERATIONS=5 LENGTHS=256,1024 HEADDIM=32 node --import tsx bench/attention.ts
 *
 * Tasks run in interleaved rounds (tinybench per round, samples pooled, order reversed every other
 * round), so drift and other processes on the machine hit every task alike; figures are pooled
 * medians. The composed fwd+bwd keeps the forward's probabilities for its backward (what autograd
 * over the plain ops would save), so it does no recomputation; the fused backward recomputes the
 * scores tile by tile from q, k and the saved logsumexp.
 */
import { interleavedSamples } from './lib/interleave.js';
import * as T from '@rnagrad/tensor';
import {
  attentionBackward,
  attentionForward,
  composedAttentionBackward,
  composedAttentionForward,
} from '@rnagrad/tensor';

const ROUNDS = Number(process.env.ROUNDS ?? 2);
const ITERATIONS = Number(process.env.ITERATIONS ?? 5);
const LENGTHS = (process.env.LENGTHS ?? '256,1024').split(',').map(Number);
const B = 1;
const H = 4;
const D = Number(process.env.HEADDIM ?? 32);

const rt = await T.init({ quiet: true });
console.log(
  `device: ${rt.adapter.description || rt.adapter.device} (${rt.adapter.isSoftware ? 'software' : 'hardware'}); ` +
    `B ${B}, H ${H}, d ${D}; ${ROUNDS} rounds × ${ITERATIONS} iterations`,
);

let seed = 7;
const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;

type Task = [string, () => Promise<void>];
const tasks: Task[] = [];
const keep: T.Tensor[] = [];
for (const L of LENGTHS) {
  const shape = [B, H, L, D];
  const make = () =>
    T.tensor(
      Float32Array.from({ length: B * H * L * D }, () => 2 * rand() - 1),
      { shape },
    );
  const [q, k, v, dO] = [make(), make(), make(), make()];
  keep.push(q, k, v, dO);
  for (const causal of [false, true]) {
    const tag = `L${L} ${causal ? 'causal' : 'full  '}`;
    const opts = { causal };
    tasks.push([
      `${tag} fused    fwd`,
      async () => {
        const { out, logsumexp } = attentionForward(q, k, v, opts);
        await rt.sync();
        out.dispose();
        logsumexp.dispose();
      },
    ]);
    tasks.push([
      `${tag} fused    fwd+bwd`,
      async () => {
        const { out, logsumexp } = attentionForward(q, k, v, opts);
        const g = attentionBackward(dO, q, k, v, out, logsumexp, opts);
        await rt.sync();
        for (const t of [out, logsumexp, g.dq, g.dk, g.dv]) t.dispose();
      },
    ]);
    tasks.push([
      `${tag} composed fwd`,
      async () => {
        const { out, probs } = composedAttentionForward(q, k, v, opts);
        await rt.sync();
        out.dispose();
        probs.dispose();
      },
    ]);
    tasks.push([
      `${tag} composed fwd+bwd`,
      async () => {
        const { out, probs } = composedAttentionForward(q, k, v, opts);
        const g = composedAttentionBackward(dO, q, k, v, probs, opts);
        await rt.sync();
        for (const t of [out, probs, g.dq, g.dk, g.dv]) t.dispose();
      },
    ]);
  }
}

// Correctness guard: the two paths agree before anything is timed.
for (const L of LENGTHS.slice(0, 1)) {
  const shape = [B, H, L, D];
  const [q, k, v] = [0, 1, 2].map(() =>
    T.tensor(
      Float32Array.from({ length: B * H * L * D }, () => 2 * rand() - 1),
      { shape },
    ),
  );
  const fused = attentionForward(q!, k!, v!, { causal: true });
  const composed = composedAttentionForward(q!, k!, v!, { causal: true });
  const [a, b] = await Promise.all([fused.out.dataF64(), composed.out.dataF64()]);
  const worst = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
  if (!(worst < 1e-4)) throw new Error(`fused and composed attention differ by ${worst}`);
  for (const t of [q, k, v, fused.out, fused.logsumexp, composed.out, composed.probs]) t!.dispose();
}

const { samples, median: med } = await interleavedSamples(tasks, {
  rounds: ROUNDS,
  iterations: ITERATIONS,
  firstWarmup: 2,
});
console.table(
  [...samples].map(([name, xs]) => ({
    task: name,
    'median ms': med.get(name)!.toFixed(1),
    'min ms': Math.min(...xs).toFixed(1),
    samples: xs.length,
  })),
);
for (const L of LENGTHS) {
  for (const causal of [false, true]) {
    const tag = `L${L} ${causal ? 'causal' : 'full  '}`;
    const f = med.get(`${tag} fused    fwd+bwd`)!;
    const c = med.get(`${tag} composed fwd+bwd`)!;
    const ff = med.get(`${tag} fused    fwd`)!;
    const cf = med.get(`${tag} composed fwd`)!;
    const target =
      L === 256
        ? ` (target ≤ 64 ms: ${f <= 64 ? 'met' : 'missed'})`
        : L === 1024
          ? ` (target ≥ 2×: ${c / f >= 2 ? 'met' : 'missed'})`
          : '';
    console.log(
      `${tag}: fused fwd+bwd ${f.toFixed(1)} ms, composed ${c.toFixed(1)} ms → ${(c / f).toFixed(2)}×${target}; ` +
        `fwd ${ff.toFixed(1)} vs ${cf.toFixed(1)} ms → ${(cf / ff).toFixed(2)}×`,
    );
  }
}
for (const t of keep) t.dispose();
T.destroyRuntime();
