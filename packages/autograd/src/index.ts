/**
 * @rnagrad/autograd — reverse-mode autodiff for @rnagrad/tensor: mark leaves with `requireGrad`,
 * compute, call `backward(loss)`, read `.grad`. Importing this package installs the recorder.
 */
import './methods.js';
export {
  backward,
  noGrad,
  isGradEnabled,
  requireGrad,
  detach,
  zeroGrad,
  Node,
  type GradRule,
  type GradContext,
} from './tape.js';
export { RULES, registerRule } from './rules.js';
export { gradcheck, type GradcheckResult } from './gradcheck.js';
