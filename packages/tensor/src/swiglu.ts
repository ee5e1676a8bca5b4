/** SwiGLU in RiNALMo's form, with a learnable scalar β, composed from elementwise kernels. */
import * as ops from './ops.js';
import { deviceOf, record } from './ops.js';
import { requireF32, sameShape, untracked } from './op.js';
import { tidy, type Tensor } from './tensor.js';

function checkSwiglu(op: string, u: Tensor, v: Tensor, beta: Tensor): void {
  requireF32(op, u, v, beta);
  sameShape(op, u, v);
  if (beta.size !== 1) throw new RangeError(`${op}: beta must have one element, got [${beta.shape.join(', ')}]`);
}

/** A view of the one-element β that broadcasts against anything: shape []. */
function scalarView(beta: Tensor): Tensor {
  return beta.view([], [], beta.offset);
}

/**
 * (u · σ(β·u)) ⊙ v with a one-element β (RiNALMo's SwiGLU). Composed from elementwise kernels.
 * Records 'swiglu' on [u, v, beta]; the rule needs the inputs (swigluBackward).
 */
export function swiglu(u: Tensor, v: Tensor, beta: Tensor): Tensor {
  deviceOf('swiglu', [u, v, beta]);
  checkSwiglu('swiglu', u, v, beta);
  const out = untracked(() => tidy(() => ops.mul(ops.mul(u, ops.sigmoid(ops.mul(u, scalarView(beta)))), v)));
  return record('swiglu', [u, v, beta], out, {});
}

/**
 * Gradients of `swiglu`: with s = σ(βu),
 * du = dy·v·(s + βu·s(1−s)), dv = dy·u·s, dβ = Σ dy·v·u²·s(1−s) (shape of beta).
 */
export function swigluBackward(
  u: Tensor,
  v: Tensor,
  beta: Tensor,
  dy: Tensor,
): { du: Tensor; dv: Tensor; dbeta: Tensor } {
  deviceOf('swigluBackward', [u, v, beta, dy]);
  checkSwiglu('swigluBackward', u, v, beta);
  sameShape('swigluBackward', u, dy);
  return untracked(() =>
    tidy(() => {
      const b = scalarView(beta);
      const bu = ops.mul(u, b);
      const s = ops.sigmoid(bu);
      const dv = ops.mul(ops.mul(dy, u), s);
      const gv = ops.mul(dy, v); // dy·v
      const sp = ops.mul(s, ops.sub(1, s)); // s(1−s)
      const du = ops.mul(gv, ops.add(s, ops.mul(bu, sp)));
      const dbeta = ops.reshape(ops.sum(ops.mul(ops.mul(gv, ops.mul(u, u)), sp)), beta.shape);
      return { du, dv, dbeta };
    }),
  );
}
