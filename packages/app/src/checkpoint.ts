/**
 * The app's checkpoint: one safetensors file with the weights (PyTorch names), the AdamW moments
 * (`optimizer.m.<name>`, `optimizer.v.<name>`) and, in its metadata, the model config and the
 * trainer's state — so a paused, saved or downloaded run reloads and continues bit for bit.
 * Loading checks everything and names what is wrong (another file, another model kind).
 */
import {
  HelmModel,
  RinalmoModel,
  T,
  type HelmConfig,
  type RinalmoConfig,
  type TrainerSnapshot,
  bytesSource,
  decodeSafetensors,
  encodeSafetensors,
  readSafetensorsIndex,
} from './deps.js';
import type { ModelKind, TrainSettings } from './protocol.js';

export const APP_CHECKPOINT_FORMAT = 'rnagrad.app-checkpoint';

export interface AppCheckpointInfo {
  loss: 'xe' | 'hxe';
  settings: TrainSettings;
}

type Snapshot = Omit<TrainerSnapshot, 'reason'> & { reason?: TrainerSnapshot['reason'] };

/** The models the app trains: HELM codon LMs and RiNALMo nucleotide MLMs. */
export type AppModel = HelmModel | RinalmoModel;

export const modelKind = (model: AppModel): ModelKind => (model instanceof RinalmoModel ? 'rinalmo' : 'helm');

const KIND_NAMES: Record<ModelKind, string> = { helm: 'HELM codon', rinalmo: 'RiNALMo nucleotide' };

export async function encodeAppCheckpoint(
  model: AppModel,
  info: AppCheckpointInfo,
  snapshot: Snapshot | null,
): Promise<Uint8Array> {
  const named = model.namedParameters();
  const tensors: [string, T.Tensor][] = [...named];
  if (snapshot)
    named.forEach(([n], i) =>
      tensors.push([`optimizer.m.${n}`, snapshot.optimizer.m[i]!], [`optimizer.v.${n}`, snapshot.optimizer.v[i]!]),
    );
  const state = snapshot && {
    step: snapshot.step,
    history: snapshot.history,
    earlyStopping: snapshot.earlyStopping,
    source: snapshot.source,
    optimizerSteps: snapshot.optimizer.steps,
  };
  return encodeSafetensors(tensors, {
    format: APP_CHECKPOINT_FORMAT,
    version: '1',
    kind: modelKind(model),
    config: JSON.stringify(model.cfg),
    info: JSON.stringify(info),
    state: JSON.stringify(state),
  });
}

export interface LoadedCheckpoint {
  model: AppModel;
  info: AppCheckpointInfo;
  /** The trainer's state, or null for weights saved before any training. */
  snapshot: TrainerSnapshot | null;
  /** The moments, to dispose once the trainer has copied them. */
  dispose(): void;
}

function parseJson<J>(text: string | undefined, what: string, name: string): J {
  try {
    return JSON.parse(text ?? '') as J;
  } catch {
    throw new Error(`${name}: the checkpoint's ${what} metadata is missing or not JSON`);
  }
}

/**
 * What kind of file this is, from its header alone (before reading tensors it may not even support);
 * a checkpoint of a model kind other than `expect` is refused.
 */
async function checkMetadata(bytes: Uint8Array, name: string, expect?: ModelKind): Promise<ModelKind> {
  const { metadata } = await readSafetensorsIndex(bytesSource(bytes, name));
  if (metadata.format !== APP_CHECKPOINT_FORMAT) {
    const what =
      metadata.format === 'rnagrad.checkpoint'
        ? `the weights of a ${metadata.kind ?? ''} CLI checkpoint folder (no model config inside)`
        : metadata.format
          ? `a "${metadata.format}" file`
          : "a safetensors file without rnagrad app metadata (another model's weights?)";
    throw new Error(`${name}: not a checkpoint of this app — it is ${what}. Load a file saved by the app.`);
  }
  const kind = metadata.kind;
  if (kind !== 'helm' && kind !== 'rinalmo')
    throw new Error(`${name}: holds a "${kind}" model; this app trains HELM codon and RiNALMo nucleotide models`);
  if (expect && kind !== expect) {
    throw new Error(
      `${name}: holds a ${KIND_NAMES[kind]} model, but the model picked is ${KIND_NAMES[expect]}; ` +
        `pick ${kind === 'helm' ? 'a HELM model' : 'RiNALMo'} under "2 · Model" to load it`,
    );
  }
  return kind;
}

/** Reads an app checkpoint; with `expect`, one of another model kind is refused before anything is built. */
export async function decodeAppCheckpoint(
  bytes: Uint8Array,
  name: string,
  expect?: ModelKind,
): Promise<LoadedCheckpoint> {
  const kind = await checkMetadata(bytes, name, expect);
  const { tensors, metadata } = decodeSafetensors(bytes, { source: name });
  let released = false;
  const release = () => {
    if (!released) for (const t of tensors.values()) t.dispose();
    released = true;
  };
  try {
    const config = parseJson<HelmConfig & RinalmoConfig>(metadata.config, 'config', name);
    const info = parseJson<AppCheckpointInfo>(metadata.info, 'info', name);
    const state = parseJson<(Omit<TrainerSnapshot, 'optimizer' | 'reason'> & { optimizerSteps: number[] }) | null>(
      metadata.state,
      'state',
      name,
    );
    let model: AppModel;
    try {
      model = kind === 'rinalmo' ? new RinalmoModel(config) : new HelmModel(config);
    } catch (err) {
      throw new Error(`${name}: its model config is invalid: ${(err as Error).message}`);
    }
    const weights = new Map([...tensors].filter(([n]) => !n.startsWith('optimizer.')));
    try {
      model.loadStateDict(weights);
    } catch (err) {
      model.dispose();
      throw new Error(`${name}: the weights do not fit the model its config describes: ${(err as Error).message}`);
    }
    const moment = (kind: 'm' | 'v') =>
      model.namedParameters().map(([n]) => {
        const t = tensors.get(`optimizer.${kind}.${n}`);
        if (t) return t;
        model.dispose();
        throw new Error(`${name}: the optimizer state lacks ${kind} of ${n}`);
      });
    let snapshot: TrainerSnapshot | null = null;
    if (state) {
      const { optimizerSteps, ...rest } = state;
      snapshot = { ...rest, optimizer: { steps: optimizerSteps, m: moment('m'), v: moment('v') }, reason: 'interrupt' };
    }
    for (const [, t] of weights) t.dispose();
    return { model, info, snapshot, dispose: release };
  } catch (err) {
    release();
    throw err;
  }
}
