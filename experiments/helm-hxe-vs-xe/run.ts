/**
 * HELM's claim at this machine's scale: pre-train equal HELM MLM backbones with XE, HXE (α = 0.2) and
 * HXE on a random codon hierarchy (same architecture, steps, data order and seed), fine-tune the
 * TextCNN head on each property data set, and compare test Spearman (AUROC for E. coli) with the
 * no-pretraining TextCNN baseline. Each arm is pre-trained once per pre-training seed (--pretrain-seeds,
 * default 1: the fine-tuning seeds then share one backbone per arm). Data sets run one after another and
 * results.json / results.svg are rewritten (atomically) after each, so a run cut short keeps what finished
 * ("complete": false until the last). Prints the table at the end.
 *
 *   node --import tsx experiments/helm-hxe-vs-xe/run.ts --quick
 *   node --import tsx experiments/helm-hxe-vs-xe/run.ts --seeds 3 --pretrain-steps 300 --pretrain-lr 1e-2 \
 *     --datasets tc,mlos,mrfp --out experiments/helm-hxe-vs-xe/full
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as T from '@rnagrad/tensor';
import '@rnagrad/autograd';
import { seededRandom } from '@rnagrad/tokenizers';
import {
  type CodonbertDatasetName,
  HelmModel,
  type PropertyDataset,
  type PropertyTrainOptions,
  finetuneProperty,
  lineChartSvg,
} from '@rnagrad/models';
import { loadCodonbertDataset, loadEcoliExpression, writeFileAtomic } from '@rnagrad/models/node';
import { PRETRAIN_DEFAULTS, type PretrainConfig, type PretrainResult, pretrain } from './pretrain.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SHARED = fileURLToPath(new URL('../../../shared/data/', import.meta.url));

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seeds: { type: 'string' },
    'pretrain-steps': { type: 'string' },
    'pretrain-seeds': { type: 'string', default: '1' },
    'pretrain-lr': { type: 'string', default: '5e-3' },
    mode: { type: 'string', default: 'frozen' },
    datasets: { type: 'string' },
    codonbert: { type: 'string', default: join(SHARED, 'codonbert_benchmarks') },
    ecoli: { type: 'string', default: join(SHARED, 'ecoli_expression_mpepe') },
    'ecoli-folds': { type: 'string' },
    out: { type: 'string' },
  },
});

const quick = values.quick!;
const seeds = Number(values.seeds ?? (quick ? 1 : 3));
const pretrainSteps = Number(values['pretrain-steps'] ?? (quick ? 40 : 400));
const mode = values.mode as PropertyTrainOptions['mode'];
// Quick mode leaves out MLOS and E. coli: their sequences run to 1,000 codons and took half the time.
const datasets = (values.datasets ?? (quick ? 'mrfp,tc,cov' : 'mrfp,tc,cov,mlos,ecoli')).split(',');
const pretrainSeeds = Number(values['pretrain-seeds']);
const pretrainLr = Number(values['pretrain-lr']);
const ecoliFolds = Number(values['ecoli-folds'] ?? (quick ? 1 : 10));
const out = values.out ?? join(HERE, quick ? 'quick' : 'full');
for (const [name, v] of [
  ['--seeds', seeds],
  ['--pretrain-steps', pretrainSteps],
  ['--ecoli-folds', ecoliFolds],
  ['--pretrain-seeds', pretrainSeeds],
] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be an integer ≥ 1, got ${v}`);
}
if (pretrainSeeds > seeds) throw new Error(`--pretrain-seeds (${pretrainSeeds}) must not exceed --seeds (${seeds})`);
if (!(pretrainLr > 0)) throw new Error(`--pretrain-lr must be a positive number, got ${values['pretrain-lr']}`);
if (mode !== 'frozen' && mode !== 'full') throw new Error(`--mode must be frozen or full, got ${mode}`);
for (const d of datasets)
  if (!['mrfp', 'tc', 'cov', 'mlos', 'ecoli'].includes(d))
    throw new Error(`--datasets: unknown data set "${d}" (mrfp, tc, cov, mlos, ecoli)`);

/** Quick mode: a seeded subsample of each split, so the whole run fits in minutes. */
const LIMITS = quick ? { train: 128, validation: 48, test: 96 } : null;
const FINETUNE: Partial<PropertyTrainOptions> = quick
  ? { batchSize: 16, lr: 1e-3, maxEpochs: 4, patience: 2, head: { filters: 16 } }
  : { batchSize: 32, lr: 3e-4, maxEpochs: 30, patience: 5 };

