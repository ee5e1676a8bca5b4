/**
 * Checkpoint directories (Node only). A run folder holds `checkpoint-000100/`, … each with
 *   model.safetensors      the weights (PyTorch names)
 *   optimizer.safetensors  AdamW moments `m.<name>`, `v.<name>`; per-parameter step counts in its metadata
 *   config.json            model kind + config, longest trained position, the run's options
 *   state.json             step, early-stopping and data-source state, why it was written
 *   metrics.json           the run's history up to this step
 * A checkpoint is written into `<name>.tmp-<pid>` and renamed into place, so a reader sees a whole
 * checkpoint or none; `cleanRunFolder` removes what a killed writer left behind.
 */
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tensor } from '@rnagrad/tensor';
import { decodeSafetensors, encodeSafetensors } from '../checkpoint.js';
import type { Module } from '../module.js';
import { kindOf, modelKind } from '../registry.js';
import type { TrainerSnapshot } from '../trainer.js';

export const CHECKPOINT_FORMAT = 'rnagrad.checkpoint';
const CHECKPOINT_NAME = /^checkpoint-(\d+)$/;
const LEFTOVER = /\.(tmp|old)-\d+(-\d+)?$/;

export interface CheckpointConfig {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  model: { kind: string; config: Record<string, unknown> };
  /** Positions 0..trainedPositions−1 were trained; later ones are untrained embeddings. */
  trainedPositions: number;
  /** What produced it (task, options), for `--resume` and for people. */
  run: Record<string, unknown>;
}

export function checkpointName(step: number): string {
  return `checkpoint-${String(step).padStart(6, '0')}`;
}

async function writeSynced(path: string, data: Uint8Array | string): Promise<void> {
  await writeFile(path, data);
  const handle = await open(path, 'r+');
  await handle.sync();
  await handle.close();
}

/**
 * Writes the checkpoint of `snapshot` into `runDir/checkpoint-<step>` atomically and keeps the
 * newest `keep` checkpoints. Returns its path.
 */
