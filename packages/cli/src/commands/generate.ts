/** `rnagrad generate`: samples coding sequences from a causal HELM model. */
import { writeFileSync } from 'node:fs';
import { CodonTokenizer, normalizeCodingSequence } from '@rnagrad/tokenizers';
import { type GeneratedSequence, generate } from '@rnagrad/models';
import { type CommandSpec, type Parsed, UsageError } from '../args.js';
import { Progress } from '../progress.js';
import { initRuntime, loadHelm } from '../runtime.js';

const flags = {
  model: { type: 'string', meta: 'DIR', help: 'a causal model: checkpoint or run folder (required)' },
  num: { type: 'int', min: 1, max: 10000, default: 5, help: 'sequences to generate' },
  'max-codons': { type: 'int', min: 1, default: 300, help: 'codons per sequence at most, prompt included' },
  temperature: { type: 'number', min: 0, max: 100, default: 1, help: 'softmax temperature (0: greedy)' },
  'top-k': { type: 'int', min: 0, default: 0, help: 'sample from the k most likely tokens (0: all)' },
  'top-p': { type: 'number', min: 0, exclusiveMin: true, max: 1, default: 1, help: 'nucleus sampling mass (1: off)' },
  prompt: { type: 'string', meta: 'NT', help: "a 5' CDS prefix in nucleotides (whole codons), e.g. ATGAAA" },
  seed: { type: 'int', min: 0, max: 2 ** 32 - 1, default: 0, help: 'seed of the sampler' },
  format: {
    type: 'choice',
    choices: ['text', 'fasta', 'tsv', 'json'],
    default: 'text',
    help: 'text: codons, nucleotides and protein; fasta: nucleotides',
  },
  output: { type: 'string', meta: 'FILE', help: 'write there instead of stdout' },
} as const;

export const GENERATE: CommandSpec<typeof flags> = {
  name: 'generate',
  summary:
    'Samples coding sequences from a causal (helm-clm) model; stops at <eos>; prints codons, nucleotides and the ' +
    'translated protein.',
  usage: 'rnagrad generate --model DIR [options]',
  flags,
  examples: ['rnagrad generate --model runs/clm --num 3 --prompt ATGAAA --temperature 0.8 --top-p 0.95 --seed 1'],
};

function promptIds(prompt: string | undefined): Int32Array {
  if (prompt === undefined || prompt === '') return new Int32Array(0);
  if (!/^[ACGTUacgtu]+$/.test(prompt))
    throw new UsageError(`--prompt must be nucleotides A, C, G, T/U, got "${prompt}"`);
  const nt = normalizeCodingSequence(prompt);
  if (nt.length % 3 !== 0) throw new UsageError(`--prompt has ${nt.length} nucleotides, not whole codons`);
  return new CodonTokenizer().encode(nt, { addSpecialTokens: false });
}

function render(seqs: GeneratedSequence[], format: string): string {
  switch (format) {
    case 'fasta':
      return seqs
        .map((s, i) => `>gen${i + 1} codons=${s.ids.length} finished=${s.finished}\n${s.nucleotides}\n`)
        .join('');
    case 'tsv':
      return (
        `name\tcodons\tfinished\tends_with_stop\tnucleotides\tprotein\n` +
        `${seqs
          .map(
            (s, i) =>
              `gen${i + 1}\t${s.ids.length}\t${s.finished}\t${s.endsWithStop}\t${s.nucleotides}\t${s.protein}\n`,
          )
          .join('')}`
      );
    case 'json':
      return seqs
        .map(
          (s, i) =>
            `${JSON.stringify({
              name: `gen${i + 1}`,
              codons: s.codons,
              nucleotides: s.nucleotides,
              protein: s.protein,
              finished: s.finished,
              endsWithStop: s.endsWithStop,
            })}\n`,
        )
        .join('');
    default:
      return seqs
        .map(
          (s, i) =>
            `>gen${i + 1}  ${s.ids.length} codons, ended by ${s.finished === 'eos' ? '<eos>' : 'the length limit'}` +
            `${s.endsWithStop ? ', ends with a stop codon' : ''}\n` +
            `codons:      ${s.codons.join(' ')}\nnucleotides: ${s.nucleotides}\nprotein:     ${s.protein}\n`,
        )
        .join('\n');
  }
}

export async function runGenerate(a: Parsed<typeof flags>): Promise<void> {
  if (a.model === undefined) throw new UsageError('--model DIR is required');
  const prompt = promptIds(a.prompt);
  await initRuntime();
  const { model, dir } = await loadHelm(a.model, 'clm', 'generate');
  if (prompt.length >= a['max-codons'])
    throw new UsageError(`--prompt has ${prompt.length} codons, not fewer than --max-codons ${a['max-codons']}`);
  process.stderr.write(`model: ${dir}; compiling shaders… (first token)\n`);
  const progress = new Progress({ total: a['max-codons'] - prompt.length, unit: 'token', every: 50 });
  const seqs = await generate(model, {
    count: a.num,
    prompts: [prompt],
    maxCodons: a['max-codons'],
    temperature: a.temperature,
    topK: a['top-k'],
    topP: a['top-p'],
    seed: a.seed,
    onStep: (step, running) => progress.update(step, running, `${running} of ${a.num} running`),
  });
  progress.finish();
  const text = render(seqs, a.format);
  if (a.output) writeFileSync(a.output, text);
  else process.stdout.write(text);
  model.dispose();
}
