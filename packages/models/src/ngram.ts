/**
 * Count-based codon baselines for judging a codon LM: what validation cross-entropy does codon
 * frequency alone reach (unigram), and the frequency given the visible left neighbour (bigram) or
 * both visible neighbours (the masked-LM analogue). A language model that does not beat these has
 * not learned context. Scored on the very batches the model is validated on (`helmValidationBatches`).
 */
import { CODON_TOKENS, IGNORE_INDEX, type LmBatch } from './data.js';

/** Token ids are < 70; `NONE` stands for a neighbour outside the window. */
const BASE = 71;
const NONE = 70;

export interface NgramCrossEntropy {
  /** Mean −log p in nats over the scored targets. */
  unigram: number;
  /** Given the visible token left of the target (for a causal LM: the current input). */
  left: number;
  /** Given the visible tokens on both sides (masked LM only; NaN for a causal LM). */
  neighbours: number;
  tokens: number;
}

/**
 * Interpolated n-gram codon model fitted on whole genes framed as <cls> codons <eos>:
 * p₁(c) add-one over the target classes; p₂(c | l) = (n(l,c) + k·p₁(c)) / (n(l) + k);
 * p₃(c | l, r) = (n(l,r,c) + k·p₂(c | l)) / (n(l,r) + k). An unseen context falls back to the
 * order below, so a masked neighbour (which the LM cannot see either) simply gives no information.
 */
export class CodonNgram {
  private readonly uni = new Float64Array(BASE);
  private readonly bi = new Float64Array(BASE * BASE);
  private readonly biContext = new Float64Array(BASE);
  private readonly tri = new Float64Array(BASE * BASE * BASE);
  private readonly triContext = new Float64Array(BASE * BASE);
  private readonly classes: number[];
  private total = 0;

  /**
   * genes: codon ids without framing. k: the interpolation strength (pseudo-counts given to the
   * lower order). withEos: also predict <eos> (the targets of a causal LM).
   */
  constructor(
    genes: readonly Int32Array[],
    readonly opts: { k?: number; withEos?: boolean } = {},
  ) {
    const k = opts.k ?? 64;
    if (!(k > 0)) throw new RangeError(`CodonNgram: k must be > 0, got ${k}`);
    this.classes = Array.from({ length: 64 }, (_, i) => CODON_TOKENS.firstCodon + i);
    if (opts.withEos) this.classes.push(CODON_TOKENS.eos);
    const scored = new Set(this.classes);
    for (const gene of genes) {
      const framed = [CODON_TOKENS.cls, ...gene, CODON_TOKENS.eos];
      for (let i = 1; i < framed.length; i++) {
        const c = framed[i]!;
        if (!scored.has(c)) continue;
        const l = framed[i - 1]!;
        const r = framed[i + 1] ?? NONE;
        this.uni[c]++;
        this.total++;
        this.bi[l * BASE + c]++;
        this.biContext[l]++;
        this.tri[(l * BASE + r) * BASE + c]++;
        this.triContext[l * BASE + r]++;
      }
    }
  }

  get k(): number {
    return this.opts.k ?? 64;
  }

  unigram(c: number): number {
    return (this.uni[c]! + 1) / (this.total + this.classes.length);
  }

  left(l: number, c: number): number {
    return (this.bi[l * BASE + c]! + this.k * this.unigram(c)) / (this.biContext[l]! + this.k);
  }

  neighbours(l: number, r: number, c: number): number {
    return (
      (this.tri[(l * BASE + r) * BASE + c]! + this.k * this.left(l, c)) / (this.triContext[l * BASE + r]! + this.k)
    );
  }

  /** Cross-entropy of the three orders on the scored targets of LM batches (MLM or CLM, as built by data.ts). */
  crossEntropy(batches: readonly LmBatch[], objective: 'mlm' | 'clm'): NgramCrossEntropy {
    const sums = { unigram: 0, left: 0, neighbours: 0 };
    let tokens = 0;
    for (const batch of batches) {
      const [B, L] = batch.shape;
      const at = (b: number, i: number) =>
        i >= 0 && i < L && batch.attentionMask[b * L + i] ? batch.ids[b * L + i]! : NONE;
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < L; i++) {
          const c = batch.targets[b * L + i]!;
          if (c === IGNORE_INDEX) continue;
          if (!this.classes.includes(c))
            throw new RangeError(
              `CodonNgram: target id ${c} is not a class of this model (fit withEos for causal targets)`,
            );
          // MLM: the target sits at i between its neighbours; CLM: it follows the input at i.
          const l = objective === 'mlm' ? at(b, i - 1) : at(b, i);
          sums.unigram -= Math.log(this.unigram(c));
          sums.left -= Math.log(this.left(l, c));
          if (objective === 'mlm') sums.neighbours -= Math.log(this.neighbours(l, at(b, i + 1), c));
          tokens++;
        }
      }
    }
    const mean = (s: number) => (tokens ? s / tokens : NaN);
    return {
      unigram: mean(sums.unigram),
      left: mean(sums.left),
      neighbours: objective === 'mlm' ? mean(sums.neighbours) : NaN,
      tokens,
    };
  }
}
