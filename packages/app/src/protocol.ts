/**
 * The messages between the page (main.ts) and the training worker (worker.ts). The page asks with
 * a request and an id and gets one reply per request; the worker also sends events while it trains.
 */
import type { EvalEntry, GeneratedSequence, HxeEdge, InspectedTensor, StepEntry } from './deps.js';

export const MODEL_SIZES = {
  tiny: { dModel: 32, layers: 1, heads: 2, dFF: 64 },
  small: { dModel: 64, layers: 2, heads: 4, dFF: 256 },
  medium: { dModel: 128, layers: 4, heads: 4, dFF: 512 },
} as const;
export type ModelSize = keyof typeof MODEL_SIZES;

/** RiNALMo sizes the app offers: the models package's `tiny` test config and the official nano. */
export const RINALMO_SIZES = ['tiny', 'nano'] as const;
export type RinalmoAppSize = (typeof RINALMO_SIZES)[number];

export type ModelKind = 'helm' | 'rinalmo';

export type ModelChoice =
  | { kind: 'helm'; objective: 'mlm' | 'clm'; loss: 'xe' | 'hxe'; size: ModelSize }
  | { kind: 'rinalmo'; size: RinalmoAppSize };

export interface TrainSettings {
  steps: number;
  batchSize: number;
  /** Tokens per training window. */
  length: number;
  lr: number;
  /** Validation every this many steps (0: never). */
  evalEvery: number;
  seed: number;
}

export const DEFAULT_SETTINGS: TrainSettings = {
  steps: 300,
  batchSize: 8,
  length: 32,
  lr: 3e-3,
  evalEvery: 20,
  seed: 42,
};

/** What the page shows about the current model. */
export interface ModelInfo {
  description: string;
  /** The picker's settings that give this model (the size is null for a config the picker lacks). */
  choice:
    | { kind: 'helm'; objective: 'mlm' | 'clm'; loss: 'xe' | 'hxe'; size: ModelSize | null }
    | { kind: 'rinalmo'; size: RinalmoAppSize | null };
  /** Longest input in tokens, or null where positions are relative (RiNALMo's RoPE). */
  maxPositions: number | null;
  /** Why "Generate" / "Look inside" are off for this model, or null when they work. */
  noGenerate: string | null;
  noInside: string | null;
  parameters: number;
  step: number;
  steps: StepEntry[];
  evaluations: EvalEntry[];
}

export interface CorpusInfo {
  name: string;
  train: number;
  validation: number;
  codons: number;
  nucleotides: number;
  /** No sequence fell into the validation split: validation uses the training sequences. */
  validationFromTrain: boolean;
}

export interface GenerateRequest {
  count: number;
  maxCodons: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
}

export interface InsideView {
  /** Token labels of the input (<cls> codons <eos>), with <mask> at the masked position for a masked LM. */
  tokens: string[];
  tensors: InspectedTensor[];
  layers: number;
  heads: number;
  attention: Float32Array;
  /** The position whose prediction the HXE view explains, and its target codon. */
  position: number;
  target: string;
  /** Token predicted from `position` (a masked LM predicts the masked token; a causal LM the next). */
  predictedAt: number;
  /** The codon tree: labels, parents, the mass each node got at `predictedAt`. */
  tree: { labels: string[]; parent: Int32Array; mass: Float64Array };
  /** The HXE path edges of the target (leaf → root) with α. */
  hxe: { edges: HxeEdge[]; loss: number; alpha: number; crossEntropy: number };
  top: { codon: string; probability: number }[];
}

export type Request =
  | { type: 'init' }
  | { type: 'corpus'; source: { kind: 'bundled'; url: string } | { kind: 'upload'; name: string; text: string } }
  | { type: 'create'; model: ModelChoice; seed: number }
  | { type: 'train'; settings: TrainSettings }
  | { type: 'pause' }
  | { type: 'save' }
  /** `expect`: the model kind picked in the page; a checkpoint of the other kind is refused. */
  | { type: 'load'; name: string; bytes: Uint8Array; expect: ModelKind }
  | { type: 'generate'; options: GenerateRequest }
  | { type: 'inspect'; sequence: string; codon: number };

export interface Replies {
  init: {
    adapter: string;
    /** A software adapter (SwiftShader, llvmpipe, WARP): correct but slow. */ fallback: boolean;
  };
  corpus: CorpusInfo;
  create: ModelInfo;
  train: { stopped: 'completed' | 'early-stop' | 'interrupt'; step: number };
  pause: { pausing: boolean };
  save: { bytes: Uint8Array; step: number; description: string; kind: ModelKind };
  load: ModelInfo & { settings: Partial<TrainSettings> };
  generate: { sequences: GeneratedSequence[]; ms: number };
  inspect: InsideView;
}

export type WorkerEvent =
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: string }
  | { type: 'step'; entry: StepEntry }
  | { type: 'evaluation'; entry: EvalEntry };
