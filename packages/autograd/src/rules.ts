/**
 * The gradient rules, one entry per op name that @rnagrad/tensor records. The table is typed
 * against tensor's `CoreOps` (op → attrs): a recorded op without a rule, or a rule reading an
 * attr its op does not record, does not compile. Ops defined outside the core (declared in
 * tensor's `ExtensionOps`) add their rule with `registerRule`, checked against the same map.
 * Each rule is written with tensor ops (and the backward kernels of the fused ops), so it runs on
 * the GPU or the CPU oracle alike. Rules for broadcasting ops reduce their gradients back with
 * `sumTo`.
 */
import * as T from '@rnagrad/tensor';
import type {
  CoreOp,
  CoreOps,
  ElementwiseAttrs,
  NormAttrs,
  RecordedOp,
  RecordedOps,
  ReduceAttrs,
  Tensor,
} from '@rnagrad/tensor';
import type { GradContext, GradRule } from './tape.js';

type Operand = Tensor | number;

/**
 * An elementwise rule: `fn` gets the incoming gradient, the operands in call order (numbers stay
 * numbers), the saved output, and returns a gradient per operand position; each is summed back to
 * its tensor's shape.
 */
function elementwise(
  save: GradRule['save'],
  fn: (g: Tensor, x: Operand[], out: Tensor | null) => (Tensor | null)[],
): GradRule<ElementwiseAttrs> {
  return {
    save,
    backward(g, ctx) {
      const scalars = ctx.attrs.scalars;
      const tensorIndex: number[] = [];
      let next = 0;
      const operands = scalars.map((s, k) => {
        if (s !== null) return s;
        tensorIndex[k] = next;
        // A rule never reads an input it did not save: a number stands in (no GPU fill).
        return ctx.inputs[next++] ?? 0;
      });
      const perOperand = fn(g, operands, ctx.output);
      const result: (Tensor | null)[] = ctx.inputShapes.map(() => null);
      perOperand.forEach((grad, k) => {
        const t = tensorIndex[k];
        if (grad !== null && t !== undefined && ctx.needs[t]) result[t] = T.sumTo(grad, ctx.inputShapes[t]!);
      });
      // Free the per-operand gradients (sumTo made new handles); `g` itself belongs to the caller.
      for (const grad of new Set(perOperand)) if (grad && grad !== g) grad.dispose();
      return result;
    },
  };
}

const none = () => [null];
const through = elementwise([], (g) => [g.view(g.shape, g.strides)]);

/** Restores the reduced axes of a reduction gradient as size-1 dims so it broadcasts back. */
function unreduce(g: Tensor, ctx: GradContext<ReduceAttrs>): Tensor {
  const axes = ctx.attrs.axes;
  const inputShape = ctx.inputShapes[0]!;
  return g.reshape(inputShape.map((s, d) => (axes.includes(d) ? 1 : s)));
}

function extremumRule(): GradRule<ReduceAttrs> {
  return {
    save: ['inputs', 'output'],
    backward(g, ctx) {
      const x = ctx.inputs[0]!;
      const best = unreduce(ctx.output!, ctx);
      // PyTorch sends the gradient of a NaN result to the NaN entries (NaN ≠ NaN, so eq alone would not).
      const mask = T.tidy(() => T.cast(T.logicalOr(T.eq(x, best), T.logicalAnd(T.isnan(x), T.isnan(best))), 'f32'));
      const count = T.sum(mask, ctx.attrs.axes, true);
      const gk = unreduce(g, ctx);
      return [T.tidy(() => T.div(T.mul(mask, gk), count))];
    },
  };
}

