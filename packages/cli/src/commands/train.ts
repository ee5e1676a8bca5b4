/**
 * `rnagrad train` (pre-train a HELM masked or causal codon LM, or a RiNALMo nucleotide encoder) and
 * `rnagrad finetune` (continue a trained HELM model on your sequences, with frozen layers and gradual
 * unfreezing). Both write
 * checkpoint folders every N steps and at the end, resume exactly with --resume, and stop cleanly
 * on Ctrl-C after writing a checkpoint.
 */
import { appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as T from '@rnagrad/tensor';
import {
  type CodonCorpus,
  type EvalEntry,
  HelmModel,
  type HelmTrainOptions,
  type NucleotideCorpus,
  RINALMO_CONFIGS,
  RINALMO_TRAIN_DEFAULTS,
  RinalmoModel,
  type RinalmoTrainOptions,
  type TrainerOptions,
  type StepEntry,
  TRAIN_DEFAULTS,
  type Module,
  type TrainSetup,
  type TrainerSnapshot,
  asciiChart,
  codonCorpus,
  gradualUnfreeze,
  helmTask,
  helmUnfreezeGroups,
  lineChartSvg,
  loadEcoliCds,
  rinalmoTask,
  smooth,
  train,
  writeFileAtomic,
} from '@rnagrad/models';
import {
  cleanRunFolder,
  disposeSnapshot,
  loadModel,
  loadNucleotideCorpus,
  loadTrainingState,
  ncrnaPretrainPath,
  onInterrupt,
  readCheckpointConfig,
  resolveCheckpoint,
  saveCheckpointDir,
} from '@rnagrad/models/node';
import { existsSync } from 'node:fs';
import { type CommandSpec, type FlagSpecs, type Parsed, UsageError } from '../args.js';
import { readSequences } from '../input.js';
import { Progress, formatDuration } from '../progress.js';
import { describeAdapter, initRuntime } from '../runtime.js';

const shared = {
  steps: { type: 'int', min: 0, default: TRAIN_DEFAULTS.steps, help: 'optimiser updates in the run' },
  batch: { type: 'int', min: 1, max: 4096, default: TRAIN_DEFAULTS.batchSize, help: 'sequences per micro-batch' },
  length: {
    type: 'int',
    min: 2,
    default: TRAIN_DEFAULTS.length,
    help: 'tokens per training window (windows keep their offset in the gene as positions)',
  },
  accumulate: { type: 'int', min: 1, max: 1024, default: 1, help: 'micro-batches per update (gradient accumulation)' },
  loss: {
    type: 'choice',
    choices: ['hxe', 'xe'],
    default: TRAIN_DEFAULTS.loss,
    help: "hierarchical (HELM's HXE) or flat cross-entropy",
  },
  alpha: { type: 'number', min: 0, max: 10, default: TRAIN_DEFAULTS.alpha, help: 'HXE α (HELM used 0.2–0.6)' },
  hierarchy: {
    type: 'choice',
    choices: ['codon', 'random'],
    default: TRAIN_DEFAULTS.hierarchy,
    help: "HXE's tree: HELM's codon hierarchy or a random one (the ablation; drawn from --seed)",
  },
  mask: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    max: 0.99,
    default: TRAIN_DEFAULTS.maskProbability,
    help: 'helm-mlm: share of codons masked in training (validation always masks 15%)',
  },
  lr: { type: 'number', min: 0, exclusiveMin: true, max: 10, default: TRAIN_DEFAULTS.lr, help: 'peak learning rate' },
  'min-lr': {
    type: 'number',
    min: 0,
    max: 10,
    default: TRAIN_DEFAULTS.minLr,
    help: 'learning rate at the end of the cosine',
  },
  warmup: { type: 'int', min: 0, default: TRAIN_DEFAULTS.warmupSteps, help: 'linear warm-up steps' },
  'weight-decay': {
    type: 'number',
    min: 0,
    max: 10,
    default: TRAIN_DEFAULTS.weightDecay,
    help: 'AdamW decay (never on biases, norms, embeddings)',
  },
  clip: { type: 'number', min: 0, default: TRAIN_DEFAULTS.maxGradNorm, help: 'global gradient-norm clip (0: off)' },
  seed: {
    type: 'int',
    min: 0,
    max: 2 ** 32 - 1,
    default: TRAIN_DEFAULTS.seed,
    help: 'seed of the weights, data order and masks',
  },
  data: {
    type: 'file',
    meta: 'FILE',
    help:
      'training sequences: FASTA, CSV (see --column) or one per line (default: the bundled E. coli K-12 CDS ' +
      'set); rinalmo: a FASTA file (default: ../shared/data/ncrna_pretrain)',
  },
  column: { type: 'string', meta: 'NAME', default: 'sequence', help: 'CSV column with the sequences' },
  'validation-fraction': {
    type: 'number',
    min: 0,
    max: 0.9,
    default: 0.1,
    help: 'share of sequences held out (by a hash of the name)',
  },
  'eval-every': {
    type: 'int',
    min: 0,
    default: TRAIN_DEFAULTS.evalEvery,
    help: 'validate every N steps, before the first and at the end (0: never)',
  },
  'val-batches': {
    type: 'int',
    min: 1,
    max: 1000,
    default: TRAIN_DEFAULTS.validationBatches,
    help: 'fixed validation batches',
  },
  patience: {
    type: 'int',
    min: 0,
    default: 0,
    help: 'early stopping: evaluations without improvement of --early-stop-metric (0: off)',
  },
  'early-stop-metric': {
    type: 'choice',
    choices: ['crossEntropy', 'loss', 'accuracy'],
    default: 'crossEntropy',
    help: 'validation metric watched by --patience',
  },
  out: {
    type: 'string',
    meta: 'DIR',
    default: 'runs/helm',
    help: 'run folder: checkpoint-NNNNNN/, metrics.jsonl, loss.svg',
  },
  'checkpoint-every': {
    type: 'int',
    min: 0,
    default: 50,
    help: 'write a checkpoint every N steps (0: only at the end)',
  },
  keep: { type: 'int', min: 1, default: 3, help: 'newest checkpoints to keep' },
  resume: {
    type: 'string',
    meta: 'DIR',
    help: 'continue the run of a checkpoint (or of a run folder: its newest checkpoint)',
  },
  'log-every': { type: 'int', min: 1, default: 10, help: 'without a terminal: one progress line every N steps' },
  json: { type: 'bool', help: 'print metrics as JSON lines on stdout (they always go to <out>/metrics.jsonl)' },
} satisfies FlagSpecs;

