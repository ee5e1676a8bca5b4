/**
 * The training run the Node-equals-browser test compares: a tiny causal HELM model trained by the
 * shared trainer (`trainHelm`) for 50 steps on the first genes of the E. coli corpus, with a fixed
 * seed. Imported unchanged by the Node side and by the browser bundle; only the corpus bytes are
 * read differently (a file in Node, a fetch in the page).
 */
import * as T from '@rnagrad/tensor';
import { HelmModel, codonCorpusFromBytes, trainHelm } from '@rnagrad/models';

export const PARITY_STEPS = 50;

export interface ParityReport {
  adapter: string;
  host: string;
  losses: number[];
  ms: number;
  error?: string;
}

export async function parityRun(corpusBytes: Uint8Array): Promise<ParityReport> {
  const rt = await T.init({ quiet: true });
  const full = await codonCorpusFromBytes(corpusBytes);
  const names = { train: [], validation: [] };
  const corpus = { train: full.train.slice(0, 48), validation: full.validation.slice(0, 8), names };
  T.manualSeed(17);
  const model = new HelmModel({ dModel: 32, layers: 1, heads: 2, dFF: 64, maxPositions: 64, objective: 'clm' });
  const started = performance.now();
  const { history } = await trainHelm(model, corpus, {
    steps: PARITY_STEPS,
    batchSize: 4,
    length: 24,
    loss: 'xe',
    lr: 5e-3,
    warmupSteps: 5,
    evalEvery: 0,
    seed: 17,
  });
  model.dispose();
  return {
    adapter: rt.adapter.description,
    host: rt.adapter.host,
    losses: history.steps.map((s) => s.loss),
    ms: performance.now() - started,
  };
}
