/**
 * Hierarchical cross-entropy (HXE, Bertinetto et al. "Making Better Mistakes", as used by HELM):
 * the kernel-ready tables, and a plain float64 CPU reference to check kernels against.
 */
import { type LabelTree, classesUnderNodes, nodeDepths, rootIndex, validateTree } from './tree.js';

export interface HxeOptions {
  /** Divide every edge weight by Z = Σ over all nodes of e^(−α·depth), as HELM does (default true). */
  normalize?: boolean;
}

/**
 * Per-class lists of (node, coefficient) such that, for target class c with softmax
 * probabilities p, `HXE = −Σ_k coefficients[c·width + k] · log S(nodes[c·width + k])`, where
 * S(n) is the probability mass under node n. This is the closed form
 * `L = −w_0·log S_0 − Σ_{j=1}^{D−1} (w_j − w_{j−1})·log S_j` with S_j the mass of the j-th
 * ancestor of the leaf (S_0 = p_c), D the leaf depth and w_j = e^{−α(D−j)}/Z: the edge sum
 * telescopes because the root's mass is 1. All coefficients are ≥ 0 for α ≥ 0.
 */
export interface HxePathTable {
  numClasses: number;
  /** Entries per class: the greatest leaf depth. Shallower leaves are padded. */
  width: number;
  /**
   * Node indices, [numClasses, width] row-major. Padding entries point at the root with
   * coefficient 0, so a kernel can gather all `width` entries without branching (log 1 = 0).
   */
  nodes: Int32Array;
  coefficients: Float64Array;
  /** Z(α); 1 when `normalize` is false. */
  normalizer: number;
}

/** Z(α) = Σ over all nodes of e^(−α·depth), or 1 without normalization. */
function edgeNormalizer(depths: Int32Array, alpha: number, normalize: boolean): number {
  if (!normalize) return 1;
  let total = 0;
  for (const depth of depths) total += Math.exp(-alpha * depth);
  return total;
}

export function hxePathTable(tree: LabelTree, alpha: number, options: HxeOptions = {}): HxePathTable {
  validateTree(tree);
  const depths = nodeDepths(tree);
  const root = rootIndex(tree);
  const normalizer = edgeNormalizer(depths, alpha, options.normalize ?? true);
  const numClasses = tree.leafIds.length;
  let width = 0;
  for (const leaf of tree.leafIds) width = Math.max(width, depths[leaf]!);
  const nodes = new Int32Array(numClasses * width).fill(root);
  const coefficients = new Float64Array(numClasses * width);
  tree.leafIds.forEach((leaf, classId) => {
    const leafDepth = depths[leaf]!;
    const weight = (j: number): number => Math.exp(-alpha * (leafDepth - j)) / normalizer;
    let node = leaf;
    for (let j = 0; j < leafDepth; j++) {
      nodes[classId * width + j] = node;
      coefficients[classId * width + j] = j === 0 ? weight(0) : weight(j) - weight(j - 1);
      node = tree.parent[node]!;
    }
  });
  return { numClasses, width, nodes, coefficients, normalizer };
}

/** One edge of a target's path in the HXE loss: node → its parent, and what it costs. */
export interface HxeEdge {
  node: number;
  label: string;
  depth: number;
  /** Softmax probability mass under the node (for the leaf: the target's probability). */
  mass: number;
  /** The mass under its parent: mass / parentMass is P(node | parent). */
  parentMass: number;
  /** e^(−α·depth)/Z. */
  weight: number;
  /** weight · −log(mass / parentMass); 0 for an edge HELM skips (mass exactly 0). */
  term: number;
}

interface HxeContext {
  tree: LabelTree;
  depths: Int32Array;
  normalizer: number;
  under: Int32Array[];
  alpha: number;
}

function hxeContext(tree: LabelTree, alpha: number, options: HxeOptions): HxeContext {
  validateTree(tree);
  const depths = nodeDepths(tree);
  const normalizer = edgeNormalizer(depths, alpha, options.normalize ?? true);
  return { tree, depths, normalizer, under: classesUnderNodes(tree), alpha };
}