const trainFlags = {
  ...shared,
  config: {
    type: 'choice',
    choices: Object.keys(RINALMO_CONFIGS),
    meta: 'NAME',
    help: `rinalmo: the encoder size, ${Object.keys(RINALMO_CONFIGS).join('|')} (default nano)`,
  },
  d: { type: 'int', min: 1, default: 64, help: 'model width' },
  layers: { type: 'int', min: 1, max: 96, default: 2, help: 'transformer blocks' },
  heads: { type: 'int', min: 1, default: 4, help: 'attention heads (must divide --d)' },
  ff: { type: 'int', min: 1, meta: 'N', help: 'MLP width (default 4·d)' },
  'max-positions': {
    type: 'int',
    min: 2,
    max: 16384,
    default: 1026,
    help: 'longest input in tokens (1026: 1,024 codons + <cls> + <eos>)',
  },
  dropout: { type: 'number', min: 0, max: 0.99, default: 0, help: 'residual dropout' },
  'position-init': {
    type: 'choice',
    choices: ['normal', 'sinusoidal'],
    default: 'normal',
    help: 'initial (learned) position embeddings: random as GPT-2, or the sin/cos table',
  },
} satisfies FlagSpecs;

const finetuneFlags = {
  ...shared,
  from: {
    type: 'string',
    meta: 'DIR',
    help: 'the trained model: a checkpoint or run folder (required unless --resume)',
  },
  steps: { ...shared.steps, default: 100 },
  lr: { ...shared.lr, default: 1e-4 },
  'min-lr': { ...shared['min-lr'], default: 1e-5 },
  warmup: { ...shared.warmup, default: 10 },
  out: { ...shared.out, default: 'runs/finetune' },
  freeze: {
    type: 'string',
    meta: 'LIST',
    help: 'comma-separated parameter or module names that do not train, e.g. transformer.wte,transformer.h.0',
  },
  'gradual-unfreeze': {
    type: 'int',
    min: 1,
    meta: 'N',
    help: 'train the head first and unfreeze one more layer group (top-down) every N steps',
  },
} satisfies FlagSpecs;

