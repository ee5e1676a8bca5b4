/**
 * Solution to the exercise of stop 2 (docs/learn/02-autograd.md): softplus(x) = log(1 + eˣ) as an
 * op defined outside the core: its entry in tensor's `ExtensionOps`, `record`, and its gradient
 * rule registered with autograd's `registerRule` (type-checked against that entry).
 * Tested by examples/learn/test/softplus.test.ts.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { registerRule } from '@rnagrad/autograd';

// The op's attrs (none): declaring them makes `record('softplus', …)` and its rule type-check.
declare module '@rnagrad/tensor' {
  interface ExtensionOps {
    softplus: Record<string, never>;
  }
}

/** softplus(x) = max(x, 0) + log(1 + e^−|x|): the same value as log(1 + eˣ), without overflow for large x. */
export function softplus(x: Tensor): Tensor {
  // The helper ops are not graph nodes: the tape records one 'softplus' node instead.
  const out = T.untracked(() => T.tidy(() => T.relu(x).add(T.log(T.exp(x.abs().neg()).add(1)))));
  return T.record('softplus', [x], out, {});
}

// d softplus / dx = eˣ / (1 + eˣ) = sigmoid(x); the rule reads x, so it saves the inputs.
registerRule('softplus', {
  save: ['inputs'],
  backward: (g, ctx) => [T.tidy(() => T.mul(g, T.sigmoid(ctx.inputs[0]!)))],
});
