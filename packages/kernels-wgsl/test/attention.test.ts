/** Kernel-level tests of attention/ and rope.ts on a plain GPUDevice + KernelQueue (no tensor package). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import type { KernelQueue } from '../src/queue.js';
import type { CpuOperand, DType, GpuOperand } from '../src/layout.js';
import {
  type AttentionTiles,
  type AttentionDropout,
  attentionBackwardCpu,
  attentionBackwardGpu,
  attentionDropoutFactor,
  attentionForwardCpu,
  attentionForwardGpu,
  attentionSources,
  attentionTiles,
  attentionWorkgroupBytes,
} from '../src/attention/index.js';
import { ropeCpu, ropeGpu } from '../src/rope.js';
import { close, cop as copStrided, gop as gopStrided, plainDevice, upload, values } from './device.js';

const { device, queue } = await plainDevice();
const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
function zeros(count: number): GPUBuffer {
  return device.createBuffer({ size: Math.max(16, Math.ceil((count * 4) / 16) * 16), usage: USAGE });
}
/** `count` f32 values from element `offset` of `buffer`. */
async function readBack(buffer: GPUBuffer, count: number, offset = 0): Promise<Float64Array> {
  const bytes = Math.max(4, count * 4);
  const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  queue.copy(buffer, offset * 4, staging, 0, bytes);
  queue.flush();
  await staging.mapAsync(GPUMapMode.READ);
  const out = Float64Array.from(new Float32Array(staging.getMappedRange().slice(0)));
  staging.unmap();
  staging.destroy();
  return out.subarray(0, count);
}
/** Contiguous operands, optionally starting `offset` elements into the buffer. */
function gop(buffer: GPUBuffer, shape: number[], dtype: DType = 'f32', offset = 0): GpuOperand {
  return gopStrided(buffer, shape, dtype, undefined, offset);
}
function cop(data: Float64Array, shape: number[], dtype: DType = 'f32', offset = 0): CpuOperand {
  return copStrided(data, shape, dtype, undefined, offset);
}
// ---- end of helpers ----

interface Case {
  B: number;
  H: number;
  L: number;
  D: number;
  causal: boolean;
  masked: boolean;
  tiles?: Partial<AttentionTiles>;
  /** Element offset of every f32 operand inside its buffer (tests unaligned, scalar-path operands). */
  offset?: number;
  dropout?: AttentionDropout;
  /** Operands as strided views of a QKV projection's [B, L, 3, H, D] output (see runCase). */
  packed?: boolean;
}

/**
 * Runs forward + backward on the GPU and the float64 reference; `kernelQueue` lets a test route
 * the dispatches through a wrapper. Returns the largest error relative to the tolerance (≤ 1 passes).
 */