export const TRAIN: CommandSpec<typeof trainFlags> = {
  name: 'train',
  summary:
    'Pre-trains a HELM codon language model (MODEL: helm-mlm, masked, or helm-clm, causal) or a RiNALMo nucleotide ' +
    'encoder (MODEL: rinalmo, masked LM) and writes checkpoints.',
  usage: 'rnagrad train [helm-mlm|helm-clm|rinalmo] [options]',
  positional: { max: 1, meta: 'MODEL' },
  flags: trainFlags,
  notes: [
    'Ctrl-C stops after the current step and writes a checkpoint; --resume DIR continues bit for bit',
    '(same losses and weights as a run that never stopped, when --steps is unchanged).',
    `rinalmo: masks 15% of each sequence's nucleotides (80% <mask>, 10% random, 10% kept); --length crops sequences`,
    `(default ${RINALMO_TRAIN_DEFAULTS.maxLength} tokens with <cls>/<eos>); defaults ` +
      `--batch ${RINALMO_TRAIN_DEFAULTS.batchSize} --lr ${RINALMO_TRAIN_DEFAULTS.lr} --min-lr ` +
      `${RINALMO_TRAIN_DEFAULTS.minLr} --val-batches ${RINALMO_TRAIN_DEFAULTS.validationBatches} --out runs/rinalmo;`,
    'the HELM-only flags (--loss, --alpha, --d, --layers, --heads, --ff, --max-positions, --dropout, --column,',
    '--validation-fraction) do not apply: every 20th FASTA record is held out for validation.',
  ],
  examples: [
    'rnagrad train helm-clm --steps 400 --loss xe --out runs/clm',
    'rnagrad train --resume runs/clm',
    'rnagrad train rinalmo --config nano --steps 300 --batch 8 --length 128 --out runs/rinalmo',
  ],
};

export const FINETUNE: CommandSpec<typeof finetuneFlags> = {
  name: 'finetune',
  summary:
    'Continues training a model on your sequences (same objective), optionally with frozen layers or gradual ' +
    'unfreezing.',
  usage: 'rnagrad finetune --from DIR --data FILE [options]',
  flags: finetuneFlags,
  notes: [
    'RiNALMo downstream heads (secondary structure, ncRNA family, regression): rnagrad finetune --task ' +
      'ss|ncrna|regression --help',
  ],
  examples: ['rnagrad finetune --from runs/helm --data my_cds.fasta --steps 100 --gradual-unfreeze 20 --out runs/ft'],
};

/** Flags a resumed run may change; the rest come from the checkpoint. */
const RESUMABLE = new Set(['resume', 'steps', 'out', 'log-every', 'json', 'checkpoint-every', 'keep']);

/** Flags of HELM models that mean nothing for RiNALMo, and the other way round. */
const HELM_ONLY = [
  'loss',
  'alpha',
  'hierarchy',
  'mask',
  'position-init',
  'd',
  'layers',
  'heads',
  'ff',
  'max-positions',
  'dropout',
  'column',
  'validation-fraction',
];
const RINALMO_ONLY = ['config'];

interface RunRecord {
  command: 'train' | 'finetune';
  /** helm-mlm, helm-clm or rinalmo. */
  model: string;
  options: HelmTrainOptions | RinalmoTrainOptions;
  data: { path: string | null; column: string; validationFraction: number };
  from?: string;
}

/** The nucleotide FASTA of a RiNALMo run: --data, or the shared ncRNA corpus (which may be missing). */
async function loadRinalmoCorpus(path: string | null): Promise<{ corpus: NucleotideCorpus; label: string }> {
  const file = path ?? ncrnaPretrainPath();
  if (!path && !existsSync(file)) {
    throw new UsageError(
      `the default RiNALMo corpus ${file} is missing: pass --data FILE.fasta (nucleotide sequences) or set ` +
        `RNAGRAD_DATA to a folder holding ncrna_pretrain/`,
    );
  }
  try {
    return { corpus: await loadNucleotideCorpus(file), label: file };
  } catch (err) {
    throw new UsageError(`--data: ${(err as Error).message}`);
  }
}

