/**
 * The lab's harness, llm.c dev/cuda style: run chosen versions of a kernel side by side, validate
 * each against the float64 twin, then time it (warm-up launches, then timed launches, each waited
 * for), and print one table.
 */
import * as T from '@rnagrad/tensor';
import type { KernelQueue } from '@rnagrad/kernels-wgsl';

/** One version of a kernel: what it is, and how to launch it on the problem's GPU buffers. */
export interface LabVersion<P> {
  name: string;
  /** Where the kernel lives and what changed from the version before. */
  about: string;
  launch(queue: KernelQueue, problem: P): void;
}

/** A kernel's lab: its versions, the problem it runs on, the twin's answer and the work done per launch. */
export interface LabKernel<P, O> {
  name: string;
  /** Usage lines of its size options, for --help. */
  options: string;
  versions: LabVersion<P>[];
  /** Builds inputs (GPU and CPU) from the parsed options; `describe` says the size in words. */
  setup(opts: O): Promise<{
    problem: P;
    describe: string;
    reference: Float64Array;
    output: T.Tensor;
    tolerance: number;
    work: Work;
    dispose(): void;
  }>;
  parse(flags: Map<string, string>): O;
}

/** What one launch does, to turn a time into a rate. */
export interface Work {
  unit: 'GFLOP/s' | 'GB/s';
  amount: number;
}

export interface LabRow {
  version: number;
  name: string;
  maxError: number;
  valid: boolean;
  bestMs: number;
  medianMs: number;
  rate: number;
}

/** Runs versions (1-based) of `kernel`: validates each, times the valid ones `reps` times after `warmup` launches. */
export async function runLab<P, O>(
  kernel: LabKernel<P, O>,
  versions: number[],
  opts: O,
  timing: { warmup: number; reps: number },
  log = console.log,
): Promise<LabRow[]> {
  const rt = T.runtime();
  const { problem, describe, reference, output, tolerance, work, dispose } = await kernel.setup(opts);
  const adapter = rt.adapter.description || rt.adapter.vendor;
  log(`${kernel.name} ${describe}; ${adapter}; ${timing.reps} timed launches after ${timing.warmup} warm-up`);
  log(
    `${' v'.padEnd(4)}${'version'.padEnd(58)}${'max |Δ| vs twin'.padEnd(18)}` +
      `${'best ms'.padStart(9)}${'median ms'.padStart(11)}${work.unit.padStart(10)}`,
  );
  const rows: LabRow[] = [];
  try {
    for (const v of versions) {
      const version = kernel.versions[v - 1]!;
      T.assign(output, NaN); // a version that writes nothing cannot pass
      version.launch(rt.queue, problem);
      const got = await output.dataF64();
      let maxError = 0;
      for (let i = 0; i < got.length; i++)
        maxError = Math.max(maxError, Number.isNaN(got[i]!) ? Infinity : Math.abs(got[i]! - reference[i]!));
      const valid = maxError <= tolerance;
      const times: number[] = [];
      if (valid) {
        for (let i = 0; i < timing.warmup; i++) version.launch(rt.queue, problem);
        await rt.sync();
        for (let i = 0; i < timing.reps; i++) {
          const start = performance.now();
          version.launch(rt.queue, problem);
          await rt.sync();
          times.push(performance.now() - start);
        }
      }
      times.sort((a, b) => a - b);
      const bestMs = times[0] ?? NaN;
      const medianMs = times[Math.floor(times.length / 2)] ?? NaN;
      const row = {
        version: v,
        name: version.name,
        maxError,
        valid,
        bestMs,
        medianMs,
        rate: work.amount / (bestMs / 1000) / 1e9,
      };
      rows.push(row);
      const err = `${maxError.toExponential(1)} ${valid ? 'ok' : 'FAIL'}`;
      log(
        `${String(v).padStart(2).padEnd(4)}${version.name.padEnd(58)}${err.padEnd(18)}` +
          `${fmt(bestMs).padStart(9)}${fmt(medianMs).padStart(11)}${fmt(row.rate).padStart(10)}`,
      );
    }
  } finally {
    dispose();
  }
  return rows;
}

const fmt = (x: number) => (Number.isNaN(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** A mistake in the command line: reported as one line with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

/** Runs a command's `main` when its file is the process's entry point: exit code, usage errors on one line. */
export function runAsCommand(moduleUrl: string, command: string, main: (argv: string[]) => Promise<number>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(
        err instanceof UsageError ? `${command}: ${err.message} (see ${command} --help)` : (err.stack ?? String(err)),
      );
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}

/** "3", "1..4", "1,3,5", or nothing (every version); each in 1..count. */
export function parseVersions(spec: string | undefined, count: number, kernel: string): number[] {
  const all = Array.from({ length: count }, (_, i) => i + 1);
  if (spec === undefined) return all;
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:\.\.(\d+))?$/.exec(part.trim());
    if (!m)
      throw new UsageError(`bad version list "${spec}": write a number, a range like 1..${count} or a list like 1,3`);
    const [lo, hi] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (lo > hi) throw new UsageError(`bad version range "${part}": it runs backwards`);
    for (let v = lo; v <= hi; v++) {
      if (v < 1 || v > count) throw new UsageError(`${kernel} has versions 1..${count}; there is no version ${v}`);
      out.push(v);
    }
  }
  return out;
}
