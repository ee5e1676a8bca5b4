/**
 * pnpm wgsl <op> [--out DIR]: writes the WGSL of every pipeline an op launches, one formatted file
 * per pipeline (default out/wgsl/<op>/<pipeline key>.wgsl), each headed by a comment with the
 * pipeline key, the launch size and the uniform block's layout (the words the kernel reads, the
 * line that reads each, and their values at that launch).
 *
 * How: the op runs on small tensors while the queue's `dispatch` is replaced by a recorder, so the
 * WGSL captured is exactly what the engine would compile for those shapes — nothing is compiled
 * or run on the device. Other shapes may pick other pipelines (schedules, vec4 or scalar loads):
 * each driver below uses shapes that reach the main ones.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as T from '@rnagrad/tensor';
import '@rnagrad/autograd';
import { type DispatchRequest, MAX_MATMUL_BATCH_RANK, numel } from '@rnagrad/kernels-wgsl';
// The kernels' own word tables (internal to kernels-wgsl), so the header names what each word holds.
import {
  SHAPE as MATMUL_SHAPE,
  STR as MATMUL_BATCH_STRIDES,
  W as MATMUL_WORDS,
} from '../packages/kernels-wgsl/src/matmul/layout.js';
import { U as ATTENTION_WORDS } from '../packages/kernels-wgsl/src/attention/wgsl.js';
import { UsageError, runAsCommand } from './harness.js';
import { matmulLab } from './matmul.js';

export interface CapturedPipeline {
  key: string;
  label: string;
  source: string;
  uniforms: Uint32Array | null;
  workgroups: number[];
}

/** Values from a fixed sequence (no GPU work to make inputs: uploads are plain buffer writes). */
function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.37) * 2);
}
const input = (shape: number[], seed = 1) => T.tensor(values(numel(shape), seed), { shape });
const param = (shape: number[], seed = 1) => input(shape, seed).requireGrad();
/** Runs backward from `y` with a seed of ones (uploaded, so no fill kernel joins the capture). */
const backward = (y: T.Tensor) => y.backward(T.tensor(new Float32Array(y.size).fill(1), { shape: y.shape }));

/** The ops `pnpm wgsl` knows: what each one captures, and the driver that launches it. */
export const WGSL_OPS: Record<string, { what: string; run: () => void }> = {
  softmax: {
    what: 'softmax and log-softmax, forward and backward: rows of 5 (scalar loads), of 8 (vec4), one row of 8192 (16 lanes per row)',
    run() {
      for (const shape of [
        [4, 5],
        [4, 8],
        [1, 8192],
      ]) {
        backward(T.softmax(param(shape)));
        backward(T.logSoftmax(param(shape)));
      }
    },
  },
  crossentropy: {
    what: 'fused log-softmax + cross-entropy over 70 classes, forward and backward',
    run: () => T.crossEntropy(param([6, 70]), T.tensor(Int32Array.from([0, 5, 69, 3, -100, 12]))).backward(),
  },
  layernorm: {
    what: 'LayerNorm with weight and bias, forward and backward (dx row kernel, column partials, chunk reduce)',
    run: () => backward(T.layerNorm(param([6, 16]), param([16], 2), param([16], 3))),
  },
  matmul: {
    what:
      'matmul with bias and tanh-GELU, forward and backward (default plans for [64, 48] @ [48, 40]);' +
      " the lab's kept kernels (pnpm lab matmul 2..5)",
    run() {
      backward(T.matmul(param([64, 48]), param([48, 40], 2), { bias: param([40], 3), activation: 'geluTanh' }));
      const [a, b, c] = [input([64, 48]), input([48, 40], 2), T.empty([64, 40])];
      for (const version of matmulLab.versions.slice(1))
        version.launch(T.runtime().queue, { a, b, c, m: 64, n: 40, k: 48 });
    },
  },
  attention: {
    what: 'flash attention (causal, with a key padding mask) forward and backward, and RoPE',
    run() {
      const [q, k, v] = [1, 2, 3].map((s) => param([1, 2, 16, 8], s)) as [T.Tensor, T.Tensor, T.Tensor];
      const mask = T.tensor(
        Uint8Array.from({ length: 16 }, (_, j) => (j < 13 ? 1 : 0)),
        { shape: [1, 16] },
      );
      backward(T.attention(T.rope(q), T.rope(k), v, { causal: true, keyPaddingMask: mask }));
    },
  },
  elementwise: {
    what: 'a contiguous add, a broadcast multiply over a transposed view, and tanh-GELU with its backward',
    run() {
      T.add(input([64]), input([64], 2));
      T.mul(input([8, 4]).transpose(0, 1), input([8], 3));
      backward(T.geluTanh(param([33])));
    },
  },
  reduce: {
    what: 'sum and max over the last axis and over the first',
    run() {
      const x = input([12, 10]);
      for (const axis of [1, 0]) {
        T.sum(x, axis);
        T.max(x, axis);
      }
    },
  },
  gather: {
    what: 'gather and index_select with their backward (scatter-add), embedding lookup',
    run() {
      const ids = T.tensor(Int32Array.from([3, 0, 2, 2]));
      backward(T.gather(param([4, 5]), 1, T.tensor(Int32Array.from([0, 4, 1, 1, 2, 3, 3, 0]), { shape: [4, 2] })));
      backward(T.embedding(param([5, 8]), ids));
    },
  },
  adamw: {
    what: 'one fused AdamW step over two parameters',
    run() {
      const ps = [input([10]), input([3, 4], 2)];
      T.adamwStep(
        ps,
        ps.map((p, i) => input(p.shape as number[], 5 + i)),
        ps.map((p) => T.zerosLike(p)),
        ps.map((p) => T.zerosLike(p)),
        { lr: 1e-3, weightDecay: 0.01, step: 1 },
      );
    },
  },
};

