/**
 * Collects the runs of run.sh into results.json (next to this file) and prints the two tables.
 *   node --import tsx experiments/rinalmo-downstream/summarize.ts [OUT_DIR]
 * The "no pairs" row is scored here on the whole held-out family with the same metric code.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { meanScores, leaveOneFamilyOut, structureScores } from '@rnagrad/models';
import { loadArchiveII } from '@rnagrad/models/node';

const out = process.argv[2] ?? '/tmp/rinalmo-downstream';
// Seconds of training plus test scoring, as each run recorded it (model loading and start-up not included).
const arm = (name: string) => {
  const r = JSON.parse(readFileSync(`${out}/${name}/results.json`, 'utf8'));
  return { ...r, wallSeconds: Math.round(r.seconds) };
};
const runs = Object.fromEntries(
  ['ss-pretrained', 'ss-random', 'ncrna-pretrained', 'ncrna-random'].map((n) => [n, arm(n)]),
);

const records = await loadArchiveII();
const family = leaveOneFamilyOut(records, 'tRNA').test;
const none = meanScores(
  family.map((r) => structureScores(r.partners, new Int32Array(r.sequence.length).fill(-1), { shift: true })),
);

const ss = [
  { arm: 'pre-trained nano encoder', ...runs['ss-pretrained'].test, seconds: runs['ss-pretrained'].wallSeconds },
  { arm: 'random nano encoder', ...runs['ss-random'].test, seconds: runs['ss-random'].wallSeconds },
  {
    arm: `no pairs (all ${family.length} tRNA)`,
    f1: none.f1,
    f1Exact: none.f1,
    precision: none.precision,
    recall: none.recall,
    threshold: null,
    seconds: 0,
  },
];
const ncrna = [
  { arm: 'pre-trained nano encoder', ...runs['ncrna-pretrained'].test, seconds: runs['ncrna-pretrained'].wallSeconds },
  { arm: 'random nano encoder', ...runs['ncrna-random'].test, seconds: runs['ncrna-random'].wallSeconds },
];
writeFileSync(
  new URL('results.json', import.meta.url),
  `${JSON.stringify({ secondaryStructure: ss, ncrna, runs }, null, 1)}\n`,
);

const f = (v: unknown) => (typeof v === 'number' ? v.toFixed(3) : '–');
console.log(
  '| ArchiveII, test family tRNA | mean F1 (±1) | mean F1 (exact) | precision | recall | threshold | wall time |',
);
console.log('|---|---|---|---|---|---|---|');
for (const r of ss)
  console.log(
    `| ${r.arm} | ${f(r.f1)} | ${f(r.f1Exact)} | ${f(r.precision)} | ${f(r.recall)} | ${f(r.threshold)} | ${r.seconds} s |`,
  );
console.log('\n| nRC (test duplicates of train removed) | accuracy | macro F1 | weighted F1 | wall time |');
console.log('|---|---|---|---|---|');
for (const r of ncrna)
  console.log(`| ${r.arm} | ${f(r.accuracy)} | ${f(r.macroF1)} | ${f(r.weightedF1)} | ${r.seconds} s |`);
