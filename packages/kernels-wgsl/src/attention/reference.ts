/** Float64 references of the attention kernels: straightforward O(L²·D), probabilities recomputed. */
import type { CpuOperand } from '../layout.js';
import { type AttentionOptions, type Dims, attentionDropoutFactor, checkMask, dimsOf, dropoutOf } from './options.js';

export interface AttentionCpuArgs extends AttentionOptions {
  q: CpuOperand;
  k: CpuOperand;
  v: CpuOperand;
  keyPaddingMask?: CpuOperand | null;
}

function at4(t: CpuOperand, b: number, h: number, l: number, d: number): number {
  return t.offset + b * t.strides[0]! + h * t.strides[1]! + l * t.strides[2]! + d * t.strides[3]!;
}

/** Row (b, h, i)'s probabilities over keys, or null if every key is masked. Also returns the lse. */
function probabilities(args: AttentionCpuArgs, dims: Dims, b: number, h: number, i: number, p: Float64Array): number {
  const { L, D } = dims;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const mask = args.keyPaddingMask;
  let m = -Infinity;
  for (let j = 0; j < L; j++) {
    const ok =
      (!args.causal || j <= i) && (!mask || mask.data[mask.offset + b * mask.strides[0]! + j * mask.strides[1]!] !== 0);
    if (!ok) {
      p[j] = -Infinity;
      continue;
    }
    let s = 0;
    for (let d = 0; d < D; d++) s += args.q.data[at4(args.q, b, h, i, d)]! * args.k.data[at4(args.k, b, h, j, d)]!;
    p[j] = s * scale;
    if (p[j]! > m) m = p[j]!;
  }
  if (m === -Infinity) {
    p.fill(0);
    return -Infinity;
  }
  let l = 0;
  for (let j = 0; j < L; j++) {
    p[j] = p[j] === -Infinity ? 0 : Math.exp(p[j]! - m);
    l += p[j]!;
  }
  for (let j = 0; j < L; j++) p[j]! /= l;
  return m + Math.log(l);
}

/** Float64 forward: out [B,H,L,D] and lse [B,H,L] (−inf for rows whose keys are all masked, with zero output). */
export function attentionForwardCpu(args: AttentionCpuArgs & { out: CpuOperand; lse: CpuOperand }): void {
  const dims = dimsOf('attention', args.q, [args.k, args.v, args.out]);
  checkMask('attention', args.keyPaddingMask, dims);
  const { B, H, L, D } = dims;
  const drop = dropoutOf('attention', args.dropout);
  const p = new Float64Array(L);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < L; i++) {
        const lse = probabilities(args, dims, b, h, i, p);
        args.lse.data[args.lse.offset + (b * H + h) * L + i] = lse;
        if (drop) for (let j = 0; j < L; j++) p[j]! *= attentionDropoutFactor(drop, L, b * H + h, i, j);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < L; j++) if (p[j] !== 0) acc += p[j]! * args.v.data[at4(args.v, b, h, j, d)]!;
          args.out.data[at4(args.out, b, h, i, d)] = acc;
        }
      }
    }
  }
}

/** Float64 backward: dq, dk, dv from dOut, recomputing the probabilities. */
export function attentionBackwardCpu(
  args: AttentionCpuArgs & { dOut: CpuOperand; dq: CpuOperand; dk: CpuOperand; dv: CpuOperand },
): void {
  const dims = dimsOf('attentionBackward', args.q, [args.k, args.v, args.dOut, args.dq, args.dk, args.dv]);
  checkMask('attentionBackward', args.keyPaddingMask, dims);
  const { B, H, L, D } = dims;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const P = new Float64Array(L * L);
  const dS = new Float64Array(L * L);
  const PM = new Float64Array(L * L);
  const row = new Float64Array(L);
  const drop = dropoutOf('attentionBackward', args.dropout);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < L; i++) {
        probabilities(args, dims, b, h, i, row);
        P.set(row, i * L);
      }
      // With dropout (factor M): O = (P⊙M)V, dP = M⊙(dO Vᵀ), dS = P⊙(dP − Σ_j P dP); dV uses P⊙M.
      for (let i = 0; i < L; i++) {
        let Di = 0;
        for (let j = 0; j < L; j++) {
          let dp = 0;
          if (P[i * L + j] !== 0)
            for (let d = 0; d < D; d++)
              dp += args.dOut.data[at4(args.dOut, b, h, i, d)]! * args.v.data[at4(args.v, b, h, j, d)]!;
          const m = drop ? attentionDropoutFactor(drop, L, b * H + h, i, j) : 1;
          dS[i * L + j] = dp * m;
          Di += P[i * L + j]! * dp * m;
          PM[i * L + j] = P[i * L + j]! * m;
        }
        for (let j = 0; j < L; j++) dS[i * L + j] = P[i * L + j]! * (dS[i * L + j]! - Di);
      }
      for (let x = 0; x < L; x++) {
        for (let d = 0; d < D; d++) {
          let gq = 0;
          let gk = 0;
          let gv = 0;
          for (let y = 0; y < L; y++) {
            gq += dS[x * L + y]! * args.k.data[at4(args.k, b, h, y, d)]!;
            gk += dS[y * L + x]! * args.q.data[at4(args.q, b, h, y, d)]!;
            gv += PM[y * L + x]! * args.dOut.data[at4(args.dOut, b, h, y, d)]!;
          }
          args.dq.data[at4(args.dq, b, h, x, d)] = gq * scale;
          args.dk.data[at4(args.dk, b, h, x, d)] = gk * scale;
          args.dv.data[at4(args.dv, b, h, x, d)] = gv;
        }
      }
    }
  }
}
