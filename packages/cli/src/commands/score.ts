/** `rnagrad score`: log-likelihood (causal) or pseudo-log-likelihood (masked) of each sequence. */
import { writeFileSync } from 'node:fs';
import { score } from '@rnagrad/models';
import { type CommandSpec, type Parsed, UsageError } from '../args.js';
import { encodeCodons, readSequences } from '../input.js';
import { Progress } from '../progress.js';
import { initRuntime, loadHelm, warnUntrainedPositions } from '../runtime.js';

const flags = {
  model: { type: 'string', meta: 'DIR', help: 'a checkpoint or run folder (required)' },
  input: { type: 'file', meta: 'FILE', help: 'sequences: FASTA, CSV (see --column) or one per line (required)' },
  column: { type: 'string', meta: 'NAME', default: 'sequence', help: 'CSV column with the sequences' },
  batch: { type: 'int', min: 1, max: 4096, default: 16, help: 'rows per forward pass' },
  output: { type: 'string', meta: 'FILE', help: 'write the TSV there instead of stdout' },
} as const;

export const SCORE: CommandSpec<typeof flags> = {
  name: 'score',
  summary:
    'Scores sequences: log-likelihood (nats) under a causal model, pseudo-log-likelihood (each codon masked alone) ' +
    'under a masked one. Prints TSV: name, codons, scored tokens, total, mean per token.',
  usage: 'rnagrad score --model DIR --input FILE [options]',
  flags,
  examples: ['rnagrad score --model runs/helm --input genes.fasta --batch 32 > scores.tsv'],
};

export async function runScore(a: Parsed<typeof flags>): Promise<void> {
  if (a.model === undefined) throw new UsageError('--model DIR is required');
  if (a.input === undefined) throw new UsageError('--input FILE is required');
  const records = readSequences(a.input, { column: a.column });
  await initRuntime();
  const { model, config, dir } = await loadHelm(a.model);
  const ids = encodeCodons(records);
  ids.forEach((s, i) => {
    if (s.length > model.cfg.maxPositions)
      throw new UsageError(
        `${a.input}: ${records[i]!.name} has ${s.length - 2} codons; the model takes at ` +
          `most ${model.cfg.maxPositions - 2}`,
      );
  });
  warnUntrainedPositions(ids, config);
  const kind = model.cfg.objective === 'clm' ? 'log_likelihood' : 'pseudo_log_likelihood';
  process.stderr.write(`model: ${dir} (${kind.replace(/_/g, '-')}); scoring ${records.length} sequences…\n`);
  let progress: Progress | undefined;
  const onProgress = (done: number, total: number) => {
    progress ??= new Progress({ total, unit: 'row', every: 64 });
    progress.update(done, 0, '');
  };
  const results = await score(model, ids, { onProgress, batchSize: a.batch });
  progress?.finish();
  const rows = results.map(
    (r, i) =>
      `${records[i]!.name}\t${ids[i]!.length - 2}\t${r.tokens}\t${r.logLikelihood.toFixed(4)}\t` +
      `${(r.logLikelihood / r.tokens).toFixed(4)}`,
  );
  const text = `name\tcodons\tscored_tokens\t${kind}\tmean_per_token\n${rows.join('\n')}\n`;
  if (a.output) writeFileSync(a.output, text);
  else process.stdout.write(text);
  model.dispose();
}