async function runCase(
  c: Case,
  seed: number,
  kernelQueue: KernelQueue = queue,
): Promise<{ worst: number; where: string }> {
  const { B, H, L, D } = c;
  const off = c.offset ?? 0;
  const shape = [B, H, L, D];
  const n = B * H * L * D;
  const [qv, kv, vv, dov] = [0, 1, 2, 3].map((k) => values(n, seed * 5 + k + 1, -1.5, 1.5));
  const maskv = Array.from({ length: B * L }, (_, i) =>
    Math.floor(i / L) === 0 && B > 1 ? 0 : (i * 7 + seed) % 5 === 0 ? 0 : 1,
  );
  // Storage: contiguous [B, H, L, D] buffers, or (packed) q/k/v and dq/dk/dv as the parts of one
  // [B, L, 3, H, D] buffer each and out/dOut as [B, L, H, D] — the layout of a QKV projection.
  const strides = (parts: number) => (c.packed ? [L * parts * H * D, D, parts * H * D, 1] : [H * L * D, L * D, D, 1]);
  const slot = (i: number, s: number[], start: number) =>
    start +
    Math.floor(i / (H * L * D)) * s[0]! +
    (Math.floor(i / (L * D)) % H) * s[1]! +
    (Math.floor(i / D) % L) * s[2]! +
    (i % D);
  /** One buffer per group of logical arrays; operand p of a group starts p·H·D elements in. */
  const layout = (groups: number[][][]) =>
    groups.map((group) => {
      const s = strides(group.length);
      const data = new Array(off + group.length * n).fill(7);
      group.forEach((v, p) => v.forEach((x, i) => (data[slot(i, s, off + p * H * D)] = x)));
      const buffer = upload(data);
      const operand = (p: number) => gopStrided(buffer, shape, 'f32', s, off + p * H * D);
      const read = async (p: number) => {
        const all = await readBack(buffer, data.length);
        return Float64Array.from({ length: n }, (_, i) => all[slot(i, s, off + p * H * D)]!);
      };
      return { buffer, operand, read };
    });
  const zero = new Array<number>(n).fill(0);
  const [ins, outs, grads] = c.packed
    ? [layout([[qv, kv, vv]]), layout([[zero], [dov]]), layout([[zero, zero, zero]])]
    : [layout([[qv], [kv], [vv]]), layout([[zero], [dov]]), layout([[zero], [zero], [zero]])];
  const part = (group: typeof ins, p: number) => (group.length === 1 ? [group[0]!, p] : [group[p]!, 0]);
  const [qo, ko, vo, oo, doo, dqo, dko, dvo] = (
    [
      [ins, 0],
      [ins, 1],
      [ins, 2],
      [outs, 0],
      [outs, 1],
      [grads, 0],
      [grads, 1],
      [grads, 2],
    ] as const
  ).map(([g, p]) => {
    const [b, q] = part(g, p) as [(typeof ins)[number], number];
    return { operand: b.operand(q), read: () => b.read(q) };
  });
  const lb = zeros(B * H * L);
  const sb = zeros(2 * B * H * L);
  const mb = upload(maskv, 'i32');
  const mask = c.masked ? gop(mb, [B, L], 'i32') : null;
  const opts = { causal: c.causal, keyPaddingMask: mask, tiles: c.tiles, dropout: c.dropout };
  const [q, k, v, out] = [qo!, ko!, vo!, oo!].map((o) => o.operand);
  attentionForwardGpu(kernelQueue, { q: q!, k: k!, v: v!, out: out!, lse: gop(lb, [B, H, L]), ...opts });
  attentionBackwardGpu(kernelQueue, {
    q: q!,
    k: k!,
    v: v!,
    out: out!,
    lse: gop(lb, [B, H, L]),
    dOut: doo!.operand,
    dq: dqo!.operand,
    dk: dko!.operand,
    dv: dvo!.operand,
    stats: gop(sb, [2 * B * H * L]),
    ...opts,
  });
  const got = {
    out: await oo!.read(),
    lse: await readBack(lb, B * H * L),
    dq: await dqo!.read(),
    dk: await dko!.read(),
    dv: await dvo!.read(),
  };
  const ref = {
    out: new Float64Array(n),
    lse: new Float64Array(B * H * L),
    dq: new Float64Array(n),
    dk: new Float64Array(n),
    dv: new Float64Array(n),
  };
  const C = (v: number[]) => cop(Float64Array.from(v), shape);
  const cmask = c.masked ? cop(Float64Array.from(maskv), [B, L], 'i32') : null;
  attentionForwardCpu({
    q: C(qv),
    k: C(kv),
    v: C(vv),
    out: cop(ref.out, shape),
    lse: cop(ref.lse, [B, H, L]),
    keyPaddingMask: cmask,
    causal: c.causal,
    dropout: c.dropout,
  });
  attentionBackwardCpu({
    q: C(qv),
    k: C(kv),
    v: C(vv),
    dOut: C(dov),
    dq: cop(ref.dq, shape),
    dk: cop(ref.dk, shape),
    dv: cop(ref.dv, shape),
    keyPaddingMask: cmask,
    causal: c.causal,
    dropout: c.dropout,
  });
  [...ins, ...outs, ...grads].forEach((g) => g.buffer.destroy());
  [lb, sb, mb].forEach((b) => b.destroy());
  let worst = 0;
  let where = '';
  for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
    const [a, e] = [got[name], ref[name]];
    for (let i = 0; i < a.length; i++) {
      if (a[i] === e[i]) continue;
      const err = Math.abs(a[i]! - e[i]!) / (5e-5 + 5e-4 * Math.abs(e[i]!));
      if (!(err <= worst)) {
        worst = Number.isNaN(err) ? Infinity : err;
        where = `${name}[${i}] = ${a[i]}, expected ${e[i]}`;
      }
    }
  }
  return { worst, where };
}

