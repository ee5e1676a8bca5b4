/**
 * `pnpm web:build`: the app as static files in packages/app/dist/ (or --out DIR); --dev skips minifying.
 * Usage: node --import tsx packages/app/scripts/build.ts [--out DIR] [--dev]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildApp } from './bundle.js';

const { values } = parseArgs({ options: { out: { type: 'string' }, dev: { type: 'boolean' } } });
const started = performance.now();
const out = await buildApp(values.out && resolve(values.out), { minify: !values.dev });
console.log(`built the app into ${out} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
