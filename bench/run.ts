/**
 * rnagrad's benchmark suite: every kernel and a full GPT-2-style training step, against the
 * adapter's own ceilings (measured first, in the same run) and against peer engines (tfjs-webgpu,
 * jax-js) run in the same run on the same adapter. Writes bench/results/<timestamp>.json,
 * latest.json, latest.md and latest.svg.
 *
 *   pnpm bench                       full run (~15–20 min on a 2-core SwiftShader machine)
 *   pnpm bench --quick               smaller sizes, fewer samples (< 5 min there)
 *   pnpm bench --only=matmul,train   some cases only (names: see CASES below)
 *   pnpm bench --no-peers            rnagrad only;  --peers=jax-js  one peer only
 *   pnpm bench --out=DIR             write results to DIR instead of bench/results
 *   pnpm bench --no-write            print only
 */
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '@rnagrad/tensor';
import { attentionCase } from './cases/attention.js';
import { adamwCase } from './cases/adamw.js';
import { convCase } from './cases/conv.js';
import { crossEntropyCase } from './cases/crossentropy.js';
import { elementwiseCase } from './cases/elementwise.js';
import { hxeCase } from './cases/hxe.js';
import { layerNormCase } from './cases/layernorm.js';
import { matmulCase } from './cases/matmul.js';
import { softmaxCase } from './cases/softmax.js';
import { trainCase } from './cases/train.js';
import { combineCeilings, measureCeilings } from './lib/ceilings.js';
import { PeerPool } from './lib/peers.js';
import { errorFigure } from './lib/figure.js';
import { logFigure } from './lib/measure.js';
import { type BenchResults, writeResults } from './lib/report.js';
import { PEER_ENGINES, type BenchCase, type CaseContext, type Figure, type PeerEngine } from './lib/types.js';
import { packageVersion } from './lib/versions.js';

/** Every case, in run order; a model benchmark plugs in by adding its module here. */
export const CASES: BenchCase[] = [
  matmulCase,
  softmaxCase,
  crossEntropyCase,
  hxeCase,
  layerNormCase,
  attentionCase,
  adamwCase,
  elementwiseCase,
  convCase,
  trainCase,
];

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
if (flag('help') || flag('h')) {
  console.log(
    `usage: pnpm bench [--quick] [--only=${CASES.map((c) => c.name).join(',')}] [--no-peers | ` +
      `--peers=${PEER_ENGINES.join(',')}] [--out=DIR] [--no-write]`,
  );
  process.exit(0);
}
const quick = flag('quick');
const only = option('only')?.split(',').filter(Boolean);
const peerList = flag('no-peers') ? [] : (option('peers')?.split(',') ?? [...PEER_ENGINES]);
for (const p of peerList)
  if (!PEER_ENGINES.includes(p as PeerEngine))
    throw new Error(`unknown peer "${p}" (known: ${PEER_ENGINES.join(', ')})`);
const peers = new Set(peerList as PeerEngine[]);
const unknown = only?.filter((n) => !CASES.some((c) => c.name === n));
if (unknown?.length)
  throw new Error(`unknown case(s) ${unknown.join(', ')} (known: ${CASES.map((c) => c.name).join(', ')})`);
const benchDir = fileURLToPath(new URL('.', import.meta.url));
const outDir = option('out') ?? join(benchDir, 'results');
const tmpDir = join(benchDir, 'results', 'tmp');
mkdirSync(tmpDir, { recursive: true });

const started = new Date();
const t0 = performance.now();
const lines: string[] = [];
const log = (line: string) => {
  lines.push(line);
  console.log(line);
};
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;

