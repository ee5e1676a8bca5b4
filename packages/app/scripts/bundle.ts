/**
 * The app as static files: index.html, style.css, main.js (the page), worker.js (the engine and the
 * trainer, WGSL shaders and all) and the bundled E. coli corpus, bundled by esbuild for the browser.
 */
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';

const app = resolve(import.meta.dirname, '..');

/** Writes the app into `out` (emptied first); returns `out`. */
export async function buildApp(out = join(app, 'dist'), opts: { minify?: boolean } = {}): Promise<string> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: { main: join(app, 'src/main.ts'), worker: join(app, 'src/worker.ts') },
    outdir: out,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    minify: opts.minify ?? true,
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'style.css']) copyFileSync(join(app, file), join(out, file));
  const models = dirname(createRequire(join(app, 'package.json')).resolve('@rnagrad/models/package.json'));
  copyFileSync(join(models, 'data/ecoli_k12_cds.csv.gz'), join(out, 'ecoli_k12_cds.csv.gz'));
  return out;
}
