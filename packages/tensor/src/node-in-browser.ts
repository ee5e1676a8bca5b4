/**
 * What a browser bundle gets for '@rnagrad/tensor/node': the same names, and an error on load that
 * names the right entry (the Node entry needs Dawn and node:*).
 */
export * from './index.js';

throw new Error(
  '@rnagrad/tensor/node is the Node entry (Dawn through the npm package "webgpu"); ' +
    "in a browser import '@rnagrad/tensor', whose init() uses navigator.gpu.",
);
