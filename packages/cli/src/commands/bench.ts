/**
 * `rnagrad bench`: inside the repository it runs the full benchmark suite (bench/run.ts: every
 * kernel and a training step against the adapter's ceilings and peer engines); installed on its
 * own it times a few matmuls with a small built-in loop.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as T from '@rnagrad/tensor';
import type { CommandSpec, Parsed } from '../args.js';
import { describeAdapter, initRuntime } from '../runtime.js';

const flags = {
  quick: { type: 'bool', default: true, help: 'smaller sizes and fewer samples (--no-quick: the full suite)' },
  only: { type: 'string', meta: 'CASES', help: 'repository suite: comma-separated cases (e.g. matmul,softmax)' },
  builtin: { type: 'bool', help: 'the built-in matmul timing even inside the repository' },
  size: { type: 'int', min: 16, max: 8192, default: 512, help: 'built-in: the largest square matmul' },
  reps: { type: 'int', min: 1, max: 1000, default: 5, help: 'built-in: timed repetitions per size' },
} as const;

export const BENCH: CommandSpec<typeof flags> = {
  name: 'bench',
  summary: "Benchmarks kernels: the repository's bench suite when run from a checkout, else a built-in matmul timing.",
  usage: 'rnagrad bench [options]',
  flags,
  examples: ['rnagrad bench --only matmul', 'rnagrad bench --builtin --size 1024'],
};

const repoBench = fileURLToPath(new URL('../../../../bench/run.ts', import.meta.url));

export async function runBench(a: Parsed<typeof flags>): Promise<void> {
  if (!a.builtin && existsSync(repoBench)) {
    const args = [
      '--import',
      'tsx',
      repoBench,
      ...(a.quick ? ['--quick'] : []),
      ...(a.only ? [`--only=${a.only}`] : []),
    ];
    process.stderr.write(`running the repository bench: node ${args.join(' ')}\n`);
    const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
    return;
  }
  const rt = await initRuntime();
  process.stdout.write(`built-in matmul timing on ${describeAdapter(rt)}\n`);
  for (let n = Math.min(128, a.size); n <= a.size; n *= 2) {
    const x = T.keep(T.randn([n, n]));
    const y = T.keep(T.randn([n, n]));
    const once = async () => {
      const z = T.matmul(x, y);
      await rt.sync();
      z.dispose();
    };
    await once(); // compiles the pipeline
    const times: number[] = [];
    for (let r = 0; r < a.reps; r++) {
      const t0 = performance.now();
      await once();
      times.push(performance.now() - t0);
    }
    times.sort((p, q) => p - q);
    const ms = times[Math.floor(times.length / 2)]!;
    process.stdout.write(
      `  matmul ${n}×${n}×${n}: ${ms.toFixed(2)} ms median of ${a.reps}, ${((2 * n ** 3) / ms / 1e6).toFixed(2)} ` +
        `GFLOP/s\n`,
    );
    x.dispose();
    y.dispose();
  }
}
