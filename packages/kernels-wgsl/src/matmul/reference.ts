/** Float64 reference of the matmul kernels: same operand, broadcasting and write semantics. */
import type { CpuOperand } from '../layout.js';
import { erf } from '../math.js';
import type { MatmulActivation, MatmulOptions } from './types.js';
import { checkDtypes, resolveLayout } from './layout.js';

export const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activationCpu(act: MatmulActivation, x: number): number {
  switch (act) {
    case 'none':
      return x;
    case 'relu':
      return Math.max(x, 0);
    case 'gelu':
      return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
    case 'geluTanh':
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
  }
}

/** Float64 reference of `matmulGpu`: same operand, broadcasting and write semantics. */
export function matmulCpu(out: CpuOperand, a: CpuOperand, b: CpuOperand, opts: MatmulOptions<CpuOperand> = {}): void {
  checkDtypes([out, a, b, opts.bias, opts.preActivation]);
  const L = resolveLayout(out, a, b, opts.bias, opts.preActivation);
  const act = opts.activation ?? 'none';
  const { m: M, n: N, k: K } = L;
  const rank = L.batchShape.length;
  const coord = new Array<number>(rank).fill(0);
  for (let bi = 0; bi < L.batch; bi++) {
    // offsets of this batch entry
    const offs = L.batchStrides.map((st) => st.reduce((acc, s, d) => acc + s * coord[d]!, 0));
    const ao = L.a.off + offs[1]!;
    const bo = L.b.off + offs[2]!;
    const co = L.c.off + offs[0]!;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let p = 0; p < K; p++)
          acc += a.data[ao + i * L.a.s0 + p * L.a.s1]! * b.data[bo + p * L.b.s0 + j * L.b.s1]!;
        if (L.bias) acc += opts.bias!.data[L.bias.off + offs[3]! + i * L.bias.s0 + j * L.bias.s1]!;
        if (L.pre) opts.preActivation!.data[L.pre.off + offs[4]! + i * L.pre.s0 + j * L.pre.s1] = acc;
        out.data[co + i * L.c.s0 + j * L.c.s1] = activationCpu(act, acc);
      }
    }
    for (let d = rank - 1; d >= 0; d--) {
      if (++coord[d]! < L.batchShape[d]!) break;
      coord[d] = 0;
    }
  }
}
