/**
 * Model kinds a checkpoint can name, so `loadModel(dir)` rebuilds a model from its directory
 * alone. A kind maps a saved config to a fresh model; new models (RiNALMo, heads) register here.
 */
import type { Module } from './module.js';
import { HelmModel, type HelmConfig } from './helm.js';
import { RinalmoModel, type RinalmoConfig } from './rinalmo.js';

export interface ModelKind {
  /** Builds an untrained model from the config stored in the checkpoint. */
  create(config: Record<string, unknown>): Module;
  /** The config to store (plain JSON). */
  config(model: Module): Record<string, unknown>;
  /** True for instances of this kind. */
  owns(model: Module): boolean;
  /** A short human name, e.g. "HELM causal LM". */
  describe(config: Record<string, unknown>): string;
}

const kinds = new Map<string, ModelKind>();

export function registerModelKind(name: string, kind: ModelKind): void {
  kinds.set(name, kind);
}

export function modelKind(name: string): ModelKind {
  const kind = kinds.get(name);
  if (!kind) throw new Error(`unknown model kind "${name}" (known: ${[...kinds.keys()].join(', ')})`);
  return kind;
}

/** The registered kind name of a model instance. */
export function kindOf(model: Module): string {
  for (const [name, kind] of kinds) if (kind.owns(model)) return name;
  throw new Error(`kindOf: ${model.constructor.name} is not a registered model kind`);
}

registerModelKind('helm', {
  create: (config) => new HelmModel(config as Partial<HelmConfig>),
  owns: (model) => model instanceof HelmModel,
  config: (model) => ({ ...(model as HelmModel).cfg }),
  describe: (config) => `HELM ${config.objective === 'clm' ? 'causal' : 'masked'} LM`,
});

registerModelKind('rinalmo', {
  create: (config) => new RinalmoModel(config as unknown as RinalmoConfig),
  owns: (model) => model instanceof RinalmoModel,
  config: (model) => ({ ...(model as RinalmoModel).cfg }),
  describe: (config) => `RiNALMo encoder (${String(config.layers)} blocks, d ${String(config.dim)})`,
});
