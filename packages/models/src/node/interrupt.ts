/**
 * Ctrl-C for training runs (Node only): the first SIGINT asks the run to stop after the current
 * step (it then writes a checkpoint and exits cleanly); a second one exits at once.
 */
export interface InterruptFlag {
  readonly requested: boolean;
  dispose(): void;
}

export function onInterrupt(notice: (message: string) => void = (m) => process.stderr.write(`${m}\n`)): InterruptFlag {
  let requested = false;
  const handler = () => {
    if (requested) {
      notice('second Ctrl-C: exiting without a checkpoint');
      process.exit(130);
    }
    requested = true;
    notice('Ctrl-C: stopping after this step and writing a checkpoint (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    get requested() {
      return requested;
    },
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
