/**
 * One HELM MLM pre-training run on the bundled E. coli CDS corpus, judged against codon-frequency
 * (unigram) and n-gram baselines scored on the same validation tokens. Appends one JSON line to
 * --log (default experiments/helm-hxe-vs-xe/pretraining.jsonl) and can save the weights (--save).
 *
 *   node --import tsx experiments/helm-hxe-vs-xe/pretrain.ts --d 64 --layers 2 --steps 300 --lr 3e-3
 */
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as T from '@rnagrad/tensor';
import '@rnagrad/autograd';
import {
  CodonNgram,
  HelmModel,
  type HelmTrainOptions,
  helmValidationBatches,
  loadEcoliCds,
  trainHelm,
} from '@rnagrad/models';
import { saveCheckpoint } from '@rnagrad/models/node';

export interface PretrainConfig {
  d: number;
  layers: number;
  heads: number;
  steps: number;
  batch: number;
  length: number;
  lr: number;
  minLr: number;
  warmup: number;
  mask: number;
  positionInit: 'normal' | 'sinusoidal';
  maxPositions: number;
  loss: 'xe' | 'hxe';
  alpha: number;
  /** HXE's tree: HELM's codon hierarchy or the random-hierarchy ablation. */
  tree: 'codon' | 'random';
  seed: number;
  valBatches: number;
}

export const PRETRAIN_DEFAULTS: PretrainConfig = {
  d: 64,
  layers: 2,
  heads: 4,
  steps: 300,
  batch: 16,
  length: 64,
  lr: 3e-3,
  minLr: 3e-4,
  warmup: 20,
  mask: 0.15,
  positionInit: 'sinusoidal',
  maxPositions: 1026,
  loss: 'xe',
  alpha: 0.2,
  tree: 'codon',
  seed: 42,
  valBatches: 32,
};

export interface PretrainResult {
  config: PretrainConfig;
  parameters: number;
  seconds: number;
  validation: { step: number; crossEntropy: number; accuracy: number }[];
  baselines: { unigram: number; left: number; neighbours: number; tokens: number };
}

/** Trains one backbone; returns it (the caller disposes it) with its validation curve and the baselines. */
export async function pretrain(
  config: PretrainConfig,
  log?: (line: string) => void,
): Promise<{ model: HelmModel; result: PretrainResult }> {
  const corpus = await loadEcoliCds();
  T.manualSeed(config.seed);
  const model = new HelmModel({
    dModel: config.d,
    layers: config.layers,
    heads: config.heads,
    dFF: 4 * config.d,
    maxPositions: config.maxPositions,
    objective: 'mlm',
    positionInit: config.positionInit,
  });
  const options: Partial<HelmTrainOptions> = {
    steps: config.steps,
    batchSize: config.batch,
    length: config.length,
    lr: config.lr,
    minLr: config.minLr,
    warmupSteps: config.warmup,
    maskProbability: config.mask,
    loss: config.loss,
    alpha: config.alpha,
    hierarchy: config.tree,
    hierarchySeed: config.seed,
    seed: config.seed,
    validationBatches: config.valBatches,
    evalEvery: Math.max(1, Math.floor(config.steps / 4)),
  };
  const ngram = new CodonNgram(corpus.train);
  const baselines = ngram.crossEntropy(helmValidationBatches(corpus, model.cfg, options), 'mlm');
  const started = performance.now();
  const { history } = await trainHelm(model, corpus, options, {
    onEvaluation: (e) =>
      log?.(
        `step ${e.step}: val CE ${e.metrics.crossEntropy!.toFixed(4)}, accuracy ${(100 * e.metrics.accuracy!).toFixed(1)}%`,
      ),
  });
  const result: PretrainResult = {
    config,
    parameters: model.parameterCount(),
    seconds: Math.round((performance.now() - started) / 1000),
    validation: history.evaluations.map((e) => ({
      step: e.step,
      crossEntropy: e.metrics.crossEntropy!,
      accuracy: e.metrics.accuracy!,
    })),
    baselines,
  };
  return { model, result };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      ...Object.fromEntries(Object.keys(PRETRAIN_DEFAULTS).map((k) => [k, { type: 'string' as const }])),
      log: { type: 'string', default: 'experiments/helm-hxe-vs-xe/pretraining.jsonl' },
      save: { type: 'string' },
      note: { type: 'string', default: '' },
    },
  });
  const config = { ...PRETRAIN_DEFAULTS } as Record<string, unknown>;
  for (const [k, v] of Object.entries(values)) {
    if (!(k in PRETRAIN_DEFAULTS) || v === undefined) continue;
    const numeric = typeof (PRETRAIN_DEFAULTS as unknown as Record<string, unknown>)[k] === 'number';
    config[k] = numeric ? Number(v) : v;
    if (numeric && !Number.isFinite(config[k])) throw new Error(`--${k}: not a number: ${String(v)}`);
  }
  await T.init({ quiet: true });
  const { model, result } = await pretrain(config as unknown as PretrainConfig, (l) => console.log(l));
  const b = result.baselines;
  console.log(
    `unigram ${b.unigram.toFixed(4)}, left bigram ${b.left.toFixed(4)}, both neighbours ${b.neighbours.toFixed(4)} (${b.tokens} tokens); ${result.seconds} s`,
  );
  appendFileSync(
    values.log!,
    `${JSON.stringify({ ...result, note: values.note, command: process.argv.slice(2).join(' ') })}\n`,
  );
  if (values.save) await saveCheckpoint(values.save, model.namedParameters(), { config: JSON.stringify(model.cfg) });
  model.dispose();
}
