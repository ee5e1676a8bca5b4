/**
 * `pnpm web`: builds the app and serves it at http://127.0.0.1:5173/ (a plain static server; WebGPU
 * needs a secure context, which localhost is).
 * Usage: node --import tsx packages/app/scripts/serve.ts [--port N] [--host H]
 */
import { parseArgs } from 'node:util';
import { buildApp } from './bundle.js';
import { serveStatic } from './static-server.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '5173' }, host: { type: 'string', default: '127.0.0.1' } },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve: --port must be an integer in 0..65535, got ${values.port}`);
  process.exit(2);
}
const root = await buildApp();
const server = await serveStatic(root, port, values.host);
console.log(`rnagrad app: http://${values.host}:${server.port}/  (serving ${root}; Ctrl-C stops)`);