async function check(c: Case, seed: number): Promise<void> {
  const { worst, where } = await runCase(c, seed);
  assert.ok(
    worst <= 1,
    `B${c.B} H${c.H} L${c.L} D${c.D} causal ${c.causal} masked ${c.masked} ` +
      `tiles ${JSON.stringify(c.tiles ?? 'default')}: ${where}`,
  );
}

test(
  'schedules fit 16 KiB of workgroup memory for head dims up to 512; long sequences get more rows per ' + 'thread',
  () => {
    for (const D of [8, 16, 24, 32, 48, 64, 96, 128, 160, 256, 512]) {
      for (const L of [1, 64, 65, 4096]) {
        for (const software of [true, false]) {
          const t = attentionTiles(D, L, software);
          for (const kind of ['fwd', 'dq', 'dkv'] as const)
            assert.ok(attentionWorkgroupBytes(kind, D, t[kind].tile) <= 16384, `D ${D} ${kind}`);
        }
      }
    }
    assert.ok(
      attentionTiles(32, 1024).fwd.wg > attentionTiles(32, 256).fwd.wg,
      'long sequences: more threads per workgroup',
    );
    assert.ok(attentionTiles(64, 256).fwd.per < attentionTiles(32, 256).fwd.per, 'larger heads: fewer rows per thread');
  },
);

test(
  'medium and long-sequence schedules for head dims 16, 64 and 160 match the float64 reference (causal, ' + 'padding)',
  async () => {
    await check({ B: 2, H: 1, L: 83, D: 16, causal: true, masked: true }, 1);
    await check({ B: 1, H: 2, L: 97, D: 64, causal: false, masked: true }, 2);
    await check({ B: 2, H: 1, L: 83, D: 16, causal: true, masked: true, tiles: attentionTiles(16, 1024) }, 1);
    await check({ B: 1, H: 2, L: 97, D: 64, causal: false, masked: true, tiles: attentionTiles(64, 1024) }, 2);
    await check({ B: 2, H: 1, L: 70, D: 160, causal: true, masked: true }, 3);
  },
);

test(
  'hardware-GPU schedules (one row per thread, wide key tiles) match the float64 reference on this adapter ' + 'too',
  async () => {
    for (const [L, D, causal, masked, seed] of [
      [45, 16, true, true, 4],
      [70, 32, false, true, 5],
      [33, 64, true, false, 6],
      [21, 160, false, true, 7],
    ] as const) {
      await check({ B: 2, H: 2, L, D, causal, masked, tiles: attentionTiles(D, L, false) }, seed);
    }
    await check(
      {
        B: 1,
        H: 2,
        L: 50,
        D: 16,
        causal: true,
        masked: true,
        dropout: { p: 0.3, key: 3, base: 11 },
        tiles: attentionTiles(16, 50, false),
      },
      9,
    );
  },
);

test(
  'odd schedules (tiles and workgroups that do not divide the length or each other) match the ' + 'reference',
  async () => {
    const tiles = { fwd: { wg: 8, per: 3, tile: 3 }, dq: { wg: 4, per: 2, tile: 5 }, dkv: { wg: 12, per: 1, tile: 7 } };
    for (const [L, causal, masked] of [
      [1, true, true],
      [2, false, true],
      [29, true, false],
      [50, true, true],
    ] as const) {
      await check({ B: 3, H: 2, L, D: 24, causal, masked, tiles }, L);
    }
  },
);

