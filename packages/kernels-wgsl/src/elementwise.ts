/**
 * Elementwise kernels: one generated WGSL kernel family for every map over strided, broadcast
 * operands (unary, binary, ternary, fills, casts, random numbers), and its CPU reference.
 *
 * Each op is defined once in `ELEMENTWISE_OPS`: a WGSL expression, the float64 reference, and its
 * dtype rule. Operands are buffers (any strides, stride 0 = broadcast) or scalars passed in the
 * uniform block, so `x * 0.5` compiles no per-value shader. Dims are coalesced first: contiguous
 * operands reduce to rank 1 and skip index arithmetic.
 *
 * Versions (SwiftShader, 2 cores, machine loaded ~3×; 1M-element add, 3 arrays of traffic):
 *  v1 one element per thread, a loop over ≤8 uniform shape words for every element: 0.07 GB/s.
 *  v2 unit-stride operands get a loop-free variant, 4 elements per thread: 0.51 GB/s (7×);
 *     strided operands get the unravel unrolled per rank (rank in the pipeline key).
 *  v3 strided: 4 consecutive elements of an innermost row per invocation, one unravel per run
 *     (SwiftShader runs integer div/mod lane by lane): in the GPT-2-style training step the
 *     rank-5 head-split copies went from 9.8 to 2.8 ms per call, the rank-4 ones from 3.0 to 1.0.
 */
import { KernelQueue, grid } from './queue.js';
import {
  type CpuOperand,
  type DType,
  type GpuOperand,
  MAX_RANK,
  UniformWriter,
  castValue,
  coalesce,
  forEachIndex,
  numel,
  promote,
  uniformBlock,
  wgslType,
} from './layout.js';
import { RNG_WGSL, gaussianFromCounter, uniformFromCounter } from './random.js';
import { ERF_WGSL, IEEE_WGSL, TRIG_WGSL, erf } from './math.js';

export interface ElementwiseOp {
  readonly name: string;
  readonly arity: number;
  /** dtype of each operand as the expression sees it (operands convert on load). */
  operandTypes?: (inputs: DType[]) => DType[];
  /** dtype of the result; defaults to the promoted operand type. */
  out?: (inputs: DType[]) => DType;
  /** WGSL expression over loaded operands `x` (in type `T`) and the linear index `i: u32`. */
  wgsl: (x: string[], T: string) => string;
  /** Float64 reference of the same expression; `i` is the linear output index. */
  cpu: (x: number[], i: number) => number;
  /** WGSL helper functions the expression calls. */
  prelude?: string;
}

const promoteAll = (t: DType[]): DType =>
  t.reduce<DType>((a, b) => promote(a, b), t[0] === 'bool' ? 'i32' : (t[0] ?? 'f32'));
const float = (): DType => 'f32';
const floats = (t: DType[]): DType[] => t.map(() => 'f32');
const bool = (): DType => 'bool';
const same = (t: DType[]): DType[] => t.map(() => promoteAll(t));

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const geluTanhCpu = (x: number) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)));
const sigmoidCpu = (x: number) => 1 / (1 + Math.exp(-x));

/** `expr`, or NaN when operand `a` is NaN (as in PyTorch; WGSL built-ins may drop it). */
const keepNan = (expr: string, a: string) => `select(${expr}, ${a}, is_nan(${a}))`;

/** A unary float op: operands convert to f32, result f32; a NaN operand gives NaN. */
function floatUnary(
  name: string,
  wgsl: (a: string) => string,
  cpu: (a: number) => number,
  prelude?: string,
): ElementwiseOp {
  return {
    name,
    arity: 1,
    operandTypes: floats,
    out: float,
    wgsl: ([a]) => keepNan(wgsl(a!), a!),
    cpu: ([a]) => cpu(a!),
    prelude,
  };
}
/** A backward helper (x, dy) → dx of a float activation; NaN in x gives NaN, as PyTorch's does. */
function activationBackward(
  name: string,
  wgsl: (x: string, g: string) => string,
  cpu: (x: number, g: number) => number,
  prelude?: string,
): ElementwiseOp {
  return {
    name,
    arity: 2,
    operandTypes: floats,
    out: float,
    wgsl: ([x, g]) => keepNan(wgsl(x!, g!), x!),
    cpu: ([x, g]) => cpu(x!, g!),
    prelude,
  };
}
function compare(name: string, op: string, cpu: (a: number, b: number) => boolean): ElementwiseOp {
  return {
    name,
    arity: 2,
    operandTypes: same,
    out: bool,
    wgsl: ([a, b]) => `select(0, 1, ${a} ${op} ${b})`,
    cpu: ([a, b]) => (cpu(a!, b!) ? 1 : 0),
  };
}

