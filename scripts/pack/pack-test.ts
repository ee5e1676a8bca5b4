/**
 * The packages as a user gets them: `pnpm pack` every package, install the tarballs with plain
 * `npm` into empty folders under the system temp directory (offline: `webgpu` and its
 * dependencies are packed from the workspace's own install), and there
 *   - check each tarball (built dist/ with .js, .d.ts and maps, every export target present,
 *     no `workspace:` ranges, the models corpus inside) and print its size and runtime dependencies;
 *   - type-check every code block of every package README against the installed types, then run
 *     it with plain `node` and compare each console.log with the comment at the end of its line;
 *   - run scripts/pack/two-layer.ts with plain `node`, and bundled by esbuild for the browser (no
 *     externals) in headless Chromium on WebGPU: three training steps, finite and falling loss;
 *   - check the wrong-entry errors (a Node entry in a browser bundle, a Node-only helper called in
 *     a browser), @rnagrad/tokenizers alone with no WebGPU, and @rnagrad/tensor without `webgpu`.
 * Prints "pack: N passed, M failed". Usage: node --import tsx scripts/pack/pack-test.ts [--keep]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { build, transform } from 'esbuild';
import { chromiumMissing, launchChromium } from '../chromium.js';
import { type ReadmeBlock, expectedOutputs, matchesExpected, readmeBlocks } from './readme.js';

const repo = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'rnagrad-pack-'));
const PNPM = ['-y', 'pnpm@12.21.0'];
let passed = 0;
let failed = 0;

async function check(name: string, fn: () => void | Promise<void>): Promise<void> {
  try {
    await fn();
    passed++;
    console.log(`✓ ${name}`);
  } catch (err) {
    failed++;
    console.log(
      `✘ ${name}\n    ${String((err as Error).message)
        .split('\n')
        .join('\n    ')}`,
    );
  }
}

function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

function sh(cmd: string, args: string[], cwd: string, input?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 2 ** 20, input });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Plain `node` on a file, in `cwd`: its stdout, stderr and exit status. */
function runNode(file: string, cwd: string): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [file], {
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  exports?: Record<string, unknown>;
}

const readJson = <J>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as J;
const packages = readdirSync(join(repo, 'packages'))
  .filter((dir) => existsSync(join(repo, 'packages', dir, 'package.json')))
  .filter((dir) => !readJson<Manifest>(join(repo, 'packages', dir, 'package.json')).private);