test(
  'dropout on the probabilities: GPU forward and all three gradients equal the float64 reference with the same ' +
    'mask',
  async () => {
    for (const [L, D, causal, masked, p] of [
      [37, 16, true, true, 0.1],
      [70, 32, false, true, 0.5],
      [20, 18, false, false, 0.3],
    ] as const) {
      await check({ B: 2, H: 2, L, D, causal, masked, dropout: { p, key: 12345 + L, base: 777 } }, L);
    }
    await check(
      {
        B: 1,
        H: 2,
        L: 83,
        D: 16,
        causal: false,
        masked: true,
        dropout: { p: 0.2, key: 99, base: 4e9 },
        tiles: attentionTiles(16, 1024),
      },
      3,
    );
    // The reference drops about p of the pairs, and a different stream changes the output.
    const d = { p: 0.25, key: 5, base: 0 };
    let dropped = 0;
    for (let i = 0; i < 40; i++)
      for (let j = 0; j < 40; j++) if (attentionDropoutFactor(d, 40, 1, i, j) === 0) dropped++;
    assert.ok(Math.abs(dropped / 1600 - 0.25) < 0.04, `dropped ${dropped} of 1600 pairs at p = 0.25`);
    // The float64 backward with dropout is the derivative of the float64 forward (central differences).
    const [B, H, L, D] = [1, 2, 5, 3];
    const shape = [B, H, L, D];
    const n = B * H * L * D;
    const drop = { p: 0.4, key: 31, base: 2 };
    const [q, k, v, dOut] = [1, 2, 3, 4].map((sd) => Float64Array.from(values(n, sd, -1, 1)));
    const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => {
      const out = new Float64Array(n);
      attentionForwardCpu({
        q: cop(qq, shape),
        k: cop(kk, shape),
        v: cop(vv, shape),
        out: cop(out, shape),
        lse: cop(new Float64Array(B * H * L), [B, H, L]),
        causal: true,
        dropout: drop,
      });
      return out.reduce((acc, o, i) => acc + o * dOut[i]!, 0);
    };
    const grads = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    attentionBackwardCpu({
      q: cop(q!, shape),
      k: cop(k!, shape),
      v: cop(v!, shape),
      dOut: cop(dOut!, shape),
      dq: cop(grads[0]!, shape),
      dk: cop(grads[1]!, shape),
      dv: cop(grads[2]!, shape),
      causal: true,
      dropout: drop,
    });
    const inputs = [q!, k!, v!];
    for (let which = 0; which < 3; which++) {
      for (let i = 0; i < n; i++) {
        const x = inputs[which]!;
        const keep = x[i]!;
        x[i] = keep + 1e-6;
        const up = loss(q!, k!, v!);
        x[i] = keep - 1e-6;
        const down = loss(q!, k!, v!);
        x[i] = keep;
        const numeric = (up - down) / 2e-6;
        assert.ok(
          Math.abs(numeric - grads[which]![i]!) < 1e-6 + 1e-5 * Math.abs(numeric),
          `${'qkv'[which]}[${i}]: ${grads[which]![i]} vs ${numeric}`,
        );
      }
    }
  },
);

test('head dims that are not multiples of 4, and operands at unaligned offsets, take the scalar path', async () => {
  await check({ B: 1, H: 2, L: 21, D: 18, causal: true, masked: true }, 4);
  await check({ B: 2, H: 1, L: 13, D: 16, causal: false, masked: true, offset: 2 }, 5);
});

test('strided operands (q/k/v and their gradients inside one [B, L, 3, H, D] buffer) on random shapes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        B: fc.integer({ min: 1, max: 3 }),
        H: fc.integer({ min: 1, max: 3 }),
        L: fc.integer({ min: 1, max: 40 }),
        D: fc.constantFrom(1, 3, 4, 8, 16, 18),
        causal: fc.boolean(),
        masked: fc.boolean(),
        offset: fc.constantFrom(0, 2, 4),
        seed: fc.integer({ min: 1, max: 1000 }),
      }),
      async ({ seed, ...c }) => {
        const { worst, where } = await runCase({ ...c, packed: true }, seed);
        assert.ok(worst <= 1, `${JSON.stringify(c)}: ${where}`);
      },
    ),
    { numRuns: 10 },
  );
  // The GPT-2 bench's shape (vec4 path, default schedules) and a hardware schedule.
  await check({ B: 2, H: 4, L: 64, D: 32, causal: true, masked: false, packed: true }, 11);
  await check(
    { B: 2, H: 2, L: 45, D: 16, causal: true, masked: true, packed: true, tiles: attentionTiles(16, 45, false) },
    12,
  );
});

