/**
 * HELM's hierarchical cross-entropy (codon tree, α = 0.2) forward + backward on [16384, 70],
 * vs plain cross-entropy: the same fused kernel in 'xe' mode, and the fused crossEntropy op.
 * Through autograd, as training uses it. Same inputs as the cross-entropy case.
 */
import type { Tensor } from '@rnagrad/tensor';
import * as T from '@rnagrad/tensor';
import { hierarchicalCrossEntropy as hxe } from '@rnagrad/models';
import { codonTree, hxePathTable, leafMembership } from '@rnagrad/tokenizers';
import { errorFigure } from '../lib/figure.js';
import { logFigure, measureOurs } from '../lib/measure.js';
import type { BenchCase } from '../lib/types.js';
import { C, N, cpuLoss, lossCase, lossInputs } from './crossentropy.js';

export const hxeCase: BenchCase = {
  name: 'hxe',
  title: 'Hierarchical cross-entropy (HXE) vs cross-entropy',
  async run(ctx) {
    const label = (what: string) => `${what} fwd+bwd [${N},${C}]`;
    const tree = codonTree();
    const table = { ...hxePathTable(tree, 0.2), membership: leafMembership(tree) };
    const inp = lossInputs();
    const bytes = 3 * N * C * 4 + 2 * N * 4;
    const variants: [string, (l: Tensor, t: Tensor) => Tensor][] = [
      [label('HXE'), (l, t) => hxe(l, t, table)],
      [label('XE through the HXE kernel'), (l, t) => hxe(l, t, table, { mode: 'xe' })],
      [label('cross-entropy (fused CE op, again)'), (l, t) => T.crossEntropy(l, t)],
    ];
    for (const [name, fn] of variants) {
      let ref: Awaited<ReturnType<typeof cpuLoss>>;
      try {
        ref = await cpuLoss(fn, inp);
      } catch (err) {
        const f = errorFigure('loss', name, 'rnagrad', err);
        ctx.add(f);
        logFigure(ctx, f);
        continue;
      }
      await measureOurs(ctx, { group: 'loss', case: name, bytes, ...lossCase(fn, inp, ref) });
    }
  },
};
