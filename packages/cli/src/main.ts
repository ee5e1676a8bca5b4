/**
 * The `rnagrad` command (`main(argv)`; `bin.ts` runs it). `rnagrad <command> --help` explains each; user mistakes
 * (bad flags, missing or malformed files, a checkpoint of the wrong model) print one line and exit with 2;
 * RNAGRAD_DEBUG=1 adds stack traces.
 */
import { type CommandSpec, type FlagSpecs, UsageError, helpText, parseFlags } from './args.js';
import { BENCH, runBench } from './commands/bench.js';
import { EMBED, runEmbed } from './commands/embed.js';
import { GENERATE, runGenerate } from './commands/generate.js';
import { INFO, runInfo } from './commands/info.js';
import { PROPERTY, runProperty } from './commands/property.js';
import { SCORE, runScore } from './commands/score.js';
import { FINETUNE, TRAIN, runTrain } from './commands/train.js';
import { FINETUNE_TASK, runFinetuneTask } from './commands/finetune-task.js';

interface Command {
  spec: CommandSpec<FlagSpecs>;
  run(args: never): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  train: { spec: TRAIN, run: (a: Parameters<typeof runTrain>[1]) => runTrain('train', a) },
  finetune: { spec: FINETUNE, run: (a: Parameters<typeof runTrain>[1]) => runTrain('finetune', a) },
  property: { spec: PROPERTY, run: runProperty },
  generate: { spec: GENERATE, run: runGenerate },
  score: { spec: SCORE, run: runScore },
  embed: { spec: EMBED, run: runEmbed },
  bench: { spec: BENCH, run: runBench },
  info: { spec: INFO, run: runInfo },
} as unknown as Record<string, Command>;

/** Up to the first full stop that ends a sentence ("E. coli" does not). */
const firstSentence = (text: string): string => text.split(/\.\s+(?=[A-Z])/)[0]!.replace(/\.$/, '');

const OVERVIEW = `usage: rnagrad <command> [options]

RNA language models on WebGPU: HELM codon models (masked and causal) and the RiNALMo nucleotide
encoder, trained and run on any WebGPU adapter (a GPU, or SwiftShader on the CPU).

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${firstSentence(c.spec.summary)}`)
  .join('\n')}
  finetune --task ss|ncrna|regression
            ${firstSentence(FINETUNE_TASK.summary)} (rnagrad finetune --task ss --help)

Run rnagrad <command> --help for its options and an example.

example:
  rnagrad train helm-clm --steps 200 --out runs/clm && rnagrad generate --model runs/clm --num 3`;

function fail(command: string | null, err: unknown): never {
  const prefix = command ? `rnagrad ${command}` : 'rnagrad';
  const message = err instanceof Error ? err.message : String(err);
  if (process.env.RNAGRAD_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.stderr.write(`${prefix}: ${message}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}

export async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${OVERVIEW}\n`);
    if (name === undefined) process.exitCode = 2;
    return;
  }
  if (name === '--version') {
    process.stdout.write('rnagrad 0.1.0\n');
    return;
  }
  // `finetune --task …` fine-tunes RiNALMo with a downstream head; plain `finetune` continues HELM.
  const withTask = name === 'finetune' && rest.some((r) => r === '--task' || r.startsWith('--task='));
  const command = withTask ? ({ spec: FINETUNE_TASK, run: runFinetuneTask } as unknown as Command) : COMMANDS[name];
  if (!command)
    fail(
      null,
      new UsageError(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')}; see rnagrad --help)`),
    );
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${helpText(command.spec)}\n`);
    if (name === 'finetune' && !withTask) {
      process.stdout.write('\nWith --task ss|ncrna|regression it fine-tunes a RiNALMo downstream head instead:\n');
      process.stdout.write('rnagrad finetune --task ss --help\n');
    }
    return;
  }
  try {
    const args = parseFlags(command.spec, rest);
    await command.run(args as never);
  } catch (err) {
    fail(name, err);
  }
}