export const RULES: { [K in CoreOp]: GradRule<CoreOps[K]> } = {
  copy: through,
  castF32: through,
  add: elementwise([], (g) => [g, g]),
  sub: elementwise([], (g) => [g, T.neg(g)]),
  mul: elementwise(['inputs'], (g, [a, b]) => [T.mul(g, b!), T.mul(g, a!)]),
  div: elementwise(['inputs'], (g, [a, b]) => [
    T.div(g, b!),
    T.tidy(() => T.neg(T.div(T.mul(g, a!), typeof b === 'number' ? b * b : T.square(b!)))),
  ]),
  pow: elementwise(['inputs', 'output'], (g, [a, b], out) => [
    T.tidy(() => T.mul(g, T.mul(typeof b === 'number' ? T.pow(a!, b - 1) : T.pow(a!, T.sub(b!, 1)), b!))),
    T.tidy(() => T.mul(g, T.mul(out!, typeof a === 'number' ? Math.log(a) : T.log(a!)))),
  ]),
  maximum: elementwise(['inputs'], (g, [a, b]) => [T.where(T.ge(a!, b!), g, 0), T.where(T.lt(a!, b!), g, 0)]),
  minimum: elementwise(['inputs'], (g, [a, b]) => [T.where(T.le(a!, b!), g, 0), T.where(T.gt(a!, b!), g, 0)]),
  neg: elementwise([], (g) => [T.neg(g)]),
  abs: elementwise(['inputs'], (g, [a]) => [T.mul(g, T.sign(a as Tensor))]),
  square: elementwise(['inputs'], (g, [a]) => [T.tidy(() => T.mul(g, T.mul(a!, 2)))]),
  sign: elementwise([], none),
  floor: elementwise([], none),
  ceil: elementwise([], none),
  relu: elementwise(['inputs'], (g, [a]) => [T.map('reluBackward', [a!, g])]),
  exp: elementwise(['output'], (g, _, out) => [T.mul(g, out!)]),
  log: elementwise(['inputs'], (g, [a]) => [T.div(g, a!)]),
  sqrt: elementwise(['output'], (g, _, out) => [T.tidy(() => T.div(T.mul(g, 0.5), out!))]),
  rsqrt: elementwise(['output'], (g, _, out) => [T.tidy(() => T.mul(g, T.mul(T.pow(out!, 3), -0.5)))]),
  reciprocal: elementwise(['output'], (g, _, out) => [T.tidy(() => T.neg(T.mul(g, T.square(out!))))]),
  sin: elementwise(['inputs'], (g, [a]) => [T.tidy(() => T.mul(g, T.cos(a as Tensor)))]),
  cos: elementwise(['inputs'], (g, [a]) => [T.tidy(() => T.neg(T.mul(g, T.sin(a as Tensor))))]),
  tanh: elementwise(['inputs'], (g, [a]) => [T.map('tanhBackward', [a!, g])]),
  sigmoid: elementwise(['inputs'], (g, [a]) => [T.map('sigmoidBackward', [a!, g])]),
  erf: elementwise(['inputs'], (g, [a]) => [
    T.tidy(() => T.mul(g, T.mul(T.exp(T.neg(T.square(a as Tensor))), 2 / Math.sqrt(Math.PI)))),
  ]),
  gelu: elementwise(['inputs'], (g, [a]) => [T.map('geluBackward', [a!, g])]),
  geluTanh: elementwise(['inputs'], (g, [a]) => [T.map('geluTanhBackward', [a!, g])]),
  silu: elementwise(['inputs'], (g, [a]) => [T.map('siluBackward', [a!, g])]),
  elu: elementwise(['inputs'], (g, [a, alpha]) => [T.map('eluBackward', [a!, g, alpha!]), null]),
  where: elementwise(['inputs'], (g, [c]) => [null, T.where(c as Tensor, g, 0), T.where(c as Tensor, 0, g)]),

  sum: {
    save: [],
    backward: (g, ctx) => [T.tidy(() => T.contiguous(T.expand(unreduce(g, ctx), ctx.inputShapes[0]!)))],
  },
  mean: {
    save: [],
    backward(g, ctx) {
      const axes = ctx.attrs.axes as number[];
      const count = axes.reduce((n, d) => n * ctx.inputShapes[0]![d]!, 1);
      return [T.tidy(() => T.mul(T.expand(unreduce(g, ctx), ctx.inputShapes[0]!), 1 / count))];
    },
  },
  prod: {
    save: ['inputs', 'output'],
    backward: (g, ctx) => [T.tidy(() => T.div(T.mul(unreduce(g, ctx), unreduce(ctx.output!, ctx)), ctx.inputs[0]!))],
  },
  max: extremumRule(),
  min: extremumRule(),

  view: { save: [], backward: (g, ctx) => [T.reshape(g, ctx.inputShapes[0]!)] },
  permute: {
    save: [],
    backward(g, ctx) {
      const dims = ctx.attrs.dims as number[];
      const inverse = dims.map((_, k) => dims.indexOf(k));
      return [T.permute(g, inverse)];
    },
  },
  expand: { save: [], backward: (g, ctx) => [T.sumTo(g, ctx.inputShapes[0]!)] },
  slice: {
    save: [],
    backward(g, ctx) {
      const { dim, start, step } = ctx.attrs as { dim: number; start: number; step: number };
      const out = T.zeros(ctx.inputShapes[0]!, { device: g.device });
      const window = T.slice(out, dim, start, start + (g.shape[dim]! - 1) * step + 1, step);
      T.assign(window, g);
      window.dispose();
      return [out];
    },
  },
  concat: {
    save: [],
    backward(g, ctx) {
      const { dim, sizes } = ctx.attrs as { dim: number; sizes: number[] };
      let offset = 0;
      return sizes.map((size, k) => {
        const part = ctx.needs[k] ? T.contiguous(T.narrow(g, dim, offset, size)) : null;
        offset += size;
        return part;
      });
    },
  },

  // Fused ops (tensor softmax.ts, norm.ts, scatter.ts, …): their forward saved what the backward kernel needs in
  // attrs.saved.
  softmax: { save: ['output'], backward: (g, ctx) => [T.softmaxBackward(ctx.output!, g, ctx.attrs.dim as number)] },
  logSoftmax: {
    save: ['output'],
    backward: (g, ctx) => [T.logSoftmaxBackward(ctx.output!, g, ctx.attrs.dim as number)],
  },
  crossEntropy: {
    save: ['inputs'],
    backward(g, ctx) {
      const { targets, lse, count } = saved(ctx);
      const { reduction, ignoreIndex, labelSmoothing } = ctx.attrs as {
        reduction: 'mean' | 'sum' | 'none';
        ignoreIndex: number;
        labelSmoothing: number;
      };
      return [
        T.crossEntropyBackward(ctx.inputs[0]!, targets!, lse!, g, { reduction, ignoreIndex, labelSmoothing, count }),
      ];
    },
  },
  layerNorm: normRule(false),
  rmsNorm: normRule(true),
  embedding: {
    save: [],
    backward(g, ctx) {
      const { numEmbeddings, paddingIdx } = ctx.attrs as { numEmbeddings: number; paddingIdx: number | null };
      return [T.embeddingBackward(saved(ctx).ids!, g, numEmbeddings, { paddingIdx })];
    },
  },
  dropout: { save: [], backward: (g, ctx) => [T.dropoutBackward(g, saved(ctx).mask!)] },
  swiglu: {
    save: ['inputs'],
    backward(g, ctx) {
      const [u, v, beta] = ctx.inputs as Tensor[];
      const { du, dv, dbeta } = T.swigluBackward(u!, v!, beta!, g);
      return [du, dv, dbeta];
    },
  },
  matmul: {
    save: ['inputs'],
    backward(g, ctx) {
      const attrs = ctx.attrs as unknown as T.MatmulAttrs;
      const [a, b, bias] = ctx.inputs as Tensor[];
      const [da, db, dbias] = T.matmulBackward(g, a!, b!, bias ?? null, attrs, ctx.needs);
      return attrs.hasBias ? [da, db, dbias] : [da, db];
    },
  },
  attention: {
    save: ['inputs'],
    backward(g, ctx) {
      const attrs = ctx.attrs as unknown as T.AttentionAttrs;
      const [q, k, v] = ctx.inputs as Tensor[];
      const s = attrs.saved!;
      const { dq, dk, dv } = T.attentionBackward(g, q!, k!, v!, s.out, s.logsumexp, {
        causal: attrs.causal,
        scale: attrs.scale,
        keyPaddingMask: s.keyPaddingMask,
        dropout: attrs.dropout,
      });
      return [dq, dk, dv];
    },
  },
  attentionQkv: {
    save: ['inputs'],
    backward(g, ctx) {
      const { causal, scale, dropout, saved } = ctx.attrs as unknown as T.AttentionAttrs;
      const { out, logsumexp, keyPaddingMask } = saved!;
      return [T.attentionQkvBackward(g, ctx.inputs[0]!, out, logsumexp, { causal, scale, dropout, keyPaddingMask })];
    },
  },
  rope: { save: [], backward: (g, ctx) => [T.ropeBackward(g, ctx.attrs as T.RopeOpts)] },
  conv1d: convRule(T.conv1dBackward),
  conv2d: convRule(T.conv2dBackward),
  instanceNorm: {
    save: ['inputs'],
    backward: (g, ctx) => [T.instanceNormBackward(g, ctx.inputs[0]!, saved(ctx).mean, saved(ctx).rstd)],
  },
  indexAdd: {
    save: [],
    backward: (g, ctx) => [
      ctx.needs[0] ? g.view(g.shape, g.strides) : null,
      ctx.needs[1] ? T.indexSelect(g, ctx.attrs.dim as number, saved(ctx).index!) : null,
    ],
  },
  gather: {
    save: ['inputs'],
    backward: (g, ctx) => [T.gatherBackward(g, ctx.attrs.dim as number, ctx.inputs[1]!, ctx.inputShapes[0]!), null],
  },
  indexSelect: {
    save: ['inputs'],
    backward(g, ctx) {
      const dim = ctx.attrs.dim as number;
      const zeros = T.zeros(ctx.inputShapes[0]!, { device: g.device });
      const dx = T.indexAdd(zeros, dim, ctx.inputs[1]!, g);
      zeros.dispose();
      return [dx, null];
    },
  },
};

