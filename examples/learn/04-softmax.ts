/**
 * Stop 4 — softmax (docs/learn/04-softmax.md): the float64 twin, the online (one-pass) form the
 * WGSL uses, the GPU kernel, the derived backward, and the checks.
 * Run: node --import tsx examples/learn/04-softmax.ts
 */
import * as T from '@rnagrad/tensor';
import { gradcheck } from '@rnagrad/autograd';
import { softmaxCpu } from '@rnagrad/kernels-wgsl';

const fmt = (xs: ArrayLike<number>) => Array.from(xs, (v) => v.toFixed(4)).join(' ');
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const below = (d: number, tol: number) => (d < tol ? `< ${tol.toExponential(0)}` : `${d} (too large!)`);

// 1. The definition overflows: e^1000 is +inf in float64 (and e^89 already in f32).
const row = [1, 2, 3, 1000, 999];
const naive = row.map((v) => Math.exp(v) / row.reduce((s, u) => s + Math.exp(u), 0));
console.log(`naive     softmax([${row.join(', ')}]) = ${fmt(naive)}`);

// 2. The float64 twin subtracts the row max first (three passes: max, Σ, write).
const twin = new Float64Array(row.length);
softmaxCpu(
  { data: twin, dtype: 'f32', shape: [row.length], strides: [1], offset: 0 },
  { data: Float64Array.from(row), dtype: 'f32', shape: [row.length], strides: [1], offset: 0 },
);
console.log(`twin      softmax([${row.join(', ')}]) = ${fmt(twin)}`);

// 3. Online softmax: one pass keeps (m, s) = (max so far, Σ e^(x−m)), rescaling s when m grows.
let [m, s] = [-Infinity, 0];
const trace: string[] = [];
for (const v of row) {
  const next = Math.max(m, v);
  s = s * Math.exp(m - next) + Math.exp(v - next);
  m = next;
  trace.push(`(${m}, ${s.toFixed(4)})`);
}
const online = row.map((v) => Math.exp(v - m) / s);
console.log(`online (m, s) after each element: ${trace.join(' ')}`);
console.log(`online vs twin: max |Δ| ${below(maxDiff(online, twin), 1e-15)}`);

// 4. The GPU kernel, on rows of 5 (scalar loads) and of 8 (vec4 loads): watch which pipelines run.
const rt = await T.init({ quiet: true });
const keys = new Set<string>();
const dispatch = rt.queue.dispatch.bind(rt.queue);
rt.queue.dispatch = (req) => (keys.add(req.key), dispatch(req));
for (const cols of [5, 8]) {
  const xc = T.randn([3, cols], { device: 'cpu', seed: cols });
  const xg = await xc.to('gpu');
  const [yg, yc] = await Promise.all([T.softmax(xg).dataF64(), T.softmax(xc).dataF64()]);
  console.log(`GPU vs twin on [3, ${cols}]: max |Δ| ${below(maxDiff(yg, yc), 1e-6)}`);
}
console.log(`softmax pipelines: ${[...keys].filter((k) => k.startsWith('softmax')).join(', ')}`);

// 5. The backward, derived: y = softmax(x), dx_i = Σ_j dy_j ∂y_j/∂x_i = y_i (dy_i − Σ_j dy_j y_j).
const x = T.randn([2, 6], { seed: 3 }).requireGrad();
const dy = T.randn([2, 6], { seed: 4 });
const y = T.softmax(x);
y.mul(dy).sum().backward(); // autograd: the 'softmax' rule calls the fused backward kernel
const [yv, dyv, dxv] = await Promise.all([y.dataF64(), dy.dataF64(), x.grad!.dataF64()]);
const derived = new Float64Array(12);
for (let r = 0; r < 2; r++) {
  let dot = 0;
  for (let c = 0; c < 6; c++) dot += dyv[r * 6 + c]! * yv[r * 6 + c]!;
  for (let c = 0; c < 6; c++) derived[r * 6 + c] = yv[r * 6 + c]! * (dyv[r * 6 + c]! - dot);
}
console.log(`backward: GPU kernel vs the derived formula: max |Δ| ${below(maxDiff(dxv, derived), 1e-6)}`);
const check = await gradcheck((t) => T.softmax(t), [T.randn([3, 7], { device: 'cpu', seed: 5 })]);
console.log(`backward: float64 twin vs central differences: ${check.ok ? 'ok' : check.detail}`);
