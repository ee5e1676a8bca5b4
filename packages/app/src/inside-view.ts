/**
 * Draws "look inside": the path through the first transformer block (each tensor's name, shape and
 * the file computing it), attention heat maps per layer and head, and the codon tree with the HXE
 * terms of one position. Every view links to the source file that computes it.
 */
import type { InsideView } from './protocol.js';

const REPOSITORY = 'https://github.com/rnagrad/rnagrad/blob/main/';

const esc = (s: string) => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
const link = (path: string, text = path) =>
  `<a href="${REPOSITORY}${path}" target="_blank" rel="noopener" data-testid="source-link">${esc(text)}</a>`;

const row = (testid: string, cells: string[]) =>
  `<tr data-testid="${testid}">${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;

/** What each recorded tensor is, by the last part of its name. */
const MEANING: Record<string, string> = {
  wte: 'token embeddings',
  wpe: 'position embeddings',
  embeddings: 'token + position: the residual stream',
  ln_1: 'LayerNorm before attention',
  c_attn: 'fused q|k|v projection',
  q: 'queries per head',
  k: 'keys per head',
  v: 'values per head',
  probs: 'softmax(q·kᵀ/√d_head) with masking: who attends to whom',
  heads: 'attention output per head (fused kernel)',
  merged: 'heads concatenated',
  c_proj: 'output projection',
  residual_1: 'residual stream + attention',
  ln_2: 'LayerNorm before the MLP',
  c_fc: 'MLP up-projection + tanh-GELU',
  residual_2: 'residual stream + MLP: the block output',
  ln_f: 'final LayerNorm',
  logits: 'LM head: a score for every token of the vocabulary',
};

function pathTable(view: InsideView): string {
  const shown = view.tensors.filter(
    (t) => !/^transformer\.h\.(\d+)\./.test(t.name) || t.name.startsWith('transformer.h.0.'),
  );
  const rows = shown.map((t) => {
    const last = t.name.split('.').at(-1)!;
    const meaning = t.name.endsWith('mlp.c_proj') ? 'MLP down-projection' : (MEANING[last] ?? '');
    const file = link(t.source, t.source.split('/').at(-1));
    return row('inside-tensor', [`<code>${esc(t.name)}</code>`, `[${t.shape.join(', ')}]`, esc(meaning), file]);
  });
  const more =
    view.layers > 1 ? `<p class="info">Blocks 1–${view.layers - 1} repeat block 0 with their own weights.</p>` : '';
  return `<h3>The path through one transformer block</h3>
<p class="info">Recorded by ${link('packages/models/src/inspect.ts')} through the hook in
${link('packages/models/src/helm.ts')} — the same forward pass that trains.</p>
<table data-testid="inside-path"><tr><th>tensor</th><th>shape</th><th>what it is</th><th>computed in</th></tr>
${rows.join('')}</table>${more}`;
}

function heatMaps(view: InsideView): HTMLElement {
  const L = view.tokens.length;
  const cell = Math.max(4, Math.min(14, Math.floor(220 / L)));
  const box = document.createElement('div');
  box.innerHTML = `<h3>Attention per layer and head</h3><p class="info">Row = query token, column = key token,
