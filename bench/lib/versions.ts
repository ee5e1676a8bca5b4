/** Versions of the packages and tools a run used (read from the installed package.json files). */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const roots = [
  new URL('../node_modules/', import.meta.url),
  new URL('../../node_modules/', import.meta.url),
  new URL('../../packages/tensor/node_modules/', import.meta.url),
];

export function packageVersion(name: string): string | null {
  for (const root of roots) {
    const path = fileURLToPath(new URL(`${name}/package.json`, root));
    if (existsSync(path)) return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? null;
  }
  return null;
}
