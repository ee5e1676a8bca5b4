/**
 * Stop 2 — autograd (docs/learn/02-autograd.md). CPU only. micrograd's sanity check rebuilt with
 * this engine, then the tape it recorded, read back node by node.
 * Run: node --import tsx examples/learn/02-autograd.ts
 */
import * as T from '@rnagrad/tensor';
import { Node, RULES } from '@rnagrad/autograd';

T.setDefaultDevice('cpu');

// micrograd test/test_engine.py, test_sanity_check: the same expression, scalars as 0-d tensors.
const x = T.tensor(-4.0).requireGrad();
const z = x.mul(2).add(2).add(x);
const q = z.relu().add(z.mul(x));
const h = z.mul(z).relu();
const y = h.add(q).add(q.mul(x));

// Read the tape before backward() frees it: each node names its op and links to its parents.
const order: string[] = [];
const seen = new Set<Node>();
const visit = (node: Node): void => {
  if (seen.has(node)) return;
  seen.add(node);
  for (const p of node.parents) if (p?.node) visit(p.node);
  const inputs = node.parents.map((p) => (p === null ? 'const' : p.node ? p.node.op : 'x'));
  order.push(`${node.op}(${inputs.join(', ')})`);
};
visit(y.gradNode as Node);
console.log(`tape: ${order.length} nodes, each after its inputs:`);
console.log(`  ${order.join(' → ')}`);
console.log(
  `mul's rule saves ${JSON.stringify(RULES.mul.save)}; relu's saves ${JSON.stringify(RULES.relu.save)};` +
    ` add's saves ${JSON.stringify(RULES.add.save)}`,
);

y.backward();
console.log(`y = ${await y.item()}  (micrograd and PyTorch: -20)`);
console.log(`dy/dx = ${await x.grad!.item()}  (micrograd and PyTorch: 46)`);
console.log(`after backward the tape is gone: y.gradNode = ${y.gradNode}`);