darker = more attention. Computed by <code>attentionProbabilities</code> in ${link('packages/models/src/helm.ts')};
training uses the fused kernel in ${link('packages/tensor/src/attention.ts')}, which applies the same matrix
without storing it.</p>`;
  const maps = Object.assign(document.createElement('div'), { className: 'heatmaps' });
  for (let layer = 0; layer < view.layers; layer++) {
    for (let head = 0; head < view.heads; head++) {
      const probs = view.attention.subarray(
        (layer * view.heads + head) * L * L,
        (layer * view.heads + head + 1) * L * L,
      );
      const canvas = Object.assign(document.createElement('canvas'), { width: L * cell, height: L * cell });
      canvas.dataset.testid = 'attention-map';
      const ctx = canvas.getContext('2d')!;
      for (let q = 0; q < L; q++) {
        for (let k = 0; k < L; k++) {
          const shade = Math.round(255 * (1 - Math.sqrt(probs[q * L + k]!)));
          ctx.fillStyle = `rgb(${shade},${shade},255)`;
          ctx.fillRect(k * cell, q * cell, cell, cell);
        }
      }
      canvas.onmousemove = (e) => {
        const q = Math.min(L - 1, Math.floor(e.offsetY / cell));
        const k = Math.min(L - 1, Math.floor(e.offsetX / cell));
        canvas.title = `${view.tokens[q]} (${q}) → ${view.tokens[k]} (${k}): ${probs[q * L + k]!.toFixed(3)}`;
      };
      const figure = document.createElement('figure');
      figure.append(
        canvas,
        Object.assign(document.createElement('figcaption'), { textContent: `layer ${layer}, head ${head}` }),
      );
      maps.append(figure);
    }
  }
  box.append(maps);
  return box;
}

function codonTree(view: InsideView): string {
  const { labels, parent, mass } = view.tree;
  const path = new Set(view.hxe.edges.map((e) => e.node));
  const children = (node: number) => [...parent.keys()].filter((n) => parent[n] === node);
  const root = parent.indexOf(-1);
  path.add(root);
  const item = (node: number): string => {
    const on = path.has(node);
    const width = Math.max(1, Math.round(160 * mass[node]!));
    const kids = on ? children(node) : [];
    const below = kids.length ? `<ul>${kids.map(item).join('')}</ul>` : '';
    const bar = `<span class="bar" style="width:${width}px"></span>`;
    return `<li class="${on ? 'on-path' : ''}">${bar}<span class="label">${esc(labels[node]!)}</span>
${(100 * mass[node]!).toFixed(1)}%${below}</li>`;
  };
  const edges = view.hxe.edges.map((e) =>
    row('hxe-term', [
      `${esc(e.label)} ← ${esc(labels[parent[e.node]!]!)}`,
      (e.mass / e.parentMass).toFixed(4),
      e.weight.toFixed(4),
      e.term.toFixed(5),
    ]),
  );
  const likely = view.top.map((t) => `${esc(t.codon)} ${(100 * t.probability).toFixed(1)}%`).join(', ');
  const where =
    view.predictedAt === view.position
      ? `the masked codon ${view.position}`
      : `codon ${view.position}, predicted from the tokens before it`;
  return `<h3>The codon tree at ${where}: target ${esc(view.target)}</h3>
<p class="info">Bars: the probability mass the model puts under each node (expanded along the target's path).
HXE charges each edge of the path: weight e<sup>−α·depth</sup>/Z × −log P(node | parent), α = ${view.hxe.alpha}.
Computed by <code>hxeBreakdown</code> in ${link('packages/tokenizers/src/hxe.ts')}
(the tree: ${link('packages/tokenizers/src/codon-tree.ts')};
the training kernel: ${link('packages/models/src/hxe/kernel.ts')}).
</p>
<div class="inside-grid"><div class="tree" data-testid="codon-tree"><ul>${item(root)}</ul></div>
<div><table><tr><th>edge</th><th>P(node | parent)</th><th>weight</th><th>term</th></tr>${edges.join('')}
<tr><th colspan="3">HXE loss (sum)</th><th data-testid="hxe-loss">${view.hxe.loss.toFixed(5)}</th></tr>
<tr><td colspan="3">plain cross-entropy −log p(${esc(view.target)})</td>
<td>${view.hxe.crossEntropy.toFixed(4)}</td></tr></table>
<p>Most likely here: ${likely}</p></div></div>`;
}

export function renderInside(container: HTMLElement, view: InsideView): void {
  const tokens = view.tokens
    .map(
      (t, i) =>
        `<span title="position ${i}"${i === view.position ? ' style="background:#fde68a"' : ''}>${esc(t)}</span>`,
    )
    .join(' ');
  container.innerHTML = `<p class="seq">${tokens}</p>${pathTable(view)}`;
  container.append(heatMaps(view));
  container.insertAdjacentHTML('beforeend', codonTree(view));
}
