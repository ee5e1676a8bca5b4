/**
 * Exact resume: a run of 2N steps straight vs. N steps, SIGKILL after the checkpoint at N, and a
 * resume to 2N must give bit-identical per-step losses and final weights; a SIGKILL during a
 * checkpoint write leaves the previous checkpoint loadable, and the next start removes the debris.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '@rnagrad/tensor';
import { HelmModel, type TrainHistory, helmTask, train } from '../src/index.js';
import {
  loadModel,
  loadTrainingState,
  resolveCheckpoint,
  saveCheckpointDir,
  disposeSnapshot,
} from '../src/node/index.js';
import { RESUME_RUN, resumeCorpus } from './fixtures/resume-setup.js';

await T.init({ quiet: true });

const child = fileURLToPath(new URL('./fixtures/resume-child.ts', import.meta.url));
const N = RESUME_RUN.trainer.checkpointEvery;

/** Starts the child; resolves when a stdout line matches `until` (or on exit). */
function runChild(
  args: object,
  until?: RegExp,
): Promise<{ proc: ChildProcess; out: string; exited: Promise<number | null> }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (until?.test(out)) resolve({ proc, out, exited });
    });
    proc.stderr!.on('data', (d: Buffer) => (err += d));
    void exited.then((code) =>
      until && !until.test(out)
        ? reject(new Error(`child exited ${code} before ${until}:\n${out}\n${err}`))
        : resolve({ proc, out, exited }),
    );
  });
}

async function kill(c: { proc: ChildProcess; exited: Promise<number | null> }): Promise<void> {
  c.proc.kill('SIGKILL');
  await c.exited;
}

const history = (dir: string) => JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as TrainHistory;

test(
  '2N steps straight = N steps, SIGKILL, resume to 2N (losses and weights bit for bit); a kill mid-write leaves ' +
    'the last checkpoint',
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'rnagrad-resume-'));
    try {
      // The straight run, in this process.
      const straightDir = join(root, 'straight');
      T.manualSeed(RESUME_RUN.seed);
      const model = new HelmModel(RESUME_RUN.model);
      const task = helmTask(model, resumeCorpus(), RESUME_RUN.task);
      await train(task, RESUME_RUN.trainer, {
        onSnapshot: async (s) =>
          void (await saveCheckpointDir(straightDir, model, s, {
            trainedPositions: task.source.trainedPositions(),
            run: {},
          })),
      });
      model.dispose();

      // N steps, killed right after the checkpoint at N.
      const runDir = join(root, 'run');
      await kill(await runChild({ runDir, stallAfterCheckpoint: N }, new RegExp(`CHECKPOINT ${N}\\n`)));
      assert.equal(readdirSync(runDir), [`checkpoint-00000${N}`]);

      // Resume, and kill it half-way through writing the checkpoint at 2N.
      await kill(await runChild({ runDir, resume: true, stallWritingAt: 2 * N }, new RegExp(`WRITING ${2 * N}\\n`)));
      const debris = readdirSync(runDir).filter((n) => n.includes('.tmp-'));
      assert.is(debris.length, 1, `a temporary checkpoint is left: ${readdirSync(runDir).join(', ')}`);
      // The previous checkpoint is still what the run folder resolves to, and it loads.
      const previous = await resolveCheckpoint(runDir);
      assert.ok(previous.endsWith(`checkpoint-00000${N}`), previous);
      const loaded = await loadModel(previous);
      const state = await loadTrainingState(previous, loaded.model);
      assert.is(state.step, N);
      disposeSnapshot(state);
      loaded.model.dispose();

      // The next start cleans up and finishes the run.
      const done = await runChild({ runDir, resume: true }, /DONE\n/);
      assert.is(await done.exited, 0);
      assert.equal(
        readdirSync(runDir).filter((n) => n.includes('.tmp-') || n.includes('.old-')),
        [],
        'no stray temporary files',
      );

      const final = join(runDir, `checkpoint-00000${2 * N}`);
      const straight = join(straightDir, `checkpoint-00000${2 * N}`);
      const [a, b] = [history(straight), history(final)];
      assert.is(b.steps.length, 2 * N);
      assert.equal(
        b.steps.map((s) => s.loss),
        a.steps.map((s) => s.loss),
        'per-step losses',
      );
      assert.equal(b.evaluations, a.evaluations, 'validation metrics');
      for (const file of ['model.safetensors', 'optimizer.safetensors']) {
        assert.ok(
          readFileSync(join(final, file)).equals(readFileSync(join(straight, file))),
          `${file} differs from the straight run's`,
        );
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);

test.run();