const GELU_PRELUDE = `${ERF_WGSL}
fn gelu_tanh_inner(x: f32) -> f32 { return tanh(clamp(${SQRT_2_OVER_PI} * (x + 0.044715 * x * x * x), -15.0, 15.0)); }`;

/**
 * expm1 for ELU's negative branch: exp(x) − 1 cancels for small |x| (relative error ~1e-7/|x|), so
 * |x| < 0.7 uses the Taylor series to x⁹/9! (truncation < 2e-8 relative); beyond, exp's own error
 * over |eˣ − 1| ≥ 0.5 stays within a few ulps.
 */
const EXPM1_PRELUDE =
  `fn expm1_f32(x: f32) -> f32 {
  if (abs(x) >= 0.7) { return exp(x) - 1.0; }
  // x · (1 + x/2! + x²/3! + … + x⁸/9!), Horner form
  return x * (1.0 + x * (0.5 + x * (${1 / 6} + x * (${1 / 24} + x * (${1 / 120} + x * (${1 / 720} + x * ` +
  `(${1 / 5040} + x * (${1 / 40320} + x * ${1 / 362880}))))))));
}`;

export const ELEMENTWISE_OPS = {
  // Fills, copies, casts and index-based generators.
  copy: { name: 'copy', arity: 1, operandTypes: (t) => t, out: (t) => t[0]!, wgsl: ([a]) => a!, cpu: ([a]) => a! },
  castF32: { name: 'castF32', arity: 1, operandTypes: floats, out: float, wgsl: ([a]) => a!, cpu: ([a]) => a! },
  castI32: {
    name: 'castI32',
    arity: 1,
    operandTypes: () => ['i32'],
    out: () => 'i32',
    wgsl: ([a]) => a!,
    cpu: ([a]) => a!,
  },
  castBool: {
    name: 'castBool',
    arity: 1,
    out: bool,
    wgsl: ([a], T) => `select(0, 1, ${a} != ${T}(0))`,
    cpu: ([a]) => (a !== 0 ? 1 : 0),
  },
  arange: {
    name: 'arange',
    arity: 2,
    operandTypes: floats,
    out: float,
    wgsl: ([start, step]) => `${start} + f32(i) * ${step}`,
    cpu: ([start, step], i) => start! + i * step!,
  },
  /** Uniform [0, 1) from (seed key, counter base): identical bits in WGSL and the reference. */
  randUniform: {
    name: 'randUniform',
    arity: 2,
    operandTypes: () => ['i32', 'i32'],
    out: float,
    prelude: RNG_WGSL,
    wgsl: ([key, base]) => `rng_uniform(u32(${key}), u32(${base}) + i)`,
    cpu: ([key, base], i) => uniformFromCounter(key!, (base! + i) >>> 0),
  },
  randNormal: {
    name: 'randNormal',
    arity: 2,
    operandTypes: () => ['i32', 'i32'],
    out: float,
    prelude: RNG_WGSL,
    wgsl: ([key, base]) => `rng_normal(u32(${key}), u32(${base}) + i)`,
    cpu: ([key, base], i) => gaussianFromCounter(key!, (base! + i) >>> 0),
  },
  /** Inverted-dropout multiplier: 0 with probability p, else 1/(1-p); same mask as the reference. */
  dropoutMask: {
    name: 'dropoutMask',
    arity: 3,
    operandTypes: () => ['i32', 'i32', 'f32'],
    out: float,
    prelude: RNG_WGSL,
    wgsl: ([key, base, p]) => `select(1.0 / (1.0 - ${p}), 0.0, rng_uniform(u32(${key}), u32(${base}) + i) < ${p})`,
    cpu: ([key, base, p], i) => (uniformFromCounter(key!, (base! + i) >>> 0) < p! ? 0 : 1 / (1 - p!)),
  },

  // Unary math.
  neg: { name: 'neg', arity: 1, wgsl: ([a]) => `-${a}`, cpu: ([a]) => -a! },
  abs: { name: 'abs', arity: 1, wgsl: ([a]) => `abs(${a})`, cpu: ([a]) => Math.abs(a!) },
  square: { name: 'square', arity: 1, wgsl: ([a]) => `${a} * ${a}`, cpu: ([a]) => a! * a! },
  /** sign(NaN) = 0, as PyTorch's (0 < x) − (x < 0). */
  sign: {
    name: 'sign',
    arity: 1,
    wgsl: ([a], T) => (T === 'f32' ? `select(sign(${a}), 0.0, is_nan(${a}))` : `sign(${a})`),
    cpu: ([a]) => (Number.isNaN(a) ? 0 : Math.sign(a!)),
  },
  relu: {
    name: 'relu',
    arity: 1,
    wgsl: ([a], T) => (T === 'f32' ? keepNan(`max(${a}, 0.0)`, a!) : `max(${a}, ${T}(0))`),
    cpu: ([a]) => Math.max(a!, 0),
  },
  exp: floatUnary('exp', (a) => `exp(${a})`, Math.exp),
  log: floatUnary('log', (a) => `log_ieee(${a})`, Math.log),
  sqrt: floatUnary('sqrt', (a) => `sqrt(${a})`, Math.sqrt),
  rsqrt: floatUnary(
    'rsqrt',
    (a) => `inverseSqrt(${a})`,
    (a) => 1 / Math.sqrt(a),
  ),
  reciprocal: floatUnary(
    'reciprocal',
    (a) => `1.0 / ${a}`,
    (a) => 1 / a,
  ),
  sin: floatUnary('sin', (a) => `sin_acc(${a})`, Math.sin, TRIG_WGSL),
  cos: floatUnary('cos', (a) => `cos_acc(${a})`, Math.cos, TRIG_WGSL),
  // Clamped: tanh(±15) is ±1 in f32, and some drivers evaluate tanh through exp, which overflows.
  tanh: floatUnary('tanh', (a) => `tanh(clamp(${a}, -15.0, 15.0))`, Math.tanh),
  sigmoid: floatUnary('sigmoid', (a) => `1.0 / (1.0 + exp(-${a}))`, sigmoidCpu),
  floor: floatUnary('floor', (a) => `floor(${a})`, Math.floor),
  ceil: floatUnary('ceil', (a) => `ceil(${a})`, Math.ceil),
  erf: floatUnary('erf', (a) => `erf_f32(${a})`, erf, ERF_WGSL),
  gelu: floatUnary(
    'gelu',
    (a) => `0.5 * ${a} * (1.0 + erf_f32(${a} * ${Math.SQRT1_2}))`,
    (x) => 0.5 * x * (1 + erf(x * Math.SQRT1_2)),
    ERF_WGSL,
  ),
  geluTanh: floatUnary('geluTanh', (a) => `0.5 * ${a} * (1.0 + gelu_tanh_inner(${a}))`, geluTanhCpu, GELU_PRELUDE),
  silu: floatUnary(
    'silu',
    (a) => `${a} / (1.0 + exp(-${a}))`,
    (x) => x * sigmoidCpu(x),
  ),
  /** elu(x, alpha) = x for x > 0, alpha·(eˣ − 1) otherwise; NaN stays NaN. */
  elu: {
    name: 'elu',
    arity: 2,
    operandTypes: floats,
    out: float,
    prelude: EXPM1_PRELUDE,
    wgsl: ([x, alpha]) => keepNan(`select(${alpha} * expm1_f32(${x}), ${x}, ${x} > 0.0)`, x!),
    cpu: ([x, alpha]) => (x! > 0 ? x! : alpha! * Math.expm1(x!)),
  },

  // Binary arithmetic; operands broadcast.
  add: { name: 'add', arity: 2, wgsl: ([a, b]) => `${a} + ${b}`, cpu: ([a, b]) => a! + b! },
  sub: { name: 'sub', arity: 2, wgsl: ([a, b]) => `${a} - ${b}`, cpu: ([a, b]) => a! - b! },
  mul: { name: 'mul', arity: 2, wgsl: ([a, b]) => `${a} * ${b}`, cpu: ([a, b]) => a! * b! },
  /** Integer division truncates toward zero, as WGSL does; division by zero gives 0 for integers. */
  div: {
    name: 'div',
    arity: 2,
    wgsl: ([a, b], T) => (T === 'f32' ? `${a} / ${b}` : `select(${a} / ${b}, 0, ${b} == 0)`),
    cpu: ([a, b]) => a! / b!,
  },
  /** pow follows WGSL: defined for a positive base only (NaN otherwise on most drivers). */
  pow: {
    name: 'pow',
    arity: 2,
    operandTypes: floats,
    out: float,
    wgsl: ([a, b]) => `pow(${a}, ${b})`,
    cpu: ([a, b]) => Math.pow(a!, b!),
  },
  maximum: {
    name: 'maximum',
    arity: 2,
    wgsl: ([a, b], T) => `${T === 'f32' ? 'max_nan' : 'max'}(${a}, ${b})`,
    cpu: ([a, b]) => Math.max(a!, b!),
  },
  minimum: {
    name: 'minimum',
    arity: 2,
    wgsl: ([a, b], T) => `${T === 'f32' ? 'min_nan' : 'min'}(${a}, ${b})`,
    cpu: ([a, b]) => Math.min(a!, b!),
  },
  /** 1 where the operand is NaN (a bit test: compilers may fold `x != x`). */
  isnan: {
    name: 'isnan',
    arity: 1,
    operandTypes: floats,
    out: bool,
    wgsl: ([a]) => `select(0, 1, is_nan(${a}))`,
    cpu: ([a]) => (Number.isNaN(a!) ? 1 : 0),
  },
  eq: compare('eq', '==', (a, b) => a === b),
  ne: compare('ne', '!=', (a, b) => a !== b),
  lt: compare('lt', '<', (a, b) => a < b),
  le: compare('le', '<=', (a, b) => a <= b),
  gt: compare('gt', '>', (a, b) => a > b),
  ge: compare('ge', '>=', (a, b) => a >= b),
  logicalAnd: {
    name: 'logicalAnd',
    arity: 2,
    operandTypes: () => ['i32', 'i32'],
    out: bool,
    wgsl: ([a, b]) => `select(0, 1, ${a} != 0 && ${b} != 0)`,
    cpu: ([a, b]) => (a && b ? 1 : 0),
  },
  logicalOr: {
    name: 'logicalOr',
    arity: 2,
    operandTypes: () => ['i32', 'i32'],
    out: bool,
    wgsl: ([a, b]) => `select(0, 1, ${a} != 0 || ${b} != 0)`,
    cpu: ([a, b]) => (a || b ? 1 : 0),
  },
  logicalNot: {
    name: 'logicalNot',
    arity: 1,
    operandTypes: () => ['i32'],
    out: bool,
    wgsl: ([a]) => `select(1, 0, ${a} != 0)`,
    cpu: ([a]) => (a ? 0 : 1),
  },

  /** where(cond, a, b): cond is read as an integer, a and b promote together. */
  where: {
    name: 'where',
    arity: 3,
    operandTypes: ([, a, b]) => ['i32', promote(a!, b!), promote(a!, b!)],
    out: ([, a, b]) => promote(a!, b!),
    wgsl: ([c, a, b]) => `select(${b}, ${a}, ${c} != 0)`,
    cpu: ([c, a, b]) => (c ? a! : b!),
  },

  // Backward helpers of the activations: (x, dy) → dx, so gradients cost one pass.
  // PyTorch's threshold_backward passes the gradient where x is not ≤ 0, so NaN inputs pass it on.
  reluBackward: {
    name: 'reluBackward',
    arity: 2,
    operandTypes: floats,
    out: float,
    wgsl: ([x, g]) => `select(0.0, ${g}, ${x} > 0.0 || is_nan(${x}))`,
    cpu: ([x, g]) => (x! > 0 || Number.isNaN(x) ? g! : 0),
  },
  /** (x, dy, alpha) → dy·alpha·eˣ where x ≤ 0, else dy: a NaN x passes dy on, as PyTorch's elu_backward. */
  eluBackward: {
    name: 'eluBackward',
    arity: 3,
    operandTypes: floats,
    out: float,
    wgsl: ([x, g, alpha]) => `select(${g}, ${g} * ${alpha} * exp(${x}), ${x} <= 0.0 && !is_nan(${x}))`,
    cpu: ([x, g, alpha]) => (x! <= 0 ? g! * alpha! * Math.exp(x!) : g!),
  },
  sigmoidBackward: activationBackward(
    'sigmoidBackward',
    (x, g) => `${g} * (1.0 / (1.0 + exp(-${x}))) * (1.0 - 1.0 / (1.0 + exp(-${x})))`,
    (x, g) => g * sigmoidCpu(x) * (1 - sigmoidCpu(x)),
  ),
  tanhBackward: activationBackward(
    'tanhBackward',
    (x, g) => `${g} * (1.0 - tanh(clamp(${x}, -15.0, 15.0)) * tanh(clamp(${x}, -15.0, 15.0)))`,
    (x, g) => g * (1 - Math.tanh(x) ** 2),
  ),
  siluBackward: activationBackward(
    'siluBackward',
    (x, g) => `${g} * (1.0 / (1.0 + exp(-${x}))) * (1.0 + ${x} * (1.0 - 1.0 / (1.0 + exp(-${x}))))`,
    (x, g) => g * sigmoidCpu(x) * (1 + x * (1 - sigmoidCpu(x))),
  ),
  geluBackward: activationBackward(
    'geluBackward',
    (x, g) =>
      `${g} * (0.5 * (1.0 + erf_f32(${x} * ${Math.SQRT1_2})) + ` +
      `${x} * ${1 / Math.sqrt(2 * Math.PI)} * exp(-0.5 * ${x} * ${x}))`,
    (x, g) => g * (0.5 * (1 + erf(x * Math.SQRT1_2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI)),
    ERF_WGSL,
  ),
  geluTanhBackward: activationBackward(
    'geluTanhBackward',
    (x, g) =>
      `${g} * (0.5 * (1.0 + gelu_tanh_inner(${x})) + ` +
      `0.5 * ${x} * (1.0 - gelu_tanh_inner(${x}) * gelu_tanh_inner(${x})) * ${SQRT_2_OVER_PI} * ` +
      `(1.0 + 3.0 * 0.044715 * ${x} * ${x}))`,
    (x, g) => {
      const t = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3));
      return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x));
    },
    GELU_PRELUDE,
  ),
} satisfies Record<string, ElementwiseOp>;

