/** What the HXE test files share: closeness checks, tables from trees, seeded values, models.md's A3 vectors. */
import * as assert from 'uvu/assert';
import { type LabelTree, hxePathTable, leafMembership } from '@rnagrad/tokenizers';

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  rtol = 1e-5,
  atol = 1e-6,
): void {
  assert.is(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e))) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)))
      assert.unreachable(`${what}: element ${i} is ${a}, expected ${e} (|diff| ${Math.abs(a - e)})`);
  }
}

/** The loss table of a tree at α: tokenizers' path table plus the node → class membership. */
export const tableFor = (tree: LabelTree, alpha: number) => ({
  ...hxePathTable(tree, alpha),
  membership: leafMembership(tree),
});

export function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** models.md A3: four rows of codon logits, their targets, and HELM's losses (mean per α; per row at α 0.2). */
export const A3_TARGETS = [45, 20, 54, 2];
export function a3Logits(): Float32Array {
  return Float32Array.from({ length: 4 * 70 }, (_, x) => {
    const i = Math.floor(x / 70);
    const j = x % 70;
    return 2 * Math.sin(0.37 * (70 * i + j) + 0.1 * i);
  });
}
export const A3_MEANS: [alpha: number, loss: number][] = [
  [0, 0.050024],
  [0.2, 0.063175],
  [0.4, 0.078723],
  [0.6, 0.095298],
];
export const A3_PER_SAMPLE = [0.066485, 0.042643, 0.05806, 0.085512];
