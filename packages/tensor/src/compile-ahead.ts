/**
 * Cold start: the first use of each GPU pipeline compiles its shader, and on SwiftShader that is
 * most of a training run's first step. `compileAhead` learns which pipelines some work needs by
 * tracing it (the queue records its dispatches and encodes nothing) and compiles the missing ones
 * concurrently with createComputePipelineAsync before the work runs for real.
 */
import type { CompileProgress } from '@rnagrad/kernels-wgsl';
import { keepRandomStream } from './ops.js';
import { hasRuntime, runtime } from './runtime.js';
import { tidy } from './tensor.js';

export interface CompileAheadResult {
  /** Distinct pipelines the traced work dispatches. */
  traced: number;
  /** Those that were not compiled yet and were compiled now. */
  compiled: number;
  /** Wall time of the trace and the compilation. */
  ms: number;
}

/**
 * Traces `run` (synchronous, like a `tidy` callback) and compiles every pipeline it would dispatch
 * that is not cached yet; `onProgress(done, total)` reports the compilation. Nothing `run` computes
 * reaches the GPU, so its results are meaningless: tensors it creates are disposed, and the global
 * random stream is left where it was. `run` must not change state outside tensors (an optimiser's
 * step count, a data cursor) or that change stays. Without a GPU runtime it does nothing.
 */
export async function compileAhead(run: () => void, onProgress?: CompileProgress): Promise<CompileAheadResult> {
  const started = performance.now();
  if (!hasRuntime()) return { traced: 0, compiled: 0, ms: 0 };
  const rt = runtime();
  rt.check('compileAhead');
  const requests = rt.queue.trace(() => keepRandomStream(() => tidy(run)));
  // Dawn in Node polls for async results: the calling thread compiles too instead of waiting.
  const compiled = await rt.queue.prepare(requests, { onProgress, callerCompiles: rt.adapter.host === 'node' });
  rt.check('compileAhead');
  return { traced: requests.length, compiled, ms: performance.now() - started };
}
