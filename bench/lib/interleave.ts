/**
 * Runs tasks in alternating order over several rounds and pools their samples, so that load
 * changes on a shared machine hit every task of a comparison alike. Returns samples and medians.
 */
import { Bench } from 'tinybench';

export async function interleavedSamples(
  tasks: readonly (readonly [string, () => Promise<unknown> | unknown])[],
  opts: { rounds: number; iterations: number; firstWarmup: number },
): Promise<{ samples: Map<string, number[]>; median: Map<string, number> }> {
  const samples = new Map<string, number[]>(tasks.map(([name]) => [name, []]));
  for (let round = 0; round < opts.rounds; round++) {
    const bench = new Bench({
      iterations: opts.iterations,
      time: 0,
      warmupIterations: round === 0 ? opts.firstWarmup : 1,
      warmupTime: 0,
      retainSamples: true,
    });
    const order = round % 2 === 0 ? tasks : [...tasks].reverse();
    for (const [name, fn] of order) bench.add(name, fn);
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result;
      if (result.state !== 'completed')
        throw new Error(`${task.name}: ${result.state} ${'error' in result ? String(result.error) : ''}`);
      samples.get(task.name)!.push(...(result.latency.samples ?? []));
    }
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  return { samples, median: new Map([...samples].map(([name, xs]) => [name, median(xs)])) };
}
