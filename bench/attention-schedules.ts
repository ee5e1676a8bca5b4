/**
 * Attention schedule sweep: GPU time of each attention kernel (forward, dQ, dK/dV) for a list of
 * schedules (threads per workgroup × rows per thread × keys per tile), from GPU timestamp queries
 * (needs the adapter's 'timestamp-query' feature). Used to pick `attentionTiles`' defaults for
 * CPU and GPU adapters; every schedule's outputs are first checked against the adapter's default.
 *
 *   node --import tsx bench/attention-schedules.ts
 *   SHAPES=1x4x1024x32,8x4x64x32 REPS=5 node --import tsx bench/attention-schedules.ts
 */
import * as T from '@rnagrad/tensor';
import {
  type AttentionTileConfig,
  type GpuOperand,
  attentionBackwardGpu,
  attentionForwardGpu,
  ATTENTION_WORKGROUP_BYTES,
  attentionTiles,
  attentionWorkgroupBytes,
  isSoftwareAdapter,
} from '@rnagrad/kernels-wgsl';

const SHAPES = (process.env.SHAPES ?? '1x4x1024x32,8x4x64x32,1x4x256x32,1x4x512x64,1x4x512x160')
  .split(',')
  .map((s) => s.split('x').map(Number) as [number, number, number, number]);
const REPS = Number(process.env.REPS ?? 5);
const CANDIDATES: [number, number, number][] = (
  process.env.CANDIDATES ?? '32x1x32,64x1x32,32x1x16,64x1x16,128x1x16,32x1x8,64x1x8,64x2x8,32x2x16,16x16x4'
)
  .split(',')
  .map((s) => s.split('x').map(Number) as [number, number, number]);

const rt = await T.init({ quiet: true });
const { queue, device } = rt;
if (!device.features.has('timestamp-query')) throw new Error('attention-schedules: the adapter lacks timestamp-query');
const software = isSoftwareAdapter(queue);
console.log(
  `adapter: ${rt.adapter.description || rt.adapter.device} (${software ? 'software' : 'hardware'}); ${REPS} reps; ` +
    `GPU ms per kernel (median of reps)`,
);

let seed = 3;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
function buffer(n: number, fill: boolean): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, n * 4), usage: USAGE, mappedAtCreation: fill });
  if (fill) {
    new Float32Array(b.getMappedRange()).set(Float32Array.from({ length: n }, rand));
    b.unmap();
  }
  return b;
}
async function read(b: GPUBuffer, n: number): Promise<Float32Array> {
  const staging = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  queue.copy(b, 0, staging, 0, n * 4);
  queue.flush();
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

for (const [B, H, L, D] of SHAPES) {
  const n = B * H * L * D;
  const shape = [B, H, L, D];
  const op = (buf: GPUBuffer, s: number[] = shape): GpuOperand => ({
    buffer: buf,
    shape: s,
    strides: s.map((_, i) => s.slice(i + 1).reduce((a, b) => a * b, 1)),
    offset: 0,
    dtype: 'f32',
  });
  const [q, k, v, dO] = [0, 1, 2, 3].map(() => buffer(n, true)) as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
  const [o, dq, dk, dv] = [0, 1, 2, 3].map(() => buffer(n, false)) as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
  const lse = buffer(B * H * L, false);
  const stats = buffer(2 * B * H * L, false);
  const run = (cfg: AttentionTileConfig | null, causal: boolean) => {
    const tiles = cfg ? { fwd: cfg, dq: cfg, dkv: cfg } : undefined;
    const common = { q: op(q), k: op(k), v: op(v), causal, tiles };
    attentionForwardGpu(queue, { ...common, out: op(o), lse: op(lse, [B, H, L]) });
    attentionBackwardGpu(queue, {
      ...common,
      out: op(o),
      lse: op(lse, [B, H, L]),
      dOut: op(dO),
      dq: op(dq),
      dk: op(dk),
      dv: op(dv),
      stats: op(stats, [2 * B * H * L]),
    });
  };
  const outputs = async () => Promise.all([o, dq, dk, dv].map((b) => read(b, n)));
  const def = attentionTiles(D, L, software).fwd;
  console.log(
    `\n[${shape.join(', ')}]  default ${def.wg}x${def.per}x${def.tile}   (wg x per x tile: fwd | dQ | dK/dV | ` +
      `total, ms)`,
  );
  for (const causal of [false, true]) {
    run(null, causal);
    const want = await outputs();
    for (const [wg, per, want_tile] of CANDIDATES) {
      let tile = want_tile;
      while (
        tile > 1 &&
        (['fwd', 'dq', 'dkv'] as const).some(
          (kind) => attentionWorkgroupBytes(kind, D, tile) > ATTENTION_WORKGROUP_BYTES,
        )
      )
        tile--;
      const cfg = { wg, per, tile };
      const name = `${wg}x${per}x${tile}${causal ? ' causal' : ''}`;
      try {
        run(cfg, causal); // compile + warm-up
        const got = await outputs();
        const err = Math.max(...got.map((g, i) => g.reduce((m, x, j) => Math.max(m, Math.abs(x - want[i]![j]!)), 0)));
        if (!(err < 1e-3)) throw new Error(`differs from the default schedule by ${err}`);
        const times: Record<string, number[]> = { fwd: [], dq: [], dkv: [] };
        for (let r = 0; r < REPS; r++) {
          queue.startProfiling(64);
          run(cfg, causal);
          for (const { key, ms } of await queue.readProfile()) {
            const kind = key.startsWith('attn-fwd')
              ? 'fwd'
              : key.startsWith('attn-dq')
                ? 'dq'
                : key.startsWith('attn-dkv')
                  ? 'dkv'
                  : null;
            if (kind) times[kind]!.push(ms);
          }
        }
        const [f, a, b] = [median(times.fwd!), median(times.dq!), median(times.dkv!)];
        console.log(
          `  ${name.padEnd(18)} ${f.toFixed(3).padStart(9)} | ${a.toFixed(3).padStart(9)} ` +
            `| ${b.toFixed(3).padStart(9)} | ${(f + a + b).toFixed(3).padStart(9)}`,
        );
      } catch (err) {
        console.log(`  ${name.padEnd(18)} failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  }
  [q, k, v, dO, o, dq, dk, dv, lse, stats].forEach((b) => b.destroy());
}
rt.destroy();
