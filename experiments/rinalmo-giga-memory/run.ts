/**
 * Memory and time of a RiNALMo giga forward (33 × 1280, 650.9 M parameters) at L = 512 on the
 * WebGPU adapter the runtime finds, without a tape (inference). Weights are randomly initialised:
 * memory and time do not depend on their values.
 *
 *   node --import tsx experiments/rinalmo-giga-memory/run.ts [--layers N] [--length L] [--out FILE]
 *
 * --layers runs the giga widths with fewer blocks (a quick check: the peak grows by one block's
 * weights per block, activations stay one block's). Writes results.json (atomically) next to this file.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '@rnagrad/tensor/node';
import { noGrad } from '@rnagrad/autograd';
import { RINALMO_CONFIGS, RinalmoModel } from '@rnagrad/models';
import { NucleotideTokenizer } from '@rnagrad/tokenizers';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} needs a positive integer`);
  return value;
}
const giga = RINALMO_CONFIGS.giga;
const layers = flag('layers', giga.layers);
const length = flag('length', 512);
const outIndex = process.argv.indexOf('--out');
const out = outIndex >= 0 ? process.argv[outIndex + 1]! : join(dirname(fileURLToPath(import.meta.url)), 'results.json');
const MiB = 2 ** 20;

const rt = await T.init();
rt.pool.resetPeak();
let started = performance.now();
const model = new RinalmoModel({ ...giga, layers });
model.eval();
await rt.sync();
const parameters = model.parameters().reduce((n, p) => n + p.size, 0);
const weightBytes = rt.stats().liveBytes;
const buildSeconds = (performance.now() - started) / 1000;
console.log(
  `giga widths, ${layers} blocks: ${(parameters / 1e6).toFixed(2)} M parameters, ${(weightBytes / MiB).toFixed(1)} MiB live after init (${buildSeconds.toFixed(1)} s)`,
);

// One sequence of `length` tokens: <cls>, length − 2 random nucleotides, <eos>.
const tokenizer = new NucleotideTokenizer();
const letters = 'ACGU';
let seed = 12345;
const sequence = Array.from(
  { length: length - 2 },
  () => letters[(seed = (seed * 1103515245 + 12345) % 2 ** 31) % 4],
).join('');
const tokens = T.tensor(tokenizer.encode(sequence), { shape: [1, length], dtype: 'i32' });

rt.pool.resetPeak();
started = performance.now();
const { representation, logits } = noGrad(() => model.forward(tokens));
const checksum = await representation.abs().sum().item();
representation.dispose();
logits?.dispose();
const forwardSeconds = (performance.now() - started) / 1000;
const stats = rt.stats();
const result = {
  date: new Date().toISOString(),
  adapter: rt.adapter,
  config: { ...giga, layers },
  length,
  parameters,
  weightMiB: +(weightBytes / MiB).toFixed(1),
  peakLiveMiB: +(stats.peakLiveBytes / MiB).toFixed(1),
  activationPeakMiB: +((stats.peakLiveBytes - weightBytes) / MiB).toFixed(1),
  pooledMiBAfter: +(stats.pooledBytes / MiB).toFixed(1),
  maxRssMiB: +(process.resourceUsage().maxRSS / 1024).toFixed(0),
  forwardSeconds: +forwardSeconds.toFixed(1),
  representationAbsSum: checksum,
  finite: Number.isFinite(checksum),
};
console.log(JSON.stringify(result, null, 2));
writeFileSync(`${out}.tmp`, `${JSON.stringify(result, null, 2)}\n`);
renameSync(`${out}.tmp`, out);
rt.destroy();