/** Runs `run` with the queue's dispatch recording requests instead of encoding them: each pipeline once. */
export function capturePipelines(run: () => void): CapturedPipeline[] {
  const queue = T.runtime().queue;
  const seen = new Map<string, CapturedPipeline>();
  const dispatch = queue.dispatch;
  queue.dispatch = (req: DispatchRequest) => {
    if (seen.has(req.key)) return;
    const u = req.uniforms;
    seen.set(req.key, {
      key: req.key,
      label: req.label ?? req.key,
      source: req.source(),
      uniforms: u ? new Uint32Array(u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength)) : null,
      workgroups: [req.workgroups[0], req.workgroups[1] ?? 1, req.workgroups[2] ?? 1],
    });
  };
  try {
    T.tidy(run);
  } finally {
    queue.dispatch = dispatch;
  }
  return [...seen.values()];
}

/** Re-indents WGSL by brace depth (2 spaces), trims trailing spaces and collapses runs of blank lines. */
export function formatWgsl(source: string): string {
  const out: string[] = [];
  let depth = 0;
  for (const raw of source.split('\n')) {
    const line = raw.trim();
    if (line === '') {
      if (out.length > 0 && out[out.length - 1] !== '') out.push('');
      continue;
    }
    const code = line.replace(/\/\/.*$/, '');
    const opens = (code.match(/\{/g) ?? []).length;
    const closes = (code.match(/\}/g) ?? []).length;
    const leadingCloses = /^\}+/.exec(code)?.[0].length ?? 0;
    out.push('  '.repeat(Math.max(0, depth - leadingCloses)) + line);
    depth = Math.max(0, depth + opens - closes);
  }
  while (out[out.length - 1] === '') out.pop();
  return out.join('\n') + '\n';
}

/** A u32 word as the kernel may read it: the integer, and its f32 reading when that looks like a float. */
function describeWord(word: number): string {
  const f = new Float32Array(new Uint32Array([word]).buffer)[0]!;
  const looksFloat =
    word > 0x00ffffff && (Number.isNaN(f) || !Number.isFinite(f) || (Math.abs(f) > 1e-6 && Math.abs(f) < 1e9));
  const i = word | 0;
  return looksFloat ? `${word} (f32 ${f})` : i < 0 ? `${word} (i32 ${i})` : `${word}`;
}

/** The header comment: key, launch size, and the uniform words the kernel reads at fixed indices. */
export function uniformLayoutComment(p: CapturedPipeline, op: string): string {
  const lines = [
    `// rnagrad WGSL: pipeline "${p.key}" (${p.label}), written by \`pnpm wgsl ${op}\`.`,
    `// Launched here as ${p.workgroups.join(' × ')} workgroups. Shapes, strides and scalars are not in this text:`,
    '// they travel in the uniform block, so this one pipeline serves every shape.',
  ];
  if (!p.uniforms) return [...lines, '// No uniform block.'].join('\n');
  const sourceLines = p.source.split('\n').map((l) => l.trim());
  const fixed = new Map<number, string>();
  const note = (index: number, needle: string) => {
    if (fixed.has(index)) return;
    const line = sourceLines.find((l) => l.includes(needle) && !l.startsWith('fn word')) ?? '';
    // Generated lines may hold several statements: keep the one that reads the word.
    fixed.set(index, line.split(/(?<=;)\s+/).find((statement) => statement.includes(needle)) ?? line);
  };
  for (const m of p.source.matchAll(/word\((\d+)u\)/g)) note(Number(m[1]), m[0]);
  for (const m of p.source.matchAll(/params\.m\[(\d+)\]\[(\d+)\]/g)) note(4 * Number(m[1]) + Number(m[2]), m[0]);
  const names = wordNames(p);
  lines.push(`// Uniform block (@binding(0)): ${p.uniforms.length} u32 words; the values are this launch's.`);
  lines.push("// 'read by' is the line that reads the word at a fixed index; '-': a loop over dims reads it at a");
  lines.push('// computed index, or only other kernels sharing this layout use it.');
  lines.push(`//   ${'word'.padStart(4)} ${'name'.padEnd(22)} ${'value'.padEnd(26)} read by`);
  p.uniforms.forEach((word, index) => {
    const reader = fixed.get(index);
    if (reader === undefined && !names.has(index) && word === 0) return;
    const shown = reader === undefined ? '-' : reader.length > 70 ? `${reader.slice(0, 67)}...` : reader;
    const name = names.get(index) ?? '';
    const value = describeWord(word).padEnd(26);
    lines.push(`//   ${String(index).padStart(4)} ${name.padEnd(22)} ${value} ${shown}`.trimEnd());
  });
  return lines.join('\n');
}

