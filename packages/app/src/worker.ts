/**
 * The training worker: it owns the WebGPU runtime, the corpus and the model, and runs the shared
 * trainer of @rnagrad/models unchanged — helmTask + train (what `trainHelm` and the CLI run) for
 * HELM, rinalmoTask + train (what `trainRinalmo` runs) for RiNALMo. Only data loading (a URL or an
 * upload) and checkpoints (bytes handed to the page) are the app's.
 */
import {
  type AppCheckpointInfo,
  type AppModel,
  decodeAppCheckpoint,
  encodeAppCheckpoint,
  modelKind,
} from './checkpoint.js';
import { type AppCorpus, bundledCorpus, uploadCorpus } from './corpus.js';
import {
  HelmModel,
  RINALMO_CONFIGS,
  RinalmoModel,
  T,
  type TrainerHooks,
  type TrainerSnapshot,
  generate,
  helmTask,
  loadEcoliCds,
  rinalmoTask,
  train,
} from './deps.js';
import { inspectSequence } from './inside.js';
import {
  MODEL_SIZES,
  RINALMO_SIZES,
  type ModelInfo,
  type ModelSize,
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

let corpus: AppCorpus | null = null;
let model: AppModel | null = null;
let info: AppCheckpointInfo = { loss: 'hxe', settings: DEFAULT_SETTINGS };
/** Where a paused or finished run stands (bytes of an app checkpoint), or null before any training. */
let saved: Uint8Array | null = null;
let history: Pick<TrainerSnapshot['history'], 'steps' | 'evaluations'> = { steps: [], evaluations: [] };
let training = false;
let pauseRequested = false;

function describe(m: AppModel): ModelInfo {
  const progress = {
    parameters: m.parameterCount(),
    step: history.steps.at(-1)?.step ?? 0,
    steps: history.steps,
    evaluations: history.evaluations,
  };
  if (m instanceof RinalmoModel) {
    const c = m.cfg;
    const size = RINALMO_SIZES.find((n) => RINALMO_CONFIGS[n].dim === c.dim && RINALMO_CONFIGS[n].layers === c.layers);
    return {
      description:
        `RiNALMo nucleotide MLM, ${c.layers} block${c.layers > 1 ? 's' : ''}, d ${c.dim}, ${c.heads} heads` +
        (size ? ` (${size})` : ''),
      choice: { kind: 'rinalmo', size: size ?? null },
      maxPositions: null,
      noGenerate: 'RiNALMo is a masked LM: it fills in masked nucleotides and does not generate sequences',
      noInside:
        "look inside records the HELM forward pass (inspectHelm); RiNALMo's (RoPE, token dropout, SwiGLU) " +
        'is not instrumented yet',
      ...progress,
    };
  }
  const c = m.cfg;
  const size = (Object.keys(MODEL_SIZES) as ModelSize[]).find(
    (n) => MODEL_SIZES[n].dModel === c.dModel && MODEL_SIZES[n].layers === c.layers,
  );
  return {
    description:
      `HELM ${c.objective === 'clm' ? 'causal' : 'masked'} LM, ${info.loss.toUpperCase()} loss, ` +
      `${c.layers} block${c.layers > 1 ? 's' : ''}, d ${c.dModel}, ${c.heads} heads`,
    choice: { kind: 'helm', objective: c.objective, loss: info.loss, size: size ?? null },
    maxPositions: c.maxPositions,
    noGenerate: c.objective === 'clm' ? null : 'a masked LM does not generate: create a causal (CLM) model',
    noInside: null,
    ...progress,
  };
}

function needModel(): AppModel {
  if (!model) throw new Error('no model yet: create one first');
  return model;
}

/** The model, if it is a HELM one: RiNALMo neither generates nor is instrumented for "look inside". */
function needHelm(action: 'generate' | 'look inside'): HelmModel {
  const m = needModel();
  if (m instanceof HelmModel) return m;
  const { noGenerate, noInside } = describe(m);
  throw new Error(`${action}: ${action === 'generate' ? noGenerate : noInside}`);
}

function idle(what: string): void {
  if (training) throw new Error(`${what}: pause the training first`);
}

function replaceModel(next: AppModel): void {
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
      source.kind === 'bundled'
        ? bundledCorpus('E. coli K-12 coding sequences (bundled)', await loadEcoliCds({ url: source.url }))
        : uploadCorpus(source.name, source.text);
    const { codons, nucleotides } = corpus;
    const count = (seqs: Int32Array[], framing: number) => seqs.reduce((n, s) => n + s.length - framing, 0);
    return {
      name: corpus.name,
      train: codons.train.length,
      validation: codons.validation.length,
      codons: count([...codons.train, ...codons.validation], 0),
      // Nucleotide ids carry <cls> and <eos>; a reused validation split is not counted twice.
      nucleotides: count([...nucleotides.train, ...(corpus.validationFromTrain ? [] : nucleotides.validation)], 2),
      validationFromTrain: corpus.validationFromTrain,
    };
  },

  async create({ model: choice, seed }) {
    idle('new model');
    T.manualSeed(seed);
    info = { loss: choice.kind === 'helm' ? choice.loss : 'xe', settings: { ...info.settings, seed } };
    replaceModel(
      choice.kind === 'rinalmo'
        ? new RinalmoModel(choice.size)
        : new HelmModel({ ...MODEL_SIZES[choice.size], maxPositions: 256, objective: choice.objective }),
    );
    saved = null;
    history = { steps: [], evaluations: [] };
    return describe(model!);
  },

  async train({ settings }) {
    idle('train');
    const m = needModel();
    if (!corpus) throw new Error('no corpus yet: pick the bundled corpus or upload sequences');
    if (m instanceof HelmModel && settings.length > m.cfg.maxPositions)
      throw new Error(`window length ${settings.length} exceeds the model's ${m.cfg.maxPositions} positions`);
    if (m instanceof RinalmoModel && settings.length < 3)
      throw new Error(`window length ${settings.length}: RiNALMo needs at least 3 tokens (<cls>, a nucleotide, <eos>)`);
    const resumed = saved ? await decodeAppCheckpoint(saved, 'the paused run', modelKind(m)) : null;
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
      // RiNALMo's window: nucleotides per row, <cls> and <eos> included.
      maxLength: run.length,
      loss: info.loss,
      alpha: 0.2,
      lr: run.lr,
      minLr: run.lr / 10,
      warmupSteps: Math.min(20, Math.floor(run.steps / 10)),
      evalEvery: run.evalEvery,
      validationBatches: 2,
      seed: run.seed,
    };
    const hooks: TrainerHooks = {
      onStep: (entry) => post({ type: 'step', entry }),
      onEvaluation: (entry) => post({ type: 'evaluation', entry }),
      shouldStop: () => pauseRequested,
      onSnapshot: async (snapshot) => {
        resumed?.dispose();
        history = snapshot.history;
        saved = await encodeAppCheckpoint(model!, info, snapshot);
      },
    };
    const resume = resumed?.snapshot ?? undefined;
    const current = model!;
    training = true;
    pauseRequested = false;
    try {
      const result =
        current instanceof RinalmoModel
          ? await train(rinalmoTask(current, corpus.nucleotides, options), options, hooks, resume)
          : await train(helmTask(current, corpus.codons, options), options, hooks, resume);
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
    return { bytes, step: history.steps.at(-1)?.step ?? 0, description: describe(m).description, kind: modelKind(m) };
  },

  async load({ name, bytes, expect }) {
    idle('load');
    const loaded = await decodeAppCheckpoint(bytes, name, expect);
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
    const sequences = await generate(needHelm('generate'), { ...options, prompts: [new Int32Array(0)] });
    model!.train();
    return { sequences, ms: performance.now() - started };
  },

  async inspect({ sequence, codon }) {
    idle('look inside');
    const view = await inspectSequence(needHelm('look inside'), sequence, codon);
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
