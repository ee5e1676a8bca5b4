/** Helpers of the learn-path tests: run an example in a child Node, find a page's expected output. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Runs `node --import tsx <file> ...args` from the repository root; stdout, stderr and the exit code. */
export function runScript(
  file: string,
  args: string[] = [],
): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/**
 * The command a page ends with (a ```sh block holding `node --import tsx examples/learn/…`) and
 * the ```text block that follows it: what the page says the example prints.
 */
export function pageRun(page: string): { script: string; expected: string } {
  const text = readFileSync(page, 'utf8');
  const m = /```sh\nnode --import tsx (examples\/learn\/[\w-]+\.ts)\n```[^`]*```text\n([\s\S]*?)```/.exec(text);
  if (!m)
    throw new Error(
      `${page}: no "node --import tsx examples/learn/….ts" command followed by a text block of its output`,
    );
  return { script: m[1]!, expected: m[2]! };
}
