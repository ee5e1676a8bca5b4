/** PyTorch edge semantics on the GPU and the CPU oracle (the cases are shared with the browser suite). */
import { test } from 'uvu';
import { edgeCases } from './edge-cases.js';
import './helpers.js';

for (const [name, run] of edgeCases()) test(name, run);

test.run();