async function loadCorpus(data: RunRecord['data']): Promise<{ corpus: CodonCorpus; label: string }> {
  if (!data.path)
    return {
      corpus: await loadEcoliCds({ validationFraction: data.validationFraction }),
      label: 'E. coli K-12 CDS (bundled)',
    };
  const records = readSequences(data.path, { column: data.column });
  const corpus = codonCorpus(records, { validationFraction: data.validationFraction });
  if (corpus.train.length === 0) {
    corpus.train = corpus.validation;
    corpus.names.train = corpus.names.validation;
  }
  if (corpus.train.every((s) => s.length === 0)) throw new UsageError(`${data.path}: no sequence has a whole codon`);
  return { corpus, label: data.path };
}

/** The trainer's options from the flags every model shares. */
function trainerOptionsFrom(
  a: Parsed<typeof trainFlags> | Parsed<typeof finetuneFlags>,
  lr: number,
  minLr: number,
): TrainerOptions {
  if (minLr > lr) throw new UsageError(`--min-lr ${minLr} is above --lr ${lr}`);
  return {
    ...TRAIN_DEFAULTS,
    steps: a.steps,
    accumulate: a.accumulate,
    lr,
    minLr,
    warmupSteps: a.warmup,
    weightDecay: a['weight-decay'],
    maxGradNorm: a.clip,
    seed: a.seed,
    evalEvery: a['eval-every'],
    checkpointEvery: a['checkpoint-every'],
    earlyStopping:
      a.patience > 0
        ? {
            metric: a['early-stop-metric'],
            mode: a['early-stop-metric'] === 'accuracy' ? 'max' : 'min',
            patience: a.patience,
          }
        : undefined,
  };
}

/** RiNALMo's options: its own defaults where the user gave no flag. */
function rinalmoOptionsFrom(a: Parsed<typeof trainFlags>): RinalmoTrainOptions {
  const given = <K extends 'batch' | 'length' | 'lr' | 'min-lr' | 'val-batches'>(flag: K, fallback: number): number =>
    a._given.has(flag) ? a[flag] : fallback;
  const d = RINALMO_TRAIN_DEFAULTS;
  const maxLength = given('length', d.maxLength);
  if (maxLength < 3)
    throw new UsageError(`--length must be ≥ 3 for rinalmo (<cls>, a nucleotide, <eos>), got ${maxLength}`);
  return {
    ...trainerOptionsFrom(a, given('lr', d.lr), given('min-lr', d.minLr)),
    batchSize: given('batch', d.batchSize),
    maxLength,
    validationBatches: given('val-batches', d.validationBatches),
  };
}

function optionsFrom(a: Parsed<typeof trainFlags> | Parsed<typeof finetuneFlags>, model: HelmModel): HelmTrainOptions {
  if (a.length > model.cfg.maxPositions)
    throw new UsageError(`--length ${a.length} exceeds the model's maxPositions ${model.cfg.maxPositions}`);
  const options: HelmTrainOptions = {
    ...trainerOptionsFrom(a, a.lr, a['min-lr']),
    batchSize: a.batch,
    length: a.length,
    loss: a.loss as 'hxe' | 'xe',
    alpha: a.alpha,
    hierarchy: a.hierarchy as 'codon' | 'random',
    hierarchySeed: a.seed,
    maskProbability: a.mask,
    validationBatches: a['val-batches'],
  };
  if ('freeze' in a || 'gradual-unfreeze' in a) {
    const f = a as Parsed<typeof finetuneFlags>;
    if (f.freeze !== undefined && f['gradual-unfreeze'] !== undefined)
      throw new UsageError('--freeze and --gradual-unfreeze exclude each other');
    if (f.freeze !== undefined)
      options.freeze = f.freeze
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    if (f['gradual-unfreeze'] !== undefined)
      Object.assign(options, gradualUnfreeze(helmUnfreezeGroups(model), f['gradual-unfreeze']));
  }
  return options;
}

