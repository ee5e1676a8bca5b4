/**
 * Every stop of the learn path (docs/learn/NN-*.md) ends with a command that runs its example; the
 * page shows what it prints. This test runs each example and requires exactly that output, so a
 * page cannot drift from its code.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { pageRun, runScript } from './run-example.js';

const pages = readdirSync('docs/learn')
  .filter((f) => /^\d\d-.*\.md$/.test(f))
  .sort();

test('every stop has an example and every example a stop', () => {
  const examples = readdirSync('examples/learn')
    .filter((f) => /^\d\d-.*\.ts$/.test(f))
    .sort();
  assert.equal(
    pages.map((p) => `examples/learn/${p.replace(/\.md$/, '.ts')}`),
    pages.map((p) => pageRun(`docs/learn/${p}`).script),
  );
  assert.equal(
    examples,
    pages.map((p) => p.replace(/\.md$/, '.ts')),
  );
});

for (const page of pages) {
  test(`${page}: the example prints what the page shows`, () => {
    const { script, expected } = pageRun(`docs/learn/${page}`);
    const r = runScript(script);
    assert.is(r.status, 0, `${script} exited with ${r.status}:\n${r.stderr}`);
    assert.fixture(r.stdout.trim(), expected.trim());
  });
}

test.run();
