import * as T from '@rnagrad/tensor';
import { attentionForwardGpu, attentionBackwardGpu } from '../packages/kernels-wgsl/src/attention.js';
const rt = await T.init({ quiet: true });
const device = rt.device, queue = rt.queue;
const [B, H, L, D] = [Number(process.env.B ?? 8), 4, Number(process.env.L ?? 64), Number(process.env.D ?? 32)];
const causal = process.env.CAUSAL !== "0";
const n = B * H * L * D;
const buf = (words: number) => device.createBuffer({ size: words * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
const mk = () => { const b = buf(n); device.queue.writeBuffer(b, 0, Float32Array.from({ length: n }, () => Math.random() - 0.5)); return b; };
const [q, k, v, o, dO, dq, dk, dv] = [mk(), mk(), mk(), mk(), mk(), mk(), mk(), mk()];
const lse = buf(B * H * L), stats = buf(2 * B * H * L);
const op = (b: GPUBuffer, shape = [B, H, L, D]) => ({ buffer: b, dtype: 'f32' as const, shape, strides: shape.length === 4 ? [H * L * D, L * D, D, 1] : [1], offset: 0 });
const configs: [string, any][] = process.env.BWD ? [['default', undefined], ['bwd wg16 per8', { dq: { wg: 16, per: 8, tile: 4 }, dkv: { wg: 16, per: 8, tile: 4 } }], ['bwd wg32 per8', { dq: { wg: 32, per: 8, tile: 4 }, dkv: { wg: 32, per: 8, tile: 4 } }], ['bwd wg16 per4', { dq: { wg: 16, per: 4, tile: 4 }, dkv: { wg: 16, per: 4, tile: 4 } }], ['dq16 dkv8', { dkv: { wg: 16, per: 8, tile: 4 } }], ['bwd wg8 per8', { dq: { wg: 8, per: 8, tile: 4 }, dkv: { wg: 8, per: 8, tile: 4 } }]] : process.env.ONLY === 'default' ? [['default', undefined]] : process.env.D === '64' ? [['default', undefined], ['wg4 per8', { wg: 4, per: 8, tile: 4 }], ['wg4 per4', { wg: 4, per: 4, tile: 4 }], ['wg8 per8', { wg: 8, per: 8, tile: 4 }], ['wg16 per4', { wg: 16, per: 4, tile: 4 }]] : [
  ['default', undefined],
  ['wg16 per4', { wg: 16, per: 4, tile: 4 }],
  ['wg16 per2', { wg: 16, per: 2, tile: 4 }],
  ['wg8 per8', { wg: 8, per: 8, tile: 4 }],
  ['wg4 per16', { wg: 4, per: 16, tile: 4 }],
  ['wg4 per8', { wg: 4, per: 8, tile: 4 }],
  ['wg4 per16 t8', { wg: 4, per: 16, tile: 8 }],
  ['wg1 per16', { wg: 1, per: 16, tile: 4 }],
];
const res = new Map<string, number[][]>();
for (let it = 0; it < Number(process.env.IT ?? 12); it++) {
  for (const [name, t] of configs) {
    const tiles = t ? (t.wg ? { fwd: t, dq: t, dkv: t } : t) : undefined;
    let t0 = performance.now();
    attentionForwardGpu(queue, { q: op(q), k: op(k), v: op(v), out: op(o), lse: op(lse, [B, H, L]), causal, tiles });
    await queue.sync();
    const f = performance.now() - t0;
    t0 = performance.now();
    attentionBackwardGpu(queue, { q: op(q), k: op(k), v: op(v), out: op(o), lse: op(lse, [B, H, L]), dOut: op(dO), dq: op(dq), dk: op(dk), dv: op(dv), stats: op(stats, [2 * B * H * L]), causal, tiles });
    await queue.sync();
    const b = performance.now() - t0;
    if (it >= 2) { if (!res.has(name)) res.set(name, []); res.get(name)!.push([f, b]); }
  }
}
const med = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
for (const [name, xs] of res) console.log(name.padEnd(14), 'fwd', med(xs.map((x) => x[0]!)).toFixed(2), 'bwd', med(xs.map((x) => x[1]!)).toFixed(2));
T.destroyRuntime();