/**
 * Names of the uniform words where the kernel family defines them: matmul's `W` and batch records,
 * attention's `U`, and the row kernels' layout (rows.ts: header, lead shape, one record per operand).
 */
function wordNames(p: CapturedPipeline): Map<number, string> {
  const names = new Map<number, string>();
  if (p.key.startsWith('matmul:')) {
    for (const [name, index] of Object.entries(MATMUL_WORDS)) names.set(index, name);
    for (let d = 0; d < MAX_MATMUL_BATCH_RANK; d++) {
      names.set(MATMUL_SHAPE + d, `batch shape[${d}]`);
      for (const [operand, at] of Object.entries(MATMUL_BATCH_STRIDES)) {
        names.set(at + d, `${operand} batch stride[${d}]`);
      }
    }
  } else if (p.key.startsWith('attn-')) {
    for (const [name, index] of Object.entries(ATTENTION_WORDS)) names.set(index, name);
  } else if (p.source.includes('fn row_base(')) {
    ['rows', 'C (columns)', 'lead rank', '-inf'].forEach((name, index) => names.set(index, name));
    for (let d = 0; d < 4; d++) names.set(8 + d, `lead shape[${d}]`);
    for (const m of p.source.matchAll(/let (\w+)_o = row_base\((\d+)u/g)) {
      const at = 12 + 8 * Number(m[2]);
      names.set(at, `${m[1]} offset`);
      names.set(at + 1, `${m[1]} column stride`);
      for (let d = 0; d < 4; d++) names.set(at + 2 + d, `${m[1]} lead stride[${d}]`);
    }
  }
  return names;
}

/** A file name for a pipeline key (keys hold ':' and '/'). */
export function fileNameOf(key: string): string {
  return `${key.replace(/[^\w.-]+/g, '_')}.wgsl`;
}

const HELP = `pnpm wgsl <op> [--out DIR]

Writes the WGSL of every pipeline <op> launches, one formatted file per pipeline, to DIR
(default out/wgsl/<op>/), each headed by a comment with the pipeline key, the launch size and the
uniform block's layout. Nothing is compiled or run: the op's dispatches are recorded.

ops:
${Object.entries(WGSL_OPS)
  .map(([name, o]) => `  ${name.padEnd(13)}${o.what}`)
  .join('\n')}

example: pnpm wgsl softmax && ls out/wgsl/softmax`;

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const outAt = argv.indexOf('--out');
  const outDir = outAt >= 0 ? argv[outAt + 1] : undefined;
  if (outAt >= 0 && (!outDir || outDir.startsWith('--'))) throw new UsageError('--out needs a folder');
  const rest = outAt >= 0 ? argv.filter((_, i) => i !== outAt && i !== outAt + 1) : argv;
  const unknownFlag = rest.find((a) => a.startsWith('-'));
  if (unknownFlag) throw new UsageError(`unknown option ${unknownFlag}`);
  if (rest.length !== 1)
    throw new UsageError(rest.length === 0 ? 'name one op' : `name one op, got ${rest.length}: ${rest.join(' ')}`);
  const op = rest[0]!.toLowerCase();
  const spec = WGSL_OPS[op];
  if (!spec) throw new UsageError(`unknown op "${rest[0]}"; the ops are: ${Object.keys(WGSL_OPS).join(', ')}`);
  await T.init({ quiet: true });
  const pipelines = capturePipelines(spec.run);
  const dir = outDir ?? join('out', 'wgsl', op);
  mkdirSync(dir, { recursive: true });
  for (const p of pipelines) {
    const file = join(dir, fileNameOf(p.key));
    writeFileSync(file, `${uniformLayoutComment(p, op)}\n\n${formatWgsl(p.source)}`);
    console.log(`${file}  (${p.source.split('\n').length} lines)`);
  }
  console.log(`${pipelines.length} pipelines of ${op} written to ${dir}/`);
  return 0;
}

runAsCommand(import.meta.url, 'pnpm wgsl', main);
