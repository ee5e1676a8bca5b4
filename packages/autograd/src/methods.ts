/** Installs `loss.backward()` and `x.requireGrad()` on Tensor (declared in @rnagrad/tensor). */
import { Tensor } from '@rnagrad/tensor';
import { backward, requireGrad } from './tape.js';

Tensor.prototype.backward = function (this: Tensor, seed?: Tensor) {
  backward(this, seed);
};
Tensor.prototype.requireGrad = function (this: Tensor, on = true) {
  return requireGrad(this, on);
};
