/**
 * HXE as an extension of the engine: its gradient rule, registered with autograd's `registerRule`,
 * passes gradcheck on the float64 oracle (hxe and xe modes, every reduction, ignored rows), gives
 * the same gradient through `backward()` on the GPU as on the CPU, and the declaration in tensor's
 * `ExtensionOps` type-checks the op's `record` and its rule like a core op's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { backward, gradcheck, noGrad, registerRule, requireGrad } from '@rnagrad/autograd';
import { codonTree, hxePathTable, leafMembership, treeFromSpec } from '@rnagrad/tokenizers';
import { type HxeTable, hierarchicalCrossEntropy } from '../src/hxe/op.js';

await T.init({ quiet: true });

const treeTable = (): HxeTable => {
  const tree = treeFromSpec(
    { label: 'root', children: [{ label: 'A', children: ['a', 'b', 'c'] }, { label: 'B', children: ['d', { label: 'C', children: ['e', 'f'] }] }, 'g'] },
    ['a', 'b', 'c', 'd', 'e', 'f', 'g'],
  );
  return { ...hxePathTable(tree, 0.3), membership: leafMembership(tree) };
};
const cpuLogits = (rows: number, C: number, seed: number) =>
  T.tensor(Array.from({ length: rows * C }, (_, i) => 2 * Math.sin(seed + 1.7 * i)), { shape: [rows, C], device: 'cpu' });

for (const mode of ['hxe', 'xe'] as const) {
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    test(`the registered rule passes gradcheck on the float64 oracle (${mode}, ${reduction})`, async () => {
      const table = treeTable();
      const logits = cpuLogits(4, 7, mode.length + reduction.length);
      const targets = [3, -100, 0, 6];
      const r = await gradcheck((z) => hierarchicalCrossEntropy(z, targets, table, { mode, reduction }), [logits]);
      assert.ok(r.ok, `${r.detail} (score ${r.worst.toFixed(2)})`);
      logits.grad?.dispose();
      logits.dispose();
    });
  }
}

test('backward() through the registered rule: GPU gradient equals the CPU oracle (codon tree)', async () => {
  const tree = codonTree();
  const table = { ...hxePathTable(tree, 0.2), membership: leafMembership(tree) };
  const values = Array.from({ length: 6 * 70 }, (_, i) => 3 * Math.cos(0.31 * i));
  const targets = [5, 69, -100, 40, 12, 33];
  const grads: Float64Array[] = [];
  for (const device of ['gpu', 'cpu'] as const) {
    const logits = requireGrad(T.tensor(values, { shape: [6, 70], device }));
    const loss = hierarchicalCrossEntropy(logits, T.tensor(Int32Array.from(targets), { device }), table);
    assert.ok(loss.gradNode, `${device}: autograd took the op`);
    backward(loss);
    grads.push(await logits.grad!.dataF64());
    loss.dispose();
    logits.grad!.dispose();
    logits.dispose();
  }
  const [gpu, cpu] = grads as [Float64Array, Float64Array];
  for (let k = 0; k < cpu.length; k++) assert.ok(Math.abs(gpu[k]! - cpu[k]!) <= 1e-6 + 1e-4 * Math.abs(cpu[k]!), `element ${k}: ${gpu[k]} vs ${cpu[k]}`);
  for (let k = 2 * 70; k < 3 * 70; k++) assert.is(cpu[k], 0, 'the ignored row gets no gradient');
});

test('under noGrad the op is not recorded and keeps nothing for a backward', () => {
  const logits = requireGrad(cpuLogits(3, 7, 9));
  const before = T.liveTensorCount();
  const loss = noGrad(() => hierarchicalCrossEntropy(logits, [1, 2, 3], treeTable()));
  assert.not.ok(loss.gradNode, 'no graph node');
  assert.is(T.liveTensorCount(), before + 1, 'only the loss is alive');
  loss.dispose();
  logits.dispose();
});

test('the extension is type-checked like a core op (checked by `pnpm typecheck`)', () => {
  // Never run: the compiler must reject each marked line (else @ts-expect-error is itself an error).
  const rejected = () => {
    // @ts-expect-error 'hxeTypo' is not declared in tensor's ExtensionOps
    registerRule('hxeTypo', { save: [], backward: () => [] });
    // @ts-expect-error HxeAttrs has no 'temperature': a rule cannot read an attr the op does not record
    registerRule('hxe', { save: [], backward: (_g, ctx) => [ctx.attrs.temperature] });
    // @ts-expect-error the op's record must carry every attr of HxeAttrs
    T.record('hxe', [], T.zeros([1]), { mode: 'hxe' });
  };
  assert.type(rejected, 'function');
});

test.run();
