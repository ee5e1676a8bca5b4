/**
 * A peer engine in its own process, forked by lib/peers.ts with an IPC channel:
 * `child.ts <engine> <quick|full>`. It sets up the engine once, says `info` (or `fatal`), then runs
 * each `task` message and answers with its `result`, until told to `exit`.
 */
import { loadavg } from 'node:os';
import type { PeerEngine, PeerResult, PeerTask } from '../lib/types.js';
import { installPeerEnv } from './env.js';

const engine = process.argv[2] as PeerEngine;
const quick = process.argv[3] === 'quick';
const send = (m: Record<string, unknown>) => process.send?.(m);

let impl: { version: string; run(task: PeerTask, quick: boolean): Promise<PeerResult> };
try {
  const env = await installPeerEnv();
  if (engine === 'jax-js') impl = await (await import('./jax.js')).createJax();
  else if (engine === 'tfjs-webgpu') impl = await (await import('./tfjs.js')).createTfjs();
  else throw new Error(`unknown peer engine "${engine}"`);
  send({ type: 'info', version: impl.version, adapter: env.adapterDescription });
} catch (err) {
  send({ type: 'fatal', error: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) });
  setTimeout(() => process.exit(1), 100);
}

let queue = Promise.resolve();
process.on('message', (m: { type: string; task?: PeerTask }) => {
  if (m.type === 'exit') process.exit(0);
  if (m.type !== 'task' || !m.task) return;
  const task = m.task;
  queue = queue.then(async () => {
    let result: PeerResult;
    try {
      result = await impl.run(task, quick);
    } catch (err) {
      result = { id: task.id, error: err instanceof Error ? err.message : String(err) };
    }
    result.extra = { ...result.extra, load1: +loadavg()[0]!.toFixed(2) };
    send({ type: 'result', result });
  });
});
process.on('disconnect', () => process.exit(0));