/** The tensors the forward saved for the backward (present whenever autograd took the op). */
function saved<S>(ctx: GradContext<{ saved?: S | null }>): S {
  if (!ctx.attrs.saved) throw new Error(`autograd: ${ctx.op} saved nothing for its backward`);
  return ctx.attrs.saved;
}

/** LayerNorm / RMSNorm: inputs are [x, weight?, bias?] in that order, as the forward passed them. */
function normRule(rms: boolean): GradRule<NormAttrs> {
  return {
    save: ['inputs'],
    backward(g, ctx) {
      const { hasWeight, hasBias } = ctx.attrs as { hasWeight: boolean; hasBias?: boolean };
      const x = ctx.inputs[0]!;
      const weight = hasWeight ? ctx.inputs[1]! : null;
      const { mean, rstd } = saved(ctx);
      const r = rms
        ? { ...T.rmsNormBackward(g, x, rstd!, weight), dbias: null }
        : T.layerNormBackward(g, x, mean!, rstd!, weight, !!hasBias);
      const out: (Tensor | null)[] = [r.dx];
      if (hasWeight) out.push(r.dweight);
      if (hasBias) out.push(r.dbias);
      return out;
    },
  };
}

/** conv1d / conv2d: inputs are [x, weight, bias?]; the bias gradient is dy summed over its pixels. */
function convRule(backward: typeof T.conv1dBackward): GradRule<T.ConvAttrs> {
  return {
    save: ['inputs'],
    backward(g, ctx) {
      const [x, weight] = ctx.inputs as Tensor[];
      const needs = { input: ctx.needs[0], weight: ctx.needs[1], bias: ctx.attrs.hasBias && ctx.needs[2] };
      const { dx, dweight, dbias } = backward(g, x!, weight!, ctx.attrs.padding, needs);
      return ctx.attrs.hasBias ? [dx, dweight, dbias] : [dx, dweight];
    },
  };
}

const extensions = new Map<string, GradRule>();

/**
 * Adds the gradient rule of an op defined outside @rnagrad/tensor, declared in tensor's
 * `ExtensionOps` (the rule's `ctx.attrs` get that declaration's type), or replaces a core op's rule.
 */
export function registerRule<K extends RecordedOp>(op: K, rule: GradRule<RecordedOps[K]>): void {
  extensions.set(op, rule as unknown as GradRule);
}

/** The rule for a recorded op name: an extension's, else the built-in table's. */
export function ruleFor(op: string): GradRule | undefined {
  return extensions.get(op) ?? ((RULES as Record<string, unknown>)[op] as GradRule | undefined);
}
