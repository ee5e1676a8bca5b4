/** The peer side of the protocol: how a peer engine turns a task into a timed, checked result. */
import { adaptive, once, timeIt } from '../lib/stats.js';
import type { PeerResult, PeerTask } from '../lib/types.js';

/** One prepared kernel case on a peer engine. */
export interface Prepared {
  /** One call, awaited to GPU completion by the engine's own sync. */
  run(): Promise<void>;
  /** The outputs of the last call (the values the task asked for). */
  read(): Promise<Record<string, number[]>>;
  dispose(): void;
  extra?: Record<string, unknown>;
}

/** Cold first call (pipeline compile included), outputs for the check, then timed samples. */
export async function runPrepared(task: PeerTask, prepared: Prepared, quick: boolean): Promise<PeerResult> {
  try {
    const coldMs = await once(() => prepared.run());
    const outputs = await prepared.read();
    const warm = await once(() => prepared.run());
    const { ms } = await timeIt(task.id, () => prepared.run(), task.timing ?? adaptive(warm, quick));
    return { id: task.id, ms, coldMs, outputs, extra: prepared.extra };
  } finally {
    prepared.dispose();
  }
}

export interface Gpt2Params {
  dataPath: string;
  /** Steps whose losses are reported (the first is the cold step). */
  checkSteps: number;
}

/** What every engine's GPT-2 step reports back. */
export interface Gpt2PeerExtra {
  losses: number[];
  firstStepMs: number;
  memoryBytes?: number;
  memoryNote?: string;
}
