/**
 * The main job: pre-trains a small HELM codon language model on the bundled E. coli K-12 CDS set
 * and prints, plots and saves its loss.
 *
 *   pnpm train [--steps 200] [--loss hxe|xe] [--alpha 0.2] [--objective mlm|clm] [--layers 2]
 *              [--d 64] [--heads 4] [--batch 16] [--length 64] [--lr 3e-3] [--seed 42] [--out runs/helm]
 *
 * Writes <out>/history.json, <out>/loss.svg and <out>/model.safetensors (each atomically).
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import * as T from '@rnagrad/tensor';
import '@rnagrad/autograd';
import { HelmModel, asciiChart, lineChartSvg, loadEcoliCds, saveCheckpoint, smooth, trainHelm, writeFileAtomic } from '@rnagrad/models';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '200' },
    loss: { type: 'string', default: 'hxe' },
    alpha: { type: 'string', default: '0.2' },
    objective: { type: 'string', default: 'mlm' },
    layers: { type: 'string', default: '2' },
    d: { type: 'string', default: '64' },
    heads: { type: 'string', default: '4' },
    batch: { type: 'string', default: '16' },
    length: { type: 'string', default: '64' },
    lr: { type: 'string', default: '3e-3' },
    seed: { type: 'string', default: '42' },
    out: { type: 'string', default: 'runs/helm' },
  },
});
const num = (name: keyof typeof args) => {
  const v = Number(args[name]);
  if (!Number.isFinite(v)) throw new Error(`--${name}: not a number: ${args[name]}`);
  return v;
};
if (args.loss !== 'hxe' && args.loss !== 'xe') throw new Error(`--loss must be hxe or xe, got ${args.loss}`);
if (args.objective !== 'mlm' && args.objective !== 'clm') throw new Error(`--objective must be mlm or clm, got ${args.objective}`);

const rt = await T.init();
console.log(`adapter: ${rt.adapter.description || rt.adapter.device} (${rt.adapter.isSoftware ? 'software' : 'hardware'})`);
const corpus = await loadEcoliCds();
console.log(`corpus: E. coli K-12 CDS, ${corpus.train.length} train / ${corpus.validation.length} validation genes`);
T.manualSeed(num('seed'));
const d = num('d');
const model = new HelmModel({ dModel: d, layers: num('layers'), heads: num('heads'), dFF: 4 * d, maxPositions: num('length') + 1, objective: args.objective });
console.log(`model: HELM ${args.objective.toUpperCase()} transformer, ${model.cfg.layers} layers, d ${d}, ${model.cfg.heads} heads, ${model.parameterCount().toLocaleString()} parameters; loss ${args.loss.toUpperCase()}${args.loss === 'hxe' ? ` (α = ${args.alpha})` : ''}`);

const history = await trainHelm(
  model,
  corpus,
  { steps: num('steps'), loss: args.loss, alpha: num('alpha'), batchSize: num('batch'), length: num('length'), lr: num('lr'), seed: num('seed') },
  (e) => {
    const val = e.validation ? `  | validation ${args.loss} ${e.validation.loss.toFixed(4)}  CE ${e.validation.crossEntropy.toFixed(4)}  accuracy ${(100 * e.validation.accuracy).toFixed(1)}%` : '';
    if (e.initialValidation) console.log(`before training: validation ${args.loss} ${e.initialValidation.loss.toFixed(4)}  CE ${e.initialValidation.crossEntropy.toFixed(4)}`);
    if (e.step % 10 === 0 || e.validation) console.log(`step ${String(e.step).padStart(4)}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(2)}  ${e.ms.toFixed(0)} ms${val}`);
  },
);

const losses = history.map((e) => e.loss);
console.log(`\ntraining loss (${args.loss}), smoothed:`);
console.log(asciiChart(smooth(losses), { width: 60, height: 10 }));
const before = history[0]!.initialValidation!;
const after = history[history.length - 1]!.validation!;
console.log(`validation ${args.loss}: ${before.loss.toFixed(4)} → ${after.loss.toFixed(4)}; cross-entropy ${before.crossEntropy.toFixed(4)} → ${after.crossEntropy.toFixed(4)} nats (a uniform guess over the 64 codons: ${Math.log(64).toFixed(4)}); accuracy ${(100 * before.accuracy).toFixed(1)}% → ${(100 * after.accuracy).toFixed(1)}%`);

const out = args.out;
const svg = lineChartSvg(
  [
    { name: `train ${args.loss} (smoothed)`, color: '#1f77b4', points: smooth(losses).map((v, i) => [i, v]) },
    { name: `validation ${args.loss}`, color: '#d62728', points: [[0, history[0]!.initialValidation!.loss], ...history.filter((e) => e.validation).map((e): [number, number] => [e.step + 1, e.validation!.loss])] },
  ],
  { title: `HELM ${args.objective.toUpperCase()} on E. coli CDS — ${args.loss.toUpperCase()} loss`, xLabel: 'step', yLabel: 'loss' },
);
await writeFileAtomic(join(out, 'loss.svg'), svg);
await writeFileAtomic(join(out, 'history.json'), JSON.stringify({ args, adapter: rt.adapter, parameters: model.parameterCount(), history }, null, 1));
await saveCheckpoint(join(out, 'model.safetensors'), model.namedParameters(), { config: JSON.stringify(model.cfg) });
const msPerStep = history.slice(5).reduce((a, e) => a + e.ms, 0) / Math.max(1, history.length - 5);
console.log(`${msPerStep.toFixed(0)} ms/step, ${((num('batch') * num('length') * 1000) / msPerStep).toFixed(0)} tokens/s; wrote ${out}/loss.svg, history.json, model.safetensors`);
model.dispose();
T.destroyRuntime();