export type ElementwiseOpName = keyof typeof ELEMENTWISE_OPS;

/** A scalar operand travels in the uniform block as a bit pattern of its dtype. */
export interface ScalarOperand {
  readonly value: number;
  readonly dtype: DType;
}

export function isScalar(x: unknown): x is ScalarOperand {
  return typeof x === 'object' && x !== null && 'value' in x && !('shape' in x);
}

/** Operand dtypes as the op's expression sees them, and the result dtype. */
export function elementwiseTypes(op: ElementwiseOp, inputs: DType[]): { operands: DType[]; out: DType } {
  const operands = op.operandTypes ? op.operandTypes(inputs) : same(inputs);
  const out = op.out ? op.out(inputs) : promoteAll(inputs);
  return { operands, out };
}

// Uniform layout (u32 words): [numel, rank, outOffset, off0, off1, off2, s0, s1, s2, -, -, -],
// shape[8] at 12, out strides at 20, operand k strides at 28 + 8k.
const HEADER = 12;
const SHAPE = HEADER;
const STRIDES = SHAPE + MAX_RANK;
const WORDS = STRIDES + 4 * MAX_RANK;
const WORKGROUP = 64;
const PER_THREAD = 4;

function source(
  op: ElementwiseOp,
  out: DType,
  inputs: (DType | 'scalar')[],
  scalarTypes: DType[],
  operandTypes: DType[],
  contiguous: boolean,
  rank: number,
): string {
  const T = wgslType(operandTypes[0] ?? out);
  const decls = [`@group(0) @binding(1) var<storage, read_write> out: array<${wgslType(out)}>;`];
  let binding = 2;
  const loads: string[] = [];
  inputs.forEach((kind, k) => {
    const want = wgslType(operandTypes[k]!);
    if (kind === 'scalar') {
      const bits = `word(${6 + k}u)`;
      loads.push(scalarTypes[k] === 'f32' ? `${want}(bitcast<f32>(${bits}))` : `${want}(bitcast<i32>(${bits}))`);
    } else {
      decls.push(`@group(0) @binding(${binding++}) var<storage, read> in${k}: array<${wgslType(kind)}>;`);
      loads.push(`${want}(in${k}[o${k}])`);
    }
  });
  const buffers = inputs.map((kind, k) => (kind === 'scalar' ? -1 : k)).filter((k) => k >= 0);
  const args = loads.map((_, k) => `x${k}`);
  if (contiguous) {
    // Unit-stride operands: no index arithmetic, PER_THREAD independent elements per invocation.
    return `${uniformBlock(WORDS)}
${decls.join('\n')}
${IEEE_WGSL}
${op.prelude ?? ''}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let first = ((wid.x + wid.y * nwg.x) * ${WORKGROUP}u + lid) * ${PER_THREAD}u;
  let n = word(0u);
  let oo0 = word(2u);
  ${buffers.map((k) => `let o${k}0 = word(${3 + k}u);`).join(' ')}
  for (var j = 0u; j < ${PER_THREAD}u; j++) {
    let i = first + j;
    if (i >= n) { return; }
    let oo = oo0 + i;
    ${buffers.map((k) => `let o${k} = o${k}0 + i;`).join(' ')}
    ${loads.map((l, k) => `let x${k} = ${l};`).join('\n    ')}
    out[oo] = ${wgslType(out)}(${op.wgsl(args, T)});
  }
}`;
  }
  // Strided: each invocation takes PER_THREAD consecutive elements of one innermost row, so the
  // unravel of the outer dims (integer div/mod, which SwiftShader runs lane by lane) is paid once
  // per run; it is unrolled for this rank (rank is part of the pipeline key), since a loop over
  // uniform-indexed shape words runs ~8× slower on SwiftShader.
  const last = rank - 1;
  const unravel: string[] = [];
  for (let d = last - 1; d >= 0; d--) {
    unravel.push(
      `{ let c = rem % word(${SHAPE + d}u); rem = rem / word(${SHAPE + d}u); oo += c * word(${STRIDES + d}u); ${buffers
        .map((k) => `o${k} += c * word(${STRIDES + MAX_RANK * (k + 1) + d}u);`)
        .join(' ')} }`,
    );
  }
  const step = (k: number | 'out') => `word(${STRIDES + (k === 'out' ? 0 : MAX_RANK * (k + 1)) + last}u)`;
  return `${uniformBlock(WORDS)}
${decls.join('\n')}
${IEEE_WGSL}
${op.prelude ?? ''}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x) * ${WORKGROUP}u + lid;
  if (t >= word(9u)) { return; }
  let chunks = word(10u);
  let inner = word(${SHAPE + last}u);
  let c0 = (t % chunks) * ${PER_THREAD}u;
  var rem = t / chunks;
  var oo = word(2u) + c0 * ${step('out')};
  ${buffers.map((k) => `var o${k} = word(${3 + k}u) + c0 * ${step(k)};`).join(' ')}
  ${unravel.join('\n  ')}
  // The linear index of the run's first element, for ops that read it (random numbers).
  let i0 = (t / chunks) * inner + c0;
  for (var j = 0u; j < ${PER_THREAD}u; j++) {
    if (c0 + j >= inner) { return; }
    let i = i0 + j;
    ${loads.map((l, k) => `let x${k} = ${l};`).join('\n    ')}
    out[oo] = ${wgslType(out)}(${op.wgsl(args, T)});
    oo += ${step('out')};
    ${buffers.map((k) => `o${k} += ${step(k)};`).join(' ')}
  }
}`;
}

