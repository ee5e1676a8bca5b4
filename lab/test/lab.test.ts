/**
 * The kernel lab: every version of every kernel validates against the float64 twin at small, odd
 * sizes; the CLI refuses bad input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { UsageError, parseVersions, runLab } from '../harness.js';
import { LABS } from '../lab.js';
import { runScript } from '../../examples/learn/test/run-example.js';

await T.init({ quiet: true });
const quiet = () => {};

const SMALL: Record<string, Map<string, string>> = {
  matmul: new Map([['shape', '37,29,45']]),
  softmax: new Map([['shape', '70,33']]),
};

for (const [name, kernel] of Object.entries(LABS)) {
  test(`${name}: every version matches the float64 twin at a small odd size`, async () => {
    const rows = await runLab(
      kernel,
      kernel.versions.map((_, i) => i + 1),
      kernel.parse(SMALL[name]!),
      { warmup: 0, reps: 1 },
      quiet,
    );
    assert.is(rows.length, kernel.versions.length);
    for (const r of rows) {
      assert.ok(r.valid, `${name} v${r.version} (${r.name}): max |Δ| ${r.maxError}`);
      assert.ok(r.bestMs > 0 && Number.isFinite(r.rate), `${name} v${r.version} was not timed`);
    }
  });
}

test('a version that computes the wrong thing fails validation', async () => {
  const kernel = LABS.softmax!;
  const broken = { ...kernel, versions: [{ ...kernel.versions[0]!, launch: () => {} }] }; // writes nothing: NaN stays
  const [row] = await runLab(broken, [1], kernel.parse(SMALL.softmax!), { warmup: 0, reps: 1 }, quiet);
  assert.is(row!.valid, false);
});

test('version lists: single, range, list; out of range and backwards ranges are refused', () => {
  assert.equal(parseVersions(undefined, 5, 'matmul'), [1, 2, 3, 4, 5]);
  assert.equal(parseVersions('2', 5, 'matmul'), [2]);
  assert.equal(parseVersions('1..3', 5, 'matmul'), [1, 2, 3]);
  assert.equal(parseVersions('1,4..5', 5, 'matmul'), [1, 4, 5]);
  assert.throws(
    () => parseVersions('6', 5, 'matmul'),
    (e: Error) => e instanceof UsageError && e.message === 'matmul has versions 1..5; there is no version 6',
  );
  assert.throws(() => parseVersions('0..2', 5, 'matmul'), /there is no version 0/);
  assert.throws(() => parseVersions('4..2', 5, 'matmul'), /runs backwards/);
  assert.throws(() => parseVersions('two', 5, 'matmul'), /bad version list "two"/);
});

test('pnpm lab: --help lists every version; bad kernels, versions and options exit 2 with a message', () => {
  const help = runScript('lab/lab.ts', ['--help']);
  assert.is(help.status, 0);
  for (const kernel of Object.values(LABS)) for (const v of kernel.versions) assert.match(help.stdout, v.name);
  const cases: [string[], string][] = [
    [['matmull'], 'unknown kernel "matmull"; the lab has: matmul, softmax'],
    [['matmul', '1..9'], 'matmul has versions 1..6; there is no version 7'],
    [['softmax', '1', '--size', '8'], 'unknown option --size for softmax'],
    [['matmul', '--size', '0'], 'matmul sizes must be 3 integers in 1..4096'],
    [['matmul', '--reps'], '--reps needs a value'],
    [[], 'name a kernel: matmul, softmax'],
  ];
  for (const [argv, message] of cases) {
    const r = runScript('lab/lab.ts', argv);
    assert.is(r.status, 2, `${argv.join(' ')}: exit ${r.status}`);
    assert.match(r.stderr, message);
  }
});

test('pnpm lab matmul 1..2 runs from the command line and prints a validated row per version', () => {
  const r = runScript('lab/lab.ts', ['matmul', '1..2', '--size', '24', '--reps', '1']);
  assert.is(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^ [12] {2}/.test(l));
  assert.is(rows.length, 2, r.stdout);
  for (const row of rows) assert.match(row, / ok /);
});

test.run();
