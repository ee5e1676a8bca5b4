/**
 * HXE's edge cases on every adapter, next to the op they test: NaN and +inf rows give NaN as
 * PyTorch's cross-entropy does, an out-of-range target raises an error naming the op, and rows
 * whose group mass underflows f32 still match tokenizers' float64 `hxeLossReference` (loss) and
 * the CPU twin (gradient). Run on the GPU and the CPU oracle in Node (hxe-edge.test.ts) and in
 * headless Chromium (scripts/browser-suite.ts). The checks come from tensor's edge cases.
 */
import * as T from '@rnagrad/tensor';
import { backward, requireGrad } from '@rnagrad/autograd';
import { codonTree, hxeLossReference, hxePathTable, leafMembership } from '@rnagrad/tokenizers';
import { DEVICES, type EdgeCase, expectIndexError, same, values } from '../../tensor/test/edge-cases.js';
import { type HxeTable, hierarchicalCrossEntropy } from '../src/hxe/op.js';

const C = 70;
const ALPHA = 0.2;

let table: HxeTable | null = null;
function codonTable(): HxeTable {
  if (!table) {
    const tree = codonTree();
    table = { ...hxePathTable(tree, ALPHA), membership: leafMembership(tree) };
  }
  return table;
}

export function hxeEdgeCases(): EdgeCase[] {
  const cases: EdgeCase[] = [];
  const add = (name: string, run: () => Promise<void>) => cases.push([name, run]);

  add('HXE and XE of a row with NaN or +inf are NaN; the other rows stay finite', async () => {
    for (const device of DEVICES) {
      const row = (i: number) => (i === 5 ? NaN : i === C + 9 ? Infinity : Math.sin(i));
      const wide = T.tensor(Array.from({ length: 3 * C }, (_, i) => row(i)), { shape: [3, C], device });
      const targets = T.tensor(new Int32Array([1, 2, 3]), { device });
      for (const mode of ['hxe', 'xe'] as const) {
        const losses = await values(hierarchicalCrossEntropy(wide, targets, codonTable(), { mode, reduction: 'none' }));
        same(losses.subarray(0, 2), [NaN, NaN], `${mode} rows with NaN / +inf (${device})`);
        if (!Number.isFinite(losses[2]!)) throw new Error(`${mode} (${device}): a clean row got ${losses[2]}`);
      }
      wide.dispose();
      targets.dispose();
    }
  });

  add('HXE: an out-of-range target raises an error naming the op, the value and the range', () =>
    expectIndexError(
      'hierarchicalCrossEntropy',
      (d) => hierarchicalCrossEntropy(T.ones([2, C], { device: d }), T.tensor(new Int32Array([70, 1]), { device: d }), codonTable()),
      ['hierarchicalCrossEntropy', '70', '69'],
    ),
  );

  add('HXE where a group mass underflows f32 (90 nats below the row max) equals the float64 reference', async () => {
    // Row 0: the target's amino-acid group (GCA, GCC, GCG, GCT = 42..45) 90 nats below the rest;
    // row 1: every codon (6..69) 95 below the special tokens; row 2: logits spread over ±100.
    const z = Array.from({ length: 3 * C }, (_, i) => Math.fround(Math.sin(1.3 * i)));
    for (const k of [42, 43, 44, 45]) z[k] = Math.fround(-90 + z[k]!);
    for (let k = 6; k < C; k++) z[C + k] = Math.fround(-95 + z[C + k]!);
    for (let k = 0; k < C; k++) z[2 * C + k] = Math.fround(100 * Math.sin(7.1 * k));
    const targets = [43, 30, 17];
    const exact = hxeLossReference(Float64Array.from(z), C, targets, codonTree(), ALPHA);
    const grads: Float64Array[] = [];
    for (const device of DEVICES) {
      const logits = requireGrad(T.tensor(z, { shape: [3, C], device }));
      const losses = hierarchicalCrossEntropy(logits, targets, codonTable(), { reduction: 'none' });
      const got = await losses.dataF64();
      got.forEach((v, r) => {
        if (!(Math.abs(v - exact[r]!) <= 2e-5 * Math.abs(exact[r]!))) throw new Error(`row ${r} (${device}): ${v} vs ${exact[r]}`);
      });
      backward(losses, T.ones([3], { device }));
      grads.push(await logits.grad!.dataF64());
      losses.dispose();
      logits.grad!.dispose();
      logits.dispose();
    }
    const [gpu, cpu] = grads as [Float64Array, Float64Array];
    for (let r = 0; r < 3; r++) {
      const row = cpu.subarray(r * C, (r + 1) * C);
      const scale = Math.max(...row.map(Math.abs));
      for (let k = 0; k < C; k++) {
        const [g, c] = [gpu[r * C + k]!, cpu[r * C + k]!];
        if (!(Math.abs(g - c) <= 1e-4 * scale)) throw new Error(`gradient row ${r} class ${k}: gpu ${g} vs cpu ${c}`);
      }
    }
  });
  return cases;
}
