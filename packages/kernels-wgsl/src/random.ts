/**
 * Counter-based random numbers: value i of a stream is a pure function of (key, counter), so a
 * kernel, a browser and the CPU reference produce the same numbers with no state to share.
 * The hash is Wellons' "lowbias32" integer mixer, applied twice; it uses only 32-bit wrapping
 * multiplies and shifts, which WGSL u32 and JavaScript `Math.imul` agree on bit for bit.
 */

import { TRIG_WGSL } from './math.js';

export const RNG_WGSL = `${TRIG_WGSL}
fn rng_hash(v: u32) -> u32 {
  var x = v;
  x = x ^ (x >> 16u); x = x * 0x7feb352du;
  x = x ^ (x >> 15u); x = x * 0x846ca68bu;
  x = x ^ (x >> 16u);
  return x;
}
fn rng_bits(key: u32, counter: u32) -> u32 { return rng_hash(rng_hash(counter + rng_hash(key)) ^ key); }
fn rng_uniform(key: u32, counter: u32) -> f32 { return f32(rng_bits(key, counter) >> 8u) * ${2 ** -24}; }
fn rng_normal(key: u32, counter: u32) -> f32 {
  let u1 = (f32(rng_bits(key, counter * 2u) >> 8u) + 1.0) * ${2 ** -24};
  let u2 = f32(rng_bits(key, counter * 2u + 1u) >> 8u) * ${2 ** -24};
  return sqrt(-2.0 * log(u1)) * cos_acc(${2 * Math.PI} * u2);
}`;

export function rngHash(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

export function rngBits(key: number, counter: number): number {
  return rngHash((rngHash(((counter >>> 0) + rngHash(key)) >>> 0) ^ key) >>> 0);
}

/** Uniform in [0, 1) with 24 random bits: exactly representable in f32, so GPU and CPU agree exactly. */
export function uniformFromCounter(key: number, counter: number): number {
  return (rngBits(key >>> 0, counter) >>> 8) * 2 ** -24;
}

/** Standard normal by Box–Muller from counters 2c and 2c+1 (agrees with the GPU to f32 rounding). */
export function gaussianFromCounter(key: number, counter: number): number {
  const u1 = ((rngBits(key >>> 0, (counter * 2) >>> 0) >>> 8) + 1) * 2 ** -24;
  const u2 = (rngBits(key >>> 0, (counter * 2 + 1) >>> 0) >>> 8) * 2 ** -24;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Derives a stream key from a user seed (any integer). */
export function seedKey(seed: number): number {
  return rngHash((seed >>> 0) ^ 0x9e3779b9);
}
