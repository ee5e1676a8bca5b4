/**
 * Stop 5 — LayerNorm (docs/learn/05-layernorm.md), llm.c's doc/layernorm path: the math, why the
 * variance takes two passes, the kernel against the float64 twin, the derived backward, the checks.
 * Run: node --import tsx examples/learn/05-layernorm.ts
 */
import * as T from '@rnagrad/tensor';
import { gradcheck } from '@rnagrad/autograd';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const below = (d: number, tol: number) => (d < tol ? `< ${tol.toExponential(0)}` : `${d} (too large!)`);

// 1. Variance in f32: E[x²] − E[x]² cancels catastrophically when |mean| ≫ std; Σ(x − mean)² does not.
const row = Array.from({ length: 64 }, (_, i) => 10000 + (i % 2 ? 1 : -1)); // mean 10000, variance exactly 1
const f = Math.fround;
let [s1, s2] = [0, 0];
for (const v of row) [s1, s2] = [f(s1 + v), f(s2 + f(v * v))];
const mean = f(s1 / 64);
const onePass = f(f(s2 / 64) - f(mean * mean));
let q = 0;
for (const v of row) q = f(q + f((v - mean) * (v - mean)));
console.log(`variance of 10000 ± 1 in f32: one pass E[x²]−E[x]² = ${onePass}, two passes Σ(x−mean)²/C = ${f(q / 64)}`);

// 2. Forward on the GPU against the float64 twin (the same op on CPU tensors).
await T.init({ quiet: true });
const [R, C] = [5, 12];
const xc = T.randn([R, C], { device: 'cpu', seed: 1 }).mul(3).add(2);
const wc = T.randn([C], { device: 'cpu', seed: 2 });
const bc = T.randn([C], { device: 'cpu', seed: 3 });
const [xg, wg, bg] = await Promise.all([xc.to('gpu'), wc.to('gpu'), bc.to('gpu')]);
xg.requireGrad();
wg.requireGrad();
bg.requireGrad();
const yg = T.layerNorm(xg, wg, bg);
const yc = T.layerNorm(xc, wc, bc);
console.log(`forward: GPU vs float64 twin, max |Δ| ${below(maxDiff(await yg.dataF64(), await yc.dataF64()), 1e-5)}`);

// 3. The backward, derived (x̂ = (x − mean)·rstd, g = dy·w):
//    dx = rstd·(g − mean(g) − x̂·mean(g·x̂)),  dw = Σ_rows dy·x̂,  db = Σ_rows dy.
const dyc = T.randn([R, C], { device: 'cpu', seed: 4 });
yg.backward(await dyc.to('gpu'));
const [x, w, dy] = await Promise.all([xc.dataF64(), wc.dataF64(), dyc.dataF64()]);
const dx = new Float64Array(R * C);
const dw = new Float64Array(C);
const db = new Float64Array(C);
for (let r = 0; r < R; r++) {
  const xs = x.subarray(r * C, (r + 1) * C);
  const mu = xs.reduce((a, v) => a + v, 0) / C;
  const rstd = 1 / Math.sqrt(xs.reduce((a, v) => a + (v - mu) ** 2, 0) / C + 1e-5);
  const xhat = Array.from(xs, (v) => (v - mu) * rstd);
  const g = xhat.map((_, c) => dy[r * C + c]! * w[c]!);
  const meanG = g.reduce((a, v) => a + v, 0) / C;
  const meanGx = g.reduce((a, v, c) => a + v * xhat[c]!, 0) / C;
  for (let c = 0; c < C; c++) {
    dx[r * C + c] = rstd * (g[c]! - meanG - xhat[c]! * meanGx);
    dw[c] += dy[r * C + c]! * xhat[c]!;
    db[c] += dy[r * C + c]!;
  }
}
const [gx, gw, gb] = await Promise.all([xg.grad!.dataF64(), wg.grad!.dataF64(), bg.grad!.dataF64()]);
console.log(
  `backward: GPU vs the derived formulas, max |Δ| dx ${below(maxDiff(gx, dx), 1e-5)},` +
    ` dw ${below(maxDiff(gw, dw), 1e-5)}, db ${below(maxDiff(gb, db), 1e-5)}`,
);
const check = await gradcheck(
  (a, b, c) => T.layerNorm(a, b, c),
  [
    T.randn([3, 6], { device: 'cpu', seed: 5 }),
    T.randn([6], { device: 'cpu', seed: 6 }),
    T.randn([6], { device: 'cpu', seed: 7 }),
  ],
);
console.log(`backward: float64 twin vs central differences (x, weight, bias): ${check.ok ? 'ok' : check.detail}`);
