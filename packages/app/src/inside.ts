/**
 * "Look inside" for one coding sequence: the forward pass recorded by `inspectHelm` (every tensor's
 * name and shape, attention per layer and head) and, at one codon, what the model predicts there
 * and how the HXE loss splits over the codon tree (`hxeBreakdown`).
 */
import {
  CODON_TOKENS,
  CODON_VOCAB,
  CodonTokenizer,
  type HelmModel,
  classesUnderNodes,
  codonTree,
  hxeBreakdown,
  inspectHelm,
} from './deps.js';
import { checkCodingSequence } from './corpus.js';
import type { InsideView } from './protocol.js';

const ALPHA = 0.2;

export async function inspectSequence(model: HelmModel, raw: string, codon: number): Promise<InsideView> {
  const sequence = checkCodingSequence(raw, 'look inside');
  const ids = new CodonTokenizer({ remainder: 'drop' }).encode(sequence);
  const codons = ids.length - 2;
  if (ids.length > model.cfg.maxPositions)
    throw new Error(`look inside: ${codons} codons; this model reads at most ${model.cfg.maxPositions - 2}`);
  if (!Number.isInteger(codon) || codon < 1 || codon > codons)
    throw new Error(`look inside: codon ${codon} is outside 1..${codons}`);
  const position = codon; // <cls> sits at 0
  const target = ids[position]!;
  const masked = model.cfg.objective === 'mlm';
  const input = masked ? ids.map((id, i) => (i === position ? CODON_TOKENS.mask : id)) : ids;
  // A masked LM predicts the masked token at its own position; a causal one from the position before.
  const predictedAt = masked ? position : position - 1;
  const inside = await inspectHelm(model, input);
  const V = inside.vocabSize;
  const row = Float64Array.from(inside.logits.subarray(predictedAt * V, (predictedAt + 1) * V));
  const tree = codonTree();
  const hxe = hxeBreakdown(row, target, tree, ALPHA);
  const max = Math.max(...row);
  const exp = row.map((z) => Math.exp(z - max));
  const total = exp.reduce((a, b) => a + b, 0);
  const probs = exp.map((e) => e / total);
  const mass = Float64Array.from(classesUnderNodes(tree), (classes) => classes.reduce((s, c) => s + probs[c]!, 0));
  const top = [...probs.keys()]
    .sort((a, b) => probs[b]! - probs[a]!)
    .slice(0, 8)
    .map((id) => ({ codon: CODON_VOCAB[id]!, probability: probs[id]! }));
  return {
    tokens: Array.from(input, (id) => CODON_VOCAB[id]!),
    tensors: inside.tensors,
    layers: inside.layers,
    heads: inside.heads,
    attention: inside.attention,
    position,
    target: CODON_VOCAB[target]!,
    predictedAt,
    tree: { labels: tree.labels, parent: tree.parent, mass },
    hxe: { edges: hxe.edges, loss: hxe.loss, alpha: ALPHA, crossEntropy: -Math.log(probs[target]!) },
    top,
  };
}
