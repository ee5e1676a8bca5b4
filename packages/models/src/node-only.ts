/**
 * The browser entry's stand-ins for the Node entry's file helpers: the same signatures, and an
 * error that names the entry to use and what works in a browser instead.
 */
import type { Tensor } from '@rnagrad/tensor';
import type { DecodedCheckpoint } from './checkpoint.js';
import type * as T from '@rnagrad/tensor';

function nodeOnly(name: string, inBrowser: string): never {
  throw new Error(
    `${name} works on files and needs Node: plain Node gets it from '@rnagrad/models' (the package's Node entry) ` +
      `or '@rnagrad/models/node'. In a browser, ${inBrowser}.`,
  );
}

export async function saveCheckpoint(
  _path: string,
  _tensors: ReadonlyMap<string, Tensor> | [string, Tensor][],
  _metadata?: Record<string, string>,
): Promise<void> {
  nodeOnly('saveCheckpoint', 'encodeSafetensors(tensors) gives the bytes to store or download');
}

export async function loadCheckpoint(_path: string, _opts?: { device?: T.Device }): Promise<DecodedCheckpoint> {
  return nodeOnly(
    'loadCheckpoint',
    'fetch the file and call decodeSafetensors(new Uint8Array(await response.arrayBuffer()))',
  );
}

export async function writeFileAtomic(_path: string, _data: Uint8Array | string): Promise<void> {
  nodeOnly('writeFileAtomic', 'there is no file system to write to');
}
