/**
 * End-to-end check of the HELM model against PyTorch: loss and the gradient of every parameter,
 * for masked-LM with flat and hierarchical cross-entropy and for causal LM
 * (fixture: fixtures/make_helm_fixture.py, run once with PyTorch in float64).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '@rnagrad/tensor';
import { zeroGrad } from '@rnagrad/autograd';
import { HelmModel, IGNORE_INDEX, decodeSafetensors, lossFunction } from '../src/index.js';
import { readFile } from 'node:fs/promises';

await T.init({ quiet: true });
const { tensors, metadata } = decodeSafetensors(
  await readFile(new URL('../fixtures/helm_fixture.safetensors', import.meta.url)),
  { source: 'helm_fixture' },
);
const config = JSON.parse(metadata.config!) as {
  vocabSize: number;
  dModel: number;
  layers: number;
  heads: number;
  dFF: number;
  maxPositions: number;
};

for (const name of ['mlm_xe', 'mlm_hxe', 'clm_xe']) {
  test(`HELM ${name}: loss and every gradient match PyTorch to 1e-4 relative`, async () => {
    const causal = metadata[`${name}.causal`] === 'true';
    const model = new HelmModel({ ...config, objective: causal ? 'clm' : 'mlm' });
    const params = new Map([...tensors].filter(([k]) => k.startsWith('param.')).map(([k, v]) => [k.slice(6), v]));
    model.loadStateDict(params);
    const ids = tensors.get(`${name}.ids`)!;
    const targets = tensors.get(`${name}.targets`)!.reshape([-1]);
    const mask = tensors.get('batch.mask')!;
    const objective = lossFunction(metadata[`${name}.loss_kind`] as 'xe' | 'hxe', 0.2);
    const loss = T.tidy(() => {
      const l = objective(model.forward(ids, mask).reshape([-1, config.vocabSize]), targets);
      l.backward();
      return l;
    });
    const expected = Number(metadata[`${name}.loss`]);
    const got = await loss.item();
    assert.ok(Math.abs(got - expected) <= 1e-4 * Math.abs(expected), `loss ${got} vs PyTorch ${expected}`);
    let checked = 0;
    for (const [pname, p] of model.namedParameters()) {
      const want = await tensors.get(`${name}.grad.${pname}`)!.dataF64();
      const have = await p.grad!.dataF64();
      const scale = Math.max(...want.map(Math.abs));
      for (let i = 0; i < want.length; i++) {
        if (Math.abs(have[i]! - want[i]!) > 1e-4 * scale + 1e-7) {
          assert.unreachable(`${pname}[${i}]: ${have[i]} vs PyTorch ${want[i]} (max |grad| ${scale})`);
        }
      }
      checked++;
    }
    assert.is(checked, params.size);
    assert.ok(IGNORE_INDEX === -100);
    zeroGrad(model.parameters());
    loss.dispose();
    model.dispose();
  });
}

test.run();