function subsample(data: PropertyDataset, seed: number): PropertyDataset {
  if (!LIMITS) return data;
  const cut = (split: 'train' | 'validation' | 'test') =>
    seededRandom(seed)
      .shuffle([...data[split]])
      .slice(0, LIMITS[split]);
  return { ...data, train: cut('train'), validation: cut('validation'), test: cut('test') };
}

async function loadAll(): Promise<PropertyDataset[]> {
  const all: PropertyDataset[] = [];
  for (const name of datasets) {
    if (name === 'ecoli')
      for (let fold = 1; fold <= ecoliFolds; fold++)
        all.push(subsample(await loadEcoliExpression(values.ecoli!, { testFold: fold }), fold));
    else all.push(subsample(await loadCodonbertDataset(name as CodonbertDatasetName, values.codonbert!), 0));
  }
  return all;
}

const ARMS = ['scratch', 'xe', 'hxe', 'hxe_random_tree'] as const;
type Arm = (typeof ARMS)[number];
const PRETRAIN_ARMS: Record<Exclude<Arm, 'scratch'>, Partial<PretrainConfig>> = {
  xe: { loss: 'xe' },
  hxe: { loss: 'hxe', alpha: 0.2, tree: 'codon' },
  hxe_random_tree: { loss: 'hxe', alpha: 0.2, tree: 'random' },
};