test('more than 65535 workgroups are split over two grid dimensions', async () => {
  // 70000 heads of length 1: one workgroup each (forward only: the backward kernels share the index code).
  const [B, H, L, D] = [70000, 1, 1, 16];
  const n = B * H * L * D;
  const shape = [B, H, L, D];
  assert.ok(device.limits.maxComputeWorkgroupsPerDimension < B * H);
  const vv = values(n, 9);
  const [qb, kb, vb] = [upload(values(n, 8)), upload(values(n, 10)), upload(vv)];
  const ob = zeros(n);
  const lb = zeros(B * H * L);
  // One 4-lane workgroup per head keeps the 70000 workgroups cheap.
  const tiles = { fwd: { wg: 4, per: 1, tile: 1 } };
  attentionForwardGpu(queue, {
    q: gop(qb, shape),
    k: gop(kb, shape),
    v: gop(vb, shape),
    out: gop(ob, shape),
    lse: gop(lb, [B, H, L]),
    tiles,
  });
  // With one key the output is v itself, and the logsumexp is the scaled score.
  close(await readBack(ob, n), vv, 'length-1 attention over 70000 heads', 0, 0);
  [qb, kb, vb, ob, lb].forEach((b) => b.destroy());
});

test(
  'the write-after-read barrier is load-bearing: removing it breaks the forward on a lane-serial ' + 'adapter',
  async () => {
    // A queue wrapper that drops the barrier after each tile's compute (the one guarding the next
    // tile's writes against slower lanes still reading this tile).
    const broken = {
      device,
      dispatch(req: Parameters<KernelQueue['dispatch']>[0]) {
        if (!req.key.startsWith('attn-fwd')) return queue.dispatch(req);
        queue.dispatch({
          ...req,
          key: `${req.key}:no-war-barrier`,
          source: () => {
            const src = req.source();
            const at = src.lastIndexOf('workgroupBarrier();');
            return src.slice(0, at) + src.slice(at + 'workgroupBarrier();'.length);
          },
        });
      },
    } as unknown as KernelQueue;
    const c: Case = {
      B: 1,
      H: 2,
      L: 40,
      D: 16,
      causal: false,
      masked: false,
      tiles: { fwd: { wg: 16, per: 1, tile: 4 } },
    };
    const good = await runCase(c, 7);
    assert.ok(good.worst <= 1, good.where);
    const bad = await runCase(c, 7, broken);
    // SwiftShader runs the 4-lane groups of a workgroup one after another, so the race always shows;
    // a GPU may hide it, so only the intact kernel is asserted there.
    const info = (device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    if (/swiftshader/i.test(`${info?.description ?? ''} ${info?.architecture ?? ''}`)) {
      assert.ok(bad.worst > 1, 'without the barrier the forward should be wrong on SwiftShader');
    }
  },
);

test('the generated WGSL has two barriers per tile loop and no L×L arrays', () => {
  const src = attentionSources(32, { length: 1024 });
  for (const kind of ['fwd', 'dq', 'dkv'] as const) {
    assert.is(src[kind].split('workgroupBarrier();').length - 1, 2, `${kind}: barriers`);
    const sizes = [...src[kind].matchAll(/var<workgroup> \w+: array<[^,]+, (\d+)>/g)].map((m) => Number(m[1]));
    assert.ok(sizes.length > 0 && sizes.every((s) => s <= 1024), `${kind}: workgroup arrays are tile-sized`);
  }
});

test('rope kernel matches the float64 reference; the inverse undoes it', async () => {
  for (const [rows, L, D, base, offset] of [
    [3, 7, 16, 10000, 0],
    [2, 300, 32, 10000, 5],
    [1, 50, 160, 10000, 0],
    [4, 9, 6, 500, 11],
    [2, 33, 300, 10000, 1],
  ] as const) {
    const shape = [rows, L, D];
    const n = rows * L * D;
    const xv = values(n, n, -3, 3);
    const xb = upload(xv);
    const yb = zeros(n);
    const zb = zeros(n);
    ropeGpu(queue, gop(yb, shape), gop(xb, shape), { base, positionOffset: offset });
    ropeGpu(queue, gop(zb, shape), gop(yb, shape), { base, positionOffset: offset, inverse: true });
    const ref = new Float64Array(n);
    ropeCpu(cop(ref, shape), cop(Float64Array.from(xv), shape), { base, positionOffset: offset });
    const tol = D > 240 ? 3e-4 : 2e-6;
    close(await readBack(yb, n), ref, `rope [${shape}]`, tol, tol);
    close(await readBack(zb, n), xv, `rope inverse [${shape}]`, tol, tol);
    [xb, yb, zb].forEach((b) => b.destroy());
  }
});

test.run();
