/**
 * Runs scripts/browser-suite.ts in headless Chromium with WebGPU (Debian's /usr/bin/chromium on
 * SwiftShader when there is no GPU), served from 127.0.0.1, and prints "browser: N passed, M failed".
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import { chromiumMissing, launchChromium } from './chromium.js';

const missing = chromiumMissing();
if (missing) {
  console.log(`browser: ${missing}`);
  console.log('browser: 0 passed, 1 failed');
  process.exit(1);
}

const bundle = await build({
  entryPoints: ['scripts/browser-suite.ts'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
});
const script = bundle.outputFiles[0]!.text;
const html =
  `<!doctype html><meta charset="utf-8"><title>rnagrad browser tests</title><script type="module" ` +
  `src="/suite.js"></script>`;
const fixtures = new Map(
  ['helm_fixture', 'mha_fixture', 'rinalmo_tiny_official', 'rinalmo_tiny_mm28', 'rinalmo_tiny_expected'].map((name) => [
    `/${name}.safetensors`,
    readFileSync(`packages/models/fixtures/${name}.safetensors`),
  ]),
);
const server = createServer((req, res) => {
  const fixture = fixtures.get(req.url ?? '');
  if (fixture) res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(fixture);
  else if (req.url === '/suite.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
  else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as { port: number }).port;

const browser = await launchChromium();
let failed = 0;
let passed = 0;
try {
  const page = await browser.newPage();
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => (window as unknown as { __rnagradResults?: unknown }).__rnagradResults, null, {
    timeout: 300_000,
  });
  const results = (await page.evaluate(
    () => (window as unknown as { __rnagradResults: unknown }).__rnagradResults,
  )) as { name: string; ok: boolean; error?: string }[];
  for (const r of results) {
    console.log(`${r.ok ? '✓' : '✘'} ${r.name}${r.error ? `\n    ${r.error.split('\n').join('\n    ')}` : ''}`);
    if (r.ok) passed++;
    else failed++;
  }
} catch (err) {
  console.log(`browser run failed: ${(err as Error).message}`);
  failed++;
} finally {
  await browser.close();
  server.close();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
