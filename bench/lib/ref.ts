/**
 * Float64 plain-JS references for spot checks of large outputs (every engine's output is compared
 * with these before its timing is trusted). They compute only the values asked for, so a 2048³
 * matmul or an L = 2048 attention check stays cheap.
 */

export interface MatmulShape {
  batch: number;
  M: number;
  K: number;
  N: number;
  /** A stored as [batch, K, M] (use Aᵀ). */
  transA?: boolean;
  /** B stored as [batch, N, K] (use Bᵀ). */
  transB?: boolean;
}

/** Values of C = op(A)·op(B) ([batch, M, N] row-major) at flat positions. */
export function matmulAt(a: Float32Array, b: Float32Array, s: MatmulShape, positions: readonly number[]): number[] {
  const { M, K, N } = s;
  return positions.map((p) => {
    const bi = Math.floor(p / (M * N));
    const i = Math.floor(p / N) % M;
    const j = p % N;
    const ao = bi * M * K;
    const bo = bi * K * N;
    let acc = 0;
    for (let k = 0; k < K; k++) {
      const av = s.transA ? a[ao + k * M + i]! : a[ao + i * K + k]!;
      const bv = s.transB ? b[bo + j * K + k]! : b[bo + k * N + j]!;
      acc += av * bv;
    }
    return acc;
  });
}

/** Softmax of whole rows of x [rows, C], concatenated. */
export function softmaxRows(x: Float32Array, C: number, rows: readonly number[]): number[] {
  const out: number[] = [];
  for (const r of rows) {
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, x[r * C + j]!);
    let s = 0;
    for (let j = 0; j < C; j++) s += Math.exp(x[r * C + j]! - m);
    for (let j = 0; j < C; j++) out.push(Math.exp(x[r * C + j]! - m) / s);
  }
  return out;
}

/** Flat positions of whole rows of width `width`. */
export function rowPositions(rows: readonly number[], width: number): number[] {
  const out: number[] = [];
  for (const r of rows) for (let j = 0; j < width; j++) out.push(r * width + j);
  return out;
}

export interface AttentionShape {
  B: number;
  H: number;
  L: number;
  D: number;
  causal: boolean;
}

export interface AttentionRef {
  /** Output rows, then dq, dk, dv rows (each the listed rows × D), in float64. */
  out: number[];
  dq: number[];
  dk: number[];
  dv: number[];
}

/**
 * softmax(q·kᵀ/√D + causal mask)·v over [B, H, L, D] inputs, and its gradients for the output
 * gradient `dOut`, at the flat rows `rows` (row = (b·H + h)·L + i). Forward statistics are
 * computed for every row of the heads involved (the gradient of a key row needs all query rows).
 */
export function attentionAt(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dOut: Float32Array | null,
  s: AttentionShape,
  rows: readonly number[],
): AttentionRef {
  const { L, D, causal } = s;
  const scale = 1 / Math.sqrt(D);
  const res: AttentionRef = { out: [], dq: [], dk: [], dv: [] };
  const heads = [...new Set(rows.map((r) => Math.floor(r / L)))];
  for (const head of heads) {
    const base = head * L * D;
    const lse = new Float64Array(L);
    const o = new Float64Array(L * D);
    const score = new Float64Array(L);
    for (let i = 0; i < L; i++) {
      const jEnd = causal ? i + 1 : L;
      let m = -Infinity;
      for (let j = 0; j < jEnd; j++) {
        let acc = 0;
        for (let d = 0; d < D; d++) acc += q[base + i * D + d]! * k[base + j * D + d]!;
        score[j] = acc * scale;
        if (score[j]! > m) m = score[j]!;
      }
      let sum = 0;
      for (let j = 0; j < jEnd; j++) {
        const p = Math.exp(score[j]! - m);
        sum += p;
        for (let d = 0; d < D; d++) o[i * D + d] += p * v[base + j * D + d]!;
      }
      for (let d = 0; d < D; d++) o[i * D + d] /= sum;
      lse[i] = m + Math.log(sum);
    }
    const mine = rows.filter((r) => Math.floor(r / L) === head).map((r) => r % L);
    for (const i of mine) for (let d = 0; d < D; d++) res.out.push(o[i * D + d]!);
    if (!dOut) continue;
    // delta_i = dO_i · o_i
    const delta = new Float64Array(L);
    for (let i = 0; i < L; i++) {
      let acc = 0;
      for (let d = 0; d < D; d++) acc += dOut[base + i * D + d]! * o[i * D + d]!;
      delta[i] = acc;
    }
    const p = (i: number, j: number) => {
      if (causal && j > i) return 0;
      let acc = 0;
      for (let d = 0; d < D; d++) acc += q[base + i * D + d]! * k[base + j * D + d]!;
      return Math.exp(acc * scale - lse[i]!);
    };
    const dpv = (i: number, j: number) => {
      let acc = 0;
      for (let d = 0; d < D; d++) acc += dOut[base + i * D + d]! * v[base + j * D + d]!;
      return acc;
    };
    for (const i of mine) {
      const dq = new Float64Array(D);
      for (let j = 0; j < L; j++) {
        const pij = p(i, j);
        if (pij === 0) continue;
        const ds = pij * (dpv(i, j) - delta[i]!) * scale;
        for (let d = 0; d < D; d++) dq[d] += ds * k[base + j * D + d]!;
      }
      res.dq.push(...dq);
    }
    for (const j of mine) {
      const dk = new Float64Array(D);
      const dv = new Float64Array(D);
      for (let i = 0; i < L; i++) {
        const pij = p(i, j);
        if (pij === 0) continue;
        const ds = pij * (dpv(i, j) - delta[i]!) * scale;
        for (let d = 0; d < D; d++) {
          dk[d] += ds * q[base + i * D + d]!;
          dv[d] += pij * dOut[base + i * D + d]!;
        }
      }
      res.dk.push(...dk);
      res.dv.push(...dv);
    }
  }
  return res;
}

/** Sorts rows by head then position, the order `attentionAt` returns them in. */
export function attentionRowOrder(rows: readonly number[], L: number): number[] {
  const heads = [...new Set(rows.map((r) => Math.floor(r / L)))];
  return heads.flatMap((h) => rows.filter((r) => Math.floor(r / L) === h));
}
