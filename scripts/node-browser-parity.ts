/**
 * The Node-equals-browser test: scripts/parity/parity-run.ts (the shared trainer on a tiny causal
 * HELM model, fixed seed, config and data) runs in Node on Dawn and, bundled by esbuild for the
 * browser, in headless Chromium on WebGPU; the per-step losses of the 50 steps must agree to ≤ 1e-5.
 * Prints "parity: N passed, M failed".
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import * as T from '@rnagrad/tensor';
import { chromiumMissing, launchChromium } from './chromium.js';
import { PARITY_STEPS, type ParityReport, parityRun } from './parity/parity-run.js';

const TOLERANCE = 1e-5;
const ECOLI = 'ecoli_k12_cds.csv.gz';
const corpus = readFileSync(`packages/models/data/${ECOLI}`);
let passed = 0;
let failed = 0;
function result(ok: boolean, name: string, detail = ''): void {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? '✓' : '✘'} ${name}${detail && !ok ? `\n    ${detail}` : ''}`);
}

const PAGE = '<!doctype html><meta charset="utf-8"><script type="module" src="/parity.js"></script>';

async function inChromium(): Promise<ParityReport> {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  const bundle = await build({
    entryPoints: ['scripts/parity/browser-entry.ts'],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0]!.text;
  const server = createServer((req, res) => {
    if (req.url === '/parity.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else if (req.url === `/${ECOLI}`) res.writeHead(200, { 'content-type': 'application/gzip' }).end(corpus);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const pageError = new Promise<never>((_, reject) => page.on('pageerror', (err) => reject(err)));
    await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
    const report = () => (window as unknown as { __rnagradParity?: unknown }).__rnagradParity;
    const done = page.waitForFunction(report, null, { timeout: 240_000 });
    await Promise.race([done, pageError]);
    return await page.evaluate(() => (window as unknown as { __rnagradParity: ParityReport }).__rnagradParity);
  } finally {
    await browser.close();
    server.close();
  }
}

const summary = (r: ParityReport) =>
  `${PARITY_STEPS} steps in ${(r.ms / 1000).toFixed(1)} s, ` +
  `loss ${r.losses[0]?.toFixed(5)} → ${r.losses.at(-1)?.toFixed(5)}`;

try {
  const node = await parityRun(corpus);
  T.destroyRuntime();
  console.log(`    node    (${node.adapter}): ${summary(node)}`);
  const browser = await inChromium();
  if (browser.error) throw new Error(`in the browser: ${browser.error}`);
  console.log(`    browser (${browser.adapter || 'navigator.gpu'}): ${summary(browser)}`);
  const hosts = `hosts ${node.host}, ${browser.host}`;
  result(node.host === 'node' && browser.host === 'browser', 'the runs happened in Node and in the browser', hosts);
  const counts = node.losses.length === PARITY_STEPS && browser.losses.length === PARITY_STEPS;
  const logged = `node ${node.losses.length}, browser ${browser.losses.length}`;
  result(counts, `both runs logged ${PARITY_STEPS} steps`, logged);
  const diffs = node.losses.map((l, i) => Math.abs(l - (browser.losses[i] ?? NaN)));
  const worst = diffs.reduce((w, d, i) => (!(d <= diffs[w]!) ? i : w), 0);
  const agree = counts && node.losses.every(Number.isFinite) && diffs.every((d) => d <= TOLERANCE);
  const identical = diffs.filter((d) => d === 0).length;
  result(
    agree,
    `per-step losses agree to ≤ ${TOLERANCE} (${identical} of ${diffs.length} bit-identical)`,
    `largest difference ${diffs[worst]?.toExponential(2)} at step ${worst + 1}: ` +
      `node ${node.losses[worst]}, browser ${browser.losses[worst]}`,
  );
  const falls = node.losses.at(-1)! < node.losses[0]!;
  result(falls, 'the loss falls over the run', `${node.losses[0]} → ${node.losses.at(-1)}`);
} catch (err) {
  result(false, 'Node-equals-browser run', (err as Error).stack ?? String(err));
}
console.log(`parity: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
