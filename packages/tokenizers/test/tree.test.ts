import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  CODON_VOCAB,
  GENETIC_CODE,
  type LabelTree,
  classesUnderNodes,
  codonTree,
  leafMembership,
  nodeDepths,
  randomCodonTree,
  treeFromSpec,
  validateTree,
} from '../src/index.js';

function depthCounts(tree: LabelTree): number[] {
  const counts: number[] = [];
  for (const depth of nodeDepths(tree)) counts[depth] = (counts[depth] ?? 0) + 1;
  return counts;
}

function childLabels(tree: LabelTree, label: string): string[] {
  const node = tree.labels.indexOf(label);
  return tree.labels.filter((_, n) => tree.parent[n] === node);
}

test('codon tree: 100 nodes, depths d0:1 d1:7 d2:9 d3:23 d4:60', () => {
  const tree = codonTree();
  assert.is(tree.labels.length, 100);
  assert.is(tree.parent.length, 100);
  assert.is(tree.leafIds.length, 70);
  assert.equal(depthCounts(tree), [1, 7, 9, 23, 60]);
  assert.is(tree.labels[0], 'all_tokens');
  assert.is(tree.parent[0], -1);
});

test('codon tree shape follows HELM create_tree.py', () => {
  const tree = codonTree();
  assert.equal(childLabels(tree, 'all_tokens'), ['codons', 'pad', 'cls', 'eos', 'unk', 'mask', 'distill_token']);
  assert.equal(childLabels(tree, 'codons'), ['start_codon', 'aa_codons', 'end_codon']);
  assert.equal(childLabels(tree, 'start_codon'), ['ATG']);
  assert.equal(childLabels(tree, 'end_codon'), ['TAA', 'TAG', 'TGA']);
  assert.equal(childLabels(tree, 'aa_codons'), [...'VADEGFLSYCWPHQRITNK']);
  assert.equal(childLabels(tree, 'L'), ['TTA', 'TTG', 'CTT', 'CTC', 'CTA', 'CTG']);
  assert.equal(childLabels(tree, 'distill_token'), ['<distill_token>']);
  for (const aa of 'VADEGFLSYCWPHQRITNK') {
    for (const codon of childLabels(tree, aa)) assert.is(GENETIC_CODE[codon], aa);
  }
  const depths = nodeDepths(tree);
  CODON_VOCAB.forEach((token, classId) => {
    const leaf = tree.leafIds[classId]!;
    assert.is(tree.labels[leaf], token);
    const expectedDepth = token.startsWith('<') ? 2 : token === 'ATG' || GENETIC_CODE[token] === '*' ? 3 : 4;
    assert.is(depths[leaf], expectedDepth, token);
  });
});

test('classes under nodes and the membership matrix agree', () => {
  const tree = codonTree();
  const under = classesUnderNodes(tree);
  const membership = leafMembership(tree);
  assert.is(membership.length, 100 * 70);
  assert.is(under[0]!.length, 70);
  assert.is(under[tree.labels.indexOf('codons')]!.length, 64);
  assert.is(under[tree.labels.indexOf('aa_codons')]!.length, 60);
  assert.equal([...under[tree.labels.indexOf('end_codon')]!], [54, 56, 62]);
  assert.equal([...under[tree.labels.indexOf('A')]!], [42, 43, 44, 45]);
  under.forEach((classes, node) => {
    const row = membership.subarray(node * 70, (node + 1) * 70);
    assert.is(
      row.reduce((a, b) => a + b, 0),
      classes.length,
    );
    for (const c of classes) assert.is(row[c], 1);
  });
});

test('random tree is deterministic per seed and keeps HELM labels', () => {
  const a = randomCodonTree(42);
  assert.equal(randomCodonTree(42), a);
  assert.not.equal(randomCodonTree(43).labels, a.labels);
  validateTree(a);
  assert.is(a.leafIds.length, 70);
  assert.equal(childLabels(a, 'all_tokens'), ['codons', 'pad', 'cls', 'eos', 'unk', 'mask', 'distill_token']);
  CODON_VOCAB.forEach((token, classId) => assert.is(a.labels[a.leafIds[classId]!], token));
});

test('property: random trees partition the 64 codons into labelled groups', () => {
  fc.assert(
    fc.property(fc.integer(), (seed) => {
      const tree = randomCodonTree(seed);
      validateTree(tree);
      const groups = childLabels(tree, 'codons');
      const depths = nodeDepths(tree);
      let codonCount = 0;
      for (const group of groups) {
        assert.ok(/^(start_codon|end_codon|random#\d+)$/.test(group), group);
        const codons = childLabels(tree, group);
        assert.ok(codons.length >= 1);
        for (const codon of codons) assert.is(depths[tree.labels.indexOf(codon)], 3);
        codonCount += codons.length;
        if (group === 'end_codon') assert.ok(codons.some((c) => GENETIC_CODE[c] === '*'));
        if (codons.includes('ATG')) assert.is(group, 'start_codon');
        if (group.startsWith('random#')) assert.ok(codons.every((c) => GENETIC_CODE[c] !== '*'));
      }
      assert.is(codonCount, 64);
      assert.is(groups.filter((g) => g === 'start_codon').length, 1);
      assert.ok(groups.filter((g) => g === 'end_codon').length <= 1);
      assert.is(tree.labels.length, 1 + 1 + groups.length + 64 + 12);
    }),
    { numRuns: 200 },
  );
});

test('treeFromSpec builds any tree; validation rejects broken ones', () => {
  const tree = treeFromSpec({ label: 'root', children: ['a', { label: 'x', children: ['b', 'c'] }] }, ['c', 'b', 'a']);
  assert.equal(tree.labels, ['root', 'a', 'x', 'b', 'c']);
  assert.equal([...tree.parent], [-1, 0, 0, 2, 2]);
  assert.equal([...tree.leafIds], [4, 3, 1]);
  assert.throws(() => treeFromSpec({ label: 'r', children: ['a', 'a'] }, ['a']), /appears twice/);
  assert.throws(() => treeFromSpec({ label: 'r', children: ['a'] }, ['a', 'b']), /missing from the tree: b/);
  assert.throws(() => treeFromSpec({ label: 'r', children: ['z'] }, ['a']), /'z' is not one of the classes/);
  const valid = (): LabelTree => ({
    labels: ['r', 'a', 'b'],
    parent: Int32Array.of(-1, 0, 0),
    leafIds: Int32Array.of(1, 2),
  });
  validateTree(valid());
  assert.throws(() => validateTree({ ...valid(), parent: Int32Array.of(-1, -1, 0) }), /exactly one root/);
  assert.throws(() => validateTree({ ...valid(), parent: Int32Array.of(-1, 2, 1) }), /cycle/);
  assert.throws(() => validateTree({ ...valid(), parent: Int32Array.of(-1, 0, 7) }), /parent 7/);
  assert.throws(() => validateTree({ ...valid(), leafIds: Int32Array.of(0, 2) }), /inner node 'r'/);
  assert.throws(() => validateTree({ ...valid(), leafIds: Int32Array.of(2, 2) }), /share leaf/);
  assert.throws(() => validateTree({ ...valid(), leafIds: Int32Array.of(1) }), /leaf 'b' .* not assigned/);
});

test.run();
