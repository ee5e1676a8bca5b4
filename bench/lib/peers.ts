/**
 * The peer engines, each in its own child process (bench/peers/child.ts) that stays up for the
 * whole run and takes tasks over IPC. Cases run a peer's task right after rnagrad's own
 * measurement of the same case, so load on the machine that drifts during a run (SwiftShader shares
 * the CPU with everything) hits every engine of a case alike. One task runs at a time.
 *
 * A task that exceeds its time limit kills its process (the next task of that engine starts a new
 * one); a process that cannot start (say, the package is missing) fails every task of its engine
 * with the reason, and the run goes on.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PeerEngine, PeerResult, PeerTask } from './types.js';

export interface PeerRunInfo {
  engine: PeerEngine;
  version?: string;
  adapter?: string;
  /** Whether the engine started and ran at least one task. */
  ran: boolean;
  /** Why it could not start, or the last process failure. */
  error?: string;
  tasks: number;
  completed: number;
  failed: number;
  processes: number;
  busyMs: number;
}

const CHILD = fileURLToPath(new URL('../peers/child.ts', import.meta.url));

type Message =
  | { type: 'info'; version: string; adapter: string }
  | { type: 'fatal'; error: string }
  | { type: 'result'; result: PeerResult };

interface Proc {
  child: ChildProcess;
  ready: Promise<{ ok: true } | { ok: false; error: string }>;
  onMessage: ((m: Message) => void) | null;
  exited: boolean;
  stderr: string;
}

export class PeerPool {
  private readonly procs = new Map<PeerEngine, Proc>();
  private readonly infos = new Map<PeerEngine, PeerRunInfo>();
  private readonly dead = new Map<PeerEngine, string>();

  constructor(
    private readonly opts: { quick: boolean; log: (s: string) => void; taskTimeoutMs: (task: PeerTask) => number },
  ) {}

  private info(engine: PeerEngine): PeerRunInfo {
    let i = this.infos.get(engine);
    if (!i)
      this.infos.set(engine, (i = { engine, ran: false, tasks: 0, completed: 0, failed: 0, processes: 0, busyMs: 0 }));
    return i;
  }

  private start(engine: PeerEngine): Proc {
    const info = this.info(engine);
    info.processes++;
    const child = fork(CHILD, [engine, this.opts.quick ? 'quick' : 'full'], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: process.env,
    });
    const proc: Proc = { child, ready: Promise.resolve({ ok: true }), onMessage: null, exited: false, stderr: '' };
    const keep = (chunk: Buffer) => {
      proc.stderr = (proc.stderr + chunk.toString()).slice(-3000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    proc.ready = new Promise((resolve) => {
      const onExit = (code: number | null) =>
        resolve({
          ok: false,
          error: `process exited (code ${code}) before starting: ${proc.stderr.trim().split('\n').slice(-3).join(' ')}`,
        });
      child.once('exit', onExit);
      proc.onMessage = (m) => {
        if (m.type === 'info') {
          info.version = m.version;
          info.adapter = m.adapter;
          child.off('exit', onExit);
          resolve({ ok: true });
        } else if (m.type === 'fatal') {
          child.off('exit', onExit);
          resolve({ ok: false, error: m.error });
        }
      };
    });
    child.on('message', (m: Message) => proc.onMessage?.(m));
    child.on('exit', () => {
      proc.exited = true;
      if (this.procs.get(engine) === proc) this.procs.delete(engine);
    });
    this.procs.set(engine, proc);
    return proc;
  }

  /** Runs one task on its engine's process (starting it if needed); never throws. */
  async run(task: PeerTask): Promise<PeerResult> {
    const info = this.info(task.engine);
    info.tasks++;
    const fail = (error: string): PeerResult => {
      info.failed++;
      return { id: task.id, error };
    };
    const why = this.dead.get(task.engine);
    if (why) return fail(why);
    let proc = this.procs.get(task.engine);
    if (!proc || proc.exited) proc = this.start(task.engine);
    const ready = await proc.ready;
    if (!ready.ok) {
      const error = `${task.engine} could not start: ${ready.error.split('\n')[0]}`;
      this.dead.set(task.engine, error);
      info.error = error;
      this.opts.log(`  ${error}`);
      proc.child.kill('SIGKILL');
      return fail(error);
    }
    const limit = this.opts.taskTimeoutMs(task);
    const t0 = performance.now();
    const p = proc;
    const result = await new Promise<PeerResult>((resolve) => {
      const timer = setTimeout(() => {
        p.child.kill('SIGKILL');
        resolve({
          id: task.id,
          error: `stopped at the time limit (${(limit / 1000).toFixed(0)} s); the process was killed`,
        });
      }, limit);
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        resolve({
          id: task.id,
          error:
            `the ${task.engine} process died during this task (code ${code}): ` +
            `${p.stderr.trim().split('\n').slice(-2).join(' ')}`,
        });
      };
      p.child.once('exit', onExit);
      p.onMessage = (m) => {
        if (m.type === 'result' && m.result.id === task.id) {
          clearTimeout(timer);
          p.child.off('exit', onExit);
          resolve(m.result);
        }
      };
      p.child.send({ type: 'task', task });
    });
    info.busyMs += performance.now() - t0;
    if (result.error) {
      info.failed++;
      if (p.exited || p.child.killed) info.error = result.error;
    } else {
      info.completed++;
      info.ran = true;
    }
    return result;
  }

  runInfo(): PeerRunInfo[] {
    return [...this.infos.values()];
  }

  close(): void {
    for (const p of this.procs.values()) {
      p.child.send({ type: 'exit' });
      setTimeout(() => p.child.kill('SIGKILL'), 2000).unref();
    }
    this.procs.clear();
  }
}
