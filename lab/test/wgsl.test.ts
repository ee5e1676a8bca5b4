/** `pnpm wgsl`: every op's pipelines are captured and written formatted, with the uniform layout on top. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@rnagrad/tensor';
import { WGSL_OPS, capturePipelines, fileNameOf, formatWgsl } from '../wgsl.js';
import { runScript } from '../../examples/learn/test/run-example.js';

await T.init({ quiet: true });

test('formatWgsl re-indents by brace depth and collapses blank lines', () => {
  const messy = 'fn f() -> f32 {\n      var a = 1.0;\n\n\n   if (a > 0.0) {\na = 2.0;\n        }\n  return a;   \n}\n';
  assert.is(
    formatWgsl(messy),
    'fn f() -> f32 {\n  var a = 1.0;\n\n  if (a > 0.0) {\n    a = 2.0;\n  }\n  return a;\n}\n',
  );
});

for (const [op, spec] of Object.entries(WGSL_OPS)) {
  test(`${op}: the driver launches compute pipelines, each captured once`, () => {
    const pipelines = capturePipelines(spec.run);
    assert.ok(pipelines.length > 0, 'no pipeline captured');
    assert.is(new Set(pipelines.map((p) => p.key)).size, pipelines.length);
    for (const p of pipelines) assert.match(p.source, '@compute', p.key);
  });
}

test('pnpm wgsl softmax writes one formatted file per pipeline, headed by its uniform layout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgsl-'));
  try {
    const r = runScript('lab/wgsl.ts', ['softmax', '--out', dir]);
    assert.is(r.status, 0, r.stderr);
    const files = readdirSync(dir);
    assert.ok(files.includes('softmax_exp_L1w64_v.wgsl'), files.join(', '));
    assert.ok(files.includes('softmaxBackward_exp_L64w64_v.wgsl'), files.join(', '));
    assert.match(r.stdout, `${files.length} pipelines of softmax written to ${dir}/`);
    const text = readFileSync(join(dir, 'softmax_exp_L1w64_v.wgsl'), 'utf8');
    assert.match(text, /^\/\/ rnagrad WGSL: pipeline "softmax:exp:L1w64:v"/);
    assert.match(text, /\/\/ +1 C \(columns\) +8 +let C = word\(1u\);/); // rows of 8 columns
    assert.match(text, /\/\/ +14 x lead stride\[0\] +8 +-\n/); // row r of x starts at r·8
    assert.match(text, '\n  let C = word(1u);\n'); // body indented one level
    for (const f of files) {
      const body = readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('//'));
      assert.is(formatWgsl(body.join('\n')), body.join('\n').replace(/^\n+/, ''), `${f} is not formatted`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pnpm wgsl: --help lists the ops; an unknown op or a bad flag is refused with the list', () => {
  const help = runScript('lab/wgsl.ts', ['--help']);
  assert.is(help.status, 0);
  for (const op of Object.keys(WGSL_OPS)) assert.match(help.stdout, `  ${op} `);
  const bad = runScript('lab/wgsl.ts', ['sofmax']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, `unknown op "sofmax"; the ops are: ${Object.keys(WGSL_OPS).join(', ')}`);
  for (const argv of [[], ['softmax', '--out'], ['softmax', '--fast'], ['softmax', 'matmul']]) {
    const r = runScript('lab/wgsl.ts', argv);
    assert.is(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, 'see pnpm wgsl --help');
  }
});

test('WGSL quoted in docs/learn is what pnpm wgsl writes today', () => {
  let quoted = 0;
  for (const page of readdirSync('docs/learn').filter((f) => f.endsWith('.md'))) {
    const text = readFileSync(join('docs/learn', page), 'utf8');
    for (const m of text.matchAll(/`out\/wgsl\/(\w+)\/([\w.-]+\.wgsl)`[^`]*```wgsl\n([\s\S]*?)```/g)) {
      const [, op, file, excerpt] = m as unknown as string[];
      const pipeline = capturePipelines(WGSL_OPS[op!]!.run).find((p) => fileNameOf(p.key) === file);
      assert.ok(pipeline, `${page}: pnpm wgsl ${op} writes no ${file}`);
      assert.ok(
        formatWgsl(pipeline!.source).includes(excerpt!),
        `${page}: the excerpt of ${file} is not in today's WGSL`,
      );
      quoted++;
    }
  }
  assert.ok(quoted > 0, 'no page quotes WGSL');
});

test.run();
