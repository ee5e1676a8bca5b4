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
  validateTree(tree);
  if (tree.leafIds.length !== numClasses) {
    throw new RangeError(`tree has ${tree.leafIds.length} classes, logits have ${numClasses}`);
  }
  if (logits.length !== targets.length * numClasses) {
    throw new RangeError(`logits hold ${logits.length} values, expected ${targets.length} rows × ${numClasses}`);
  }
  const depths = nodeDepths(tree);
  const normalizer = edgeNormalizer(depths, alpha, options.normalize ?? true);
  const under = classesUnderNodes(tree);
  const losses = new Float64Array(targets.length);
  const unnormalized = new Float64Array(numClasses);
  for (let row = 0; row < targets.length; row++) {
    const target = targets[row]!;
    if (!Number.isInteger(target) || target < 0 || target >= numClasses) {
      throw new RangeError(`target ${target} in row ${row} is outside 0..${numClasses - 1}`);
    }
    const rowLogits = logits.subarray(row * numClasses, (row + 1) * numClasses);
    let max = -Infinity;
    for (const z of rowLogits) max = Math.max(max, z);
    for (let c = 0; c < numClasses; c++) unnormalized[c] = Math.exp(rowLogits[c]! - max);
    // Ratios of masses do not need the softmax denominator, so unnormalized masses suffice.
    const mass = (node: number): number => {
      let sum = 0;
      for (const c of under[node]!) sum += unnormalized[c]!;
      return sum;
    };
    let loss = 0;
    for (let node = tree.leafIds[target]!; tree.parent[node] !== -1; node = tree.parent[node]!) {
      const numerator = mass(node);
      if (numerator === 0) continue;
      const weight = Math.exp(-alpha * depths[node]!) / normalizer;
      loss -= weight * Math.log(numerator / mass(tree.parent[node]!));
    }
    losses[row] = loss;
  }
  return losses;
}
