/**
 * End-to-end test of the built app in headless Chromium (Debian's chromium, WebGPU on SwiftShader,
 * via scripts/chromium.ts): train and watch the step counter and the loss, pause, generate, save
 * and reload a checkpoint, resume, look inside; bad uploads, bad sequences and a wrong checkpoint
 * must show a message in the page; then the same for RiNALMo tiny (checkpoints of the other model
 * kind refused both ways); a browser without WebGPU gets the explanation. Screenshots go
 * to packages/app/artifacts/ (gitignored); --update-screenshots also refreshes packages/app/screenshots/.
 * Prints "app: N passed, M failed". Usage: node --import tsx packages/app/scripts/e2e.ts [--update-screenshots]
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { chromiumMissing, launchChromium } from '../../../scripts/chromium.js';
import { buildApp } from './bundle.js';
import { serveStatic } from './static-server.js';

const app = resolve(import.meta.dirname, '..');
const repo = resolve(app, '../..');
const artifacts = join(app, 'artifacts');
const started = Date.now();
let passed = 0;
let failed = 0;

function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

async function check(name: string, fn: () => Promise<void>): Promise<boolean> {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`✓ ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return true;
  } catch (err) {
    failed++;
    console.log(
      `✘ ${name}\n    ${String((err as Error).message)
        .split('\n')
        .join('\n    ')}`,
    );
    return false;
  }
}

const text = (page: Page, testid: string) => page.getByTestId(testid).first().innerText();
const stepOf = async (page: Page) => Number(await text(page, 'train-step'));

/** The error banner's text once it shows something matching `pattern`. */
async function expectError(page: Page, pattern: RegExp, what: string): Promise<void> {
  try {
    await page.waitForFunction(
      (source) => {
        const box = document.querySelector('[data-testid=error]') as HTMLElement | null;
        return !!box && !box.hidden && new RegExp(source).test(box.textContent ?? '');
      },
      pattern.source,
      { timeout: 20_000 },
    );
  } catch {
    const shown = await page.getByTestId('error').textContent();
    throw new Error(`${what}: expected an error matching ${pattern} in the page, it shows: ${JSON.stringify(shown)}`);
  }
  // Never a blank page: the controls are still there.
  assert(await page.getByTestId('train-start').isVisible(), `${what}: the page lost its controls`);
}

async function setValues(page: Page, values: Record<string, string>): Promise<void> {
  for (const [id, value] of Object.entries(values)) await page.locator(`#${id}`).fill(value);
}

/** Starts training and records (step, loss) until the counter reaches `steps`; asserts that the loss fell. */
async function trainUntil(page: Page, steps: number, ms: number): Promise<string> {
  await page.getByTestId('train-start').click();
  const seen: [number, number][] = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const step = await stepOf(page);
    if (step > 0 && seen.at(-1)?.[0] !== step) seen.push([step, Number(await text(page, 'train-loss'))]);
    if (step >= steps) break;
    await page.waitForTimeout(150);
  }
  assert(seen.length >= 4 && seen.at(-1)![0] >= steps, `only reached step ${seen.at(-1)?.[0] ?? 0}`);
  const mean = (xs: [number, number][]) => xs.reduce((s, [, l]) => s + l, 0) / xs.length;
  const [first, last] = [mean(seen.slice(0, 3)), mean(seen.slice(-3))];
  assert(last < first, `loss did not fall: ${first.toFixed(4)} → ${last.toFixed(4)}`);
  return (
    `loss ${first.toFixed(5)} (first steps) → ${last.toFixed(5)} (step ${seen.at(-1)![0]}), ` +
    `step time ${await text(page, 'step-time')}, ${await text(page, 'tokens-per-second')} tokens/s`
  );
}

async function pause(page: Page): Promise<void> {
  await page.getByTestId('train-pause').click();
  await page.waitForFunction(
    () => /paused at step/.test(document.querySelector('[data-testid=train-state]')?.textContent ?? ''),
    null,
    { timeout: 60_000 },
  );
}

async function waitForStep(page: Page, step: number): Promise<void> {
  await page.waitForFunction(
    (s) => document.querySelector('[data-testid=train-step]')?.textContent === String(s),
    step,
    { timeout: 20_000 },
  );
}

