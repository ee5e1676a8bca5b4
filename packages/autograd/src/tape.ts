/**
 * Reverse-mode autodiff in one file.
 *
 * Every differentiable op in @rnagrad/tensor reports itself through `hooks.record`. When one of
 * its inputs requires grad, we make a Node: the op name, its attrs, the values its gradient rule
 * needs (fresh handles on the same storage, outside every `tidy` scope so user code may dispose
 * its own handles), and links to the parent nodes or leaf tensors. `backward()` walks the nodes in
 * reverse topological order, asks the rule table (rules.ts) for input gradients, sums them per
 * node, accumulates into leaves' `.grad`, and frees each node's saved values as soon as it is used.
 */
import { type Tensor, add, hooks, keep, onesLike, untracked } from '@rnagrad/tensor';
import { ruleFor } from './rules.js';

/**
 * What a gradient rule sees. `attrs` are what the op recorded (typed per op by tensor's
 * `RecordedOps`); `inputs[k]` / `output` are saved values (null if the rule did not ask).
 */
export interface GradContext<A = Record<string, unknown>> {
  readonly op: string;
  readonly attrs: A;
  readonly inputs: readonly (Tensor | null)[];
  readonly output: Tensor | null;
  readonly inputShapes: readonly (readonly number[])[];
  readonly outputShape: readonly number[];
  /** needs[k]: whether input k requires a gradient (rules skip the others). */
  readonly needs: readonly boolean[];
}

export interface GradRule<A = Record<string, unknown>> {
  /** Which values the rule reads: 'inputs', 'output', both, or none (shapes and attrs are always kept). */
  readonly save: readonly ('inputs' | 'output')[];
  /** Gradients for each tensor input, in the order the op passed them (null where not needed). */
  backward(grad: Tensor, ctx: GradContext<A>): (Tensor | null)[];
}

interface Parent {
  node: Node | null;
  leaf: Tensor | null;
}

export class Node {
  constructor(
    readonly op: string,
    readonly rule: GradRule,
    public ctx: GradContext,
    readonly parents: readonly (Parent | null)[],
  ) {}

  /** Drops the saved values (after backward, or when the graph is abandoned). */
  release(): void {
    for (const t of this.ctx.inputs) t?.dispose();
    // Tensors a fused forward saved for its backward (e.g. logsumexp, LayerNorm statistics).
    for (const t of Object.values(
      ((this.ctx.attrs as { saved?: unknown }).saved ?? {}) as Record<string, Tensor | null>,
    ))
      t?.dispose();
    this.ctx.output?.dispose();
    this.ctx = { ...this.ctx, inputs: this.ctx.inputs.map(() => null), output: null };
  }
}

/**
 * Runs `fn` without recording: for evaluation and optimizer updates. Ops see it through tensor's
 * `isRecording()` (matmul then skips saving its pre-activation, fused ops their statistics).
 */
export function noGrad<T>(fn: () => T): T {
  return untracked(fn);
}

export function isGradEnabled(): boolean {
  return hooks.gradEnabled;
}

function savedHandle(t: Tensor): Tensor {
  return keep(t.view(t.shape, t.strides, t.offset));
}

hooks.record = (op, inputs, output, attrs) => {
  if (!hooks.gradEnabled) return;
  const rule = ruleFor(op);
  if (!rule)
    throw new Error(
      `autograd: no gradient rule for op "${op}" (an input requires grad); wrap the call in noGrad() or detach the ` +
        `input`,
    );
  const saveInputs = rule.save.includes('inputs');
  const ctx: GradContext = {
    op,
    attrs,
    inputs: inputs.map((t) => (saveInputs ? savedHandle(t) : null)),
    output: rule.save.includes('output') ? savedHandle(output) : null,
    inputShapes: inputs.map((t) => t.shape),
    outputShape: output.shape,
    needs: inputs.map((t) => t.requiresGrad),
  };
  const parents = inputs.map((t): Parent | null => {
    if (!t.requiresGrad) return null;
    return t.gradNode instanceof Node ? { node: t.gradNode, leaf: null } : { node: null, leaf: t };
  });
  output.gradNode = new Node(op, rule, ctx, parents);
  output.requiresGrad = true;
};