const started = performance.now();
const command = `node --import tsx experiments/helm-hxe-vs-xe/run.ts ${process.argv.slice(2).join(' ')}`.trim();
await T.init({ quiet: true });
const data = await loadAll();
const log = (line: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${line}`);
log(
  `${data.length} data sets: ${data.map((d) => `${d.name} ${d.train.length}/${d.validation.length}/${d.test.length}`).join(', ')}`,
);

/** metrics[dataset][arm] = one entry per seed. */
const metrics: Record<string, Record<string, Record<string, number>[]>> = {};
const pretraining: Record<string, PretrainResult[]> = {};
const record = (dataset: string, arm: Arm, m: Record<string, number>) => {
  ((metrics[dataset] ??= {})[arm] ??= []).push(m);
};

/** Summarises what has finished into results.json and results.svg (rewritten atomically); prints the table at the end. */
async function writeResults(final: boolean): Promise<void> {
  const meanStd = (xs: number[]) => {
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : NaN;
    return { mean, std };
  };
  /** The headline metric: Spearman ρ for regression, AUROC for E. coli. */
  const headline = (m: Record<string, number>) => m.spearman ?? m.auroc!;

  // E. coli folds are averaged within a seed first (one number per seed, as a 10-fold CV reports).
  const table: Record<
    string,
    Record<string, { perSeed: Record<string, number>[]; mean: Record<string, number>; std: Record<string, number> }>
  > = {};
  const groups = new Map<string, string[]>();
  for (const name of Object.keys(metrics)) {
    const group = name.startsWith('ecoli-fold') ? 'ecoli' : name;
    groups.set(group, [...(groups.get(group) ?? []), name]);
  }
  for (const [group, names] of groups) {
    for (const arm of ARMS) {
      const perSeed = Array.from({ length: seeds }, (_, s) => {
        const folds = names.map((n) => metrics[n]![arm]![s]!);
        return Object.fromEntries(Object.keys(folds[0]!).map((k) => [k, meanStd(folds.map((f) => f[k]!)).mean]));
      });
      const keys = Object.keys(perSeed[0]!);
      (table[group] ??= {})[arm] = {
        perSeed,
        mean: Object.fromEntries(keys.map((k) => [k, meanStd(perSeed.map((p) => p[k]!)).mean])),
        std: Object.fromEntries(keys.map((k) => [k, meanStd(perSeed.map((p) => p[k]!)).std])),
      };
    }
  }

  const seconds = Math.round((performance.now() - started) / 1000);
  mkdirSync(out, { recursive: true });
  const summary = {
    label: quick
      ? 'QUICK run: one seed, short pre-training, subsampled splits — a smoke test of the pipeline, not evidence'
      : 'full run',
    complete: final,
    datasetsDone: [...groups.keys()],
    pretrainSeeds,
    command,
    seconds,
    machine: 'WebGPU on SwiftShader (CPU), 2 cores shared with other jobs',
    finetuneMode: mode,
    finetune: FINETUNE,
    subsample: LIMITS,
    ecoliFolds,
    pretraining: Object.fromEntries(
      Object.entries(pretraining).map(([arm, runs]) => [
        arm,
        runs.map((r) => ({
          config: r.config,
          parameters: r.parameters,
          seconds: r.seconds,
          validation: r.validation,
          baselines: r.baselines,
        })),
      ]),
    ),
    results: table,
    perFold: metrics,
  };
  await writeFileAtomic(join(out, 'results.json'), `${JSON.stringify(summary, null, 2)}\n`);

  const colors = { scratch: '#888888', xe: '#1f77b4', hxe: '#d62728', hxe_random_tree: '#2ca02c' };
  const groupNames = [...groups.keys()];
  const svg = lineChartSvg(
    ARMS.map((arm, a) => ({
      name: arm,
      color: colors[arm],
      style: 'points' as const,
      points: groupNames.flatMap((g, i) =>
        table[g]![arm]!.perSeed.map((p) => [i + 1 + (a - 1.5) * 0.12, headline(p)] as [number, number]),
      ),
    })),
    {
      title: `Test Spearman (AUROC for E. coli) per seed — ${groupNames.map((g, i) => `${i + 1} ${g}`).join(', ')}`,
      xLabel: 'data set',
      yLabel: 'test metric',
    },
  );
  await writeFileAtomic(join(out, 'results.svg'), svg);
  if (!final) return;

  console.log(`\n| data set | ${ARMS.join(' | ')} |\n|---|${ARMS.map(() => '---|').join('')}`);
  for (const g of groupNames) {
    const cells = ARMS.map((arm) => {
      const { mean, std } = table[g]![arm]!;
      const key = 'spearman' in mean ? 'spearman' : 'auroc';
      return `${mean[key]!.toFixed(3)}${seeds > 1 ? ` ± ${std[key]!.toFixed(3)}` : ''}`;
    });
    console.log(`| ${g} | ${cells.join(' | ')} |`);
  }
  log(`done in ${seconds} s; wrote ${join(out, 'results.json')} and results.svg`);
}

// Backbones: each arm pre-trained with seeds 42 … 42 + pretrainSeeds − 1; fine-tuning seed s uses backbone s mod P.
const backbones: Record<string, HelmModel[]> = {};
for (const arm of ['xe', 'hxe', 'hxe_random_tree'] as const) {
  for (let p = 0; p < pretrainSeeds; p++) {
    const config = {
      ...PRETRAIN_DEFAULTS,
      mask: 0.3,
      lr: pretrainLr,
      minLr: pretrainLr / 10,
      steps: pretrainSteps,
      seed: 42 + p,
      valBatches: quick ? 8 : 32,
      ...PRETRAIN_ARMS[arm],
    };
    const { model, result } = await pretrain(config, (line) => log(`${arm} seed ${config.seed} ${line}`));
    (pretraining[arm] ??= []).push(result);
    (backbones[arm] ??= []).push(model);
    const last = result.validation.at(-1)!;
    log(
      `${arm} seed ${config.seed}: pre-trained ${config.steps} steps in ${result.seconds} s, val CE ${last.crossEntropy.toFixed(4)} (unigram ${result.baselines.unigram.toFixed(4)})`,
    );
  }
}

// Data set by data set, so that results.json (rewritten after each) holds every finished one.
for (const d of data) {
  for (let s = 0; s < seeds; s++) {
    const seed = 42 + s;
    for (const arm of ARMS) {
      const model = arm === 'scratch' ? null : backbones[arm]![s % pretrainSeeds]!;
      // 'full' changes the backbone: each data set starts from the pre-trained weights.
      const backbone = model && mode === 'full' ? copyOf(model) : model;
      const r = await finetuneProperty(backbone, d, { ...FINETUNE, mode: arm === 'scratch' ? 'scratch' : mode, seed });
      if (backbone !== model) backbone!.dispose();
      record(d.name, arm, r.test);
      log(
        `seed ${seed} ${arm} ${d.name}: ${JSON.stringify(r.test)} (best epoch ${r.bestEpoch}, ${r.seconds.toFixed(0)} s)`,
      );
    }
  }
  await writeResults(d === data.at(-1));
}
for (const models of Object.values(backbones)) for (const m of models) m.dispose();

function copyOf(model: HelmModel): HelmModel {
  const copy = new HelmModel(model.cfg);
  copy.loadStateDict(new Map(model.namedParameters()));
  return copy;
}
