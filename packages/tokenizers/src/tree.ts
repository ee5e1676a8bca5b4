/**
 * Class hierarchies as plain data, so a loss kernel can take any tree (HELM's codon tree, a random
 * ablation tree, a user's own) without knowing how it was built.
 */

/**
 * A rooted tree whose leaves are the classes of a classifier.
 * - `labels[n]`: name of node n (leaves are usually named after their class token).
 * - `parent[n]`: index of n's parent; the root's parent is -1.
 * - `leafIds[c]`: node index of the leaf for class (vocabulary id) c; length = number of classes.
 * Every leaf must be a class, and every class a distinct leaf.
 */
export interface LabelTree {
  labels: string[];
  parent: Int32Array;
  leafIds: Int32Array;
}

/** Nested description of a tree: a string is a class leaf, an object an inner node. */
export type TreeSpec = string | { label: string; children: TreeSpec[] };

/**
 * Flattens a nested spec in pre-order (a node before its children, children left to right), the
 * order nltk's `treepositions()` uses in HELM. `classes[c]` names the leaf of class c.
 */
export function treeFromSpec(spec: TreeSpec, classes: readonly string[]): LabelTree {
  const labels: string[] = [];
  const parents: number[] = [];
  const leafIds = new Int32Array(classes.length).fill(-1);
  const classIds = new Map(classes.map((name, id) => [name, id]));
  const visit = (node: TreeSpec, parent: number): void => {
    const index = labels.length;
    parents.push(parent);
    if (typeof node === 'string') {
      labels.push(node);
      const classId = classIds.get(node);
      if (classId === undefined) throw new Error(`tree leaf '${node}' is not one of the classes`);
      if (leafIds[classId] !== -1) throw new Error(`class '${node}' appears twice in the tree`);
      leafIds[classId] = index;
    } else {
      labels.push(node.label);
      for (const child of node.children) visit(child, index);
    }
  };
  visit(spec, -1);
  const missing = classes.filter((_, id) => leafIds[id] === -1);
  if (missing.length > 0) throw new Error(`classes missing from the tree: ${missing.join(', ')}`);
  const tree = { labels, parent: Int32Array.from(parents), leafIds };
  validateTree(tree);
  return tree;
}

/** Index of the single node whose parent is -1. */
export function rootIndex(tree: LabelTree): number {
  let root = -1;
  let count = 0;
  tree.parent.forEach((p, node) => {
    if (p === -1) {
      root = node;
      count++;
    }
  });
  if (count !== 1) throw new Error(`a tree needs exactly one root (parent -1), found ${count}`);
  return root;
}

/** Distance of every node from the root (root = 0). Throws on out-of-range parents and cycles. */
export function nodeDepths(tree: LabelTree): Int32Array {
  const { parent } = tree;
  const numNodes = parent.length;
  const depths = new Int32Array(numNodes).fill(-1);
  const path: number[] = [];
  for (let start = 0; start < numNodes; start++) {
    let node = start;
    while (depths[node] === -1) {
      path.push(node);
      if (path.length > numNodes) throw new Error(`tree has a cycle through node ${start}`);
      const p = parent[node]!;
      if (p === -1) {
        depths[node] = 0;
        path.pop();
        break;
      }
      if (!Number.isInteger(p) || p < 0 || p >= numNodes) {
        throw new Error(`node ${node} has parent ${p}, outside 0..${numNodes - 1}`);
      }
      node = p;
    }
    let depth = depths[node]!;
    while (path.length > 0) depths[path.pop()!] = ++depth;
  }
  return depths;
}

/**
 * Checks the invariants the loss relies on: one root, parents in range, no cycles, every class
 * a distinct leaf, every leaf a class (a class-less leaf would have zero probability mass and an
 * infinite loss).
 */
export function validateTree(tree: LabelTree): void {
  const numNodes = tree.parent.length;
  if (tree.labels.length !== numNodes) {
    throw new Error(`tree has ${tree.labels.length} labels but ${numNodes} parent entries`);
  }
  rootIndex(tree);
  nodeDepths(tree);
  const hasChildren = new Uint8Array(numNodes);
  for (const p of tree.parent) if (p >= 0) hasChildren[p] = 1;
  const classOfNode = new Int32Array(numNodes).fill(-1);
  tree.leafIds.forEach((node, classId) => {
    if (!Number.isInteger(node) || node < 0 || node >= numNodes) {
      throw new Error(`class ${classId} points at node ${node}, outside 0..${numNodes - 1}`);
    }
    if (hasChildren[node]) throw new Error(`class ${classId} points at inner node '${tree.labels[node]}'`);
    if (classOfNode[node] !== -1) {
      throw new Error(`classes ${classOfNode[node]} and ${classId} share leaf '${tree.labels[node]}'`);
    }
    classOfNode[node] = classId;
  });
  for (let node = 0; node < numNodes; node++) {
    if (!hasChildren[node] && classOfNode[node] === -1) {
      throw new Error(`leaf '${tree.labels[node]}' (node ${node}) is not assigned to any class`);
    }
  }
}

/** For every node, the classes whose leaves lie under it (ascending ids; a leaf holds its own class). */
export function classesUnderNodes(tree: LabelTree): Int32Array[] {
  const lists: number[][] = Array.from({ length: tree.parent.length }, () => []);
  tree.leafIds.forEach((leaf, classId) => {
    for (let node = leaf; node !== -1; node = tree.parent[node]!) lists[node]!.push(classId);
  });
  return lists.map((list) => Int32Array.from(list));
}

/**
 * 0/1 matrix, row-major [numNodes, numClasses]: entry (n, c) is 1 when class c's leaf is under
 * node n. Node probability masses are then S = P · Mᵀ for softmax probabilities P [rows, numClasses].
 */
export function leafMembership(tree: LabelTree): Uint8Array {
  const numClasses = tree.leafIds.length;
  const membership = new Uint8Array(tree.parent.length * numClasses);
  classesUnderNodes(tree).forEach((classes, node) => {
    for (const classId of classes) membership[node * numClasses + classId] = 1;
  });
  return membership;
}
