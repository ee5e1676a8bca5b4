/**
 * Collects the runs of run.sh into results.json (next to this file) and prints the tables. Arms
 * that have not finished (no results.json yet) are left out, so partial results can be saved.
 * Several OUT_DIRs (e.g. replicates with another SEED) give one row per arm and seed.
 *   node --import tsx experiments/rinalmo-downstream/summarize.ts [OUT_DIR …]
 * The "no pairs" rows are scored here on the whole held-out family with the same metric code.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { meanScores, leaveOneFamilyOut, structureScores } from '@rnagrad/models';
import { loadArchiveII } from '@rnagrad/models/node';

const outs = process.argv.length > 2 ? process.argv.slice(2) : ['/tmp/rinalmo-downstream'];
const ENCODERS = { pretrained: 'pre-trained nano encoder', random: 'random nano encoder' } as const;
// Secondary-structure arms per held-out family: run folder prefix → ArchiveII family name.
const FAMILIES = { ss: 'tRNA', ss5s: '5s' } as const;

// Wall time = data loading (+ the training split's encoder pass with --cache-features) + training + test scoring,
// as each run recorded it (process start-up and model loading not included).
type Metric = 'loss' | 'accuracy' | 'macroF1' | 'weightedF1' | 'f1' | 'f1Exact' | 'precision' | 'recall' | 'threshold';
type Run = Record<string, unknown> & { test: Partial<Record<Metric, number>>; wallSeconds: number; seed: number };
const runs: Record<string, Run> = {};
for (const out of outs)
  for (const prefix of [...Object.keys(FAMILIES), 'ncrna'])
    for (const encoder of Object.keys(ENCODERS)) {
      const file = `${out}/${prefix}-${encoder}/results.json`;
      if (!existsSync(file)) continue;
      const r = JSON.parse(readFileSync(file, 'utf8'));
      const seed = r.run.args.seed;
      runs[`${prefix}-${encoder}-seed${seed}`] = {
        ...r,
        seed,
        wallSeconds: Math.round((r.setupSeconds ?? 0) + r.seconds),
      };
    }
/** The runs of one arm (run folder prefix and encoder), by seed. */
const armRuns = (prefix: string, encoder: string) =>
  Object.entries(runs)
    .filter(([key]) => key.startsWith(`${prefix}-${encoder}-seed`))
    .map(([, r]) => r)
    .sort((a, b) => a.seed - b.seed);

const records = await loadArchiveII();
const secondaryStructure = [];
for (const [prefix, family] of Object.entries(FAMILIES)) {
  const arms = Object.entries(ENCODERS).flatMap(([encoder, name]) =>
    armRuns(prefix, encoder).map((r) => ({ name, r })),
  );
  if (arms.length === 0) continue;
  const held = leaveOneFamilyOut(records, family).test;
  for (const { name, r } of arms)
    secondaryStructure.push({ family, arm: name, seed: r.seed, steps: r.steps, ...r.test, seconds: r.wallSeconds });
  const none = meanScores(
    held.map((r) => structureScores(r.partners, new Int32Array(r.sequence.length).fill(-1), { shift: true })),
  );
  secondaryStructure.push({
    family,
    arm: `no pairs (all ${held.length} ${family})`,
    seed: null,
    steps: 0,
    f1: none.f1,
    f1Exact: none.f1,
    precision: none.precision,
    recall: none.recall,
    threshold: null,
    seconds: 0,
  });
}
const ncrna = Object.entries(ENCODERS).flatMap(([encoder, name]) =>
  armRuns('ncrna', encoder).map((r) => ({
    arm: name,
    seed: r.seed,
    steps: r.steps,
    ...r.test,
    setupSeconds: r.setupSeconds as number,
    seconds: r.wallSeconds,
  })),
);
writeFileSync(
  new URL('results.json', import.meta.url),
  `${JSON.stringify({ secondaryStructure, ncrna, runs }, null, 1)}\n`,
);

const f = (v: unknown) => (typeof v === 'number' ? v.toFixed(3) : '–');
console.log(
  '| ArchiveII, test family | arm | seed | steps | mean F1 (±1) | mean F1 (exact) | precision | recall | threshold ' +
    '| wall time |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of secondaryStructure)
  console.log(
    `| ${r.family} | ${r.arm} | ${r.seed ?? '–'} | ${r.steps} | ${f(r.f1)} | ${f(r.f1Exact)} | ` +
      `${f(r.precision)} | ${f(r.recall)} | ${f(r.threshold)} | ${r.seconds} s |`,
  );
console.log(
  '\n| nRC (test duplicates of train removed) | seed | steps | accuracy | macro F1 | weighted F1 | wall time |',
);
console.log('|---|---|---|---|---|---|---|');
for (const r of ncrna)
  console.log(
    `| ${r.arm} | ${r.seed} | ${r.steps} | ${f(r.accuracy)} | ${f(r.macroF1)} | ${f(r.weightedF1)} | ${r.seconds} s ` +
      `(features of the training split: ${Math.round(r.setupSeconds ?? 0)} s) |`,
  );
