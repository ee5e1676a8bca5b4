/**
 * Edge semantics that must equal PyTorch on every adapter: NaN and ±inf through activations,
 * reductions, softmax, log-softmax and the losses; log-softmax precision at large logits; and
 * out-of-range indices raising an error. WGSL leaves NaN handling of built-ins to the driver, so
 * these run on the GPU (Node: packages/tensor/test/edge.test.ts; headless Chromium:
 * scripts/browser-suite.ts) as well as on the CPU oracle. HXE's cases live with the op, in
 * packages/models/test/hxe-edge-cases.ts, and use the checks exported here. Expected values were
 * printed by PyTorch 1.13 (float32) and are written out here, so the tests never need PyTorch.
 */
import * as T from '../src/index.js';

export type EdgeCase = [name: string, run: () => Promise<void>];

const { NaN: nan } = Number;
const inf = Infinity;

function fail(message: string): never {
  throw new Error(message);
}

/** Equal as PyTorch prints them: NaN matches NaN, ±inf match exactly, finite values to `tol` relative. */
export function same(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 1e-6): void {
  if (actual.length !== expected.length) fail(`${what}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok = Number.isNaN(e)
      ? Number.isNaN(a)
      : Number.isFinite(e)
        ? Math.abs(a - e) <= tol * Math.max(1, Math.abs(e))
        : a === e;
    if (!ok) fail(`${what}: element ${i} is ${a}, expected ${e} (got [${Array.from(actual).join(', ')}])`);
  }
}

export const DEVICES = ['gpu', 'cpu'] as const;

export async function values(t: T.Tensor): Promise<Float64Array> {
  const v = await t.dataF64();
  t.dispose();
  return v;
}

/** The error `fn` raises (at once on the CPU, at the readback on the GPU), or a failure if none. */
export async function errorOf(fn: () => Promise<unknown>, what: string): Promise<string> {
  try {
    await fn();
  } catch (err) {
    return (err as Error).message;
  }
  return fail(`${what}: no error was raised`);
}

export function expectMessage(message: string, parts: string[], what: string): void {
  for (const p of parts) if (!message.includes(p)) fail(`${what}: error "${message}" does not mention "${p}"`);
}

export function edgeCases(): EdgeCase[] {
  const cases: EdgeCase[] = [];
  const add = (name: string, run: () => Promise<void>) => cases.push([name, run]);

  const special = [nan, inf, -inf, 0, 1, -1];
  const unary: [string, (x: T.Tensor) => T.Tensor, number[]][] = [
    ['relu', T.relu, [nan, inf, 0, 0, 1, 0]],
    ['exp', T.exp, [nan, inf, 0, 1, 2.7182817459106445, 0.3678794503211975]],
    ['log', T.log, [nan, inf, nan, -inf, 0, nan]],
    ['tanh', T.tanh, [nan, 1, -1, 0, 0.7615941762924194, -0.7615941762924194]],
    ['sigmoid', T.sigmoid, [nan, 1, 0, 0.5, 0.7310585975646973, 0.2689414322376251]],
    ['silu', T.silu, [nan, inf, nan, 0, 0.7310585975646973, -0.2689414322376251]],
    ['gelu', T.gelu, [nan, inf, nan, 0, 0.8413447141647339, -0.1586552858352661]],
    ['sign', T.sign, [0, 1, -1, 0, 1, -1]],
  ];
  for (const [name, fn, want] of unary) {
    add(`${name} of NaN, ±inf, 0, ±1 equals PyTorch`, async () => {
      for (const device of DEVICES) {
        const x = T.tensor(special, { device });
        same(await values(fn(x)), want, `${name} (${device})`);
        x.dispose();
      }
    });
  }

  add('maximum / minimum propagate NaN from either side', async () => {
    for (const device of DEVICES) {
      const a = T.tensor([1, nan, nan, 3], { device });
      const b = T.tensor([nan, 2, nan, 1], { device });
      same(await values(T.maximum(a, b)), [nan, nan, nan, 3], `maximum (${device})`);
      same(await values(T.minimum(a, b)), [nan, nan, nan, 1], `minimum (${device})`);
      a.dispose();
      b.dispose();
    }
  });

  add('max / min are NaN and argmax / argmin point at the first NaN (short and long rows)', async () => {
    for (const device of DEVICES) {
      // [4, 5]: many short reductions (one thread each); [2, 700]: few long ones (a workgroup each).
      for (const [rows, cols] of [
        [4, 5],
        [2, 700],
      ] as const) {
        const v = Array.from({ length: rows * cols }, (_, i) => Math.sin(i));
        v[1] = nan; // row 0: NaN at column 1 and, later, at column 3
        v[3] = nan;
        v[cols + cols - 1] = nan; // row 1: NaN at the last column
        const x = T.tensor(v, { shape: [rows, cols], device });
        const what = `[${rows}, ${cols}] (${device})`;
        const clean = (r: number) => Array.from({ length: cols }, (_, c) => v[r * cols + c]!);
        const tail = Array.from({ length: rows - 2 }, (_, r) => clean(r + 2));
        same(await values(T.max(x, 1)), [nan, nan, ...tail.map((r) => Math.fround(Math.max(...r)))], `max ${what}`);
        same(await values(T.min(x, 1)), [nan, nan, ...tail.map((r) => Math.fround(Math.min(...r)))], `min ${what}`);
        const arg = (r: number[], best: (a: number, b: number) => boolean) =>
          r.reduce((bi, val, i) => (best(val, r[bi]!) ? i : bi), 0);
        same(
          await values(T.argmax(x, 1)),
          [1, cols - 1, ...tail.map((r) => arg(r, (a, b) => a > b))],
          `argmax ${what}`,
        );
        same(
          await values(T.argmin(x, 1)),
          [1, cols - 1, ...tail.map((r) => arg(r, (a, b) => a < b))],
          `argmin ${what}`,
        );
        x.dispose();
      }
    }
  });

  // Rows of 3 (scalar loads) and 8 (vec4 loads); PyTorch: NaN or +inf anywhere, or all −inf, makes the whole row NaN.
  const rows: [number[], number[], number[]][] = [
    [
      [1, nan, 3],
      [nan, nan, nan],
      [nan, nan, nan],
    ],
    [
      [1, inf, 3],
      [nan, nan, nan],
      [nan, nan, nan],
    ],
    [
      [1, -inf, 3],
      [0.11920291185379028, 0, 0.8807970285415649],
      [-2.1269280910491943, -inf, -0.12692804634571075],
    ],
    [
      [-inf, -inf, -inf],
      [nan, nan, nan],
      [nan, nan, nan],
    ],
  ];
  add('softmax and log-softmax of rows with NaN, +inf, −inf and all −inf equal PyTorch', async () => {
    for (const device of DEVICES) {
      for (const [row, soft, logSoft] of rows) {
        for (const width of [3, 8]) {
          // width 8: the row, then five very negative entries that change nothing visible.
          const pad = width - 3;
          const input = [...row, ...Array(pad).fill(row[0] === -inf ? -inf : -200)];
          const x = T.tensor([...input, ...input], { shape: [2, width], device });
          const what = `[${row.join(', ')}] width ${width} (${device})`;
          const nanRow = Number.isNaN(soft[0]!);
          const s = await values(T.softmax(x, -1));
          same(s.subarray(0, width), [...soft, ...Array(pad).fill(nanRow ? nan : 0)], `softmax ${what}`);
          const l = await values(T.logSoftmax(x, -1));
          same(l.subarray(0, 3), logSoft, `logSoftmax ${what}`);
          if (nanRow) same(l.subarray(3, width), Array(pad).fill(nan), `logSoftmax ${what}`);
          x.dispose();
        }
      }
      // One long row: several lanes per row share the (max, Σ) reduction.
      const long = Array.from({ length: 4096 }, (_, i) => Math.cos(i));
      long[4000] = nan;
      const x = T.tensor(long, { shape: [1, 4096], device });
      same(await values(T.softmax(x, -1)), Array(4096).fill(nan), `softmax, long row with NaN (${device})`);
      x.dispose();
    }
  });

  add('log-softmax at logits of magnitude 1e4 is within 1 ulp of float64', async () => {
    for (const device of DEVICES) {
      const row = [1e4, 1e4 - 0.5, 1e4 - 3, 1e4 - 1.25, -1e4, 1e4 - 7, 1e4 - 0.125, 1e4 - 2].map(Math.fround);
      const x = T.tensor([...row, ...row.map((v) => -v)], { shape: [2, 8], device });
      const got = await values(T.logSoftmax(x, -1));
      x.dispose();
      for (const [r, xs] of [row, row.map((v) => -v)].entries()) {
        const m = Math.max(...xs);
        const logSum = Math.log(xs.reduce((s, v) => s + Math.exp(v - m), 0));
        xs.forEach((v, c) => {
          const exact = v - m - logSum;
          const ulp = ulpOf(Math.fround(exact));
          const err = Math.abs(got[r * 8 + c]! - exact);
          if (!(err <= ulp))
            fail(`logSoftmax (${device}) row ${r} col ${c}: ${got[r * 8 + c]} vs ${exact}, error ${err / ulp} ulp`);
        });
      }
    }
  });

  add('cross-entropy of a row with NaN or +inf is NaN, a −inf target logit gives +inf (mean and per row)', async () => {
    for (const device of DEVICES) {
      const x = T.tensor([1, nan, 3, 1, inf, 3, 1, -inf, 3, 1, 2, 3], { shape: [4, 3], device });
      const targets = T.tensor(new Int32Array([0, 0, 1, 2]), { device });
      same(
        await values(T.crossEntropy(x, targets, { reduction: 'none' })),
        [nan, nan, inf, 0.40760597586631775],
        `crossEntropy none (${device})`,
      );
      same(await values(T.crossEntropy(x, targets)), [nan], `crossEntropy mean (${device})`);
      for (const t of [x, targets]) t.dispose();
    }
  });

  const ids = (v: number[], device: 'gpu' | 'cpu') => T.tensor(new Int32Array(v), { device });
  const outOfRange: [string, (device: 'gpu' | 'cpu') => T.Tensor, string[]][] = [
    [
      'embedding',
      (d) => T.embedding(T.ones([4, 3], { device: d }), ids([0, 4, 1], d)),
      ['embedding', 'index 4', '0…3'],
    ],
    [
      'indexSelect',
      (d) => T.indexSelect(T.ones([2, 5], { device: d }), 1, ids([0, -1], d)),
      ['indexSelect', 'index -1', '0…4'],
    ],
    [
      'gather',
      (d) =>
        T.gather(
          T.ones([2, 3], { device: d }),
          1,
          T.tensor(new Int32Array([0, 1, 3, 0]), { shape: [2, 2], device: d }),
        ),
      ['gather', 'index 3', '0…2'],
    ],
    [
      'crossEntropy',
      (d) => T.crossEntropy(T.ones([3, 5], { device: d }), ids([0, -100, 5], d)),
      ['crossEntropy', 'index 5', '0…4', '-100'],
    ],
  ];
  for (const [name, run, parts] of outOfRange) {
    add(`${name}: an out-of-range index raises an error naming the op, the value and the range`, () =>
      expectIndexError(name, run, parts),
    );
  }
  add('an out-of-range index on the GPU is reported at the next readback of any tensor', async () => {
    const table = T.ones([4, 3]);
    const bad = ids([9], 'gpu');
    const rowsOut = T.embedding(table, bad);
    const other = T.tensor([2, 3]);
    const message = await errorOf(() => other.dataF64(), 'readback of an unrelated tensor');
    expectMessage(message, ['embedding', 'index 9', '0…3'], 'unrelated readback');
    for (const t of [table, bad, rowsOut, other]) t.dispose();
  });
  return cases;
}

/**
 * Runs `run` on each device and checks the out-of-range error it raises (at once on the CPU, at
 * the readback on the GPU) names every one of `parts`; then that the next readback is clean.
 */
export async function expectIndexError(
  name: string,
  run: (device: 'gpu' | 'cpu') => T.Tensor,
  parts: string[],
): Promise<void> {
  for (const device of DEVICES) {
    const message = await errorOf(async () => {
      // Inputs are freed with the scope; the output after its readback.
      const out = T.tidy(() => run(device));
      try {
        await out.dataF64();
      } finally {
        out.dispose();
      }
    }, `${name} (${device})`);
    expectMessage(message, parts, `${name} (${device})`);
    // The flag was cleared: the next readback is clean.
    same(await values(T.tensor([1], { device })), [1], `${name} (${device}): readback after the error`);
  }
}

/** The spacing of float32 values at |x|. */
function ulpOf(x: number): number {
  const a = Math.abs(x);
  if (a === 0) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}
