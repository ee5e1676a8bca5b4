/**
 * The line-length rule: no line of a .ts file longer than 120 characters, except inside a template
 * literal that generates WGSL (kernel source is laid out as the shader reads, not as TypeScript).
 * A template counts as WGSL when its text holds WGSL syntax (`var<`, `@group`, `vec4<f32>`,
 * `let x = …;`, …). Run by `node scripts/test.mjs` as a stage, and alone:
 *
 *   node --import tsx scripts/check-lines.ts            prints each long line, then "lines: N passed, M failed"
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export const MAX_LINE = 120;

/** Folders whose .ts files follow the rule (generated, vendored and result folders are skipped). */
const ROOTS = ['packages', 'bench', 'scripts'];
const SKIP = new Set(['node_modules', 'dist', 'results', '.git']);

const WGSL = new RegExp(
  [
    'var<',
    '@group',
    '@binding',
    '@compute',
    '@workgroup_size',
    '\\bvec[234]<',
    '\\barray<',
    'workgroupBarrier',
    '\\bbitcast<',
    '\\b(let|var) \\w+(: [\\w<>]+)? = [^;]*;',
  ].join('|'),
);

export interface LongLine {
  file: string;
  line: number;
  length: number;
}

/** The 1-based line numbers that lie inside WGSL template literals of `source`. */
function wgslLines(source: ts.SourceFile): Set<number> {
  const lines = new Set<number>();
  const visit = (node: ts.Node): void => {
    if (ts.isTemplateExpression(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
      if (WGSL.test(node.getText(source))) {
        const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
        const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
        for (let l = first; l <= last; l++) lines.add(l + 1);
        return;
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return lines;
}

/** Lines over `MAX_LINE` characters in one file's text, outside WGSL templates. */
export function longLinesOf(file: string, text: string): LongLine[] {
  const lines = text.split('\n');
  if (!lines.some((l) => l.length > MAX_LINE)) return [];
  const exempt = wgslLines(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true));
  return lines.flatMap((l, i) =>
    l.length > MAX_LINE && !exempt.has(i + 1) ? [{ file, line: i + 1, length: l.length }] : [],
  );
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (SKIP.has(name)) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Every long line of the repository at `root`. */
export function longLines(root: string): LongLine[] {
  return ROOTS.flatMap((r) => tsFiles(join(root, r))).flatMap((f) =>
    longLinesOf(relative(root, f), readFileSync(f, 'utf8')),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const found = longLines(process.cwd());
  for (const l of found) console.log(`${l.file}:${l.line}: ${l.length} characters (at most ${MAX_LINE} outside WGSL)`);
  const files = new Set(found.map((l) => l.file)).size;
  if (found.length) console.log(`${found.length} lines over ${MAX_LINE} characters in ${files} files`);
  console.log(`lines: ${found.length ? 0 : 1} passed, ${found.length ? 1 : 0} failed`);
  process.exit(found.length ? 1 : 0);
}
