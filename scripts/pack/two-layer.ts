/**
 * The program the pack test runs from installed tarballs, unchanged in Node (plain `node`) and in a
 * browser bundle (esbuild, platform "browser", no externals): a two-layer next-codon model
 * (embedding → Linear → GELU → Linear) trained for three AdamW steps on one batch of the E. coli
 * corpus that ships in @rnagrad/models. In a browser the corpus comes from a URL.
 * It reports { adapter, losses, nodeOnlyErrors } on stdout (Node) or window.__rnagrad (browser).
 */
import * as T from '@rnagrad/tensor';
import { zeroGrad } from '@rnagrad/autograd';
import {
  AdamW,
  Embedding,
  IGNORE_INDEX,
  Linear,
  Module,
  clmBatch,
  loadEcoliCds,
  saveCheckpoint,
} from '@rnagrad/models';
import { seededRandom } from '@rnagrad/tokenizers';

class TwoLayer extends Module {
  embed = this.module('embed', new Embedding(70, 32));
  hidden = this.module('hidden', new Linear(32, 64));
  out = this.module('out', new Linear(64, 70));

  forward(ids: T.Tensor): T.Tensor {
    return this.out.forward(T.gelu(this.hidden.forward(this.embed.forward(ids))));
  }
}

const inBrowser = typeof window !== 'undefined';
const report: { adapter?: string; host?: string; losses: number[]; nodeOnlyErrors: string[]; error?: string } = {
  losses: [],
  nodeOnlyErrors: [],
};
try {
  const rt = await T.init({ quiet: true });
  report.adapter = rt.adapter.description;
  report.host = rt.adapter.host;
  const corpus = inBrowser ? await loadEcoliCds({ url: '/ecoli_k12_cds.csv.gz' }) : await loadEcoliCds();
  const batch = clmBatch(corpus.train.slice(0, 8), seededRandom(1), { length: 32 });
  const model = new TwoLayer();
  const optimizer = new AdamW(model.namedParameters(), { lr: 1e-2 });
  for (let step = 0; step < 3; step++) {
    const loss = T.tidy(() => {
      const ids = T.tensor(batch.ids, { shape: batch.shape, dtype: 'i32' });
      const targets = T.tensor(batch.targets, { shape: [batch.ids.length], dtype: 'i32' });
      const l = T.crossEntropy(model.forward(ids).reshape([-1, 70]), targets, { ignoreIndex: IGNORE_INDEX });
      l.backward();
      return l;
    });
    optimizer.update();
    zeroGrad(model.parameters());
    report.losses.push(await loss.item());
    loss.dispose();
  }
  if (inBrowser) {
    // Node-only helpers called in a browser must say which entry to use.
    for (const call of [() => saveCheckpoint('model.safetensors', model.namedParameters()), () => loadEcoliCds()]) {
      await call().then(
        () => report.nodeOnlyErrors.push('no error'),
        (err: Error) => report.nodeOnlyErrors.push(err.message),
      );
    }
  }
} catch (err) {
  report.error = (err as Error).stack ?? String(err);
}
if (inBrowser) (window as unknown as { __rnagrad: unknown }).__rnagrad = report;
else {
  console.log(JSON.stringify(report));
  T.destroyRuntime();
}