// 1. Pack (prepack builds), then look inside each tarball.
const tarballs = join(work, 'tarballs');
mkdirSync(tarballs);
const packed = new Map<string, { file: string; manifest: Manifest; entries: string[] }>();
for (const dir of packages) {
  const before = new Set(readdirSync(tarballs));
  sh('npx', [...PNPM, 'pack', '--pack-destination', tarballs], join(repo, 'packages', dir));
  const file = join(
    tarballs,
    readdirSync(tarballs).find((f) => !before.has(f))!,
  );
  const entries = sh('tar', ['tzf', file], work)
    .split('\n')
    .filter(Boolean)
    .map((e) => e.replace(/^package\//, ''));
  const manifest = JSON.parse(
    execFileSync('tar', ['xzf', file, '-O', 'package/package.json'], { encoding: 'utf8' }),
  ) as Manifest;
  packed.set(dir, { file, manifest, entries });
}

/** Every file an `exports` map can resolve to (wildcard targets are checked as folders). */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (value && typeof value === 'object') return Object.values(value).flatMap(exportTargets);
  return [];
}

console.log('\npackage                 tarball   runtime dependencies');
for (const [dir, { file, manifest, entries }] of packed) {
  const deps = Object.entries(manifest.dependencies ?? {}).map(([n, v]) => `${n} ${v}`);
  const peers = Object.entries(manifest.peerDependencies ?? {}).map(
    ([n, v]) => `${n} ${v} (peer${manifest.peerDependenciesMeta?.[n]?.optional ? ', optional' : ''})`,
  );
  const kib = (statSync(file).size / 1024).toFixed(1);
  console.log(`${manifest.name.padEnd(24)}${`${kib} KiB`.padStart(10)}   ${[...deps, ...peers].join(', ') || 'none'}`);
  await check(
    `${manifest.name}: tarball has built dist/ (.js, .d.ts, maps), its export targets, no workspace: ranges`,
    () => {
      // The main entry: what the "." export resolves to by default (dist/index.js, or the CLI's dist/main.js).
      const main = exportTargets((manifest.exports?.['.'] as Record<string, unknown> | undefined)?.default)
        .find((t) => t.endsWith('.js'))
        ?.replace(/^\.\//, '')
        .replace(/\.js$/, '');
      assert(main, 'the "." export has no .js default');
      for (const f of [
        `${main}.js`,
        `${main}.d.ts`,
        `${main}.js.map`,
        `${main}.d.ts.map`,
        'README.md',
        'CHANGELOG.md',
        'LICENSE',
      ]) {
        assert(entries.includes(f), `${f} is missing from ${basename(file)}`);
      }
      for (const target of exportTargets(manifest.exports)) {
        const path = target.replace(/^\.\//, '');
        const present = path.endsWith('*')
          ? entries.some((e) => e.startsWith(path.slice(0, -1)))
          : entries.includes(path);
        assert(present, `exports target ${target} is not in the tarball`);
      }
      assert(!JSON.stringify(manifest).includes('workspace:'), 'package.json still has workspace: ranges');
      assert(
        !entries.some((e) => e.endsWith('.tsbuildinfo') || e.startsWith('test/')),
        'build info or tests were packed',
      );
      if (dir === 'models')
        assert(entries.includes('data/ecoli_k12_cds.csv.gz'), 'the E. coli corpus is not in the tarball');
    },
  );
}

// 2. `webgpu` and its dependencies as tarballs packed from the workspace install (cached between runs),
// so npm installs offline even when its own cache is empty.
function vendorTarballs(): string[] {
  const webgpuDir = dirname(
    createRequire(join(repo, 'packages/kernels-wgsl/package.json')).resolve('webgpu/package.json'),
  );
  const version = readJson<Manifest>(join(webgpuDir, 'package.json')).version;
  const cache = join(tmpdir(), `rnagrad-vendor-webgpu-${version}`);
  mkdirSync(cache, { recursive: true });
  const seen = new Set<string>();
  const dirs: string[] = [];
  const visit = (dir: string) => {
    const manifest = readJson<Manifest>(join(dir, 'package.json'));
    if (seen.has(manifest.name)) return;
    seen.add(manifest.name);
    dirs.push(dir);
    const req = createRequire(join(dir, 'package.json'));
    for (const dep of Object.keys(manifest.dependencies ?? {})) visit(dirname(req.resolve(`${dep}/package.json`)));
  };
  visit(webgpuDir);
  visit(dirname(createRequire(join(repo, 'packages/tensor/package.json')).resolve('@webgpu/types/package.json')));
  return dirs.map((dir) => {
    const { name, version: v } = readJson<Manifest>(join(dir, 'package.json'));
    const file = join(cache, `${name.replace('@', '').replace('/', '-')}-${v}.tgz`);
    if (!existsSync(file)) {
      const out = sh('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', cache, dir], cache)
        .trim()
        .split('\n')
        .pop()!;
      if (join(cache, out) !== file) copyFileSync(join(cache, out), file);
    }
    return file;
  });
}
const vendored = vendorTarballs();
const vendor = (name: string) =>
  vendored.find((f) => basename(f).startsWith(name.replace('@', '').replace('/', '-') + '-'))!;

/** An empty project under the temp folder with `files` installed by plain npm, offline. */
function installApp(name: string, files: string[]): string {
  const app = join(work, name);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  // An empty npm cache of its own, as on a fresh machine: everything comes from the tarballs.
  const npmArgs = [
    '--offline',
    '--cache',
    join(work, 'npm-cache'),
    '--no-audit',
    '--no-fund',
    '--ignore-scripts',
    '--loglevel=error',
  ];
  sh('npm', ['install', ...npmArgs, ...files], app);
  return app;
}

const ours = [...packed.values()].map((p) => p.file);
const app = installApp('app', [...ours, ...vendored]);

// 3. README examples: type-checked against the installed .d.ts, then run with plain node.
interface Example extends ReadmeBlock {
  pkg: string;
  file: string;
}
const examples: Example[] = [];
const commandBlocks: Example[] = [];
const pythonBlocks: Example[] = [];
for (const dir of packages) {
  const readme = readFileSync(join(repo, 'packages', dir, 'README.md'), 'utf8');
  await check(`${dir}/README.md: every fenced block is a runnable ts/js/sh/python example or a text diagram`, () => {
    const blocks = readmeBlocks(readme);
    for (const b of blocks)
      assert(['ts', 'js', 'sh', 'python', 'text'].includes(b.lang), `block at line ${b.line} has language "${b.lang}"`);
    blocks.forEach((b, i) => {
      if (b.lang === 'ts' || b.lang === 'js')
        examples.push({ ...b, pkg: dir, file: `readme-${dir}-${i + 1}.${b.lang}` });
      if (b.lang === 'sh') commandBlocks.push({ ...b, pkg: dir, file: '' });
      if (b.lang === 'python') pythonBlocks.push({ ...b, pkg: dir, file: '' });
    });
  });
}
for (const ex of examples) writeFileSync(join(app, ex.file.replace(/\.js$/, '.mjs').replace(/\.ts$/, '.mts')), ex.code);
const tsExamples = examples.filter((e) => e.lang === 'ts');
await check(`README examples type-check against the installed packages (${tsExamples.length} ts blocks)`, () => {
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        lib: ['ES2023', 'DOM'],
        // @types/node from the workspace (the examples use node:fs); the GPU types come with the packages.
        types: ['node'],
        typeRoots: [join(repo, 'node_modules/@types')],
      },
      include: ['readme-*.mts'],
    }),
  );
  sh(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], app);
});
for (const ex of examples) {
  await check(
    `${ex.pkg}/README.md example at line ${ex.line} runs with plain node and prints what its comments say`,
    async () => {
      const source = join(app, ex.file.replace(/\.js$/, '.mjs').replace(/\.ts$/, '.mts'));
      const js =
        ex.lang === 'ts' ? (await transform(ex.code, { loader: 'ts', format: 'esm', target: 'es2022' })).code : ex.code;
      const runnable = source.replace(/\.m[tj]s$/, '.run.mjs');
      writeFileSync(runnable, js);
      const { stdout, stderr, status } = runNode(runnable, app);
      assert(status === 0, `exit ${status}\n${stdout}${stderr}`);
      const expected = expectedOutputs(ex.code);
      assert(expected.length > 0, 'the example prints nothing that its comments describe');
      const lines = stdout.split('\n').filter((l) => l.trim() !== '');
      assert(
        lines.length === expected.length,
        `printed ${lines.length} lines, the comments describe ${expected.length}:\n${stdout}`,
      );
      expected.forEach((want, i) =>
        assert(matchesExpected(lines[i]!, want), `line ${i + 1}: printed\n  ${lines[i]}\nthe comment says\n  ${want}`),
      );
      assert(!/vkCreateInstance|Found no drivers/.test(stderr), `Dawn start-up noise on stderr:\n${stderr}`);
    },
  );
}

