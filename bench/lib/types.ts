/** The shapes of what the bench measures and records. */
import type { Ceilings } from './ceilings.js';
import type { Spread, TimeOptions } from './stats.js';

/** Who computed a figure. */
export type Engine = 'rnagrad' | 'rnagrad-composed' | 'rnagrad-cpu' | 'tfjs-webgpu' | 'jax-js' | 'adapter';
export type PeerEngine = 'tfjs-webgpu' | 'jax-js';
export const PEER_ENGINES: readonly PeerEngine[] = ['tfjs-webgpu', 'jax-js'];

/** Outcome of checking an output against the float64 CPU reference. */
export interface Check {
  ok: boolean;
  /** Largest |got − want| / (|want| + atol-scale) over the checked values (see `compare`). */
  maxErr: number;
  tol: number;
  /** How many values were compared, and against what. */
  count: number;
  against: string;
  note?: string;
}

export interface Figure {
  /** Group of cases (one table section): 'matmul', 'attention', 'train', ... */
  group: string;
  /** Row label, identical across engines so rows line up: 'matmul 1024×1024×1024'. */
  case: string;
  engine: Engine;
  /** Time per call (ms), median and spread over samples after warm-up, GPU completion included. */
  ms?: Spread;
  /** The headline unit of this row and its value (throughput derived from `ms`, or `ms` itself). */
  unit: 'GFLOP/s' | 'GB/s' | 'ms' | 'tokens/s';
  value?: Spread;
  /** Work per call behind `value`. */
  flops?: number;
  bytes?: number;
  /** Which adapter ceiling `ofCeiling` refers to, and the fraction of it reached (median). */
  ceiling?: 'fma' | 'copy';
  ofCeiling?: number;
  /** First call on a cold pipeline cache (new runtime or first call in the process), ms, to GPU completion. */
  coldMs?: number;
  check?: Check;
  /** Set when the engine could not run the case; the figure then has no timing. */
  error?: string;
  note?: string;
  extra?: Record<string, unknown>;
}

/** A job for a peer engine, run in a child process (bench/peers/child.ts). */
export interface PeerTask {
  id: string;
  engine: PeerEngine;
  kind: 'matmul' | 'softmax' | 'attention' | 'gpt2';
  params: Record<string, unknown>;
  /** Sampling plan; by default chosen from the duration of one warm call (see measure.ts `adaptive`). */
  timing?: TimeOptions;
}

export interface PeerResult {
  id: string;
  ms?: Spread;
  coldMs?: number;
  /** Named output values (sampled positions the task asked for, or whole small outputs). */
  outputs?: Record<string, number[]>;
  error?: string;
  extra?: Record<string, unknown>;
}

export interface CaseContext {
  quick: boolean;
  ceilings: Ceilings;
  /** Peer engines enabled for this run. */
  peers: ReadonlySet<PeerEngine>;
  log(line: string): void;
  add(figure: Figure): void;
  /**
   * Runs a task on a peer engine now (its own process), turns the raw result (or failure) into a
   * figure with `finish`, records and prints it.
   */
  peer(task: Omit<PeerTask, 'id'>, finish: (result: PeerResult) => Figure): Promise<Figure>;
  /** A new rnagrad runtime (cold pipeline cache): tensors of the previous one are gone. */
  fresh(): Promise<void>;
  /** Where per-run scratch files go (gitignored). */
  tmpDir: string;
}

export interface BenchCase {
  /** Short name used by --only. */
  name: string;
  title: string;
  run(ctx: CaseContext): Promise<void>;
}