export async function saveCheckpointDir(
  runDir: string,
  model: Module,
  snapshot: TrainerSnapshot,
  info: { trainedPositions: number; run: Record<string, unknown>; keep?: number; afterWeights?: () => Promise<void> },
): Promise<string> {
  await mkdir(runDir, { recursive: true });
  const final = join(runDir, checkpointName(snapshot.step));
  const tmp = `${final}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  const kind = kindOf(model);
  const config: CheckpointConfig = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    model: { kind, config: modelKind(kind).config(model) },
    trainedPositions: info.trainedPositions,
    run: info.run,
  };
  const named = model.namedParameters();
  const moments: [string, Tensor][] = named.flatMap(([n], i) => [
    [`m.${n}`, snapshot.optimizer.m[i]!] as [string, Tensor],
    [`v.${n}`, snapshot.optimizer.v[i]!] as [string, Tensor],
  ]);
  await writeSynced(
    join(tmp, 'model.safetensors'),
    await encodeSafetensors(named, { format: CHECKPOINT_FORMAT, kind }),
  );
  await info.afterWeights?.(); // a seam for tests that kill the writer half-way
  await writeSynced(
    join(tmp, 'optimizer.safetensors'),
    await encodeSafetensors(moments, { steps: JSON.stringify(snapshot.optimizer.steps) }),
  );
  await writeSynced(join(tmp, 'config.json'), JSON.stringify(config, null, 1));
  const state = {
    step: snapshot.step,
    reason: snapshot.reason,
    earlyStopping: snapshot.earlyStopping,
    source: snapshot.source,
  };
  await writeSynced(join(tmp, 'state.json'), JSON.stringify(state, null, 1));
  await writeSynced(join(tmp, 'metrics.json'), JSON.stringify(snapshot.history));
  // A checkpoint of the same step (a resumed run that was already complete) is replaced whole.
  const old = `${final}.old-${process.pid}`;
  const existed = await exists(final);
  if (existed) await rename(final, old);
  await rename(tmp, final);
  if (existed) await rm(old, { recursive: true, force: true });
  await syncDir(runDir);
  if (info.keep !== undefined) await pruneCheckpoints(runDir, info.keep);
  return final;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  await handle.sync().catch(() => undefined);
  await handle.close();
}

/** Checkpoint folders of a run, oldest first. */
export async function listCheckpoints(runDir: string): Promise<{ step: number; path: string }[]> {
  const entries = await readdir(runDir).catch(() => [] as string[]);
  return entries
    .map((name) => ({ name, m: CHECKPOINT_NAME.exec(name) }))
    .filter((e) => e.m)
    .map((e) => ({ step: Number(e.m![1]), path: join(runDir, e.name) }))
    .sort((a, b) => a.step - b.step);
}

async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  const all = await listCheckpoints(runDir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) await rm(old.path, { recursive: true, force: true });
}

/** Removes temporary checkpoints and files that a killed writer left in `runDir`; returns their names. */
export async function cleanRunFolder(runDir: string): Promise<string[]> {
  const entries = await readdir(runDir).catch(() => [] as string[]);
  const stray = entries.filter((name) => LEFTOVER.test(name));
  for (const name of stray) await rm(join(runDir, name), { recursive: true, force: true });
  return stray;
}

/**
 * The checkpoint folder `path` names: a checkpoint itself, or a run folder (its newest
 * checkpoint). Throws an error that says what is missing.
 */
export async function resolveCheckpoint(path: string): Promise<string> {
  if (!(await exists(path))) throw new Error(`${path}: no such checkpoint or run folder`);
  if (!(await stat(path)).isDirectory())
    throw new Error(`${path}: a checkpoint is a folder (with config.json and model.safetensors), not a file`);
  if (await exists(join(path, 'config.json'))) return path;
  const all = await listCheckpoints(path);
  if (all.length === 0)
    throw new Error(`${path}: no checkpoint here (neither config.json nor checkpoint-NNNNNN folders)`);
  return all.at(-1)!.path;
}

async function readJson<J>(path: string): Promise<J> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(
      `${path}: cannot read ` +
        `(${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (err as Error).message}) — not a ` +
        `complete checkpoint`,
    );
  }
  try {
    return JSON.parse(text) as J;
  } catch (err) {
    throw new Error(`${path}: corrupt checkpoint: not valid JSON (${(err as Error).message})`);
  }
}

export async function readCheckpointConfig(dir: string): Promise<CheckpointConfig> {
  const config = await readJson<CheckpointConfig>(join(dir, 'config.json'));
  if (
    config.format !== CHECKPOINT_FORMAT ||
    typeof config.model?.kind !== 'string' ||
    typeof config.model.config !== 'object'
  ) {
    throw new Error(
      `${join(dir, 'config.json')}: not an rnagrad checkpoint config (format "${String(config.format)}")`,
    );
  }
  return config;
}

async function readTensors(path: string): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new Error(
      `${path}: cannot read (${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (err as Error).message})`,
    );
  }
  return decodeSafetensors(bytes, { source: path });
}

function disposeAll(tensors: Map<string, Tensor>): void {
  for (const t of tensors.values()) t.dispose();
}

/** Rebuilds the model of a checkpoint (or of a run folder's newest checkpoint) from the folder alone. */
export async function loadModel<M extends Module = Module>(
  path: string,
): Promise<{ model: M; config: CheckpointConfig; dir: string }> {
  const dir = await resolveCheckpoint(path);
  const config = await readCheckpointConfig(dir);
  const { tensors } = await readTensors(join(dir, 'model.safetensors'));
  const model = modelKind(config.model.kind).create(config.model.config) as M;
  try {
    model.loadStateDict(tensors);
  } catch (err) {
    model.dispose();
    throw new Error(`${dir}: the weights do not fit the model its config.json describes: ${(err as Error).message}`);
  } finally {
    disposeAll(tensors);
  }
  return { model, config, dir };
}

/** The trainer snapshot stored in a checkpoint folder, for `train(…, resume)` on its model. */
export async function loadTrainingState(dir: string, model: Module): Promise<TrainerSnapshot> {
  const { tensors, metadata } = await readTensors(join(dir, 'optimizer.safetensors'));
  const names = model.namedParameters().map(([n]) => n);
  const pick = (key: string) => {
    const t = tensors.get(key);
    if (!t) throw new Error(`${dir}/optimizer.safetensors: no moment "${key}" for this model`);
    return t;
  };
  const steps = JSON.parse(metadata.steps ?? 'null') as number[] | null;
  if (!Array.isArray(steps) || steps.length !== names.length)
    throw new Error(`${dir}/optimizer.safetensors: step counts missing or not one per parameter`);
  const state = await readJson<Pick<TrainerSnapshot, 'step' | 'reason' | 'earlyStopping' | 'source'>>(
    join(dir, 'state.json'),
  );
  const history = await readJson<TrainerSnapshot['history']>(join(dir, 'metrics.json'));
  if (!Number.isInteger(state.step) || state.step < 0)
    throw new Error(`${dir}/state.json: corrupt checkpoint: bad step ${String(state.step)}`);
  return {
    ...state,
    history,
    optimizer: { steps, m: names.map((n) => pick(`m.${n}`)), v: names.map((n) => pick(`v.${n}`)) },
  };
}

/** Frees the moment tensors a loaded snapshot holds (after `train` copied them). */
export function disposeSnapshot(snapshot: TrainerSnapshot): void {
  for (const t of [...snapshot.optimizer.m, ...snapshot.optimizer.v]) t.dispose();
}
