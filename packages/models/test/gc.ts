import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Runs the garbage collector and the finalizers it queues. Handles that earlier test files dropped
 * without dispose() are released by a FinalizationRegistry at GC time; a collection in the middle of
 * a test that counts live tensors would lower the count there (it did, under load, in CI).
 */
export async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
