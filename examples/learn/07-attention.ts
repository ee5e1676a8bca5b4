/**
 * Stop 7 — attention (docs/learn/07-attention.md): the composed path (scores → softmax → ·V) and
 * the fused flash kernel against the float64 twin, causal and padding masks, gradients, and RoPE.
 * Run: node --import tsx examples/learn/07-attention.ts
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import '@rnagrad/autograd';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const below = (d: number, tol: number) => (d < tol ? `< ${tol.toExponential(0)}` : `${d} (too large!)`);

await T.init({ quiet: true });
const [B, H, L, D] = [1, 2, 6, 4];
const cpu = (seed: number) => T.randn([B, H, L, D], { device: 'cpu', seed });
const [qc, kc, vc] = [cpu(1), cpu(2), cpu(3)];
const [q, k, v] = await Promise.all([qc.to('gpu'), kc.to('gpu'), vc.to('gpu')]);
const mask = T.tensor(Int32Array.from([1, 1, 1, 1, 0, 0]), { shape: [B, L] }); // the last 2 tokens are padding
const maskCpu = await mask.to('cpu');

// 1. Three implementations, one answer: the twin (float64), composed GPU ops, the flash kernel.
for (const opts of [{}, { causal: true }, { keyPaddingMask: mask }]) {
  const name = 'causal' in opts ? 'causal' : 'keyPaddingMask' in opts ? 'padding' : 'no mask';
  const cpuOpts = 'keyPaddingMask' in opts ? { keyPaddingMask: maskCpu } : opts;
  const twin = await T.attention(qc, kc, vc, cpuOpts).dataF64();
  const composed = await T.composedAttention(q, k, v, opts).dataF64();
  const flash = await T.attention(q, k, v, opts).dataF64();
  console.log(
    `${name.padEnd(8)}: composed vs twin ${below(maxDiff(composed, twin), 1e-5)}, flash vs twin ${below(maxDiff(flash, twin), 1e-5)}`,
  );
}

// 2. What the masks do to the probabilities (head 0; rows are queries, columns keys).
// Masked entries are exactly 0 (shown as -).
const showProbs = async (title: string, opts: T.AttentionOpts) => {
  const { probs } = T.composedAttentionForward(q, k, v, opts);
  const p = await probs.dataF64();
  console.log(title);
  for (let i = 0; i < L; i += 2)
    console.log(
      `  query ${i}: ${Array.from(p.subarray(i * L, (i + 1) * L), (x) => (x === 0 ? '   -' : x.toFixed(2))).join(' ')}`,
    );
};
await showProbs('causal: query i sees keys 0..i', { causal: true });
await showProbs('padding: no query sees keys 4 and 5', { keyPaddingMask: mask });

// 3. Gradients: flash's backward recomputes the probabilities from the saved logsumexp; the composed one reads them.
const grads = async (attend: (q: Tensor, k: Tensor, v: Tensor) => Tensor) => {
  const leaves = [q, k, v].map((t) => t.detach().requireGrad());
  attend(leaves[0]!, leaves[1]!, leaves[2]!).mul(D).sum().backward(); // dOut = D everywhere
  return Promise.all(leaves.map((t) => t.grad!.dataF64()));
};
const flashGrads = await grads((a, b, c) => T.attention(a, b, c, { causal: true }));
const out = T.composedAttentionForward(q, k, v, { causal: true });
const composedGrads = T.composedAttentionBackward(T.full(q.shape, D), q, k, v, out.probs, { causal: true });
const composedValues = await Promise.all(
  [composedGrads.dq, composedGrads.dk, composedGrads.dv].map((t) => t.dataF64()),
);
console.log(
  `causal gradients, flash vs composed: ${['dq', 'dk', 'dv']
    .map((n, i) => `${n} ${below(maxDiff(flashGrads[i]!, composedValues[i]!), 1e-5)}`)
    .join(', ')}`,
);

// 4. RoPE rotates q and k by their positions, so q·k depends only on the offset between them.
const ones = T.tensor(
  Array.from({ length: 8 * D }, (_, i) => [0.3, -1.2, 0.8, 0.5][i % D]!),
  { shape: [8, D] },
);
const rotated = T.rope(ones); // the same vector at positions 0..7
const scores = await T.matmul(rotated, rotated.transpose(0, 1)).dataF64();
const byOffset = (i: number, j: number) => scores[i * 8 + j]!;
const pairs = [
  [0, 2],
  [1, 3],
  [5, 7],
] as const; // the same offset, 2, at different positions
const sameScore = pairs.every(([i, j]) => Math.abs(byOffset(i, j) - byOffset(0, 2)) < 1e-5);
const shown = pairs.map(([i, j]) => byOffset(i, j).toFixed(4)).join(', ');
console.log(
  `RoPE: rope(x)_i · rope(x)_j for (i, j) = (0, 2), (1, 3), (5, 7): ${shown} → same offset, same score: ${sameScore}`,
);
const ropeTwin = await T.rope(await ones.to('cpu')).dataF64();
console.log(`RoPE: GPU vs twin ${below(maxDiff(await rotated.dataF64(), ropeTwin), 1e-6)}`);
