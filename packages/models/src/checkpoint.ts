/**
 * Checkpoints in the safetensors format (8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets}}, then raw little-endian data), so files load in PyTorch
 * with `safetensors.torch.load_file` and vice versa. Reading validates everything and names the
 * problem. Reading and writing files (atomically: temporary file, then rename) lives in the Node
 * entry, `./node.ts`.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';

const DTYPES = { F32: 'f32', I32: 'i32' } as const;

/** Serialises tensors (read back from the GPU) into safetensors bytes. */
export async function encodeSafetensors(
  tensors: ReadonlyMap<string, Tensor> | [string, Tensor][],
  metadata: Record<string, string> = {},
): Promise<Uint8Array> {
  const entries = [...tensors];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    if (t.dtype === 'bool') throw new TypeError(`encodeSafetensors: ${name} is bool; cast it to i32 first`);
    const values = await t.data();
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    header[name] = {
      dtype: t.dtype === 'f32' ? 'F32' : 'I32',
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes.byteLength],
    };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export interface DecodedCheckpoint {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Parses safetensors bytes into tensors on `device`; throws a named error on any corruption. */
export function decodeSafetensors(
  bytes: Uint8Array,
  opts: { device?: T.Device; source?: string } = {},
): DecodedCheckpoint {
  const where = opts.source ?? 'checkpoint';
  const fail = (what: string): never => {
    throw new Error(`${where}: corrupt safetensors file: ${what}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) fail(`header length ${headerLength} exceeds the file size ${bytes.length}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)),
    ) as Record<string, unknown>;
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, Tensor>();
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const info = raw as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const dtype = DTYPES[info.dtype as keyof typeof DTYPES];
    if (!dtype) fail(`tensor "${name}" has unsupported dtype ${String(info.dtype)} (F32 and I32 are supported)`);
    if (!Array.isArray(info.shape) || info.shape.some((s) => !Number.isInteger(s) || s < 0))
      fail(`tensor "${name}" has an invalid shape`);
    const [begin, end] = info.data_offsets ?? [NaN, NaN];
    const expected = info.shape!.reduce((a, b) => a * b, 1) * 4;
    if (
      !Number.isInteger(begin) ||
      !Number.isInteger(end) ||
      begin < 0 ||
      end > dataLength ||
      end - begin !== expected
    ) {
      fail(
        `tensor "${name}" [${info.shape!.join(', ')}] needs ${expected} bytes but its data_offsets are [${begin}, ` +
          `${end}] in ${dataLength} bytes of data`,
      );
    }
    // A copy: the data may be unaligned, and Node's Buffer#slice would share the file's memory.
    const copy = new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end));
    const values = dtype === 'f32' ? new Float32Array(copy.buffer) : new Int32Array(copy.buffer);
    tensors.set(name, T.keep(T.tensor(values, { shape: info.shape!, dtype, device: opts.device })));
  }
  return { tensors, metadata };
}
