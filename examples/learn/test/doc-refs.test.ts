/**
 * The learn pages and the lab README point into the code as [path:line](relative#Lline) `symbol`.
 * This test fails when a file moves, or when the symbol is no longer on (or within 3 lines of)
 * the named line: the pages cannot rot silently. A `.ts:N` or `#LN` written any other way fails too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const REF = /\[([\w./-]+):(\d+)\]\(([^)#\s]+)#L(\d+)\) `([^`]+)`/g;
const SLACK = 3;
const docs = [
  ...readdirSync('docs/learn')
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs/learn', f)),
  'lab/README.md',
];

/** The references of markdown `text` (at path `doc`), with what is wrong with them (none when they hold). */
function checkRefs(doc: string, text = readFileSync(doc, 'utf8')): { count: number; problems: string[] } {
  const problems: string[] = [];
  let count = 0;
  for (const m of text.matchAll(REF)) {
    count++;
    const [whole, shown, shownLine, link, linkLine, symbol] = m as unknown as string[];
    const file = join(dirname(doc), link!);
    const where = `${doc}: ${whole}`;
    if (!existsSync(file)) {
      problems.push(`${where}: ${file} does not exist`);
      continue;
    }
    if (shownLine !== linkLine) problems.push(`${where}: the text says line ${shownLine}, the link line ${linkLine}`);
    if (!relative('.', file).endsWith(shown!))
      problems.push(`${where}: the text names ${shown}, the link goes to ${relative('.', file)}`);
    const lines = readFileSync(file, 'utf8').split('\n');
    const n = Number(linkLine);
    const near = lines.slice(Math.max(0, n - 1 - SLACK), n + SLACK).join('\n');
    if (n < 1 || n > lines.length) problems.push(`${where}: ${file} has ${lines.length} lines`);
    else if (!near.includes(symbol!))
      problems.push(`${where}: \`${symbol}\` is not within ${SLACK} lines of ${file}:${n}`);
  }
  // Anything that looks like a code reference but is not in the checked form.
  const stripped = text.replace(REF, '');
  for (const m of stripped.matchAll(/\S*(?:\.(?:ts|wgsl|mjs):\d+|#L\d+)\S*/g))
    problems.push(`${doc}: unchecked reference ${m[0]} (write [path:line](link#Lline) \`symbol\`)`);
  return { count, problems };
}

for (const doc of docs) {
  test(`${doc}: every code reference points at its symbol`, () => {
    const { count, problems } = checkRefs(doc);
    assert.equal(problems, []);
    if (doc !== 'docs/learn/README.md') assert.ok(count > 0, `${doc} points to no code`);
  });
}

test('the check catches a moved symbol and a missing file', () => {
  const text =
    '[ops.ts:1](../../packages/tensor/src/ops.ts#L1) `reshape`\n[nope.ts:2](../../nope.ts#L2) `x`\nsee foo.ts:12\n';
  const { count, problems } = checkRefs('docs/learn/probe.md', text);
  assert.is(count, 2);
  assert.is(problems.length, 3, problems.join('\n'));
  assert.match(problems[0]!, '`reshape` is not within 3 lines');
  assert.match(problems[1]!, 'does not exist');
  assert.match(problems[2]!, 'unchecked reference foo.ts:12');
});

test.run();
