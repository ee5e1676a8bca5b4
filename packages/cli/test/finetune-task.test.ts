/**
 * `rnagrad finetune --task …` as a user meets it: its --help, mistakes caught before any GPU work
 * (one line on stderr, exit code 2), and a tiny regression run that writes results.json.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/rnagrad.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'rnagrad-finetune-task-'));
const DAWN_NOISE = /vkCreateInstance|VK_ERROR|CheckVkSuccessImpl|^\s*$/;

function cli(args: string[]): { code: number | null; stdout: string; stderr: string[] } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.split('\n').filter((l) => !DAWN_NOISE.test(l)) };
}

const csv = join(root, 'values.csv');
writeFileSync(
  csv,
  `seq,y\n` +
    `${Array.from({ length: 12 }, (_, i) => `${'ACGU'.repeat(2 + (i % 3))},${(i % 3) + 0.5 * (i % 2)}`).join('\n')}\n`,
);

test('finetune --task has its own help; plain finetune --help points to it', () => {
  const help = cli(['finetune', '--task', 'ss', '--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /usage: rnagrad finetune --task ss\|ncrna\|regression/);
  assert.match(help.stdout, /--mode frozen\|full\|gradual/);
  assert.match(cli(['finetune', '--help']).stdout, /rnagrad finetune --task ss\|ncrna\|regression --help/);
});

const BAD: [string[], RegExp][] = [
  [['finetune', '--task', 'pairs'], /--task must be one of ss, ncrna, regression, got "pairs"/],
  [
    ['finetune', '--task', 'ncrna', '--test-family', '5s'],
    /--test-family does not apply to --task ncrna \(only to ss\)/,
  ],
  [['finetune', '--task', 'ss', '--batch', '4'], /--batch does not apply to --task ss/],
  [['finetune', '--task', 'ss', '--cache-features'], /--cache-features does not apply to --task ss/],
  [['finetune', '--task', 'ncrna', '--cache-features'], /--cache-features needs --mode frozen/],
  [['finetune', '--task', 'ss', '--unfreeze-every', '5'], /--unfreeze-every only applies to --mode gradual/],
  [['finetune', '--task', 'ss', '--lr', '1e-4', '--min-lr', '1e-3'], /--min-lr 0.001 is above --lr 0.0001/],
];

test(`${BAD.length} bad invocations: one line on stderr, exit code 2`, () => {
  for (const [args, message] of BAD) {
    const r = cli(args);
    assert.is(r.code, 2, args.join(' '));
    assert.is(r.stderr.length, 1, `${args.join(' ')}: ${r.stderr.join(' | ')}`);
    assert.match(r.stderr[0]!, message);
  }
});

test('a regression run on a CSV without --data fails by name; with it, writes results.json and a checkpoint', () => {
  const missing = cli(['finetune', '--task', 'regression', '--config', 'pico']);
  assert.is(missing.code, 2);
  assert.match(missing.stderr.at(-1)!, /--data FILE is required for --task regression/);
  const out = join(root, 'run');
  const r = cli([
    'finetune',
    '--task',
    'regression',
    '--data',
    csv,
    '--sequence-column',
    'seq',
    '--value-column',
    'y',
    '--config',
    'pico',
    '--channels',
    '4',
    '--blocks',
    '1',
    '--steps',
    '2',
    '--batch',
    '4',
    '--eval-every',
    '2',
    '--mode',
    'gradual',
    '--unfreeze-every',
    '1',
    '--out',
    out,
  ]);
  assert.is(r.code, 0, r.stderr.join('\n'));
  assert.match(r.stdout, /targets scaled by mean/);
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  assert.is(results.steps, 2);
  assert.equal(Object.keys(results.test).sort(), ['mse', 'pearson', 'r2', 'spearman']);
  assert.ok(existsSync(join(out, 'checkpoint-000002', 'model.safetensors')));
});

test('ncrna --cache-features: one encoder pass per split, the head trained on a sample of --train-limit', () => {
  const nrc = join(root, 'nrc.csv');
  const row = (i: number, split: string) =>
    `x${split}${i},${i % 2 ? 'tRNA' : '5S_rRNA'},${split},${i % 2 ? 'GGGCCC' : 'AAUUA'}${'ACGU'.repeat(1 + (i % 3))}`;
  const rows = [
    ...Array.from({ length: 24 }, (_, i) => row(i, 'train')),
    ...Array.from({ length: 6 }, (_, i) => row(i, 'test')),
  ];
  writeFileSync(nrc, `id,label,split,sequence\n${rows.join('\n')}\n`);
  const out = join(root, 'cached');
  const r = cli(
    ['finetune', '--task', 'ncrna', '--data', nrc, '--config', 'pico', '--mode', 'frozen', '--cache-features'].concat([
      '--train-limit',
      '10',
      '--steps',
      '4',
      '--batch',
      '4',
      '--eval-every',
      '0',
      '--out',
      out,
    ]),
  );
  assert.is(r.code, 0, r.stderr.join('\n'));
  assert.match(r.stdout, /data: nRC, 13 classes: 10 train \/ \d+ validation \/ 6 test/);
  assert.match(r.stdout, /encoder features, train: 100% of 10 sequences/);
  assert.match(r.stdout, /encoder features, test: 100% of 6 sequences/);
  assert.not.match(r.stdout, /encoder features, validation/);
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  assert.is(results.steps, 4);
  assert.ok(results.setupSeconds > 0 && results.run.args['cache-features'] === true);
  assert.equal(Object.keys(results.test).sort(), ['accuracy', 'loss', 'macroF1', 'weightedF1']);
});

test.run();
