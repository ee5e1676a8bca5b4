/**
 * The training worker: it owns the WebGPU runtime, the corpus and the model, and runs the shared
 * trainer of @rnagrad/models (helmTask + train, exactly what `trainHelm` and the CLI run) unchanged.
 * Only data loading (a URL or an upload) and checkpoints (bytes handed to the page) are the app's.
 */
import { type AppCheckpointInfo, decodeAppCheckpoint, encodeAppCheckpoint } from './checkpoint.js';
import { uploadCorpus } from './corpus.js';
import {
  type CodonCorpus,
  HelmModel,
  T,
  type TrainerSnapshot,
  generate,
  helmTask,
  loadEcoliCds,
  train,
} from './deps.js';
import { inspectSequence } from './inside.js';
import {
  MODEL_SIZES,
  type ModelInfo,
  type Replies,
  type Request,
  type TrainSettings,
  type WorkerEvent,
  DEFAULT_SETTINGS,
} from './protocol.js';

const scope = self as unknown as {
  postMessage(message: WorkerEvent): void;
  onmessage: ((e: MessageEvent<{ id: number; request: Request }>) => void) | null;
};
const post = (event: WorkerEvent) => scope.postMessage(event);

let corpus: CodonCorpus | null = null;
let model: HelmModel | null = null;
let info: AppCheckpointInfo = { loss: 'hxe', settings: DEFAULT_SETTINGS };
/** Where a paused or finished run stands (bytes of an app checkpoint), or null before any training. */
let saved: Uint8Array | null = null;
let history: Pick<TrainerSnapshot['history'], 'steps' | 'evaluations'> = { steps: [], evaluations: [] };
let training = false;
let pauseRequested = false;

function describe(m: HelmModel): ModelInfo {
  const c = m.cfg;
  return {
    description:
      `HELM ${c.objective === 'clm' ? 'causal' : 'masked'} LM, ${info.loss.toUpperCase()} loss, ` +
      `${c.layers} block${c.layers > 1 ? 's' : ''}, d ${c.dModel}, ${c.heads} heads`,
    config: c,
    loss: info.loss,
    parameters: m.parameterCount(),
    step: history.steps.at(-1)?.step ?? 0,
    steps: history.steps,
    evaluations: history.evaluations,
  };
}

function needModel(): HelmModel {
  if (!model) throw new Error('no model yet: create one first');
  return model;
}

function idle(what: string): void {
  if (training) throw new Error(`${what}: pause the training first`);
}

function replaceModel(next: HelmModel): void {
  model?.dispose();
  model = next;
}

const handlers: { [K in Request['type']]: (request: Extract<Request, { type: K }>) => Promise<Replies[K]> } = {
  async init() {
    const rt = await T.init({ quiet: true });
    const a = rt.adapter;
    return {
      adapter: a.description || `${a.vendor} ${a.architecture}`.trim() || 'WebGPU adapter',
      fallback: a.isSoftware,
    };
  },

  async corpus({ source }) {
    corpus =
      source.kind === 'bundled' ? await loadEcoliCds({ url: source.url }) : uploadCorpus(source.name, source.text);
    const codons = [...corpus.train, ...corpus.validation].reduce((n, s) => n + s.length, 0);
    return {
      name: source.kind === 'bundled' ? 'E. coli K-12 coding sequences (bundled)' : source.name,
      train: corpus.train.length,
      validation: corpus.validation.length,
      codons,
    };
  },

  async create({ model: choice, seed }) {
    idle('new model');
    T.manualSeed(seed);
    info = { loss: choice.loss, settings: { ...info.settings, seed } };
    replaceModel(new HelmModel({ ...MODEL_SIZES[choice.size], maxPositions: 256, objective: choice.objective }));
    saved = null;
    history = { steps: [], evaluations: [] };
    return describe(model!);
  },

  async train({ settings }) {
    idle('train');
    const m = needModel();
    if (!corpus) throw new Error('no corpus yet: pick the bundled corpus or upload sequences');
    if (settings.length > m.cfg.maxPositions)
      throw new Error(`window length ${settings.length} exceeds the model's ${m.cfg.maxPositions} positions`);
    const resumed = saved ? await decodeAppCheckpoint(saved, 'the paused run') : null;
    if (resumed) {
      replaceModel(resumed.model);
      if (settings.steps <= (resumed.snapshot?.step ?? 0)) {
        resumed.dispose();
        throw new Error(`the run is at step ${resumed.snapshot?.step}: raise "steps" above it to continue`);
      }
    }
    // A resumed run keeps its data order and schedule: the seed and window are the saved ones.
    const run: TrainSettings = resumed?.snapshot
      ? {
          ...settings,
          seed: resumed.info.settings.seed,
          length: resumed.info.settings.length,
          batchSize: resumed.info.settings.batchSize,
        }
      : settings;
    info = { loss: info.loss, settings: run };
    const options = {
      steps: run.steps,
      batchSize: run.batchSize,
      length: run.length,
      loss: info.loss,
      alpha: 0.2,
      lr: run.lr,
      minLr: run.lr / 10,
      warmupSteps: Math.min(20, Math.floor(run.steps / 10)),
      evalEvery: run.evalEvery,
      validationBatches: 2,
      seed: run.seed,
    };
    training = true;
    pauseRequested = false;
    try {
      const result = await train(
        helmTask(model!, corpus, options),
        options,
        {
          onStep: (entry) => post({ type: 'step', entry }),
          onEvaluation: (entry) => post({ type: 'evaluation', entry }),
          shouldStop: () => pauseRequested,
          onSnapshot: async (snapshot) => {
            resumed?.dispose();
            history = snapshot.history;
            saved = await encodeAppCheckpoint(model!, info, snapshot);
          },
        },
        resumed?.snapshot ?? undefined,
      );
      return { stopped: result.stopped, step: result.step };
    } finally {
      resumed?.dispose();
      training = false;
    }
  },

  async pause() {
    pauseRequested = training;
    return { pausing: training };
  },

  async save() {
    idle('save');
    const m = needModel();
    const bytes = saved ?? (await encodeAppCheckpoint(m, info, null));
    return { bytes, step: history.steps.at(-1)?.step ?? 0, description: describe(m).description };
  },

  async load({ name, bytes }) {
    idle('load');
    const loaded = await decodeAppCheckpoint(bytes, name);
    loaded.dispose();
    replaceModel(loaded.model);
    info = loaded.info;
    saved = loaded.snapshot ? bytes : null;
    history = loaded.snapshot ? loaded.snapshot.history : { steps: [], evaluations: [] };
    return { ...describe(model!), settings: info.settings };
  },

  async generate({ options }) {
    idle('generate');
    const started = performance.now();
    const sequences = await generate(needModel(), { ...options, prompts: [new Int32Array(0)] });
    model!.train();
    return { sequences, ms: performance.now() - started };
  },

  async inspect({ sequence, codon }) {
    idle('look inside');
    const view = await inspectSequence(needModel(), sequence, codon);
    model!.train();
    return view;
  },
};

scope.onmessage = async ({ data: { id, request } }) => {
  try {
    const handler = handlers[request.type] as (r: Request) => Promise<unknown>;
    post({ type: 'reply', id, ok: true, result: await handler(request) });
  } catch (err) {
    post({ type: 'reply', id, ok: false, error: (err as Error).message || String(err) });
  }
};
