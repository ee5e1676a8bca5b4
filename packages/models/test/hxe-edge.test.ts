/** HXE's edge semantics on the GPU and the CPU oracle (the cases are shared with the browser suite). */
import { test } from 'uvu';
import * as T from '@rnagrad/tensor';
import { hxeEdgeCases } from './hxe-edge-cases.js';

await T.init({ quiet: true });

for (const [name, run] of hxeEdgeCases()) test(name, run);

test.run();