export async function runTrain(
  command: 'train' | 'finetune',
  a: Parsed<typeof trainFlags> | Parsed<typeof finetuneFlags>,
): Promise<void> {
  let record: RunRecord;
  let resumeDir: string | null = null;
  if (a.resume !== undefined) {
    const refused = [...a._given].filter((f) => !RESUMABLE.has(f));
    if (refused.length)
      throw new UsageError(
        `--${refused[0]} cannot change when resuming (the run's options come from its checkpoint; only --steps, ` +
          `--out, --checkpoint-every, --keep, --log-every, --json may)`,
      );
    if (a._positional.length)
      throw new UsageError('the model comes from the checkpoint when resuming; drop the MODEL argument');
    resumeDir = await resolveCheckpoint(a.resume).catch((err: Error) => {
      throw new UsageError(`--resume: ${err.message}`);
    });
    const saved = await readCheckpointConfig(resumeDir).catch((err: Error) => {
      throw new UsageError(`--resume: ${err.message}`);
    });
    record = saved.run as unknown as RunRecord;
    if (record.command !== command)
      throw new UsageError(
        `--resume: ${resumeDir} is a checkpoint of "rnagrad ${String(record.command)}", not of "rnagrad ${command}"`,
      );
    if (a._given.has('steps')) record.options.steps = a.steps;
    if (a._given.has('checkpoint-every')) record.options.checkpointEvery = a['checkpoint-every'];
  } else {
    record = {
      command,
      model: a._positional[0] ?? 'helm-mlm',
      options: TRAIN_DEFAULTS,
      data: { path: a.data ?? null, column: a.column, validationFraction: a['validation-fraction'] },
    };
    if (command === 'train' && !['helm-mlm', 'helm-clm', 'rinalmo'].includes(record.model))
      throw new UsageError(`unknown model "${record.model}" (choose helm-mlm, helm-clm or rinalmo)`);
    const foreign = (record.model === 'rinalmo' ? HELM_ONLY : RINALMO_ONLY).find((f) => a._given.has(f));
    if (foreign) throw new UsageError(`--${foreign} does not apply to ${record.model} (see rnagrad ${command} --help)`);
  }
  const rinalmo = record.model === 'rinalmo';
  // Resuming writes into the run folder of the checkpoint unless --out says otherwise.
  const fresh = a._given.has('out') ? a.out : rinalmo ? 'runs/rinalmo' : a.out;
  const out = a._given.has('out') || !resumeDir ? fresh : resumeDir === a.resume ? dirname(resumeDir) : a.resume!;

  const rt = await initRuntime();
  const say = (line: string) => (a.json ? process.stderr : process.stdout).write(`${line}\n`);
  say(`adapter: ${describeAdapter(rt)}`);

  if (rinalmo) return runRinalmo(a as Parsed<typeof trainFlags>, record, resumeDir, out, say);
  // The model: new, from a checkpoint to fine-tune, or from the checkpoint to resume.
  let model: HelmModel;
  if (resumeDir) {
    model = (await loadModel<HelmModel>(resumeDir)).model;
  } else if (command === 'finetune') {
    const f = a as Parsed<typeof finetuneFlags>;
    if (f.from === undefined) throw new UsageError('--from DIR is required (the trained model to fine-tune)');
    if (f.data === undefined) throw new UsageError('--data FILE is required (the sequences to fine-tune on)');
    const loaded = await loadModel(f.from).catch((err: Error) => {
      throw new UsageError(`--from: ${err.message}`);
    });
    if (!(loaded.model instanceof HelmModel))
      throw new UsageError(
        `--from: ${loaded.dir} holds a ${loaded.config.model.kind} model; finetune supports HELM models`,
      );
    model = loaded.model;
    record.from = loaded.dir;
    record.model = `helm-${model.cfg.objective}`;
  } else {
    const t = a as Parsed<typeof trainFlags>;
    const kind = record.model;
    if (t.d % t.heads !== 0) throw new UsageError(`--heads ${t.heads} does not divide --d ${t.d}`);
    T.manualSeed(t.seed);
    model = new HelmModel({
      dModel: t.d,
      layers: t.layers,
      heads: t.heads,
      dFF: t.ff ?? 4 * t.d,
      maxPositions: t['max-positions'],
      dropout: t.dropout,
      positionInit: t['position-init'] as 'normal' | 'sinusoidal',
      objective: kind === 'helm-mlm' ? 'mlm' : 'clm',
    });
  }
  if (!resumeDir) record.options = optionsFrom(a, model);
  const options = record.options as HelmTrainOptions;

  const { corpus, label } = await loadCorpus(record.data);
  say(
    `data: ${label}: ${corpus.train.length} train / ${corpus.validation.length} validation sequences` +
      (corpus.validation.length === 0 ? ' (none held out: validation runs on the training sequences)' : ''),
  );
  const c = model.cfg;
  say(
    `model: HELM ${c.objective.toUpperCase()}, ${c.layers} layers, d ${c.dModel}, ${c.heads} ` +
      `heads, ${model.parameterCount().toLocaleString('en-US')} parameters, up to ${c.maxPositions} tokens; ` +
      `loss ${options.loss.toUpperCase()}${options.loss === 'hxe' ? ` (α ${options.alpha})` : ''}`,
  );
  const task = helmTask(model, corpus, options);
  const lossName = options.loss;
  const ceOf = (e: StepEntry) => e.metrics?.crossEntropy ?? (lossName === 'xe' ? e.loss : NaN);
  await runJob(
    a,
    { model, task, options, record, resumeDir, out, say },
    {
      trainedPositions: () => task.source.trainedPositions(),
      stepStatus(e) {
        const ce = ceOf(e);
        return `loss ${e.loss.toFixed(4)}${
          lossName === 'hxe' && Number.isFinite(ce) ? ` (CE ${ce.toFixed(3)} nats)` : ''
        }`;
      },
      evaluation: (m) =>
        `${lossName} ${m.loss!.toFixed(4)}  CE ${m.crossEntropy!.toFixed(4)} nats  accuracy ` +
        `${(100 * m.accuracy!).toFixed(1)}%`,
      lossName,
      validationSummary: (b, e) =>
        `validation CE: ${b.crossEntropy!.toFixed(4)} → ${e.crossEntropy!.toFixed(4)} nats (uniform over 64 ` +
        `codons: ${Math.log(64).toFixed(4)}); accuracy ${(100 * b.accuracy!).toFixed(1)}% ` +
        `→ ${(100 * e.accuracy!).toFixed(1)}%`,
      crossEntropyOf: ceOf,
      plotTitle:
        `HELM ${record.model.slice(5).toUpperCase()} on ${record.data.path ?? 'E. coli K-12 CDS'} ` +
        `— ${lossName.toUpperCase()} training`,
      uses: 'generate|score|embed',
    },
  );
}

