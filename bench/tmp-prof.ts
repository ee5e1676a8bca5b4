import * as T from '@rnagrad/tensor';
import { attentionForwardGpu, attentionBackwardGpu } from '../packages/kernels-wgsl/src/attention.js';
const rt = await T.init({ quiet: true });
const device = rt.device, queue = rt.queue;
const [B, H, L, D] = [1, 4, Number(process.env.L ?? 1024), 32];
const causal = process.env.CAUSAL === '1';
const n = B * H * L * D;
const buf = (words: number) => device.createBuffer({ size: words * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
const mk = () => { const b = buf(n); device.queue.writeBuffer(b, 0, Float32Array.from({ length: n }, () => Math.random() - 0.5)); return b; };
const [q, k, v, o, dO, dq, dk, dv] = [mk(), mk(), mk(), mk(), mk(), mk(), mk(), mk()];
const lse = buf(B * H * L), stats = buf(2 * B * H * L);
const op = (b: GPUBuffer, shape = [B, H, L, D]) => ({ buffer: b, dtype: 'f32' as const, shape, strides: shape.length === 4 ? [H * L * D, L * D, D, 1] : [1], offset: 0 });
const tiles = process.env.TILES ? JSON.parse(process.env.TILES) : undefined;
const run = () => {
  attentionForwardGpu(queue, { q: op(q), k: op(k), v: op(v), out: op(o), lse: op(lse, [B, H, L]), causal, tiles });
  attentionBackwardGpu(queue, { q: op(q), k: op(k), v: op(v), out: op(o), lse: op(lse, [B, H, L]), dOut: op(dO), dq: op(dq), dk: op(dk), dv: op(dv), stats: op(stats, [2 * B * H * L]), causal, tiles });
};
run(); await queue.sync();
const acc = new Map<string, number[]>();
for (let i = 0; i < 5; i++) {
  (queue as any).startProfiling(64);
  run();
  const prof = await (queue as any).readProfile();
  for (const k of prof.kernels ?? prof) { const key = k.key ?? k.label; if (!acc.has(key)) acc.set(key, []); acc.get(key)!.push(k.ms); }
}
for (const [k, xs] of acc) console.log(k.padEnd(36), xs.sort((a, b) => a - b)[2]!.toFixed(1));
T.destroyRuntime();
