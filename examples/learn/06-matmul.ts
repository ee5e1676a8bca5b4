/**
 * Stop 6 — matmul (docs/learn/06-matmul.md): the naive kernel and the kept ones against the
 * float64 twin, which kernel the engine picks for which shape, and what the op fuses.
 * Run: node --import tsx examples/learn/06-matmul.ts
 */
import * as T from '@rnagrad/tensor';
import { defaultMatmulPlan, planKey } from '@rnagrad/kernels-wgsl';
import { runLab } from '../../lab/harness.js';
import { matmulLab } from '../../lab/matmul.js';

const rt = await T.init({ quiet: true });

// 1. Every version of the lab on one odd-sized problem, validated against the twin (timings: pnpm lab matmul).
const rows = await runLab(matmulLab, [1, 2, 3, 4, 5], { m: 37, n: 29, k: 45 }, { warmup: 0, reps: 1 }, () => {});
console.log('[37, 45] @ [45, 29] against the float64 twin:');
for (const r of rows)
  console.log(`  v${r.version} ${r.name.padEnd(58)} ${r.valid ? 'ok' : `FAIL (max |Δ| ${r.maxError})`}`);

// 2. The engine picks one plan per shape class and adapter kind (the measured defaults; `tuneMatmul` can override).
const shapes = [
  [1, 1, 1024, 1024],
  [1, 64, 64, 64],
  [1, 512, 512, 512],
  [8, 128, 128, 64],
  [1, 32, 32, 4096],
] as const;
console.log('default plans (batch × M × N × K: software adapter | hardware GPU):');
for (const [batch, m, n, k] of shapes) {
  const dims = { batch, m, n, k };
  console.log(
    `  ${`${batch} × ${m} × ${n} × ${k}`.padEnd(20)} ${planKey(defaultMatmulPlan(dims, true)).padEnd(24)}` +
      ` | ${planKey(defaultMatmulPlan(dims, false))}`,
  );
}

// 3. One op, one dispatch: bias and GELU are fused into the matmul's epilogue, and a transposed
//    weight is a view (strides swapped), not a copy.
const x = T.randn([16, 32], { seed: 1 });
const w = T.randn([24, 32], { seed: 2 }); // stored [out, in], as torch.nn.Linear
const b = T.randn([24], { seed: 3 });
await rt.sync();
const before = rt.stats();
const y = T.matmul(x, w.transpose(0, 1), { bias: b, activation: 'gelu' });
const after = rt.stats();
console.log(
  `x @ w.T + b, then GELU: ${after.dispatches - before.dispatches} dispatch,` +
    ` ${after.allocations + after.reuses - before.allocations - before.reuses} buffer taken from the pool (the output)`,
);
const twin = await T.gelu(
  T.add(T.matmul(await x.to('cpu'), (await w.to('cpu')).transpose(0, 1)), await b.to('cpu')),
).dataF64();
const got = await y.dataF64();
const worst = got.reduce((m, v, i) => Math.max(m, Math.abs(v - twin[i]!)), 0);
console.log(`fused result vs the twin's unfused ops: max |Δ| ${worst < 1e-4 ? '< 1e-4' : worst}`);
