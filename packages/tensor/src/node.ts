/**
 * The Node entry of @rnagrad/tensor (what plain Node gets for '@rnagrad/tensor', through the
 * "node" export condition, and for '@rnagrad/tensor/node'): the whole browser-safe API, with
 * `init()` creating its device through Dawn (the npm package `webgpu`).
 */
import { requestNodeAdapter } from '@rnagrad/kernels-wgsl/node';
import { setNodeAdapterProvider } from './runtime.js';

setNodeAdapterProvider(async (opts) => {
  const { adapter, gpu } = await requestNodeAdapter(opts);
  return { adapter, handle: gpu };
});

export * from './index.js';