/** `rnagrad train rinalmo`: a new RiNALMo encoder (or the one of the checkpoint to resume) on a nucleotide FASTA. */
async function runRinalmo(
  a: Parsed<typeof trainFlags>,
  record: RunRecord,
  resumeDir: string | null,
  out: string,
  say: (line: string) => void,
): Promise<void> {
  let model: RinalmoModel;
  if (resumeDir) {
    model = (await loadModel<RinalmoModel>(resumeDir)).model;
  } else {
    record.options = rinalmoOptionsFrom(a);
    T.manualSeed(a.seed);
    model = new RinalmoModel((a.config ?? 'nano') as keyof typeof RINALMO_CONFIGS);
  }
  const options = record.options as RinalmoTrainOptions;
  const { corpus, label } = await loadRinalmoCorpus(record.data.path);
  say(
    `data: ${label}: ${corpus.train.length} train / ${corpus.validation.length} validation sequences (every 20th ` +
      `held out), crops of ${options.maxLength} tokens`,
  );
  const c = model.cfg;
  say(
    `model: RiNALMo encoder, ${c.layers} blocks, d ${c.dim}, ${c.heads} heads, SwiGLU ${c.ffnDim}, ` +
      `${model.parameterCount().toLocaleString('en-US')} parameters; masked-token cross-entropy`,
  );
  const task = rinalmoTask(model, corpus, options);
  const percent = (v: number) => `${(100 * v).toFixed(1)}%`;
  const sizeName = Object.entries(RINALMO_CONFIGS).find(([, v]) => v.dim === c.dim && v.layers === c.layers)?.[0] ?? '';
  await runJob(
    a,
    { model, task, options, record, resumeDir, out, say },
    {
      trainedPositions: () => options.maxLength,
      stepStatus: (e) => `loss ${e.loss.toFixed(4)}`,
      evaluation: (m) => `masked-token loss ${m.loss!.toFixed(4)} nats  accuracy ${percent(m.accuracy!)}`,
      lossName: 'masked-token cross-entropy',
      validationSummary: (b, e) =>
        `validation masked-token loss: ${b.loss!.toFixed(4)} → ${e.loss!.toFixed(4)} nats (uniform over ` +
        `A, C, G, T: ${Math.log(4).toFixed(4)}); accuracy ${percent(b.accuracy!)} → ${percent(e.accuracy!)}`,
      crossEntropyOf: (e) => e.loss,
      plotTitle: `RiNALMo ${sizeName} MLM on ${label}`,
      uses: 'embed',
    },
  );
}

