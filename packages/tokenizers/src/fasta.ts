import { ParseError, type TextSource, splitLines, streamLines } from './text.js';

export interface FastaRecord {
  /** Header text up to the first whitespace. */
  id: string;
  /** Rest of the header line, trimmed ('' when absent). */
  description: string;
  /** Sequence lines joined with all whitespace removed; letter case is kept as written. */
  sequence: string;
  /** 1-based line number of the `>` header. */
  lineNumber: number;
}

export interface FastaOptions {
  /**
   * Letters allowed in sequences, compared case-insensitively (e.g. `'ACGTUN'`). When set, any
   * other character is an error naming its line and column; when unset, sequence text is passed
   * through and left to the tokenizer's own policy.
   */
  alphabet?: string;
  /** Label of the input (a file name) added to error messages. */
  sourceName?: string;
}

const WHITESPACE = /\s+/g;

/**
 * Line-at-a-time FASTA state machine shared by the string and streaming readers. Blank lines are
 * ignored anywhere; a header with no sequence lines gives a record with an empty sequence; an
 * indented `>` still starts a header rather than leaking into the previous sequence.
 */
class FastaParser {
  private lineNumber = 0;
  private header: { id: string; description: string; lineNumber: number } | undefined;
  private parts: string[] = [];
  private readonly allowed: Set<string> | undefined;

  constructor(private readonly options: FastaOptions) {
    this.allowed =
      options.alphabet === undefined
        ? undefined
        : new Set([...options.alphabet.toUpperCase(), ...options.alphabet.toLowerCase()]);
  }

  /** Consumes one line; returns the previous record when this line starts a new one. */
  line(text: string): FastaRecord | undefined {
    this.lineNumber++;
    const trimmed = text.trimStart();
    if (trimmed.startsWith('>')) {
      const finished = this.finish();
      const header = trimmed.slice(1).trim();
      if (header === '') this.fail("empty header after '>'");
      const space = header.search(/\s/);
      this.header =
        space === -1
          ? { id: header, description: '', lineNumber: this.lineNumber }
          : { id: header.slice(0, space), description: header.slice(space).trim(), lineNumber: this.lineNumber };
      return finished;
    }
    const data = text.replace(WHITESPACE, '');
    if (data === '') return undefined;
    if (this.header === undefined) this.fail("sequence data before any '>' header");
    if (this.allowed !== undefined) this.checkAlphabet(text, this.allowed, this.header.id);
    this.parts.push(data);
    return undefined;
  }

  /** The record in progress, if any; call once more at end of input. */
  finish(): FastaRecord | undefined {
    if (this.header === undefined) return undefined;
    const record = { ...this.header, sequence: this.parts.join('') };
    this.header = undefined;
    this.parts = [];
    return record;
  }

  private checkAlphabet(text: string, allowed: Set<string>, recordId: string): void {
    for (let i = 0; i < text.length; i++) {
      const char = text[i]!;
      if (!allowed.has(char) && !/\s/.test(char)) {
        this.fail(`unexpected character ${JSON.stringify(char)} at column ${i + 1} in record '${recordId}'`);
      }
    }
  }

  private fail(detail: string): never {
    throw new ParseError('FASTA', this.lineNumber, detail, this.options.sourceName);
  }
}

/** Parses a whole FASTA text at once. */
export function parseFasta(text: string, options: FastaOptions = {}): FastaRecord[] {
  const parser = new FastaParser(options);
  const records: FastaRecord[] = [];
  for (const line of splitLines(text)) {
    const record = parser.line(line);
    if (record) records.push(record);
  }
  const last = parser.finish();
  if (last) records.push(last);
  return records;
}

/** Streams FASTA records from text or byte chunks, holding only one record in memory. */
export async function* readFasta(source: TextSource, options: FastaOptions = {}): AsyncGenerator<FastaRecord> {
  const parser = new FastaParser(options);
  for await (const line of streamLines(source)) {
    const record = parser.line(line);
    if (record) yield record;
  }
  const last = parser.finish();
  if (last) yield last;
}
