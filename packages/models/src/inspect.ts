/**
 * "Look inside" a HELM model for one sequence, for teaching: every named tensor of the forward
 * pass with its shape and the source file that computes it, the attention probabilities of every
 * layer and head, and the logits at every position. Eval mode, no gradients. Browser-safe.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { noGrad } from '@rnagrad/autograd';
import type { HelmModel } from './helm.js';

export interface InspectedTensor {
  /** Dotted name, e.g. "transformer.h.0.attn.probs". */
  name: string;
  shape: number[];
  /** Repository path of the file whose code computes it. */
  source: string;
}

export interface HelmInspection {
  tensors: InspectedTensor[];
  layers: number;
  heads: number;
  length: number;
  /** [layers, heads, length, length] row-major: row = query position, column = key position. */
  attention: Float32Array;
  vocabSize: number;
  /** [length, vocabSize]. */
  logits: Float32Array;
}

/** Which file computes a recorded tensor (the op's own file where one op makes it). */
export function sourceOfTensor(name: string): string {
  const last = name.split('.').at(-1)!;
  if (/^(wte|wpe)$/.test(last)) return 'packages/models/src/layers.ts';
  if (/^(ln_1|ln_2|ln_f)$/.test(last)) return 'packages/tensor/src/norm.ts';
  if (/^(c_attn|c_proj|c_fc|logits)$/.test(last)) return 'packages/tensor/src/linalg.ts';
  if (last === 'heads') return 'packages/tensor/src/attention.ts';
  return 'packages/models/src/helm.ts';
}

/** Runs `tokens` (ids with <cls>/<eos>, one sequence) through `model`, recording every step. */
export async function inspectHelm(model: HelmModel, tokens: Int32Array): Promise<HelmInspection> {
  const { layers, heads, vocabSize, maxPositions } = model.cfg;
  const L = tokens.length;
  if (L < 1 || L > maxPositions) {
    throw new RangeError(`inspectHelm: the sequence has ${L} tokens; the model takes 1..${maxPositions}`);
  }
  if (tokens.some((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize)) {
    throw new RangeError(`inspectHelm: token ids must be in 0..${vocabSize - 1}`);
  }
  const tensors: InspectedTensor[] = [];
  model.eval();
  const [logits, ...attention] = noGrad(() =>
    T.tidy(() => {
      const probs: Tensor[] = [];
      const record = (name: string, t: Tensor) => {
        tensors.push({ name, shape: [...t.shape], source: sourceOfTensor(name) });
        if (name.endsWith('.attn.probs')) probs.push(t);
      };
      const ids = T.tensor(tokens, { shape: [1, L], dtype: 'i32' });
      const out = model.lm_head.forward(model.hiddenStates(ids, { record }));
      record('logits', out);
      return [out, ...probs];
    }),
  );
  const [l, ...perLayer] = (await Promise.all([logits!, ...attention].map((t) => t.data()))) as Float32Array[];
  for (const t of [logits!, ...attention]) t.dispose();
  const all = new Float32Array(layers * heads * L * L);
  perLayer.forEach((p, i) => all.set(p, i * heads * L * L));
  return { tensors, layers, heads, length: L, attention: all, vocabSize, logits: l! };
}