/**
 * Computes `out = op(inputs…)` on the GPU, writing through `out`'s strides (so it can fill a slice
 * of a larger tensor). Input shapes must already broadcast to `out.shape` (stride 0 on broadcast dims).
 */
export function elementwiseGpu(
  queue: KernelQueue,
  op: ElementwiseOp,
  out: GpuOperand,
  inputs: (GpuOperand | ScalarOperand)[],
): void {
  checkArity(op, inputs.length);
  const n = numel(out.shape);
  if (n === 0) return;
  const buffers = inputs.filter((x): x is GpuOperand => !isScalar(x));
  const { shape, strides } = coalesce(out.shape, [
    out.strides,
    ...inputs.map((x) => (isScalar(x) ? out.shape.map(() => 0) : x.strides)),
  ]);
  if (shape.length > MAX_RANK)
    throw new RangeError(`${op.name}: rank ${shape.length} after merging contiguous dims exceeds ${MAX_RANK}`);
  const kinds = inputs.map((x) => (isScalar(x) ? ('scalar' as const) : x.dtype));
  const dtypes = inputs.map((x) => x.dtype);
  const { operands } = elementwiseTypes(op, dtypes);
  const u = new UniformWriter(WORDS).u32(0, n).u32(1, shape.length).u32(2, out.offset);
  inputs.forEach((x, k) => {
    if (isScalar(x)) {
      if (x.dtype === 'f32') u.f32(6 + k, x.value);
      else u.i32(6 + k, x.value);
    } else u.u32(3 + k, x.offset);
    u.array(STRIDES + MAX_RANK * (k + 1), strides[k + 1]!, MAX_RANK);
  });
  u.array(SHAPE, shape, MAX_RANK, 1).array(STRIDES, strides[0]!, MAX_RANK);
  const contiguous =
    shape.length <= 1 && strides.every((st, k) => (k > 0 && isScalar(inputs[k - 1]) ? true : (st[0] ?? 1) === 1));
  // Strided: one invocation per PER_THREAD-element run of an innermost row.
  const inner = shape[shape.length - 1] ?? 1;
  const chunks = Math.ceil(inner / PER_THREAD);
  const threads = contiguous ? Math.ceil(n / PER_THREAD) : (n / inner) * chunks;
  u.u32(9, threads).u32(10, chunks);
  const key =
    `ew:${op.name}:${out.dtype}:` +
    `${kinds.map((k, i) => (k === 'scalar' ? `s${inputs[i]!.dtype}` : k)).join(',')}:` +
    `${contiguous ? 'c' : `r${shape.length}`}`;
  queue.dispatch({
    key,
    source: () => source(op, out.dtype, kinds, dtypes, operands, contiguous, shape.length),
    storage: [out.buffer, ...buffers.map((b) => b.buffer)],
    uniforms: u.data,
    workgroups: grid(Math.ceil(threads / WORKGROUP), queue.maxWorkgroupsPerDimension),
    label: op.name,
  });
}

/** The float64 reference of `elementwiseGpu`, with the same operand and write semantics. */
export function elementwiseCpu(op: ElementwiseOp, out: CpuOperand, inputs: (CpuOperand | ScalarOperand)[]): void {
  checkArity(op, inputs.length);
  const { operands } = elementwiseTypes(
    op,
    inputs.map((x) => x.dtype),
  );
  const views = [
    out,
    ...inputs.map((x) => (isScalar(x) ? { shape: out.shape, strides: out.shape.map(() => 0), offset: 0 } : x)),
  ];
  const args = new Array<number>(inputs.length);
  forEachIndex(out.shape, views, (i, offsets) => {
    inputs.forEach((x, k) => {
      const raw = isScalar(x) ? castValue(x.value, x.dtype) : x.data[offsets[k + 1]!]!;
      args[k] = castValue(raw, operands[k]!);
    });
    out.data[offsets[0]!] = castValue(op.cpu(args, i), out.dtype);
  });
}

function checkArity(op: ElementwiseOp, count: number): void {
  if (count !== op.arity) throw new TypeError(`${op.name}: expected ${op.arity} operand(s), got ${count}`);
}
