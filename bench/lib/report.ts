/**
 * Results: the JSON record of a run (written atomically: temp file, then rename), the Markdown
 * table and the SVG plot generated from it.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ceilings } from './ceilings.js';
import type { PeerRunInfo } from './peers.js';
import { type Spread, fmt } from './stats.js';
import type { Engine, Figure } from './types.js';

export interface BenchResults {
  schema: 'rnagrad-bench/1';
  mode: 'quick' | 'full';
  date: string;
  durationS: number;
  command: string;
  only: string[] | null;
  machine: Record<string, unknown>;
  adapter: Record<string, unknown>;
  versions: Record<string, string | null>;
  ceilings: Ceilings;
  peers: PeerRunInfo[];
  notes?: string[];
  figures: Figure[];
  headline?: Headline;
  log: string[];
}

export interface Headline {
  matmul1024?: { gflops: number; ofFma: number; vsTfjs?: number; vsJax?: number };
  attention1024?: { causal: boolean; flashMs: number; composedMs: number; speedup: number }[];
  hxeVsCe?: { hxeMs: number; ceMs: number; xeSameKernelMs?: number; ratio: number; ratioSameKernel?: number };
  train?: {
    tokensPerS: number;
    msPerStep: number;
    vsJaxInRun?: number;
    jaxInRunTokensPerS?: number;
    vsJaxReference: number;
    vsTfjsInRun?: number;
    jsShare?: number;
    /** Encode time of a warm step ÷ its dispatches (issue 18's target: ≤ 15 µs). */
    usPerDispatch?: number;
    dispatchesPerStep?: number;
    bindGroupsPerStep?: number;
    liveMiB?: number;
    firstStepMs?: number;
    lossesAgree: Record<string, boolean>;
  };
  wrongResults: string[];
}

const ENGINE_ORDER: Engine[] = ['rnagrad', 'rnagrad-composed', 'tfjs-webgpu', 'jax-js', 'rnagrad-cpu'];
const JAX_REFERENCE = 446;

function find(figs: Figure[], group: string, test: (f: Figure) => boolean): Figure | undefined {
  return figs.find((f) => f.group === group && !f.error && f.value && test(f));
}

