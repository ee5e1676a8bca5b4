import { ParseError, type TextSource, splitLines, streamLines } from './text.js';

export interface CsvOptions {
  /** Field separator, one character (default `,`). */
  delimiter?: string;
  /** Label of the input (a file name) added to error messages. */
  sourceName?: string;
}

export interface CsvRow {
  /** Field values keyed by header name. */
  fields: Record<string, string>;
  /** 1-based line on which the row starts (a quoted field may carry it over several lines). */
  lineNumber: number;
}

export interface CsvValue {
  value: string;
  lineNumber: number;
}

/**
 * Line-at-a-time RFC 4180 parser: the first record is the header; fields may be quoted with `"`,
 * and a quoted field may hold delimiters, doubled quotes (`""` for one `"`) and line breaks
 * (stored as `\n`). Every row must have as many fields as the header. Blank lines outside quoted
 * fields are skipped.
 */
class CsvParser {
  columns: string[] | undefined;
  private headerLine = 0;
  private lineNumber = 0;
  private fields: string[] = [];
  private field = '';
  private inQuotes = false;
  private recordStart = 0;
  private readonly delimiter: string;

  constructor(private readonly options: CsvOptions) {
    this.delimiter = options.delimiter ?? ',';
    if (this.delimiter.length !== 1 || this.delimiter === '"' || this.delimiter === '\n') {
      throw new RangeError(
        `CSV delimiter must be one character other than a quote or newline, got ${JSON.stringify(this.delimiter)}`,
      );
    }
  }

  /** Consumes one line; returns a row once a data record is complete. */
  line(text: string): CsvRow | undefined {
    this.lineNumber++;
    if (this.inQuotes) {
      this.field += '\n';
    } else {
      if (text === '') return undefined;
      this.recordStart = this.lineNumber;
    }
    // True right after a closing quote, where only a delimiter or the end of the line may follow.
    let closed = false;
    for (let i = 0; i < text.length; i++) {
      const char = text[i]!;
      if (this.inQuotes) {
        if (char !== '"') {
          this.field += char;
        } else if (text[i + 1] === '"') {
          this.field += '"';
          i++;
        } else {
          this.inQuotes = false;
          closed = true;
        }
      } else if (char === this.delimiter) {
        this.fields.push(this.field);
        this.field = '';
        closed = false;
      } else if (closed) {
        this.fail(`unexpected character ${JSON.stringify(char)} after a closing quote (column ${i + 1})`);
      } else if (char === '"') {
        if (this.field !== '') this.fail(`quote inside an unquoted field (column ${i + 1}); quote the whole field`);
        this.inQuotes = true;
      } else {
        this.field += char;
      }
    }
    if (this.inQuotes) return undefined;
    this.fields.push(this.field);
    const record = this.fields;
    this.fields = [];
    this.field = '';
    return this.acceptRecord(record);
  }

  /** Call at end of input: reports a quoted field that never closed, or a missing header. */
  end(): void {
    if (this.inQuotes) this.fail('quoted field is not closed before the end of the input', this.recordStart);
    if (this.columns === undefined) this.fail('input is empty: expected a header row', Math.max(this.lineNumber, 1));
  }

  /** Throws if the header has been read and lacks `column`. */
  requireColumn(column: string): void {
    if (this.columns !== undefined && !this.columns.includes(column)) {
      this.fail(`no column named '${column}'; the header has: ${this.columns.join(', ')}`, this.headerLine);
    }
  }

  private acceptRecord(record: string[]): CsvRow | undefined {
    if (this.columns === undefined) {
      const seen = new Set<string>();
      for (const name of record) {
        if (seen.has(name)) this.fail(`duplicate column name '${name}' in the header`, this.recordStart);
        seen.add(name);
      }
      this.columns = record;
      this.headerLine = this.recordStart;
      return undefined;
    }
    if (record.length !== this.columns.length) {
      this.fail(`expected ${this.columns.length} fields as in the header, found ${record.length}`, this.recordStart);
    }
    const fields = Object.fromEntries(this.columns.map((name, i) => [name, record[i]!]));
    return { fields, lineNumber: this.recordStart };
  }

  private fail(detail: string, lineNumber = this.lineNumber): never {
    throw new ParseError('CSV', lineNumber, detail, this.options.sourceName);
  }
}

/** Parses a whole CSV text with a header row. */
export function parseCsv(text: string, options: CsvOptions = {}): { columns: string[]; rows: CsvRow[] } {
  const parser = new CsvParser(options);
  const rows: CsvRow[] = [];
  for (const line of splitLines(text)) {
    const row = parser.line(line);
    if (row) rows.push(row);
  }
  parser.end();
  return { columns: parser.columns!, rows };
}

/** Streams CSV rows from text or byte chunks. */
export async function* readCsv(source: TextSource, options: CsvOptions = {}): AsyncGenerator<CsvRow> {
  const parser = new CsvParser(options);
  for await (const line of streamLines(source)) {
    const row = parser.line(line);
    if (row) yield row;
  }
  parser.end();
}

/**
 * Streams one column's values; a header without that column is an error listing the columns
 * that do exist, raised as soon as the header has been read.
 */
export async function* readCsvColumn(
  source: TextSource,
  column: string,
  options: CsvOptions = {},
): AsyncGenerator<CsvValue> {
  const parser = new CsvParser(options);
  for await (const line of streamLines(source)) {
    const row = parser.line(line);
    parser.requireColumn(column);
    if (row) yield { value: row.fields[column]!, lineNumber: row.lineNumber };
  }
  parser.end();
}
