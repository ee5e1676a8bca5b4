/**
 * Progress of long work: on a terminal a bar redrawn in place with ETA, tokens/s and the current
 * loss; otherwise (a pipe, a log file, CI) one plain line per interval. Messages printed while a
 * bar is shown go above it.
 */
export interface ProgressOptions {
  total: number;
  /** Noun for the unit counted ("step", "sequence"). */
  unit: string;
  /** Draw a bar in place (default: when stderr is a terminal). */
  tty?: boolean;
  /** Plain mode: print a line every this many units (and at the end). */
  every?: number;
  stream?: NodeJS.WriteStream;
  /** Units already done (a resumed run). */
  start?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly every: number;
  private readonly started = performance.now();
  private readonly start: number;
  private done: number;
  private tokens = 0;
  /** Time and units when the rate is measured from (after the first unit: shader compilation skews it). */
  private rateFrom: { t: number; done: number; tokens: number } | null = null;
  private shown = false;
  private status = '';
  /** Plain mode: units done at the last printed line. */
  private printed: number;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.every = opts.every ?? 10;
    this.start = opts.start ?? 0;
    this.done = this.start;
    this.printed = this.start;
  }

  /** Prints a line (above the bar on a terminal). */
  log(line: string): void {
    if (this.tty && this.shown) this.stream.write('\r\x1b[2K');
    this.stream.write(`${line}\n`);
    if (this.tty && this.shown) this.draw(this.status);
  }

  /**
   * A line that the next one replaces on a terminal (e.g. "compiling shaders (12/48)"); without a
   * terminal only the lines marked `milestone` are printed.
   */
  transient(line: string, milestone: boolean): void {
    if (this.tty) {
      const columns = this.stream.columns ?? 120;
      this.stream.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
      this.shown = true;
    } else if (milestone) this.stream.write(`${line}\n`);
  }

  /** Records progress to `done` units; `tokens` processed in this update; `status` e.g. "loss 3.912". */
  update(done: number, tokens: number, status: string): void {
    this.done = done;
    this.tokens += tokens;
    const now = performance.now();
    if (!this.rateFrom) this.rateFrom = { t: now, done, tokens: this.tokens };
    const stats = this.rates(now);
    this.status = `${status}${stats}`;
    if (this.tty) this.draw(this.status);
    else if (
      Math.floor((done - this.start) / this.every) > Math.floor((this.printed - this.start) / this.every) ||
      done === this.opts.total
    ) {
      this.printed = done;
      this.stream.write(
        `${this.opts.unit} ${String(done).padStart(String(this.opts.total).length)}/${this.opts.total}  ` +
          `${status}${stats}\n`,
      );
    }
  }

  private rates(now: number): string {
    const from = this.rateFrom!;
    const seconds = (now - from.t) / 1000;
    const units = this.done - from.done;
    if (units <= 0 || seconds <= 0) return '';
    const perUnit = seconds / units;
    const tokens = this.tokens - from.tokens;
    const tps = tokens > 0 ? `  ${Math.round(tokens / seconds).toLocaleString('en-US')} tok/s` : '';
    return (
      `${tps}  ${(perUnit * 1000).toFixed(0)} ms/${this.opts.unit}  ` +
      `ETA ${formatDuration(perUnit * (this.opts.total - this.done))}`
    );
  }

  private draw(status: string): void {
    const { total } = this.opts;
    const frac = total > 0 ? Math.min(1, this.done / total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const line = `${this.opts.unit} ${this.done}/${total} ${bar} ${(100 * frac).toFixed(0).padStart(3)}%  ${status}`;
    const columns = this.stream.columns ?? 120;
    this.stream.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
    this.shown = true;
  }

  /** Ends the bar (a newline on a terminal) and returns the elapsed seconds. */
  finish(): number {
    if (this.tty && this.shown) this.stream.write('\n');
    this.shown = false;
    return (performance.now() - this.started) / 1000;
  }
}
