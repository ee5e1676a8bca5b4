/**
 * Node file access for streaming safetensors: a `ByteSource` over a file handle (each tensor's
 * byte range is read on its own) and an atomic streaming writer (temporary file, then rename), so
 * a 2.6 GB checkpoint goes in and out without holding the file in memory.
 */
import { open, rename, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { RinalmoModel } from '../rinalmo.js';
import { type RinalmoLoadOptions, type RinalmoLoadReport, loadRinalmoWeights } from '../rinalmo-checkpoint.js';
import { type ByteSource, type TensorToWrite, type WritableDType, safetensorsChunks } from '../safetensors-stream.js';

/** Opens `path` for reads by byte range; call `close()` when done. */
export async function fileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      `${path}: cannot open: ${
        code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message
      }`,
    );
  }
  const { size } = await handle.stat();
  return {
    name: path,
    size,
    async read(offset, length) {
      const bytes = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
        if (bytesRead === 0)
          throw new Error(
            `${path}: file ended at ${offset + done} bytes while reading ${length} bytes from ${offset} (changed ` +
              `while reading?)`,
          );
        done += bytesRead;
      }
      return bytes;
    },
    close: () => handle.close(),
  };
}

/** Streams tensors into `path` atomically: readers see the old file or the complete new one. */
export async function writeSafetensorsFile(
  path: string,
  tensors: Iterable<[string, TensorToWrite]>,
  opts: { dtype?: WritableDType; metadata?: Record<string, string>; intNames?: ReadonlySet<string> } = {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const handle = await open(tmp, 'w');
  try {
    for await (const chunk of safetensorsChunks(tensors, opts)) await handle.write(chunk);
    await handle.sync();
    await handle.close();
    await rename(tmp, path);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

/** `loadRinalmoWeights` from a file path; the file is closed whatever happens. */
export async function loadRinalmoFile(
  model: RinalmoModel,
  path: string,
  opts: RinalmoLoadOptions = {},
): Promise<RinalmoLoadReport> {
  const source = await fileSource(path);
  try {
    return await loadRinalmoWeights(model, source, opts);
  } finally {
    await source.close();
  }
}
