// Runs every package's uvu tests and those of the learn path and the kernel lab (Node, on the
// WebGPU adapter the runtime finds), then the line-length check (scripts/check-lines.ts), then the
// browser subset in headless Chromium, the Node-equals-browser training test
// (scripts/node-browser-parity.ts) and the app's end-to-end test (packages/app/scripts/e2e.ts), then
// the pack-and-install test (scripts/pack/pack-test.ts: the tarballs installed by npm outside the
// workspace, in Node and in a browser bundle), and prints one closing line: "tests: N passed, M failed".
// Usage: node scripts/test.mjs [package ... | learn | lab | pack] [--no-browser] [--no-pack] [--lines]
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const skipBrowser = args.includes('--no-browser');
const skipPack = args.includes('--no-pack');
const wanted = args.filter((a) => !a.startsWith('--') && a !== 'pack');
const packOnly = args.includes('pack') && !wanted.length;
/** Test folders outside the packages: the learn path (examples and docs), the kernel lab. */
const EXTRA_SUITES = { learn: 'examples/learn/test', lab: 'lab/test' };
const suiteDir = (name) => EXTRA_SUITES[name] ?? join('packages', name, 'test');
const all = [
  ...readdirSync('packages').filter((p) => existsSync(join('packages', p, 'test'))),
  ...Object.keys(EXTRA_SUITES).filter((name) => existsSync(EXTRA_SUITES[name])),
];
const packages = packOnly ? [] : wanted.length ? wanted : all;

function run(cmd, argv) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.on('close', (code) => resolve({ code, out }));
  });
}

let passed = 0;
let failed = 0;
let broken = false;
const started = Date.now();
for (const pkg of packages) {
  console.log(`\n=== ${EXTRA_SUITES[pkg] ? pkg : `@rnagrad/${pkg}`}`);
  const { code, out } = await run(process.execPath, [
    '--import',
    'tsx',
    'node_modules/uvu/bin.js',
    suiteDir(pkg),
    '\\.test\\.ts$',
  ]);
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    broken = true;
    failed += 1;
    console.log(`!! ${pkg}: runner crashed (exit ${code})`);
    continue;
  }
  passed += ok;
  failed += total - ok;
  if (code !== 0 && total === ok) {
    broken = true;
    failed += 1;
  }
}
/** Runs a script that ends with "<name>: N passed, M failed" and adds its counts. */
async function suite(title, name, script) {
  console.log(`\n=== ${title}`);
  const { code, out } = await run(process.execPath, ['--import', 'tsx', script]);
  const m = new RegExp(`${name}: (\\d+) passed, (\\d+) failed`).exec(out);
  if (!m) {
    broken = true;
    failed += 1;
    console.log(`!! ${name} runner crashed (exit ${code})`);
  } else {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
}
if ((!wanted.length && !packOnly) || args.includes('--lines')) {
  await suite('lines: at most 120 characters in .ts files outside WGSL templates', 'lines', 'scripts/check-lines.ts');
}
if ((!skipBrowser && !wanted.length && !packOnly) || args.includes('--browser')) {
  await suite('browser (headless Chromium, WebGPU)', 'browser', 'scripts/browser-tests.ts');
  await suite('Node equals browser: 50 training steps, same losses', 'parity', 'scripts/node-browser-parity.ts');
  await suite('app: the built app end to end in headless Chromium', 'app', 'packages/app/scripts/e2e.ts');
}
if ((!skipPack && !wanted.length) || packOnly) {
  await suite(
    'pack: tarballs installed with npm outside the workspace (Node, browser bundle)',
    'pack',
    'scripts/pack/pack-test.ts',
  );
}
console.log(`\ntook ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || broken ? 1 : 0);
