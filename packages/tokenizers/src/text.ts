/**
 * Browser-safe text plumbing shared by the FASTA and CSV readers: sources, line splitting and
 * errors that point at a line.
 */

/**
 * Text to parse: a whole string, or chunks of text or UTF-8 bytes from any (async) iterable —
 * a `fetch` body reader wrapped as an iterator, a Node stream, a generator.
 */
export type TextSource = string | Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>;

/** A malformed input, located by its 1-based line number. */
export class ParseError extends Error {
  override readonly name = 'ParseError';

  constructor(
    readonly format: 'FASTA' | 'CSV' | 'dot-bracket' | 'CT' | 'BPSEQ',
    readonly lineNumber: number,
    readonly detail: string,
    /** File name or other label of the input, appended to the message when given. */
    readonly sourceName?: string,
  ) {
    super(`${format} line ${lineNumber}: ${detail}${sourceName ? ` (${sourceName})` : ''}`);
  }
}

const BYTE_ORDER_MARK = '\uFEFF';

function stripCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/**
 * Lines of a string, without terminators; `\n` and `\r\n` both end a line, a leading byte-order
 * mark is dropped, and a final terminator does not produce an extra empty line.
 */
export function splitLines(text: string): string[] {
  const body = text.startsWith(BYTE_ORDER_MARK) ? text.slice(1) : text;
  if (body === '') return [];
  const lines = body.split('\n').map(stripCarriageReturn);
  if (body.endsWith('\n')) lines.pop();
  return lines;
}

/** Streaming {@link splitLines}: holds back only the unfinished last line of each chunk. */
export async function* streamLines(source: TextSource): AsyncGenerator<string> {
  if (typeof source === 'string') {
    yield* splitLines(source);
    return;
  }
  const decoder = new TextDecoder();
  let pending = '';
  let atStart = true;
  for await (const chunk of source) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    if (atStart && pending.length > 0) {
      if (pending.startsWith(BYTE_ORDER_MARK)) pending = pending.slice(1);
      atStart = false;
    }
    let start = 0;
    for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n', start)) {
      yield stripCarriageReturn(pending.slice(start, end));
      start = end + 1;
    }
    pending = pending.slice(start);
  }
  pending += decoder.decode();
  if (pending !== '') yield stripCarriageReturn(pending);
}
