/** Special functions WGSL lacks, with float64 references. */

/** erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), odd-extended. */
export const ERF_WGSL = `
fn erf_f32(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-z * z));
}`;

/** erf to ~1e-13: Taylor series below 3, a continued fraction for erfc above. */
export function erf(x: number): number {
  const z = Math.abs(x);
  if (Number.isNaN(x)) return NaN;
  if (z < 3) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 80; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * sum * (2 / Math.sqrt(Math.PI));
  }
  let f = z;
  for (let k = 60; k >= 1; k--) f = z + k / 2 / f;
  const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/**
 * sin/cos to ~1 ulp for |x| up to ~1e5. Vulkan lets drivers return sin/cos with only 2^-11
 * absolute accuracy (SwiftShader does), which is too coarse for RoPE tables and for Box–Muller
 * normals that must match the CPU. Cody–Waite reduction by π/2 (with fma) and Taylor polynomials
 * on [-π/4, π/4].
 */
export const TRIG_WGSL = `
fn trig_poly_sin(r: f32) -> f32 {
  let r2 = r * r;
  return r * (1.0 + r2 * (-0.16666666666666666 + r2 * (0.008333333333333333 + r2 * (-0.0001984126984126984 + r2 * 2.7557319223985893e-6))));
}
fn trig_poly_cos(r: f32) -> f32 {
  let r2 = r * r;
  return 1.0 + r2 * (-0.5 + r2 * (0.041666666666666664 + r2 * (-0.001388888888888889 + r2 * (2.48015873015873e-5 + r2 * -2.755731922398589e-7))));
}
fn trig_quadrant(x: f32, shift: i32) -> f32 {
  let k = round(x * 0.6366197723675814);
  let r = fma(-k, 1.5707963705062866, x) + k * 4.371139000186243e-8;
  let q = (i32(k) + shift) & 3;
  if (q == 0) { return trig_poly_sin(r); }
  if (q == 1) { return trig_poly_cos(r); }
  if (q == 2) { return -trig_poly_sin(r); }
  return -trig_poly_cos(r);
}
fn sin_acc(x: f32) -> f32 { return trig_quadrant(x, 0); }
fn cos_acc(x: f32) -> f32 { return trig_quadrant(x, 1); }`;

/**
 * IEEE special values in WGSL. WGSL leaves the NaN behaviour of built-ins to the implementation
 * (SwiftShader: max(NaN, 0) = 0, tanh(NaN) = −1, exp(NaN) = inf, log(NaN) = 89, log(0) = −88) and
 * lets compilers fold `x != x` to false, so kernels that must propagate NaN as PyTorch does test
 * the bits. NaN and ±inf cannot be WGSL constants: they come from a private variable's bits.
 */
export const IEEE_WGSL = `
var<private> IEEE_NAN_BITS: u32 = 0x7fc00000u;
var<private> IEEE_INF_BITS: u32 = 0x7f800000u;
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn nan_f32() -> f32 { return bitcast<f32>(IEEE_NAN_BITS); }
fn inf_f32() -> f32 { return bitcast<f32>(IEEE_INF_BITS); }
fn max_nan(a: f32, b: f32) -> f32 { return select(max(a, b), nan_f32(), is_nan(a) || is_nan(b)); }
fn min_nan(a: f32, b: f32) -> f32 { return select(min(a, b), nan_f32(), is_nan(a) || is_nan(b)); }
fn log_ieee(x: f32) -> f32 {
  if (is_nan(x) || x < 0.0) { return nan_f32(); }
  return select(log(x), -inf_f32(), x == 0.0);
}`;