// Shell blocks are `rnagrad` commands: each line runs in the app with the installed bin (`pnpm rnagrad`
// and `npx rnagrad` name the same command from the repository and from an install) and must exit 0.
for (const block of commandBlocks) {
  await check(`${block.pkg}/README.md commands at line ${block.line} run with the installed rnagrad bin`, () => {
    const commands = block.code
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter(Boolean);
    for (const command of commands) {
      const m = /^(?:npx|pnpm) rnagrad( .*)?$/.exec(command);
      assert(m, `not an rnagrad command: ${command}`);
      const r = spawnSync(join(app, 'node_modules/.bin/rnagrad'), (m[1] ?? '').trim().split(/\s+/).filter(Boolean), {
        cwd: app,
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert(r.status === 0, `${command}: exit ${r.status}\n${r.stdout}${r.stderr}`);
      assert(r.stdout.trim() !== '', `${command}: printed nothing`);
    }
  });
}
// Python blocks are PyTorch snippets for users (torch is not a CI dependency): they must at least parse.
for (const block of pythonBlocks) {
  await check(`${block.pkg}/README.md python snippet at line ${block.line} is valid Python`, () => {
    sh('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], app, block.code);
  });
}

// 4. The two-layer training program: plain node, then a browser bundle in headless Chromium.
copyFileSync(join(repo, 'scripts/pack/two-layer.ts'), join(app, 'two-layer.ts'));
interface TrainReport {
  adapter?: string;
  host?: string;
  losses: number[];
  nodeOnlyErrors: string[];
  error?: string;
}
function checkLosses(report: TrainReport, host: string): void {
  assert(!report.error, `the program failed: ${report.error}`);
  assert(report.host === host, `ran on host ${report.host}`);
  const l = report.losses;
  assert(l.length === 3 && l.every(Number.isFinite), `losses ${l.join(', ')}`);
  assert(l[2]! < l[1]! && l[1]! < l[0]!, `loss does not fall: ${l.join(', ')}`);
  console.log(`    ${host} (${report.adapter || 'navigator.gpu'}): losses ${l.map((v) => v.toFixed(4)).join(' → ')}`);
}
await check('two-layer training program: 3 steps with plain node, loss finite and falling', async () => {
  const js = (
    await transform(readFileSync(join(app, 'two-layer.ts'), 'utf8'), { loader: 'ts', format: 'esm', target: 'es2022' })
  ).code;
  writeFileSync(join(app, 'two-layer.mjs'), js);
  const { stdout, stderr, status } = runNode('two-layer.mjs', app);
  assert(status === 0, `exit ${status}\n${stdout}${stderr}`);
  assert(!/vkCreateInstance|Found no drivers/.test(stderr), `Dawn start-up noise on stderr:\n${stderr}`);
  checkLosses(JSON.parse(stdout.trim().split('\n').pop()!) as TrainReport, 'node');
});

/** esbuild for the browser platform, no externals, from inside the installed app. */
async function browserBundle(entry: string, contents?: string): Promise<string> {
  const result = await build({
    ...(contents === undefined
      ? { entryPoints: [join(app, entry)] }
      : { stdin: { contents, resolveDir: app, sourcefile: entry, loader: 'ts' } }),
    absWorkingDir: app,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

const missingChromium = chromiumMissing();
await check(
  'two-layer training program: esbuild browser bundle (no externals) trains 3 steps in headless Chromium',
  async () => {
    assert(!missingChromium, missingChromium!);
    const bundle = await browserBundle('two-layer.ts');
    assert(!/from\s*["'](node:|webgpu["'])/.test(bundle), 'the browser bundle imports node:* or webgpu');
    const report = (await inChromium(bundle)) as TrainReport;
    checkLosses(report, 'browser');
    const [save, load] = report.nodeOnlyErrors;
    assert(/'@rnagrad\/models\/node'/.test(save ?? ''), `saveCheckpoint in a browser: ${save}`);
    assert(
      /'@rnagrad\/models\/node'/.test(load ?? '') && /\{ url \}/.test(load ?? ''),
      `loadEcoliCds() in a browser: ${load}`,
    );
  },
);

/** Loads `bundle` in a page with the corpus served beside it; returns window.__rnagrad or the page error. */
async function inChromium(bundle: string): Promise<unknown> {
  const corpus = readFileSync(join(app, 'node_modules/@rnagrad/models/data/ecoli_k12_cds.csv.gz'));
  const server = createServer((req, res) => {
    if (req.url === '/app.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    else if (req.url === '/ecoli_k12_cds.csv.gz')
      res.writeHead(200, { 'content-type': 'application/gzip' }).end(corpus);
    else
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<!doctype html><meta charset="utf-8"><script type="module" src="/app.js"></script>');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const pageError = new Promise<{ pageError: string }>((done) =>
      page.on('pageerror', (err) => done({ pageError: err.message })),
    );
    await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
    const result = page
      .waitForFunction(() => (window as unknown as { __rnagrad?: unknown }).__rnagrad, null, { timeout: 240_000 })
      .then((handle) => handle.jsonValue());
    return await Promise.race([result, pageError]);
  } finally {
    await browser.close();
    server.close();
  }
}

// 5. Wrong entries: a Node entry in a browser bundle fails on load with a message naming the right one.
for (const dir of packages.filter((d) => packed.get(d)!.manifest.exports?.['./node'])) {
  const name = packed.get(dir)!.manifest.name;
  await check(`${name}/node in a browser bundle: an error on load that names '${name}'`, async () => {
    const bundle = await browserBundle(
      `wrong-${dir}.ts`,
      `import * as entry from '${name}/node';\nconsole.log(Object.keys(entry).length);\n`,
    );
    if (dir === 'tensor') {
      assert(!missingChromium, missingChromium!);
      const outcome = (await inChromium(bundle)) as { pageError?: string };
      assert(outcome.pageError?.includes(`in a browser import '${name}'`), `page outcome: ${JSON.stringify(outcome)}`);
    } else {
      writeFileSync(join(app, `wrong-${dir}.mjs`), bundle);
      const { stderr, status } = runNode(`wrong-${dir}.mjs`, app);
      assert(status !== 0 && stderr.includes(`in a browser import '${name}'`), `exit ${status}, stderr:\n${stderr}`);
    }
  });
}

await check("@rnagrad/tensor's browser entry run in Node: init() says which entry to use", async () => {
  const source = "import { init } from '@rnagrad/tensor';\nawait init().catch((err) => console.log(err.message));\n";
  writeFileSync(join(app, 'browser-entry-in-node.mjs'), await browserBundle('browser-entry-in-node.ts', source));
  const { stdout, status } = runNode('browser-entry-in-node.mjs', app);
  assert(status === 0 && stdout.includes('this is the browser entry of @rnagrad/tensor'), `exit ${status}: ${stdout}`);
  assert(stdout.includes('bundle for Node'), stdout);
});

// The browser stand-in of each Node entry exports the same names, so named imports still bundle.
for (const dir of packages.filter((d) => packed.get(d)!.manifest.exports?.['./node'])) {
  const name = packed.get(dir)!.manifest.name;
  await check(`${name}/node: the browser stand-in exports the same names as the Node entry`, async () => {
    const nodeNames = Object.keys(await import(join(app, 'node_modules', name, 'dist/node.js'))).sort();
    const stub = join(app, 'node_modules', name, 'dist/node-in-browser.js');
    const result = await build({
      entryPoints: [stub],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      metafile: true,
    });
    const stubNames = [...Object.values(result.metafile.outputs)[0]!.exports].sort();
    assert(
      nodeNames.join() === stubNames.join(),
      `Node entry: ${nodeNames.join(', ')}\nstand-in: ${stubNames.join(', ')}`,
    );
  });
}

// The corpus as a bundler asset, the way the models README says: its bytes inlined by esbuild's
// binary loader into a browser bundle (run here in Node: parsing needs no GPU).
await check(
  '@rnagrad/models/data/ecoli_k12_cds.csv.gz bundled as bytes loads with loadEcoliCds({ bytes })',
  async () => {
    const source =
      "import bytes from '@rnagrad/models/data/ecoli_k12_cds.csv.gz';\n" +
      "import { loadEcoliCds } from '@rnagrad/models';\n" +
      'const corpus = await loadEcoliCds({ bytes });\n' +
      'console.log(corpus.train.length + corpus.validation.length, corpus.train[0].length > 0);\n';
    const result = await build({
      stdin: { contents: source, resolveDir: app, sourcefile: 'corpus-bytes.js' },
      absWorkingDir: app,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      loader: { '.gz': 'binary' },
      write: false,
      logLevel: 'silent',
    });
    writeFileSync(join(app, 'corpus-bytes.mjs'), result.outputFiles[0]!.text);
    const { stdout, stderr, status } = runNode('corpus-bytes.mjs', app);
    assert(status === 0 && stdout.trim() === '3682 true', `exit ${status}: ${stdout}${stderr}`);
  },
);

// 6. @rnagrad/tokenizers alone: no WebGPU anywhere in the install.
await check('@rnagrad/tokenizers installs alone (no webgpu, no other package) and its README example runs', () => {
  const alone = installApp('tokenizers-alone', [packed.get('tokenizers')!.file]);
  const installed = readdirSync(join(alone, 'node_modules')).filter((d) => !d.startsWith('.'));
  assert(
    installed.join() === '@rnagrad' && readdirSync(join(alone, 'node_modules/@rnagrad')).join() === 'tokenizers',
    `installed: ${installed}`,
  );
  for (const ex of examples.filter((e) => e.pkg === 'tokenizers')) {
    copyFileSync(join(app, ex.file.replace(/\.(ts|js)$/, '.run.mjs')), join(alone, 'example.mjs'));
    const { stdout, stderr, status } = runNode('example.mjs', alone);
    assert(status === 0 && stdout.trim() !== '', `exit ${status}\n${stdout}${stderr}`);
  }
});

// 7. @rnagrad/tensor without `webgpu`: CPU tensors work; init() names the missing package.
await check('@rnagrad/tensor without webgpu: CPU tensors work, init() says to install webgpu', () => {
  const bare = installApp('tensor-no-webgpu', [
    packed.get('kernels-wgsl')!.file,
    packed.get('tensor')!.file,
    vendor('@webgpu/types'),
  ]);
  writeFileSync(
    join(bare, 'main.mjs'),
    `import * as T from '@rnagrad/tensor';
console.log(Array.from(await T.tensor([1, 2, 3], { device: 'cpu' }).mul(2).data()).join());
await T.init().then(() => console.log('init worked'), (err) => console.log(err.message));
`,
  );
  const { stdout, stderr, status } = runNode('main.mjs', bare);
  assert(status === 0, `exit ${status}\n${stdout}${stderr}`);
  const [cpu, init] = stdout.trim().split('\n');
  assert(cpu === '2,4,6', `CPU tensor gave ${cpu}`);
  assert(init?.includes('npm install webgpu'), `init() without webgpu: ${init}`);
});

if (process.argv.includes('--keep')) console.log(`\nkept ${work}`);
else rmSync(work, { recursive: true, force: true });
console.log(`pack: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