interface Job<M extends Module, B> {
  model: M;
  task: TrainSetup<M, B>;
  options: TrainerOptions;
  record: RunRecord;
  resumeDir: string | null;
  out: string;
  say: (line: string) => void;
}

/** How a model's run reads on screen and in loss.svg. */
interface Presenter {
  trainedPositions(): number;
  stepStatus(e: StepEntry): string;
  evaluation(metrics: Record<string, number>): string;
  lossName: string;
  validationSummary(before: Record<string, number>, after: Record<string, number>): string;
  /** The step's cross-entropy in nats (NaN when not logged), for loss.svg. */
  crossEntropyOf(e: StepEntry): number;
  plotTitle: string;
  /** The commands that take the model. */
  uses: string;
}

/** The run itself, the same for every model: checkpoints, metrics.jsonl, progress, Ctrl-C, summary, loss.svg. */
async function runJob<M extends Module, B>(
  a: Parsed<typeof trainFlags> | Parsed<typeof finetuneFlags>,
  job: Job<M, B>,
  show: Presenter,
): Promise<void> {
  const { model, task, options, record, resumeDir, out, say } = job;
  const stray = await cleanRunFolder(out);
  if (stray.length) say(`removed ${stray.length} unfinished checkpoint write(s) of a killed run: ${stray.join(', ')}`);
  let snapshot: TrainerSnapshot | undefined;
  if (resumeDir) {
    snapshot = await loadTrainingState(resumeDir, model);
    say(`resuming from ${resumeDir} at step ${snapshot.step} of ${options.steps}`);
    if (snapshot.step >= options.steps) say(`(that run is complete; pass a larger --steps to continue it)`);
  }

  // metrics.jsonl holds exactly the steps up to the checkpoint, then grows.
  const metricsPath = join(out, 'metrics.jsonl');
  const jsonLine = (obj: object) => {
    const line = JSON.stringify(obj);
    appendFileSync(metricsPath, `${line}\n`);
    if (a.json) process.stdout.write(`${line}\n`);
  };
  const replay = snapshot
    ? [
        ...snapshot.history.evaluations.map((e) => ({ type: 'eval', ...e })),
        ...snapshot.history.steps.map((s) => ({ type: 'step', ...s })),
      ].sort((x, y) => x.step - y.step || (x.type === 'eval' ? 1 : -1))
    : [];
  await writeFileAtomic(metricsPath, replay.map((r) => `${JSON.stringify(r)}\n`).join(''));

  const progress = new Progress({
    total: options.steps,
    unit: 'step',
    every: a['log-every'],
    start: snapshot?.step ?? 0,
    tty: a.json ? false : undefined,
  });
  const firstStep = performance.now();
  let compiling = (snapshot?.step ?? 0) < options.steps;
  let compileStart = 0;
  const interrupt = onInterrupt((m) => progress.log(m));
  let lastCheckpoint = '';
  const result = await train(
    task,
    options,
    {
      onCompile(done, total) {
        if (done === 0) compileStart = performance.now();
        progress.transient(`compiling shaders (${done}/${total})`, done === 0 || done === total);
        if (done === total)
          progress.log(
            `compiled ${total} GPU pipelines in ${((performance.now() - compileStart) / 1000).toFixed(1)} s`,
          );
      },
      onStep(e) {
        if (compiling) {
          compiling = false;
          progress.log(`first step done ${((performance.now() - firstStep) / 1000).toFixed(1)} s after the start`);
        }
        jsonLine({ type: 'step', ...e });
        progress.update(e.step, e.tokens, `${show.stepStatus(e)}  lr ${e.lr.toExponential(1)}`);
      },
      onEvaluation(e: EvalEntry) {
        jsonLine({ type: 'eval', ...e });
        progress.log(`validation at step ${e.step}: ${show.evaluation(e.metrics)}`);
      },
      async onSnapshot(s) {
        lastCheckpoint = await saveCheckpointDir(out, model, s, {
          trainedPositions: show.trainedPositions(),
          run: record as unknown as Record<string, unknown>,
          keep: a.keep,
        });
        progress.log(`checkpoint: ${lastCheckpoint} (${s.reason})`);
      },
      shouldStop: () => interrupt.requested,
    },
    snapshot,
  ).finally(() => {
    interrupt.dispose();
    if (snapshot) disposeSnapshot(snapshot);
  });
  const seconds = progress.finish();
  summarize(result.history, result.stopped, options, out, lastCheckpoint, seconds, say, show);
  const plotted = await writePlot(result.history, out, show);
  say(`wrote ${plotted ? `${join(out, 'loss.svg')} and ` : ''}${metricsPath}`);
  model.dispose();
  if (result.stopped === 'interrupt') process.exitCode = 130;
}

