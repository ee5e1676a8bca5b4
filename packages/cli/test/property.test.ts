/** `rnagrad property` as a user meets it: --help, bad invocations (one line, exit 2), a tiny scratch run. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/rnagrad.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'rnagrad-property-'));
const at = (name: string) => join(root, name);
const DAWN_NOISE = /vkCreateInstance|VK_ERROR|CheckVkSuccessImpl|^\s*$/;

function cli(args: string[]): { code: number | null; stdout: string; stderr: string[] } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.split('\n').filter((l) => !DAWN_NOISE.test(l)) };
}

// A CodonBERT-style CSV whose value counts GCU codons: learnable by the scratch head.
const rows: string[] = [];
let state = 7;
const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
for (let i = 0; i < 60; i++) {
  const codons = Array.from({ length: 8 }, () =>
    next() < 0.35 ? 'GCU' : ['AAA', 'CUG', 'GAA', 'UUC'][Math.floor(next() * 4)],
  );
  rows.push(
    `AUG${codons.join('')},${codons.filter((c) => c === 'GCU').length},toy,` +
      `${i < 36 ? 'train' : i < 48 ? 'val' : 'test'}`,
  );
}
writeFileSync(at('toy.csv'), `Sequence,Value,Dataset,Split\n${rows.join('\n')}\n`);
writeFileSync(at('bad.csv'), 'Sequence,Value,Dataset,Split\nAUGXYZAAA,1,toy,train\n');

test('--help names the tasks, the modes and an example', () => {
  const r = cli(['property', '--help']);
  assert.is(r.code, 0);
  for (const s of ['--task mrfp|tc|cov|mlos|ecoli', '--mode frozen|full|scratch', 'real codons only', 'examples:'])
    assert.ok(r.stdout.includes(s), s);
});

const BAD: [string[], RegExp][] = [
  [['property', '--data', 'toy.csv'], /--task is required/],
  [['property', '--task', 'mrfp'], /--data PATH is required/],
  [['property', '--task', 'nope', '--data', 'toy.csv'], /--task must be one of mrfp, tc, cov, mlos, ecoli, got "nope"/],
  [['property', '--task', 'mrfp', '--data', 'toy.csv'], /--mode frozen needs --from DIR/],
  [
    ['property', '--task', 'mrfp', '--data', 'toy.csv', '--mode', 'scratch', '--from', 'x'],
    /--from and --mode scratch exclude each other/,
  ],
  [
    ['property', '--task', 'mrfp', '--data', 'toy.csv', '--mode', 'scratch', '--fold', '2'],
    /--fold applies to --task ecoli only/,
  ],
  [
    ['property', '--task', 'mrfp', '--data', 'missing.csv', '--mode', 'scratch'],
    /--data: .*missing\.csv: cannot read the data set: no such file/,
  ],
  [
    ['property', '--task', 'mrfp', '--data', 'bad.csv', '--mode', 'scratch'],
    /bad\.csv line 2: letter 'X' at nucleotide 4 is not A, C, G or U/,
  ],
  [['property', '--task', 'mrfp', '--data', 'toy.csv', '--from', 'no-such-run'], /--from: .*no-such-run/],
];

test(`${BAD.length} bad invocations: one line on stderr, exit code 2`, () => {
  for (const [args, pattern] of BAD) {
    const r = cli(args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}, ${r.stderr.join(' | ')}`);
    const errors = r.stderr.filter((l) => l.startsWith('rnagrad property:'));
    assert.is(errors.length, 1, r.stderr.join('\n'));
    assert.match(errors[0]!, pattern);
  }
});

test('a tiny scratch run writes results.json with test Spearman and Pearson', () => {
  const r = cli([
    'property',
    '--task',
    'mrfp',
    '--data',
    'toy.csv',
    '--mode',
    'scratch',
    '--epochs',
    '4',
    '--batch',
    '8',
    '--lr',
    '0.01',
    '--filters',
    '4',
    '--embedding-size',
    '8',
    '--out',
    'run',
  ]);
  assert.is(r.code, 0, r.stderr.join('\n'));
  assert.match(r.stdout, /test: spearman -?\d\.\d{4}, pearson -?\d\.\d{4}/);
  const saved = JSON.parse(readFileSync(at('run/results.json'), 'utf8'));
  assert.is(saved.mode, 'scratch');
  assert.ok(Number.isFinite(saved.test.spearman) && saved.command.includes('--task mrfp'));
});

test.run();