/** Resumes a reloaded run, sees it take two more steps, and pauses it. */
async function resumeTwoSteps(page: Page, from: number): Promise<void> {
  await page.getByTestId('train-start').click();
  await page.waitForFunction(
    (s) => Number(document.querySelector('[data-testid=train-step]')?.textContent) >= s + 2,
    from,
    { timeout: 60_000 },
  );
  await pause(page);
}

const missing = chromiumMissing();
if (missing) {
  console.log(`app: ${missing}\napp: 0 passed, 1 failed`);
  process.exit(1);
}
rmSync(artifacts, { recursive: true, force: true });
mkdirSync(artifacts, { recursive: true });
const root = await buildApp(mkdtempSync(join(tmpdir(), 'rnagrad-app-')));
const server = await serveStatic(root, 0);
const url = `http://127.0.0.1:${server.port}/`;
const browser = await launchChromium();
const pageErrors: string[] = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await check('the built app loads, finds WebGPU, reads the bundled corpus and creates a model', async () => {
    await page.goto(url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 60_000 });
    const adapter = await text(page, 'adapter');
    assert(/WebGPU adapter/.test(adapter), `adapter line: ${adapter}`);
    assert(
      /E\. coli K-12.*training and \d+ validation sequences/.test(await page.locator('#corpus-info').innerText()),
      'corpus not loaded',
    );
    assert(/HELM causal LM, HXE loss/.test(await page.locator('#model-info').innerText()), 'no model');
    console.log(`    ${adapter}`);
  });

  await check(
    'training: the step counter advances and the loss falls within 240 s (the first step compiles every shader)',
    async () => {
      await setValues(page, { steps: '200', batch: '4', length: '24', lr: '0.005', 'eval-every': '10' });
      console.log(`    ${await trainUntil(page, 20, 240_000)}`);
      assert((await page.locator('#chart-loss svg path').count()) > 0, 'no loss chart');
      assert((await page.locator('#chart-val svg circle').count()) > 0, 'no validation chart');
      assert((await page.locator('#chart-lr svg path').count()) > 0, 'no learning-rate chart');
    },
  );

  let pausedAt = 0;
  await check('pause stops the run after the current step', async () => {
    await pause(page);
    pausedAt = await stepOf(page);
    await page.waitForTimeout(1500);
    assert((await stepOf(page)) === pausedAt, 'the step counter moved after the pause');
    await page.locator('#train-section').screenshot({ path: join(artifacts, 'training.png') });
  });

  await check('generate: two codon sequences from the causal model with their proteins', async () => {
    await setValues(page, { temperature: '0.8', 'top-k': '20', 'top-p': '0.9', count: '2', 'max-codons': '15' });
    await page.getByTestId('generate').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=generated-sequence]').length === 2, null, {
      timeout: 120_000,
    });
    const first = await page.getByTestId('generated-sequence').first().innerText();
    assert(/^([ACGT]{3} ?)+\nprotein: /m.test(first), `generated: ${first}`);
    console.log(`    ${first.split('\n').join(' | ')}`);
  });

  await check('save a checkpoint, replace the model, reload the checkpoint and resume from its step', async () => {
    await page.getByTestId('checkpoint-save').click();
    await page.getByTestId('checkpoint').first().waitFor({ timeout: 20_000 });
    await page.getByTestId('model-create').click();
    await waitForStep(page, 0);
    await page.getByTestId('checkpoint-load').first().click();
    await waitForStep(page, pausedAt);
    assert(/loaded .*safetensors/.test(await text(page, 'train-state')), `state: ${await text(page, 'train-state')}`);
    await resumeTwoSteps(page, pausedAt);
  });

  await check(
    'look inside: tensor path with shapes, attention maps per layer and head, codon tree with HXE terms, source links',
    async () => {
      await page.locator('#inside-codon').fill('6');
      await page.getByTestId('inside-open').click();
      await page.getByTestId('codon-tree').waitFor({ timeout: 30_000 });
      const rows = await page.getByTestId('inside-tensor').allInnerTexts();
      assert(
        rows.some((r) => /transformer\.h\.0\.attn\.probs\s+\[1, 2, \d+, \d+\]/.test(r)),
        `no attention probabilities row in:\n${rows.join('\n')}`,
      );
      assert(
        rows.some((r) => /^logits\s+\[1, \d+, 70\]/.test(r)),
        'no logits row',
      );
      assert((await page.getByTestId('attention-map').count()) === 2, 'expected 1 layer × 2 heads of attention maps');
      const terms = await page.getByTestId('hxe-term').count();
      assert(terms === 4, `expected 4 HXE edges for a sense codon, got ${terms}`);
      const links = await page
        .getByTestId('source-link')
        .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href));
      assert(
        links.some((l) => l.endsWith('packages/tokenizers/src/hxe.ts')) &&
          links.some((l) => l.endsWith('packages/models/src/helm.ts')),
        'source links missing',
      );
      for (const link of new Set(links)) readFileSync(join(repo, link.replace(/^.*\/blob\/main\//, '')));
      await page.locator('#inside-section').screenshot({ path: join(artifacts, 'look-inside.png') });
    },
  );

  await check(
    'bad input shows a message in the page (empty or malformed uploads, invalid characters, wrong checkpoints); ' +
      'a good upload is used',
    async () => {
      const upload = (name: string, body: string | Buffer) =>
        page.getByTestId('upload').setInputFiles({ name, mimeType: 'text/plain', buffer: Buffer.from(body) });
      await upload('empty.fasta', '');
      await expectError(page, /empty\.fasta: the file is empty/, 'empty upload');
      await upload('notes.txt', 'hello world\nthis is not a sequence file\n');
      await expectError(page, /notes\.txt: not FASTA/, 'malformed upload');
      await upload('genes.fasta', '>good\nATGAAACGCTAA\n>bad\nATGAXXCGCTAA\n');
      await expectError(
        page,
        /genes\.fasta: bad: invalid character "X" at position 5/,
        'invalid characters in an upload',
      );
      await page.getByTestId('inside-sequence').fill('ATGAAAJJJCGC');
      await page.getByTestId('inside-open').click();
      await expectError(page, /invalid character "J" at position 7/, 'invalid characters in look inside');
      const checkpoint = (name: string, buffer: Buffer) =>
        page.getByTestId('checkpoint-upload').setInputFiles({ name, mimeType: 'application/octet-stream', buffer });
      await checkpoint(
        'rinalmo.safetensors',
        readFileSync(join(repo, 'packages/models/fixtures/rinalmo_tiny_official.safetensors')),
      );
      await expectError(page, /rinalmo\.safetensors: not a checkpoint of this app/, 'a checkpoint of another model');
      await checkpoint('garbage.safetensors', Buffer.from('this is not a safetensors file at all'));
      await expectError(page, /garbage\.safetensors: corrupt safetensors file: header length/, 'a corrupt checkpoint');
      // The model and the corpus survive all of it.
      assert((await stepOf(page)) > pausedAt, 'the trained model was lost');
      assert(/E\. coli K-12/.test(await page.locator('#corpus-info').innerText()), 'the corpus was lost');
      await page.screenshot({ path: join(artifacts, 'bad-input.png'), fullPage: true });
      const good = Array.from(
        { length: 12 },
        (_, i) => `>mine${i}\nATGAAACGCATTAGCACCACCATTACCACCACC${'GGT'.repeat(i)}TGA`,
      ).join('\n');
      await upload('mine.fasta', good);
      await page.waitForFunction(
        () =>
          /^mine\.fasta: 11 training and 1 validation sequences, .*\(RiNALMo\)$/.test(
            document.querySelector('#corpus-info')?.textContent ?? '',
          ),
        null,
        { timeout: 20_000 },
      );
    },
  );

  await check(
    'RiNALMo tiny on the bundled corpus read as nucleotides: generate and look inside are off with their reasons, ' +
      'the step counter advances and the loss falls',
    async () => {
      await page.locator('input[name=corpus][value=bundled]').check();
      await page.waitForFunction(
        () => /^E\. coli K-12.*nucleotides \(RiNALMo\)/.test(document.querySelector('#corpus-info')?.textContent ?? ''),
        null,
        { timeout: 20_000 },
      );
      await page.getByTestId('model-kind').selectOption('rinalmo');
      await page.getByTestId('rinalmo-size').selectOption('tiny');
      await page.getByTestId('model-create').click();
      await page.waitForFunction(
        () => /RiNALMo nucleotide MLM, 2 blocks, d 40/.test(document.querySelector('#model-info')?.textContent ?? ''),
        null,
        { timeout: 20_000 },
      );
      assert(await page.getByTestId('rinalmo-note').isVisible(), 'no note on the RiNALMo sizes and corpus');
      assert(!(await page.locator('#objective').isVisible()), 'the HELM objective picker is still shown');
      assert(await page.getByTestId('generate').isDisabled(), 'generate is enabled for a masked LM');
      assert((await page.getByTestId('generated-sequence').count()) === 0, "the HELM model's sequences still show");
      assert((await page.getByTestId('inside-tensor').count()) === 0, "the HELM model's look inside still shows");
      assert(/masked LM/.test(await text(page, 'generate-reason')), 'no reason why generate is off');
      assert(await page.getByTestId('inside-open').isDisabled(), 'look inside is enabled for RiNALMo');
      assert(/not instrumented/.test(await text(page, 'inside-reason')), 'no reason why look inside is off');
      await setValues(page, { steps: '200', batch: '8', length: '48', lr: '0.005', 'eval-every': '10' });
      console.log(`    ${await trainUntil(page, 25, 150_000)}`);
      assert((await page.locator('#chart-val svg circle').count()) > 0, 'no validation chart');
      assert(await page.getByTestId('generate').isDisabled(), 'generate was enabled while training RiNALMo');
    },
  );

  await check('RiNALMo: pause, save, wrong-kind checkpoints refused both ways, reload and resume', async () => {
    await pause(page);
    const at = await stepOf(page);
    await page.locator('#train-section').screenshot({ path: join(artifacts, 'rinalmo-training.png') });
    await page.getByTestId('checkpoint-save').click();
    const saved = (kind: string) =>
      page
        .getByTestId('checkpoint')
        .filter({ hasText: new RegExp(`^${kind}-step`) })
        .first();
    await saved('rinalmo').waitFor({ timeout: 20_000 });
    assert(/RiNALMo nucleotide MLM/.test(await saved('rinalmo').innerText()), 'the saved entry is not RiNALMo');
    await saved('helm').getByTestId('checkpoint-load').click();
    await expectError(
      page,
      /holds a HELM codon model, but the model picked is RiNALMo nucleotide; pick a HELM model/,
      'a HELM checkpoint loaded into RiNALMo',
    );
    await page.getByTestId('model-kind').selectOption('helm');
    await saved('rinalmo').getByTestId('checkpoint-load').click();
    await expectError(
      page,
      /holds a RiNALMo nucleotide model, but the model picked is HELM codon; pick RiNALMo/,
      'a RiNALMo checkpoint loaded into HELM',
    );
    assert((await stepOf(page)) === at, 'a refused checkpoint changed the model');
    await page.getByTestId('model-kind').selectOption('rinalmo');
    await page.getByTestId('model-create').click();
    await waitForStep(page, 0);
    await saved('rinalmo').getByTestId('checkpoint-load').click();
    await waitForStep(page, at);
    assert(/RiNALMo nucleotide MLM, 2 blocks/.test(await page.locator('#model-info').innerText()), 'not RiNALMo');
    assert((await page.getByTestId('rinalmo-size').inputValue()) === 'tiny', 'the size picker does not say tiny');
    await resumeTwoSteps(page, at);
    await page.screenshot({ path: join(artifacts, 'rinalmo-page.png'), fullPage: true });
  });

  await check('a browser without WebGPU gets an explanation of what to enable', async () => {
    const bare = await browser.newPage();
    await bare.addInitScript(() => delete (Navigator.prototype as { gpu?: unknown }).gpu);
    await bare.goto(url);
    const message = await bare.getByTestId('no-webgpu').innerText({ timeout: 20_000 });
    assert(/no usable WebGPU/.test(message) && /enable-unsafe-webgpu/.test(message), message);
    assert(await bare.getByTestId('train-start').isDisabled(), 'the train button is still enabled');
    await bare.close();
  });

  await check('no uncaught page errors', async () => {
    assert(pageErrors.length === 0, pageErrors.join('\n'));
  });
  if (process.argv.includes('--update-screenshots')) {
    mkdirSync(join(app, 'screenshots'), { recursive: true });
    for (const f of ['training.png', 'look-inside.png', 'rinalmo-training.png'])
      copyFileSync(join(artifacts, f), join(app, 'screenshots', f));
  }
} catch (err) {
  failed++;
  console.log(`✘ end-to-end run: ${(err as Error).stack}`);
} finally {
  await browser.close();
  server.close();
  rmSync(root, { recursive: true, force: true });
}
console.log(`    screenshots in ${artifacts}; ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
console.log(`app: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
