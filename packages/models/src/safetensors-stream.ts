/**
 * Streaming safetensors: the header is read and validated first, then each tensor's byte range is
 * read on its own from a `ByteSource`, so a 2.6 GB file never needs its size in memory twice (a
 * Node file handle in `node/safetensors-file.ts`, a browser `Blob`/`File`, or bytes already in
 * memory). F64, F32, F16 and BF16 are converted to f32 on read; the writer emits F32, F16 or BF16.
 * Everything here works on bytes, so it runs in browsers too.
 */

/** Random access to the bytes of a file-like object. */
export interface ByteSource {
  /** Named in every error (a path, a URL, a file name). */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset` (throws if fewer are available). */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

export function bytesSource(bytes: Uint8Array, name = 'safetensors bytes'): ByteSource {
  return {
    name,
    size: bytes.length,
    read: async (offset, length) => {
      if (offset + length > bytes.length)
        throw new Error(`${name}: read past the end (${offset + length} > ${bytes.length} bytes)`);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** A browser `Blob` or `File`: each read slices only the requested range. */
export function blobSource(blob: Blob, name = (blob as { name?: string }).name ?? 'blob'): ByteSource {
  return {
    name,
    size: blob.size,
    read: async (offset, length) => {
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      if (bytes.length !== length)
        throw new Error(`${name}: read past the end (${offset + length} > ${blob.size} bytes)`);
      return bytes;
    },
  };
}

/** Bytes per element of every dtype the format defines; the float ones convert to f32 on read. */
const ITEM_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;
export type SafetensorsDType = keyof typeof ITEM_BYTES;
export const FLOAT_DTYPES: readonly SafetensorsDType[] = ['F64', 'F32', 'F16', 'BF16'];
export type WritableDType = 'F32' | 'F16' | 'BF16';

/** The format's own cap on the header (100 MB), which also bounds what a corrupt length can make us read. */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsIndex {
  source: string;
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** Thrown for a malformed file; the message names the file and the problem. */
export class SafetensorsError extends Error {
  constructor(
    readonly source: string,
    problem: string,
  ) {
    super(`${source}: corrupt safetensors file: ${problem}`);
    this.name = 'SafetensorsError';
  }
}

/** Reads and validates the header (not the tensor data): every entry's dtype, shape and byte range. */
export async function readSafetensorsIndex(src: ByteSource): Promise<SafetensorsIndex> {
  const fail = (problem: string): never => {
    throw new SafetensorsError(src.name, problem);
  };
  if (src.size < 8) fail(`truncated: ${src.size} bytes, shorter than the 8-byte header length`);
  const lengthField = await src.read(0, 8);
  const headerLength = Number(new DataView(lengthField.buffer, lengthField.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > src.size - 8)
    fail(
      `header length ${headerLength} exceeds the ${src.size - 8} bytes after the length field (truncated or not ` +
        `safetensors)`,
    );
  if (headerLength > MAX_HEADER_BYTES)
    fail(`header length ${headerLength} is over the format's limit of ${MAX_HEADER_BYTES} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await src.read(8, headerLength)));
  } catch (err) {
    fail(`header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    fail(
      `header must be a JSON object, got ${
        header === null ? 'null' : Array.isArray(header) ? 'an array' : typeof header
      }`,
    );
  }
  const dataStart = 8 + headerLength;
  const dataLength = src.size - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Object.values(raw).some((v) => typeof v !== 'string'))
        fail('__metadata__ must be an object of strings');
      metadata = raw as Record<string, string>;
      continue;
    }
    const what = `tensor "${name}"`;
    if (raw === null || typeof raw !== 'object') fail(`${what}: entry is not an object`);
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info.dtype !== 'string' || !(info.dtype in ITEM_BYTES))
      fail(`${what}: unknown dtype ${JSON.stringify(info.dtype)}`);
    const dtype = info.dtype as SafetensorsDType;
    const shape = info.shape;
    if (!Array.isArray(shape) || shape.some((s) => !Number.isSafeInteger(s) || s < 0))
      fail(`${what}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0)) {
      fail(`${what}: data_offsets ${JSON.stringify(offsets)} must be two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    const bytes = (shape as number[]).reduce((a, b) => a * b, 1) * ITEM_BYTES[dtype];
    if (end - begin !== bytes)
      fail(
        `${what}: ${dtype} [${(shape as number[]).join(', ')}] needs ${bytes} bytes but data_offsets [${begin}, ` +
          `${end}] hold ${end - begin}`,
      );
    if (end > dataLength)
      fail(`${what}: data_offsets [${begin}, ${end}] run past the ${dataLength} data bytes (file truncated?)`);
    entries.set(name, { name, dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }
  const sorted = [...entries.values()].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.begin < sorted[i - 1]!.end)
      fail(`tensors "${sorted[i - 1]!.name}" and "${sorted[i]!.name}" overlap`);
  }
  return { source: src.name, entries, metadata };
}

/** One tensor's values: floats as f32 (F64/F16/BF16 converted), I32 as is. */
export async function readSafetensorsTensor(
  src: ByteSource,
  entry: SafetensorsEntry,
): Promise<Float32Array | Int32Array> {
  const bytes = await src.read(entry.begin, entry.end - entry.begin);
  // A copy (`new Uint8Array(view)`): the range may be unaligned, and a Node Buffer's slice would share memory.
  if (entry.dtype === 'I32') return new Int32Array(new Uint8Array(bytes).buffer);
  if (!FLOAT_DTYPES.includes(entry.dtype))
    throw new TypeError(
      `${src.name}: tensor "${entry.name}" is ${entry.dtype}; only F64, F32, F16, BF16 and I32 can be read`,
    );
  return decodeFloats(bytes, entry.dtype);
}

/** Little-endian F64/F32/F16/BF16 bytes → f32 values. */
export function decodeFloats(bytes: Uint8Array, dtype: SafetensorsDType): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length / ITEM_BYTES[dtype];
  const out = new Float32Array(n);
  if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === 'F64') for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
  else if (dtype === 'F16') for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  else if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  } else throw new TypeError(`decodeFloats: ${dtype} is not a float dtype`);
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/** f32 → IEEE half, round to nearest even; finite values beyond ±65504 are an error, not ±inf. */
function floatToHalf(value: number, what: string): number {
  F32_SCRATCH[0] = value;
  const x = U32_SCRATCH[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) throw new RangeError(`${what}: ${value} does not fit in F16 (max 65504)`);
  if (e <= 0) {
    // Subnormal half: a count of 2^-24 units (exact in a double), rounded half to even.
    const scaled = Math.abs(value) * 2 ** 24;
    let units = Math.floor(scaled);
    const fraction = scaled - units;
    if (fraction > 0.5 || (fraction === 0.5 && units & 1)) units++;
    return sign | units;
  }
  let h = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  if ((h & 0x7fff) >= 0x7c00) throw new RangeError(`${what}: ${value} does not fit in F16 (max 65504)`);
  return sign | h;
}

/** f32 values → little-endian bytes of `dtype` (BF16 rounds to nearest even; NaN stays NaN). */
export function encodeFloats(values: Float32Array, dtype: WritableDType, what = 'tensor'): Uint8Array {
  if (dtype === 'F32')
    return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const out = new Uint16Array(values.length);
  if (dtype === 'F16') for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]!, what);
  else {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < values.length; i++) {
      const x = bits[i]!;
      out[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return new Uint8Array(out.buffer);
}

/** A tensor to write: its shape now, its values when the writer reaches it (one at a time). */
export interface TensorToWrite {
  shape: readonly number[];
  /** I32 tensors are written as I32 whatever the file's float dtype. */
  values(): Promise<Float32Array | Int32Array>;
}

/**
 * Safetensors bytes as a sequence of chunks: the header, then each tensor's bytes in order, each
 * tensor read only when its turn comes. Float tensors are written as `dtype`.
 */
export async function* safetensorsChunks(
  tensors: Iterable<[string, TensorToWrite]>,
  opts: { dtype?: WritableDType; metadata?: Record<string, string>; intNames?: ReadonlySet<string> } = {},
): AsyncGenerator<Uint8Array> {
  const dtype = opts.dtype ?? 'F32';
  const list = [...tensors];
  const header: Record<string, unknown> = {};
  if (opts.metadata && Object.keys(opts.metadata).length) header.__metadata__ = opts.metadata;
  let offset = 0;
  for (const [name, t] of list) {
    const kind = opts.intNames?.has(name) ? 'I32' : dtype;
    const bytes = t.shape.reduce((a, b) => a * b, 1) * ITEM_BYTES[kind];
    header[name] = { dtype: kind, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8 + headerBytes.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  prefix.set(headerBytes, 8);
  yield prefix;
  for (const [name, t] of list) {
    const values = await t.values();
    const expected = t.shape.reduce((a, b) => a * b, 1);
    if (values.length !== expected)
      throw new RangeError(
        `safetensors writer: "${name}" has ${values.length} values for shape [${t.shape.join(', ')}]`,
      );
    const isInt = opts.intNames?.has(name) ?? false;
    if (isInt !== values instanceof Int32Array)
      throw new TypeError(`safetensors writer: "${name}" must be ${isInt ? 'i32' : 'f32'} values`);
    yield values instanceof Int32Array
      ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
      : encodeFloats(values, dtype, `"${name}"`);
  }
}

/** The whole file in memory (browsers, small files); Node writes large files with `writeSafetensorsFile`. */
export async function safetensorsBytes(...args: Parameters<typeof safetensorsChunks>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of safetensorsChunks(...args)) chunks.push(chunk);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
