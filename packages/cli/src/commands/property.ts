/**
 * `rnagrad property`: HELM's downstream protocol on an mRNA property data set — the TextCNN head on a
 * pre-trained HELM backbone (frozen or fully fine-tuned) or on learned codon embeddings alone
 * (--mode scratch), early-stopped on validation, scored on test. Writes <out>/results.json.
 */
import { join } from 'node:path';
import {
  CODONBERT_FILES,
  type CodonbertDatasetName,
  type PropertyFinetuneMode,
  type PropertyDataset,
  finetuneProperty,
  writeFileAtomic,
} from '@rnagrad/models';
import { loadCodonbertDataset, loadEcoliExpression } from '@rnagrad/models/node';
import { type CommandSpec, type Parsed, UsageError } from '../args.js';
import { describeAdapter, initRuntime, loadHelm } from '../runtime.js';

const TASKS = [...Object.keys(CODONBERT_FILES), 'ecoli'] as const;

const flags = {
  task: {
    type: 'choice',
    choices: TASKS,
    help:
      'mrfp, tc (Tc-riboswitches), cov (CoV vaccine degradation), mlos (MLOS_with_split.csv) or ecoli (high/low ' +
      'expression) (required)',
  },
  data: {
    type: 'string',
    meta: 'PATH',
    help:
      'the data set CSV or its folder (../shared/data/codonbert_benchmarks, ' +
      '../shared/data/ecoli_expression_mpepe) (required)',
  },
  from: { type: 'string', meta: 'DIR', help: 'a HELM checkpoint or run folder (required unless --mode scratch)' },
  mode: {
    type: 'choice',
    choices: ['frozen', 'full', 'scratch'],
    default: 'frozen',
    help: 'frozen backbone, full fine-tuning, or no backbone (learned codon embeddings)',
  },
  fold: {
    type: 'int',
    min: 1,
    max: 10,
    default: 1,
    help: 'ecoli: the cross-validation fold used as test (the next one is validation)',
  },
  batch: { type: 'int', min: 1, max: 4096, default: 32, help: 'sequences per step' },
  lr: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    max: 1,
    default: 3e-4,
    help: 'Adam learning rate (constant; HELM swept 3e-4, 1e-4, 1e-5)',
  },
  epochs: { type: 'int', min: 1, default: 300, help: 'passes over the training split at most' },
  patience: {
    type: 'int',
    min: 1,
    default: 15,
    help: 'epochs without a better validation Spearman (AUROC for ecoli) before stopping',
  },
  filters: { type: 'int', min: 1, default: 100, help: 'TextCNN filters per kernel size (HELM: 100)' },
  'embedding-size': { type: 'int', min: 1, default: 64, help: 'scratch: width of the learned codon embeddings' },
  seed: { type: 'int', min: 0, max: 2 ** 32 - 1, default: 42, help: 'seed of the head, the data order and dropout' },
  out: { type: 'string', meta: 'DIR', default: 'runs/property', help: 'folder for results.json' },
} as const;

export const PROPERTY: CommandSpec<typeof flags> = {
  name: 'property',
  summary:
    "Fine-tunes HELM's TextCNN head on an mRNA property data set (CodonBERT benchmarks, E. coli expression) and " +
    'reports test Spearman/Pearson or AUROC/accuracy.',
  usage: 'rnagrad property --task mrfp|tc|cov|mlos|ecoli --data PATH [--from DIR | --mode scratch] [options]',
  flags,
  notes: [
    'The head max-pools over windows of real codons only (HELM pools over <cls>, <eos> and padding too).',
    'Regression targets are standardised with the training split; the weights of the best validation epoch are ' +
      'scored on test.',
    'The data files are not bundled (Sanofi non-commercial licence; MPEPE has none): give their path.',
  ],
  examples: [
    'rnagrad property --task mrfp --data ../shared/data/codonbert_benchmarks --from runs/helm-mlm --mode frozen',
    'rnagrad property --task ecoli --fold 3 --data ../shared/data/ecoli_expression_mpepe --mode scratch --epochs 20',
  ],
};

export async function runProperty(a: Parsed<typeof flags>): Promise<void> {
  if (a.task === undefined) throw new UsageError('--task is required (mrfp, tc, cov, mlos or ecoli)');
  if (a.data === undefined) throw new UsageError('--data PATH is required: the data set CSV or its folder');
  const mode = a.mode as PropertyFinetuneMode;
  if (mode === 'scratch' && a.from !== undefined)
    throw new UsageError('--from and --mode scratch exclude each other (scratch trains without a backbone)');
  if (mode !== 'scratch' && a.from === undefined)
    throw new UsageError(`--mode ${mode} needs --from DIR (a HELM checkpoint); --mode scratch needs none`);
  if (a.task !== 'ecoli' && a._given.has('fold')) throw new UsageError('--fold applies to --task ecoli only');
  const data: PropertyDataset = await (
    a.task === 'ecoli'
      ? loadEcoliExpression(a.data, { testFold: a.fold })
      : loadCodonbertDataset(a.task as CodonbertDatasetName, a.data)
  ).catch((err: Error) => {
    throw new UsageError(`--data: ${err.message}`);
  });
  process.stderr.write(
    `${data.name}: ${data.train.length} train / ${data.validation.length} validation / ${data.test.length} test ` +
      `(${data.task})\n`,
  );
  const rt = await initRuntime();
  process.stderr.write(`adapter: ${describeAdapter(rt)}\n`);
  const backbone =
    a.from === undefined
      ? null
      : (
          await loadHelm(a.from).catch((err: Error) => {
            throw new UsageError(err.message.replace(/^--model:/, '--from:'));
          })
        ).model;
  const result = await finetuneProperty(
    backbone,
    data,
    {
      mode,
      batchSize: a.batch,
      lr: a.lr,
      maxEpochs: a.epochs,
      patience: a.patience,
      seed: a.seed,
      head: { filters: a.filters },
      embeddingSize: a['embedding-size'],
    },
    { onEvaluation: (e) => process.stderr.write(`step ${e.step}: validation ${JSON.stringify(e.metrics)}\n`) },
  );
  backbone?.dispose();
  const record = {
    task: a.task,
    mode,
    from: a.from ?? null,
    data: a.data,
    ...result,
    command: `rnagrad property ${process.argv.slice(3).join(' ')}`,
  };
  await writeFileAtomic(join(a.out, 'results.json'), `${JSON.stringify(record, null, 2)}\n`);
  const show = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${k} ${v.toFixed(4)}`)
      .join(', ');
  process.stdout.write(
    `test: ${show(result.test)} (validation ${show(result.validation)} at epoch ${result.bestEpoch} ` +
      `of ${result.epochs}; ${result.seconds.toFixed(0)} s)\n`,
  );
  process.stdout.write(`wrote ${join(a.out, 'results.json')}\n`);
}
