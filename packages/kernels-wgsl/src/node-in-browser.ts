/**
 * What a browser bundle gets for '@rnagrad/kernels-wgsl/node': the same names, and an error on load
 * that names the right entry (the Node entry loads Dawn and reads node:fs).
 */
export type { NodeAdapter, NodeAdapterOptions } from './node.js';

const MESSAGE =
  '@rnagrad/kernels-wgsl/node is the Node entry (Dawn through the npm package "webgpu"); ' +
  "in a browser import '@rnagrad/kernels-wgsl' and get a device from navigator.gpu: " +
  'await (await navigator.gpu.requestAdapter()).requestDevice().';

function nodeOnly(): never {
  throw new Error(MESSAGE);
}

export const SWIFTSHADER_ICDS: string[] = [];
export const NO_ADAPTER_HELP = MESSAGE;
export const loadDawn = nodeOnly;
export const vulkanDriverManifests = nodeOnly;
export const requestNodeAdapter = nodeOnly;
export const requestNodeDevice = nodeOnly;

throw new Error(MESSAGE);