export function headline(r: BenchResults): Headline {
  const figs = r.figures;
  const h: Headline = {
    wrongResults: figs
      .filter((f) => f.check && !f.check.ok)
      .map((f) => `${f.case} — ${f.engine}: ${f.check!.note ?? ''}`),
  };
  const mm = (engine: Engine) => find(figs, 'matmul', (f) => f.case === 'matmul 1024×1024×1024' && f.engine === engine);
  const ours = mm('rnagrad');
  if (ours) {
    const t = mm('tfjs-webgpu');
    const j = mm('jax-js');
    h.matmul1024 = {
      gflops: ours.value!.median,
      ofFma: ours.ofCeiling!,
      vsTfjs: t ? ours.value!.median / t.value!.median : undefined,
      vsJax: j ? ours.value!.median / j.value!.median : undefined,
    };
  }
  for (const causal of [false, true]) {
    const name = `attention fwd+bwd L=1024${causal ? ' causal' : ''}`;
    const f = find(figs, 'attention', (x) => x.case === name && x.engine === 'rnagrad');
    const cmp = find(figs, 'attention', (x) => x.case === name && x.engine === 'rnagrad-composed');
    if (f && cmp)
      (h.attention1024 ??= []).push({
        causal,
        flashMs: f.ms!.median,
        composedMs: cmp.ms!.median,
        speedup: cmp.ms!.median / f.ms!.median,
      });
  }
  const hxe = find(figs, 'loss', (f) => f.case.startsWith('HXE fwd+bwd'));
  // The fused CE measured right beside HXE (same load), else the CE case's own figure.
  const ce =
    find(figs, 'loss', (f) => f.case.startsWith('cross-entropy (fused CE op, again)')) ??
    find(figs, 'loss', (f) => f.case.startsWith('cross-entropy fwd+bwd'));
  const xe = find(figs, 'loss', (f) => f.case.startsWith('XE through the HXE kernel'));
  if (hxe && ce)
    h.hxeVsCe = {
      hxeMs: hxe.ms!.median,
      ceMs: ce.ms!.median,
      xeSameKernelMs: xe?.ms!.median,
      ratio: hxe.ms!.median / ce.ms!.median,
      ratioSameKernel: xe ? hxe.ms!.median / xe.ms!.median : undefined,
    };
  const tr = (engine: Engine) => find(figs, 'train', (f) => f.engine === engine && f.unit === 'tokens/s');
  const ot = tr('rnagrad');
  if (ot) {
    const jt = tr('jax-js');
    const tt = tr('tfjs-webgpu');
    const extra = ot.extra ?? {};
    const agree: Record<string, boolean> = {};
    for (const f of figs.filter((x) => x.group === 'train' && x.check))
      agree[f.engine === 'rnagrad' ? 'rnagrad-cpu' : f.engine] = f.check!.ok;
    h.train = {
      tokensPerS: ot.value!.median,
      msPerStep: ot.ms!.median,
      jaxInRunTokensPerS: jt?.value!.median,
      vsJaxInRun: jt ? ot.value!.median / jt.value!.median : undefined,
      vsJaxReference: ot.value!.median / JAX_REFERENCE,
      vsTfjsInRun: tt ? ot.value!.median / tt.value!.median : undefined,
      jsShare: (extra.jsShare as Spread | undefined)?.median,
      usPerDispatch: typeof extra.usPerDispatch === 'number' ? extra.usPerDispatch : undefined,
      dispatchesPerStep: typeof extra.dispatchesPerStep === 'number' ? extra.dispatchesPerStep : undefined,
      bindGroupsPerStep: typeof extra.bindGroupsPerStep === 'number' ? extra.bindGroupsPerStep : undefined,
      liveMiB: typeof extra.liveBytesAfterForward === 'number' ? extra.liveBytesAfterForward / 2 ** 20 : undefined,
      firstStepMs: ot.coldMs,
      lossesAgree: agree,
    };
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Markdown

const x = (v: number | undefined, d = 2) => (v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(d)}×`);
const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)}%`);

function cell(f: Figure | undefined): string {
  if (!f) return '';
  if (f.error) return `✗ failed`;
  const v = f.value!;
  const wrong = f.check && !f.check.ok ? ' **WRONG**' : '';
  const ceil = f.ofCeiling !== undefined ? ` · ${(100 * f.ofCeiling).toFixed(f.ofCeiling < 0.1 ? 1 : 0)}%` : '';
  return `${fmt(v.median)} <sub>${fmt(v.p10)}–${fmt(v.p90)}</sub>${ceil}${wrong}`;
}

function groupTable(figs: Figure[], group: string, title: string): string {
  const mine = figs.filter((f) => f.group === group);
  if (mine.length === 0) return '';
  const cases = [...new Set(mine.map((f) => f.case))];
  const engines = ENGINE_ORDER.filter((e) => mine.some((f) => f.engine === e));
  const peers = engines.filter((e) => e === 'tfjs-webgpu' || e === 'jax-js' || e === 'rnagrad-composed');
  const unitOf = (c: string) =>
    mine.find((f) => f.case === c && !f.error)?.unit ?? mine.find((f) => f.case === c)!.unit;
  const head = ['case', 'unit', ...engines, ...peers.map((p) => `rnagrad vs ${p}`), 'rnagrad cold ms', 'checks'];
  const rows = cases.map((c) => {
    const by = (e: Engine) => mine.find((f) => f.case === c && f.engine === e);
    const o = by('rnagrad');
    const ratio = (p: Engine) => {
      const pf = by(p);
      if (!o?.value || !pf?.value || o.error || pf.error) return '–';
      return x(o.unit === 'ms' ? pf.value.median / o.value.median : o.value.median / pf.value.median);
    };
    const checks = engines
      .map((e) => by(e))
      .filter((f): f is Figure => !!f?.check)
      .map((f) => `${f.engine}: ${f.check!.ok ? '✓' : '✗'}`)
      .join(', ');
    return [
      c,
      unitOf(c),
      ...engines.map((e) => cell(by(e))),
      ...peers.map(ratio),
      o?.coldMs !== undefined ? fmt(o.coldMs) : '–',
      checks || '–',
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    `### ${title}`,
    '',
    line(head),
    line(head.map((_, i) => (i < 2 ? '---' : '---:'))),
    ...rows.map(line),
    '',
  ].join('\n');
}

function coldTable(figs: Figure[]): string {
  const withCold = figs.filter((f) => f.coldMs !== undefined && !f.error);
  const cases = [...new Set(withCold.map((f) => f.case))];
  const engines = ENGINE_ORDER.filter((e) => e !== 'rnagrad-cpu' && withCold.some((f) => f.engine === e));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rows = cases.map((c) => {
    const by = (e: Engine) => withCold.find((f) => f.case === c && f.engine === e);
    return line([
      c,
      ...engines.map((e) => {
        const f = by(e);
        if (!f) return '';
        return `${fmt(f.coldMs)} <sub>(warm ${fmt(f.ms!.median)})</sub>`;
      }),
    ]);
  });
  return [
    line(['case', ...engines.map((e) => `${e} first call ms`)]),
    line(['---', ...engines.map(() => '---:')]),
    ...rows,
  ].join('\n');
}

export function markdown(r: BenchResults): string {
  const h = r.headline ?? headline(r);
  const a = r.adapter as { vendor?: string; architecture?: string; description?: string; isSoftware?: boolean };
  const m = r.machine as { node?: string; cpus?: number; cpuModel?: string; loadAverageAtEnd?: number[] };
  const out: string[] = [];
  out.push(`# rnagrad benchmark — ${r.date.slice(0, 16).replace('T', ' ')} UTC (${r.mode} run)`, '');
  out.push(`Generated by \`${r.command}\` from \`latest.json\`; do not edit by hand.`, '');
  out.push(
    `- **Adapter:** ${a.vendor} ${a.architecture} “${a.description}”` +
      `${a.isSoftware ? ' (software rasterizer on the CPU)' : ''}`,
  );
  out.push(
    `- **Machine:** Node ${m.node}, ${m.cpus} CPU cores (${m.cpuModel}), load average at the ` +
      `end ${(m.loadAverageAtEnd ?? []).map((l) => l.toFixed(1)).join(' / ')}; run ` +
      `took ${(r.durationS / 60).toFixed(1)} min`,
  );
  out.push(
    `- **Peers:** ${
      r.peers.length
        ? r.peers
            .map(
              (p) =>
                `${p.engine} ${p.version ?? '?'} ` +
                `— ${p.ran ? `ran ${p.completed}/${p.tasks} tasks` : `did not run (${p.error ?? 'unknown'})`}`,
            )
            .join('; ')
        : 'none'
    }`,
  );
  out.push(
    `- **Figures:** median over samples after warm-up, each sample ended by a wait for GPU completion; small type = ` +
      `p10–p90; “· N%” = the median as a fraction of the adapter ceiling named in the table title (FMA for GFLOP/s, ` +
      `copy for GB/s). Ratios are rnagrad ÷ peer for throughput (higher is better for rnagrad), peer ms ÷ rnagrad ` +
      `ms for times. ✓/✗: output checked against a float64 reference (or, for the training step, per-step losses ` +
      `against rnagrad's).`,
  );
  if (r.notes?.length) out.push(`- **Notes:** ${r.notes.join('; ')}`);
  out.push('');
  out.push('## Headline', '');
  if (h.matmul1024)
    out.push(
      `- **matmul 1024³:** ${fmt(h.matmul1024.gflops)} GFLOP/s = ${pct(h.matmul1024.ofFma)} of the FMA ceiling; ` +
        `${x(h.matmul1024.vsTfjs)} tfjs-webgpu, ${x(h.matmul1024.vsJax)} jax-js`,
    );
  for (const at of h.attention1024 ?? [])
    out.push(
      `- **attention fwd+bwd L=1024${at.causal ? ' causal' : ''}:** flash ${fmt(at.flashMs)} ms vs composed ` +
        `${fmt(at.composedMs)} ms → ${x(at.speedup)}`,
    );
  if (h.hxeVsCe)
    out.push(
      `- **HXE vs CE fwd+bwd [16384,70]:** HXE ${fmt(h.hxeVsCe.hxeMs)} ms, fused CE ${fmt(h.hxeVsCe.ceMs)} ms → ` +
        `HXE/CE = ${x(h.hxeVsCe.ratio)}${
          h.hxeVsCe.ratioSameKernel !== undefined
            ? `; HXE/XE through the same kernel = ${x(h.hxeVsCe.ratioSameKernel)}`
            : ''
        }`,
    );
  if (h.train) {
    const t = h.train;
    out.push(
      `- **Training step (GPT-2-style, 512 tokens):** ${fmt(t.tokensPerS)} tokens/s (${fmt(t.msPerStep)} ms/step) ` +
        `= ${x(t.vsJaxInRun)} jax-js in this run` +
        `${t.jaxInRunTokensPerS !== undefined ? ` (${fmt(t.jaxInRunTokensPerS)} tokens/s)` : ''}, ` +
        `${x(t.vsJaxReference)} jax-js's reference 446 tokens/s ` +
        `(target ≥ 2×: ${t.vsJaxReference >= 2 ? 'met' : 'not met'}), ${x(t.vsTfjsInRun)} tfjs-webgpu; ` +
        `JS share of the step ${pct(t.jsShare)}; ` +
        `${
          t.usPerDispatch !== undefined
            ? `JS ${fmt(t.usPerDispatch)} µs per dispatch ` +
              `(target ≤ 15 µs: ${t.usPerDispatch <= 15 ? 'met' : 'not met'}), `
            : ''
        }${t.dispatchesPerStep ?? '–'} dispatches and ${t.bindGroupsPerStep ?? '–'} new bind groups per step; ` +
        `${t.liveMiB !== undefined ? `${t.liveMiB.toFixed(1)} MiB live GPU memory after the forward pass` : ''}; ` +
        `first (cold) step ${fmt(t.firstStepMs)} ms`,
    );
    out.push(
      `- **Per-step losses agree** (to 1e-3): ${
        Object.entries(t.lossesAgree)
          .map(([e, ok]) => `${e} ${ok ? '✓' : '✗ MISMATCH'}`)
          .join(', ') || '–'
      }`,
    );
  }
  if (h.wrongResults.length)
    out.push('', `**Wrong results (checked against the float64 reference):**`, ...h.wrongResults.map((w) => `- ${w}`));
  const failed = r.figures.filter((f) => f.error);
  if (failed.length) out.push('', '**Could not run:**', ...failed.map((f) => `- ${f.case} — ${f.engine}: ${f.error}`));
  out.push('', '## Adapter ceilings (measured in this run)', '');
  const c = r.ceilings;
  out.push('| ceiling | median | p10–p90 | best kernel |', '|---|---:|---:|---|');
  out.push(
    `| FMA-bound WGSL (GFLOP/s) | ${fmt(c.fma.value.median)} | ${fmt(c.fma.value.p10)}–${fmt(c.fma.value.p90)} ` +
      `| ${c.fma.best} |`,
  );
  out.push(
    `| copy WGSL (GB/s, read + write) | ${fmt(c.copy.value.median)} | ${fmt(c.copy.value.p10)}–` +
      `${fmt(c.copy.value.p90)} | ${c.copy.best} |`,
  );
  out.push(
    `| empty submit + onSubmittedWorkDone (ms) | ${fmt(c.syncMs.median)} | ` +
      `${fmt(c.syncMs.p10)}–${fmt(c.syncMs.p90)} | |`,
    '',
  );
  if (c.runs)
    out.push(
      `Measured at the start and at the end of the run ` +
        `(${c.runs.map((x) => `${x.at}: FMA ${fmt(x.fmaGflops)} GFLOP/s, copy ${fmt(x.copyGbps)} GB/s`).join('; ')}` +
        `); the higher median is the ceiling, since other load on the machine only lowers it. Each figure's load ` +
        `average is in the JSON (\`extra.load1\`).`,
      '',
    );
  out.push('## Kernels and the training step', '');
  const groups: [string, string][] = [
    ['matmul', 'Matmul (GFLOP/s, vs the FMA ceiling)'],
    ['softmax', 'Softmax (GB/s, vs the copy ceiling)'],
    ['loss', 'Losses: cross-entropy and HXE (GB/s)'],
    ['layernorm', 'LayerNorm (GB/s)'],
    ['attention', 'Attention, B 1, H 4, D 32 (GFLOP/s, model FLOPs; causal counts half)'],
    ['adamw', 'AdamW (GB/s)'],
    ['elementwise', 'Elementwise ops and reductions (GB/s)'],
    ['train', 'Training step (tokens/s; 512 tokens per step)'],
  ];
  for (const [g, title] of groups) {
    const t = groupTable(r.figures, g, title);
    if (t) out.push(t);
  }
  const known = new Set(groups.map(([g]) => g));
  for (const g of new Set(r.figures.map((f) => f.group))) if (!known.has(g)) out.push(groupTable(r.figures, g, g));
  const train = r.figures.filter((f) => f.group === 'train' && !f.error);
  if (train.length) {
    out.push('Per-step losses (step 1 first):', '');
    for (const f of train) {
      const losses = (f.extra?.losses as number[] | undefined) ?? [];
      out.push(
        `- ${f.engine}: ${losses.map((l) => l.toFixed(4)).join(', ')}${
          f.check ? ` — ${f.check.ok ? 'agrees with' : 'MISMATCH with'} ${f.check.against} (${f.check.note})` : ''
        }`,
      );
    }
    const mem = train.filter(
      (f) => typeof f.extra?.memoryBytes === 'number' || typeof f.extra?.liveBytesAfterForward === 'number',
    );
    if (mem.length) {
      out.push(
        '',
        `GPU memory: ${mem
          .map(
            (f) =>
              `${f.engine} ` +
              `${(Number(f.extra!.liveBytesAfterForward ?? f.extra!.memoryBytes) / 2 ** 20).toFixed(1)} MiB ` +
              `(${
                f.engine === 'rnagrad'
                  ? 'runtime().stats().liveBytes after the forward pass'
                  : String(f.extra!.memoryNote ?? '')
              })`,
          )
          .join('; ')}${train.some((f) => f.engine === 'jax-js') ? '; jax-js exposes no GPU memory counter' : ''}.`,
      );
    }
    const o = train.find((f) => f.engine === 'rnagrad');
    if (o?.extra) {
      const e = o.extra as Record<string, unknown>;
      const sp = (k: string) => e[k] as Spread | undefined;
      out.push(
        '',
        `rnagrad step anatomy: encode (JavaScript, step start → every op encoded) ${fmt(sp('encodeMs')?.median)} ms ` +
          `(${fmt(e.usPerDispatch as number | undefined)} µs per dispatch) ` +
          `of ${fmt(o.ms!.median)} ms → JS share ${pct(sp('jsShare')?.median)} (p10–p90 ${pct(sp('jsShare')?.p10)}–` +
          `${pct(sp('jsShare')?.p90)}); ${e.dispatchesPerStep} dispatches, ${e.submitsPerStep} submits and ` +
          `${e.bindGroupsPerStep ?? '–'} new bind groups per step; ` +
          `${(Number(e.liveBytesAfterForward) / 2 ** 20).toFixed(1)} MiB live after the forward pass, ` +
          `${(Number(e.liveBytesBetweenSteps) / 2 ** 20).toFixed(1)} MiB between steps (parameters + AdamW ` +
          `state + batches); ${e.pipelines} pipelines.`,
      );
    }
    out.push('');
  }
  out.push(
    '## Shader compile cost: time to first result',
    '',
    `First call on a new runtime (rnagrad: every pipeline the case uses is compiled in it) or the first call in the ` +
      `peer's process (pipelines another case already built are reused there), to GPU completion.` +
      `${
        r.mode === 'quick'
          ? ' Quick runs do not make new rnagrad runtimes, so rnagrad has no cold figures here: see a full run.'
          : ''
      }`,
    '',
  );
  out.push(coldTable(r.figures), '');
  out.push('![plot](latest.svg)', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// SVG (hand-written; no plotting library)

const COLORS: Record<string, string> = {
  rnagrad: '#d62728',
  'rnagrad-composed': '#ff9896',
  'tfjs-webgpu': '#1f77b4',
  'jax-js': '#2ca02c',
  'rnagrad-cpu': '#7f7f7f',
};

interface Series {
  name: string;
  color: string;
  points: [number, number][];
  dashed?: boolean;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panel(
  ox: number,
  oy: number,
  w: number,
  h: number,
  title: string,
  xLabel: string,
  yLabel: string,
  series: Series[],
  hline?: { y: number; label: string },
): string {
  const pts = series.flatMap((s) => s.points).filter(([a, b]) => a > 0 && b > 0);
  if (pts.length === 0) return '';
  const xs = pts.map(([a]) => a);
  const ys = [...pts.map(([, b]) => b), ...(hline ? [hline.y] : [])];
  const lx0 = Math.log2(Math.min(...xs)) - 0.3;
  const lx1 = Math.log2(Math.max(...xs)) + 0.3;
  const ly0 = Math.floor(Math.log10(Math.min(...ys)) - 0.1);
  const ly1 = Math.ceil(Math.log10(Math.max(...ys)) + 0.05);
  const L = 64;
  const R = 12;
  const Tm = 30;
  const Bm = 40;
  const px = (v: number) => ox + L + ((Math.log2(v) - lx0) / (lx1 - lx0)) * (w - L - R);
  const py = (v: number) => oy + Tm + (1 - (Math.log10(v) - ly0) / (ly1 - ly0)) * (h - Tm - Bm);
  const o: string[] = [];
  o.push(
    `<text x="${ox + w / 2}" y="${oy + 18}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}` +
      `</text>`,
  );
  o.push(`<rect x="${ox + L}" y="${oy + Tm}" width="${w - L - R}" height="${h - Tm - Bm}" fill="none" stroke="#999"/>`);
  for (let e = ly0; e <= ly1; e++) {
    for (const mult of [1, 2, 5]) {
      const v = mult * 10 ** e;
      if (Math.log10(v) > ly1 + 1e-9) continue;
      const y = py(v);
      o.push(`<line x1="${ox + L}" x2="${ox + w - R}" y1="${y}" y2="${y}" stroke="#eee"/>`);
      o.push(`<text x="${ox + L - 4}" y="${y + 4}" text-anchor="end" font-size="10">${fmt(v)}</text>`);
    }
  }
  const xticks = [...new Set(xs)].sort((a, b) => a - b);
  for (const v of xticks) {
    const xx = px(v);
    o.push(`<line x1="${xx}" x2="${xx}" y1="${oy + Tm}" y2="${oy + h - Bm}" stroke="#eee"/>`);
    o.push(`<text x="${xx}" y="${oy + h - Bm + 14}" text-anchor="middle" font-size="10">${v}</text>`);
  }
  o.push(
    `<text x="${ox + L + (w - L - R) / 2}" y="${oy + h - 8}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`,
  );
  o.push(
    `<text transform="translate(${ox + 14},${oy + Tm + (h - Tm - Bm) / 2}) rotate(-90)" text-anchor="middle" ` +
      `font-size="11">${esc(yLabel)}</text>`,
  );
  if (hline) {
    const y = py(hline.y);
    o.push(`<line x1="${ox + L}" x2="${ox + w - R}" y1="${y}" y2="${y}" stroke="#000" stroke-dasharray="6 4"/>`);
    o.push(`<text x="${ox + w - R - 4}" y="${y - 4}" text-anchor="end" font-size="10">${esc(hline.label)}</text>`);
  }
  series.forEach((s, i) => {
    const p = s.points.filter(([a, b]) => a > 0 && b > 0).sort((a, b) => a[0] - b[0]);
    if (p.length === 0) return;
    const path = p.map(([a, b], k) => `${k ? 'L' : 'M'}${px(a).toFixed(1)},${py(b).toFixed(1)}`).join(' ');
    o.push(
      `<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"` +
        `${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`,
    );
    for (const [a, b] of p)
      o.push(`<circle cx="${px(a).toFixed(1)}" cy="${py(b).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = oy + Tm + 14 + i * 15;
    o.push(
      `<line x1="${ox + L + 8}" x2="${ox + L + 26}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" ` +
        `stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`,
    );
    o.push(`<text x="${ox + L + 30}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
  });
  return o.join('\n');
}

export function svg(r: BenchResults): string {
  const W = 1100;
  const H = 420;
  const figs = r.figures.filter((f) => !f.error && f.value && !(f.check && !f.check.ok));
  const sq = (f: Figure) => /^matmul (\d+)×\1×\1$/.exec(f.case);
  const mmSeries: Series[] = ENGINE_ORDER.map((e) => ({
    name: e,
    color: COLORS[e] ?? '#000',
    points: figs
      .filter((f) => f.group === 'matmul' && f.engine === e && sq(f))
      .map((f) => [Number(sq(f)![1]), f.value!.median] as [number, number]),
  })).filter((s) => s.points.length > 0);
  const attnSeries: Series[] = [];
  for (const e of ['rnagrad', 'rnagrad-composed', 'tfjs-webgpu', 'jax-js'] as Engine[]) {
    for (const causal of [false, true]) {
      const re = new RegExp(`^attention fwd\\+bwd L=(\\d+)${causal ? ' causal' : ''}$`);
      const pts = figs
        .filter((f) => f.group === 'attention' && f.engine === e && re.test(f.case))
        .map((f) => [Number(re.exec(f.case)![1]), f.ms!.median] as [number, number]);
      if (pts.length)
        attnSeries.push({
          name: `${e === 'rnagrad' ? 'rnagrad flash' : e}${causal ? ', causal' : ''}`,
          color: COLORS[e] ?? '#000',
          points: pts,
          dashed: causal,
        });
    }
  }
  const a = r.adapter as { description?: string };
  const body = [
    panel(0, 20, W / 2, H - 20, 'Square matmul', 'n (n×n×n)', 'GFLOP/s (log)', mmSeries, {
      y: r.ceilings.fmaGflops,
      label: `FMA ceiling ${fmt(r.ceilings.fmaGflops)} GFLOP/s`,
    }),
    panel(
      W / 2,
      20,
      W / 2,
      H - 20,
      'Attention fwd+bwd, B1 H4 D32',
      'sequence length L',
      'ms per call (log, lower is better)',
      attnSeries,
    ),
  ];
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `font-family="Helvetica, Arial, sans-serif">
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="8" y="14" font-size="11" fill="#555">${esc(
      `rnagrad bench ${r.mode} run ${r.date.slice(0, 10)} ` +
        `on ${a.description ?? '?'} — medians; points failing the correctness check are left out`,
    )}</text>
${body.join('\n')}
</svg>
`
  );
}

// ---------------------------------------------------------------------------------------------

function atomicWrite(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function writeResults(r: BenchResults, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  r.headline = headline(r);
  const stamp = r.date.replace(/[:.]/g, '-').replace(/-\d\d\dZ$/, 'Z');
  const json = `${JSON.stringify(r, null, 1)}\n`;
  const paths = [
    join(dir, `${stamp}-${r.mode}.json`),
    join(dir, 'latest.json'),
    join(dir, 'latest.md'),
    join(dir, 'latest.svg'),
  ];
  atomicWrite(paths[0]!, json);
  atomicWrite(paths[1]!, json);
  atomicWrite(paths[2]!, markdown(r));
  atomicWrite(paths[3]!, svg(r));
  return paths;
}