/** The edges of one row's target path, leaf first, with a flat softmax over `rowLogits`. */
function pathEdges(rowLogits: ArrayLike<number>, target: number, ctx: HxeContext): HxeEdge[] {
  const { tree, depths, normalizer, under, alpha } = ctx;
  let max = -Infinity;
  for (let c = 0; c < rowLogits.length; c++) max = Math.max(max, rowLogits[c]!);
  const probs = new Float64Array(rowLogits.length);
  let total = 0;
  for (let c = 0; c < rowLogits.length; c++) total += probs[c] = Math.exp(rowLogits[c]! - max);
  const mass = (node: number): number => {
    let sum = 0;
    for (const c of under[node]!) sum += probs[c]!;
    return sum / total;
  };
  const edges: HxeEdge[] = [];
  for (let node = tree.leafIds[target]!; tree.parent[node] !== -1; node = tree.parent[node]!) {
    const m = mass(node);
    const parentMass = mass(tree.parent[node]!);
    const weight = Math.exp(-alpha * depths[node]!) / normalizer;
    const term = m === 0 ? 0 : -weight * Math.log(m / parentMass);
    edges.push({ node, label: tree.labels[node]!, depth: depths[node]!, mass: m, parentMass, weight, term });
  }
  return edges;
}

function checkTarget(target: number, numClasses: number, row: number): void {
  if (!Number.isInteger(target) || target < 0 || target >= numClasses) {
    throw new RangeError(`target ${target} in row ${row} is outside 0..${numClasses - 1}`);
  }
}

/**
 * The HXE loss of one row of logits split into its edges from the target's leaf up to the root:
 * which ancestors got how much probability and what each edge costs (the terms sum to the loss of
 * {@link hxeLossReference}). For teaching views.
 */
export function hxeBreakdown(
  rowLogits: ArrayLike<number>,
  target: number,
  tree: LabelTree,
  alpha: number,
  options: HxeOptions = {},
): { edges: HxeEdge[]; loss: number } {
  if (tree.leafIds.length !== rowLogits.length) {
    throw new RangeError(`tree has ${tree.leafIds.length} classes, the logits ${rowLogits.length}`);
  }
  checkTarget(target, rowLogits.length, 0);
  const edges = pathEdges(rowLogits, target, hxeContext(tree, alpha, options));
  return { edges, loss: edges.reduce((s, e) => s + e.term, 0) };
}

/**
 * Per-row HXE losses computed edge by edge, exactly as HELM's `HierarchicalLLLoss`: each edge
 * (node → parent) on the target's path costs `e^(−α·depth(node))/Z · −log(S_node / S_parent)`,
 * with a flat softmax over the logits; edges whose node mass is exactly 0 are skipped (HELM's
 * underflow guard). `logits` is row-major [rows, numClasses]. Average the result for HELM's
 * batch loss.
 */
export function hxeLossReference(
  logits: Float64Array,
  numClasses: number,
  targets: ArrayLike<number>,
  tree: LabelTree,
  alpha: number,
  options: HxeOptions = {},
): Float64Array {
  const ctx = hxeContext(tree, alpha, options);
  if (tree.leafIds.length !== numClasses) {
    throw new RangeError(`tree has ${tree.leafIds.length} classes, logits have ${numClasses}`);
  }
  if (logits.length !== targets.length * numClasses) {
    throw new RangeError(`logits hold ${logits.length} values, expected ${targets.length} rows × ${numClasses}`);
  }
  const losses = new Float64Array(targets.length);
  for (let row = 0; row < targets.length; row++) {
    checkTarget(targets[row]!, numClasses, row);
    const edges = pathEdges(logits.subarray(row * numClasses, (row + 1) * numClasses), targets[row]!, ctx);
    losses[row] = edges.reduce((s, e) => s + e.term, 0);
  }
  return losses;
}