/** Marks a tensor as a leaf whose gradient `backward()` accumulates into `.grad`. */
export function requireGrad<T extends Tensor>(t: T, on = true): T {
  if (on && t.dtype !== 'f32') throw new TypeError(`requireGrad: only f32 tensors can require grad (got ${t.dtype})`);
  t.requiresGrad = on;
  return t;
}

/** A handle on the same values that is cut off from the graph. */
export function detach(t: Tensor): Tensor {
  return t.view(t.shape, t.strides, t.offset);
}

/**
 * Backpropagates from `root` (a scalar unless `seed` is given): leaves' `.grad` receive the sum of
 * the gradients of every path. Saved values are freed as nodes are processed, so the graph can be
 * run backward once.
 */
export function backward(root: Tensor, seed?: Tensor): void {
  if (!(root.gradNode instanceof Node)) {
    throw new Error(
      'backward: this tensor does not depend on any tensor that requires grad (or its graph was already used)',
    );
  }
  if (!seed && root.size !== 1)
    throw new RangeError(
      `backward: a seed gradient is needed for a non-scalar output of shape [${root.shape.join(', ')}]`,
    );
  if (seed && seed.shape.join() !== root.shape.join())
    throw new RangeError(
      `backward: seed shape [${seed.shape.join(', ')}] differs from output shape [${root.shape.join(', ')}]`,
    );
  const order = topologicalOrder(root.gradNode);
  noGrad(() => {
    const grads = new Map<Node, Tensor>([
      [root.gradNode as Node, seed ? seed.view(seed.shape, seed.strides) : onesLike(root)],
    ]);
    for (const node of order) {
      const grad = grads.get(node);
      grads.delete(node);
      if (!grad) {
        node.release();
        continue;
      }
      const inputGrads = node.rule.backward(grad, node.ctx);
      grad.dispose();
      node.release();
      node.parents.forEach((parent, k) => {
        const g = inputGrads[k];
        if (!parent || !g) {
          g?.dispose();
          return;
        }
        if (g.shape.join() !== node.ctx.inputShapes[k]!.join()) {
          throw new Error(
            `autograd: rule for "${node.op}" returned a gradient of shape [${g.shape.join(', ')}] for an input of ` +
              `shape [${node.ctx.inputShapes[k]!.join(', ')}]`,
          );
        }
        if (parent.node) accumulate(grads, parent.node, g);
        else accumulateLeaf(parent.leaf!, g);
      });
    }
  });
  root.gradNode = null;
}

function accumulate(grads: Map<Node, Tensor>, node: Node, g: Tensor): void {
  const prev = grads.get(node);
  if (!prev) grads.set(node, g);
  else {
    grads.set(node, add(prev, g));
    prev.dispose();
    g.dispose();
  }
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  const contiguous = g.isContiguous ? g : g.contiguous();
  if (contiguous !== g) g.dispose();
  if (!leaf.grad) leaf.grad = keep(contiguous);
  else {
    const sum = keep(add(leaf.grad, contiguous));
    leaf.grad.dispose();
    contiguous.dispose();
    leaf.grad = sum;
  }
}

/** Nodes reachable from `root`, each after every node that consumes its output. */
function topologicalOrder(root: Node): Node[] {
  const visited = new Set<Node>();
  const post: Node[] = [];
  const stack: [Node, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [node, i] = top;
    if (i < node.parents.length) {
      top[1]++;
      const parent = node.parents[i]?.node;
      if (parent && !visited.has(parent)) {
        visited.add(parent);
        stack.push([parent, 0]);
      }
    } else {
      stack.pop();
      post.push(node);
    }
  }
  return post.reverse();
}

/** Frees the gradients of `params` (set `.grad` to null). */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}
