/**
 * pnpm lab <kernel> [versions] [options]: the kernel lab (see lab/README.md). Every version of a
 * kernel, from the naive first one to the kept ones, validated against the float64 twin and timed.
 */
import * as T from '@rnagrad/tensor';
import { type LabKernel, UsageError, parseVersions, runAsCommand, runLab } from './harness.js';
import { matmulLab } from './matmul.js';
import { softmaxLab } from './softmax.js';

export const LABS: Record<string, LabKernel<never, never>> = {
  matmul: matmulLab as unknown as LabKernel<never, never>,
  softmax: softmaxLab as unknown as LabKernel<never, never>,
};

function help(): string {
  const kernels = Object.values(LABS).map((k) => {
    const versions = k.versions
      .map((v, i) => `      ${String(i + 1).padStart(2)}  ${v.name.padEnd(58)} ${v.about}`)
      .join('\n');
    return `  ${k.name} ${k.options}\n${versions}`;
  });
  return `pnpm lab <kernel> [versions] [--reps N] [--warmup N] [size options]

Runs versions of a kernel side by side on one problem: each is validated against the float64
twin (max |Δ| and ok/FAIL), then timed (best and median of --reps launches, default 5, after
--warmup launches, default 1; each launch waited for). versions: 3, 1..4 or 1,3 (default: all).

kernels and their versions:
${kernels.join('\n\n')}

examples: pnpm lab matmul 1..5 --size 256    pnpm lab softmax 1,3 --shape 4096,256`;
}

const COUNT = (flag: string, value: string | undefined, min: number): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > 1000)
    throw new UsageError(`${flag} needs an integer in ${min}..1000, got "${value}"`);
  return n;
};

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(help());
    return 0;
  }
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) positional.push(a);
    else {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${a} needs a value`);
      flags.set(a.slice(2), value);
      i++;
    }
  }
  const [name, spec, ...extra] = positional;
  if (!name) throw new UsageError(`name a kernel: ${Object.keys(LABS).join(', ')}`);
  const kernel = LABS[name];
  if (!kernel) throw new UsageError(`unknown kernel "${name}"; the lab has: ${Object.keys(LABS).join(', ')}`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const versions = parseVersions(spec, kernel.versions.length, kernel.name);
  const timing = {
    warmup: COUNT('--warmup', flags.get('warmup') ?? '1', 0),
    reps: COUNT('--reps', flags.get('reps') ?? '5', 1),
  };
  flags.delete('warmup');
  flags.delete('reps');
  const known: string[] = kernel.options.match(/--\w+/g) ?? [];
  const unknown = [...flags.keys()].find((f) => !known.includes(`--${f}`));
  if (unknown) throw new UsageError(`unknown option --${unknown} for ${kernel.name} (its options: ${kernel.options})`);
  const opts = kernel.parse(flags);
  await T.init({ quiet: true });
  const rows = await runLab(kernel, versions, opts, timing);
  return rows.every((r) => r.valid) ? 0 : 1;
}

runAsCommand(import.meta.url, 'pnpm lab', main);