// Dawn warns when this is unset (it is not needed for compute); set it before the first device.
process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
const rt = await T.init({ quiet: true });
const adapter = rt.adapter;
log(
  `rnagrad bench (${quick ? 'quick' : 'full'}) — adapter: ${adapter.vendor} ${adapter.architecture} ` +
    `"${adapter.description}"${adapter.isSoftware ? ' (software)' : ''}; node ${process.version}; ` +
    `${os.cpus().length} CPU cores; load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
);
const adapterExtra: Record<string, unknown> = {};
try {
  const info = (rt.device as unknown as { adapterInfo?: Record<string, unknown> }).adapterInfo;
  if (info)
    for (const k of ['subgroupMinSize', 'subgroupMaxSize', 'isFallbackAdapter'])
      if (info[k] !== undefined) adapterExtra[k] = info[k];
  const limits = rt.device.limits as unknown as Record<string, number>;
  adapterExtra.limits = Object.fromEntries(
    [
      'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup',
      'maxStorageBufferBindingSize',
      'maxStorageBuffersPerShaderStage',
    ].map((k) => [k, limits[k]]),
  );
  adapterExtra.features = [...rt.device.features].sort();
} catch {
  // informational only
}

log('\n== Adapter ceilings');
const startCeilings = await measureCeilings(rt, { quick, log: (s) => log(`  ${s}`) });
let ceilings = startCeilings;

const figures: Figure[] = [];
const pool = new PeerPool({
  quick,
  log,
  // tfjs needs up to ~25 s a training step here under load; a task past its limit is killed.
  taskTimeoutMs: (task) => (task.kind === 'gpt2' ? (quick ? 150_000 : 400_000) : quick ? 120_000 : 300_000),
});
let nextId = 0;
const ctx: CaseContext = {
  quick,
  ceilings: startCeilings,
  peers,
  log,
  add(f) {
    // When and under what load each figure was taken (SwiftShader shares the CPU with everything).
    f.extra = { ...f.extra, atS: Math.round((performance.now() - t0) / 1000), load1: +os.loadavg()[0]!.toFixed(2) };
    figures.push(f);
  },
  async peer(task, finish) {
    const id = `${task.kind}-${nextId++}`;
    const result = await pool.run({ ...task, id });
    let fig: Figure;
    try {
      fig = finish(result);
    } catch (err) {
      fig = errorFigure('?', id, task.engine, err);
    }
    ctx.add(fig);
    logFigure(ctx, fig);
    if (fig.check && !fig.check.ok) log(`  !!! ${task.engine} gave a WRONG result for ${fig.case}: ${fig.check.note}`);
    return fig;
  },
  async fresh() {
    // Module-level caches of GPU tensors (e.g. the composed attention's causal bias) would outlive
    // the device otherwise.
    T.releaseComposedAttentionCache();
    T.destroyRuntime();
    await T.init({ quiet: true });
  },
  tmpDir,
};

for (const c of CASES) {
  if (only && !only.includes(c.name)) continue;
  log(`\n== ${c.title} (rnagrad) — ${elapsed()}`);
  try {
    await c.run(ctx);
  } catch (err) {
    log(`  ${c.name} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    figures.push({
      group: c.name,
      case: c.title,
      engine: 'rnagrad',
      unit: 'ms',
      error: err instanceof Error ? err.message : String(err),
    });
  }
}
T.destroyRuntime();
pool.close();
const peerInfo = pool.runInfo();
for (const p of PEER_ENGINES) if (!peers.has(p)) log(`${p}: not run (--no-peers/--peers)`);
for (const i of peerInfo)
  log(
    `${i.engine} ${i.version ?? ''}: ${i.completed}/${i.tasks} tasks ran, ` +
      `${(i.busyMs / 1000).toFixed(0)} s${i.error ? ` — ${i.error}` : ''}`,
  );

// The ceilings again, at the end: other load on the machine only ever lowers them, so the higher
// of the two is the ceiling, and every fraction of it is recomputed.
log(`\n== Adapter ceilings again — ${elapsed()}`);
const endRt = await T.init({ quiet: true });
ceilings = combineCeilings(startCeilings, await measureCeilings(endRt, { quick, log: (s) => log(`  ${s}`) }));
T.destroyRuntime();
for (const f of figures) {
  if (f.ofCeiling === undefined || !f.value) continue;
  f.ofCeiling = f.value.median / (f.ceiling === 'fma' ? ceilings.fmaGflops : ceilings.copyGbps);
}
log(`  ceilings used: FMA ${ceilings.fmaGflops.toFixed(2)} GFLOP/s, copy ${ceilings.copyGbps.toFixed(3)} GB/s`);

const versions: Record<string, string | null> = {
  '@rnagrad/tensor': packageVersion('@rnagrad/tensor'),
  webgpu: packageVersion('webgpu'),
  tinybench: packageVersion('tinybench'),
  '@tensorflow/tfjs-backend-webgpu': packageVersion('@tensorflow/tfjs-backend-webgpu'),
  '@tensorflow/tfjs': packageVersion('@tensorflow/tfjs'),
  '@jax-js/jax': packageVersion('@jax-js/jax'),
  typescript: packageVersion('typescript'),
  tsx: packageVersion('tsx'),
};

const results: BenchResults = {
  schema: 'rnagrad-bench/1',
  mode: quick ? 'quick' : 'full',
  date: started.toISOString(),
  durationS: (performance.now() - t0) / 1000,
  command: `node ${[...process.execArgv, ...process.argv.slice(1)]
    .map((a) => a.replace(benchDir, 'bench/'))
    .join(' ')}`,
  only: only ?? null,
  machine: {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    memoryGiB: os.totalmem() / 2 ** 30,
    loadAverageAtEnd: os.loadavg(),
  },
  adapter: { ...adapter, ...adapterExtra },
  versions,
  ceilings,
  peers: peerInfo,
  figures,
  log: lines,
};
log(`\n== Done in ${elapsed()}`);
if (!flag('no-write')) {
  const written = writeResults(results, outDir);
  for (const p of written) console.log(`wrote ${p}`);
}
process.exit(0);
