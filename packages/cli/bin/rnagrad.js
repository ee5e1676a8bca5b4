#!/usr/bin/env node
// The `rnagrad` command. Installed from its tarball, the manifest's exports point into dist/ and the
// compiled CLI runs; inside the repository they point at the TypeScript sources (as do the other
// workspace packages'), which run through tsx — even when a `pnpm build` has left a dist/ behind.
import { readFileSync } from 'node:fs';

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const published = String(manifest.exports?.['.']?.default ?? '').startsWith('./dist/');
if (published) {
  await import(new URL('../dist/bin.js', import.meta.url).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/bin.ts', import.meta.url).href);
}