function summarize(
  history: { steps: StepEntry[]; evaluations: EvalEntry[] },
  stopped: string,
  options: TrainerOptions,
  out: string,
  checkpoint: string,
  seconds: number,
  say: (l: string) => void,
  show: Presenter,
): void {
  const steps = history.steps;
  if (stopped === 'early-stop')
    say(
      `early stop: no better validation ${options.earlyStopping!.metric} for ${options.earlyStopping!.patience} ` +
        `evaluations`,
    );
  if (stopped === 'interrupt')
    say(`interrupted at step ${steps.at(-1)?.step ?? 0}; continue with: rnagrad train --resume ${out}`);
  if (steps.length > 1) {
    say(`\ntraining loss (${show.lossName}), smoothed:`);
    say(asciiChart(smooth(steps.map((e) => e.loss)), { width: 60, height: 8 }));
  }
  const evals = history.evaluations;
  if (evals.length >= 2) say(show.validationSummary(evals[0]!.metrics, evals.at(-1)!.metrics));
  const timed = steps.slice(Math.min(5, steps.length - 1));
  if (timed.length) {
    const ms = timed.reduce((s, e) => s + e.ms, 0) / timed.length;
    const tokens = timed.reduce((s, e) => s + e.tokens, 0) / timed.length;
    say(
      `${ms.toFixed(0)} ms/step, ${Math.round((tokens * 1000) / ms).toLocaleString('en-US')} tokens/s; ` +
        `${formatDuration(seconds)} in all`,
    );
  }
  if (checkpoint) say(`model: ${checkpoint}  (rnagrad ${show.uses} --model ${out})`);
}

/** loss.svg: training cross-entropy in nats (smoothed line) and validation cross-entropy as points. */
async function writePlot(
  history: { steps: StepEntry[]; evaluations: EvalEntry[] },
  out: string,
  show: Presenter,
): Promise<boolean> {
  const ce = history.steps
    .map((e): [number, number] => [e.step, show.crossEntropyOf(e)])
    .filter(([, v]) => Number.isFinite(v));
  const val = history.evaluations.map((e): [number, number] => [e.step, e.metrics.crossEntropy!]);
  if (ce.length + val.length === 0) return false;
  const smoothed = smooth(ce.map(([, v]) => v));
  const svg = lineChartSvg(
    [
      { name: 'train cross-entropy (smoothed)', color: '#1f77b4', points: ce.map(([x], i) => [x, smoothed[i]!]) },
      { name: 'validation cross-entropy', color: '#d62728', points: val, style: 'points' },
    ],
    { title: show.plotTitle, xLabel: 'step', yLabel: 'cross-entropy (nats)' },
  );
  await writeFileAtomic(join(out, 'loss.svg'), svg);
  return true;
}
