/**
 * RNA secondary structures and their three text formats: dot-bracket (with pseudoknot brackets),
 * CT (Zuker's connectivity table) and BPSEQ. A structure is a partner table — every base pairs
 * with at most one other — so pseudoknots are representable and triples are not.
 */
import { ParseError, splitLines } from './text.js';

export interface SecondaryStructure {
  /** Record name ('' when the input has none). */
  id: string;
  /** Bases as written (any letters). */
  sequence: string;
  /** Partner of each base, 0-based; −1 when unpaired. Always symmetric. */
  partners: Int32Array;
}

export interface StructureReadOptions {
  /** Label of the input (a file name) added to error messages. */
  sourceName?: string;
}

export const UNPAIRED = -1;

/**
 * Bracket pages in the order they are assigned: nested pairs use `()`, each further crossing
 * layer the next pair of symbols; `Aa`, `Bb`, … (upper case opens) follow `<>`, as in bpRNA/WUSS.
 */
const PAGES: readonly (readonly [string, string])[] = [
  ['(', ')'],
  ['[', ']'],
  ['{', '}'],
  ['<', '>'],
  ...Array.from({ length: 26 }, (_, k) => [String.fromCharCode(65 + k), String.fromCharCode(97 + k)] as const),
];
/** Characters read as an unpaired base (`.` is written; the others occur in other tools' output). */
const UNPAIRED_CHARS = new Set(['.', ',', ':', '-', '_']);
const OPENER = new Map(PAGES.map(([open], page) => [open, page]));
const CLOSER = new Map(PAGES.map(([, close], page) => [close, page]));

/** Base pairs (i, j), i < j, 0-based, in order of i. */
export function basePairs(partners: Int32Array): [number, number][] {
  const pairs: [number, number][] = [];
  partners.forEach((j, i) => {
    if (j > i) pairs.push([i, j]);
  });
  return pairs;
}

/** A partner table from 0-based pairs; a base in two pairs, a self-pair or an index out of range is an error. */
export function partnersFromPairs(length: number, pairs: Iterable<readonly [number, number]>): Int32Array {
  const partners = new Int32Array(length).fill(UNPAIRED);
  for (const [i, j] of pairs) {
    if (!(Number.isInteger(i) && Number.isInteger(j) && i >= 0 && j >= 0 && i < length && j < length)) {
      throw new RangeError(`pair (${i}, ${j}) is outside a sequence of length ${length}`);
    }
    if (i === j) throw new RangeError(`base ${i} cannot pair with itself`);
    for (const k of [i, j]) {
      if (partners[k] !== UNPAIRED)
        throw new RangeError(`base ${k} is in two pairs (with ${partners[k]} and with ${k === i ? j : i})`);
    }
    partners[i] = j;
    partners[j] = i;
  }
  return partners;
}

/**
 * Dot-bracket of a partner table. Pairs are placed, in order of i, on the first bracket page where
 * they cross no pair already there (the ArchiveII convention); more than 30 pages is an error.
 */
export function dotBracketFromPartners(partners: Int32Array): string {
  const chars = new Array<string>(partners.length).fill('.');
  const pages: [number, number][][] = [];
  for (const [i, j] of basePairs(partners)) {
    let page = pages.findIndex(
      (placed) => !placed.some(([k, l]) => (k < i && i < l && l < j) || (i < k && k < j && j < l)),
    );
    if (page === -1) {
      if (pages.length === PAGES.length)
        throw new RangeError(`the structure needs more than ${PAGES.length} bracket pages`);
      page = pages.push([]) - 1;
    }
    pages[page]!.push([i, j]);
    chars[i] = PAGES[page]![0];
    chars[j] = PAGES[page]![1];
  }
  return chars.join('');
}

/** Reads a dot-bracket string; an unmatched or unknown symbol throws a RangeError naming its column. */
export function partnersFromDotBracket(structure: string): Int32Array {
  const partners = new Int32Array(structure.length).fill(UNPAIRED);
  const stacks = PAGES.map(() => [] as number[]);
  for (let i = 0; i < structure.length; i++) {
    const char = structure[i]!;
    const open = OPENER.get(char);
    const close = CLOSER.get(char);
    if (open !== undefined) stacks[open]!.push(i);
    else if (close !== undefined) {
      const j = stacks[close]!.pop();
      if (j === undefined) throw new RangeError(`unmatched '${char}' at column ${i + 1}`);
      partners[i] = j;
      partners[j] = i;
    } else if (!UNPAIRED_CHARS.has(char))
      throw new RangeError(`unexpected character ${JSON.stringify(char)} at column ${i + 1}`);
  }
  const open = stacks.findIndex((s) => s.length > 0);
  if (open !== -1) throw new RangeError(`unclosed '${PAGES[open]![0]}' at column ${stacks[open]![0]! + 1}`);
  return partners;
}

const SEQUENCE = /^[A-Za-z]+$/;

function checkSequence(sequence: string, fail: (detail: string) => never): void {
  if (SEQUENCE.test(sequence)) return;
  const at = [...sequence].findIndex((c) => !/[A-Za-z]/.test(c));
  fail(`unexpected character ${JSON.stringify(sequence[at])} at column ${at + 1} of the sequence`);
}

/**
 * Dot-bracket records: an optional `>id` line, the sequence on one line and the structure on the
 * next (text after the structure, such as RNAfold's ` (-12.30)`, is ignored). Lines starting with
 * `#` are comments; `#Name: x` names the record (bpRNA `.st`). A bpRNA `.st` file (one that has
 * a `#Name:` line) may carry annotation rows after the structure; they are ignored. Otherwise a
 * third line without a new `>` header is an error.
 */
export function parseDotBracket(text: string, options: StructureReadOptions = {}): SecondaryStructure[] {
  const records: SecondaryStructure[] = [];
  let current: { id: string; sequence?: string; structure?: string; structureLine: number } | undefined;
  let bpRnaSt = false;
  let lineNumber = 0;
  const fail: (detail: string, line?: number) => never = (detail, line = lineNumber) => {
    throw new ParseError('dot-bracket', line, detail, options.sourceName);
  };
  const finish = () => {
    if (!current) return;
    const { id, sequence, structure, structureLine } = current;
    if (sequence === undefined) fail(`record '${id}' has no sequence`);
    if (structure === undefined) fail(`record '${id}' has a sequence but no structure line`);
    if (structure.length !== sequence.length) {
      fail(`the structure has ${structure.length} symbols but the sequence ${sequence.length} bases`, structureLine);
    }
    let partners: Int32Array;
    try {
      partners = partnersFromDotBracket(structure);
    } catch (error) {
      return fail((error as Error).message, structureLine);
    }
    records.push({ id, sequence, partners });
    current = undefined;
  };
  for (const line of splitLines(text)) {
    lineNumber++;
    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('#')) {
      const name = /^#\s*Name:\s*(\S+)/.exec(trimmed);
      if (name) {
        finish();
        bpRnaSt = true;
        current = { id: name[1]!, structureLine: 0 };
      }
      continue;
    }
    if (trimmed.startsWith('>')) {
      finish();
      current = { id: trimmed.slice(1).trim(), structureLine: 0 };
      continue;
    }
    current ??= { id: '', structureLine: 0 };
    const token = trimmed.split(/\s+/)[0]!;
    if (current.sequence === undefined) {
      checkSequence(token, fail);
      current.sequence = token;
    } else if (current.structure === undefined) {
      current.structure = token;
      current.structureLine = lineNumber;
    } else if (!bpRnaSt) fail("a third line in one record (start each record with a '>' header)");
  }
  finish();
  return records;
}

/**
 * Dot-bracket text: per record a `>id` line (also when the id is empty), the sequence and the
 * structure. An empty sequence has no dot-bracket line and is refused.
 */
export function formatDotBracket(structures: readonly SecondaryStructure[]): string {
  for (const s of structures)
    if (s.sequence.length === 0) throw new RangeError(`structure '${s.id}': an empty sequence has no dot-bracket form`);
  return structures.map((s) => `>${s.id}\n${s.sequence}\n${dotBracketFromPartners(checked(s).partners)}\n`).join('');
}

/** Partner tables read from files must be symmetric and within range; reports the first bad line. */
function reciprocal(
  partners: Int32Array,
  lines: readonly number[],
  fail: (detail: string, line: number) => never,
): void {
  partners.forEach((j, i) => {
    if (j === UNPAIRED) return;
    if (j === i) fail(`base ${i + 1} pairs with itself`, lines[i]!);
    if (partners[j] !== i) {
      const other = partners[j] === UNPAIRED ? 'unpaired' : `paired with ${partners[j]! + 1}`;
      fail(`base ${i + 1} pairs with ${j + 1}, but base ${j + 1} is ${other}`, lines[i]!);
    }
  });
}

/** Parses a whole-number field; anything else fails with the field's name. */
function integerField(text: string | undefined, what: string, fail: (detail: string) => never): number {
  if (text === undefined || !/^-?\d+$/.test(text))
    fail(`${what} must be an integer, got ${JSON.stringify(text ?? '')}`);
  return Number(text);
}

/**
 * CT records: a header `N title` (the title, e.g. `ENERGY = -17.5 tRNA-Phe`, is the id), then N
 * lines `index base previous next partner natural-number` with partner 0 for unpaired. Several
 * records may follow each other. Indices must run 1…N and pairs must be reciprocal.
 */
export function parseCt(text: string, options: StructureReadOptions = {}): SecondaryStructure[] {
  const lines = splitLines(text);
  const records: SecondaryStructure[] = [];
  let at = 0;
  const fail: (detail: string, line?: number) => never = (detail, line = at + 1) => {
    throw new ParseError('CT', line, detail, options.sourceName);
  };
  while (at < lines.length) {
    const header = lines[at]!.trim();
    if (header === '' || header.startsWith('#')) {
      at++;
      continue;
    }
    const [countText, ...title] = header.split(/\s+/);
    const count = integerField(countText, "the header's base count", fail);
    if (count < 0) fail(`the header's base count must be ≥ 0, got ${count}`);
    const headerLine = at + 1;
    const bases: string[] = [];
    const partners = new Int32Array(count).fill(UNPAIRED);
    const lineOf: number[] = [];
    for (let k = 1; k <= count; k++) {
      at++;
      if (at >= lines.length)
        fail(
          `the header on line ${headerLine} announces ${count} bases, but the input ends after ${k - 1}`,
          lines.length,
        );
      const fields = lines[at]!.trim().split(/\s+/);
      if (fields.length < 6) fail(`expected 6 columns (index base previous next partner number), got ${fields.length}`);
      const index = integerField(fields[0], 'the index', fail);
      if (index !== k) fail(`expected base index ${k}, got ${index}`);
      checkSequence(fields[1]!, fail);
      if (fields[1]!.length !== 1) fail(`the base must be one letter, got ${JSON.stringify(fields[1])}`);
      for (const [col, what] of [
        [2, 'the previous index'],
        [3, 'the next index'],
        [5, 'the natural number'],
      ] as const) {
        integerField(fields[col], what, fail);
      }
      const partner = integerField(fields[4], 'the partner', fail);
      if (partner < 0 || partner > count) fail(`partner ${partner} is outside 0…${count}`);
      bases.push(fields[1]!);
      partners[k - 1] = partner - 1;
      lineOf.push(at + 1);
    }
    reciprocal(partners, lineOf, fail);
    records.push({ id: title.join(' '), sequence: bases.join(''), partners });
    at++;
  }
  return records;
}

/** CT text, one record per structure (previous/next indices of a single chain; 0 at the ends). */
export function formatCt(structures: readonly SecondaryStructure[]): string {
  return structures
    .map((s) => {
      const n = checked(s).partners.length;
      const rows = Array.from(
        s.partners,
        (j, i) => `${i + 1}\t${s.sequence[i]}\t${i}\t${i + 1 < n ? i + 2 : 0}\t${j + 1}\t${i + 1}`,
      );
      return `${n}\t${s.id}\n${rows.map((r) => `${r}\n`).join('')}`;
    })
    .join('');
}

/**
 * One BPSEQ structure: lines `index base partner` (partner 0 for unpaired), indices 1…N in order.
 * `#` lines are comments (the first names the structure); text lines before the first base line
 * (CRW's `Filename:`, `Organism:` …) are skipped.
 */
export function parseBpseq(text: string, options: StructureReadOptions = {}): SecondaryStructure {
  let lineNumber = 0;
  const fail: (detail: string, line?: number) => never = (detail, line = lineNumber) => {
    throw new ParseError('BPSEQ', line, detail, options.sourceName);
  };
  let id: string | undefined;
  const bases: string[] = [];
  const partnerOf: number[] = [];
  const lineOf: number[] = [];
  for (const line of splitLines(text)) {
    lineNumber++;
    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('#')) {
      id ??= trimmed.slice(1).trim();
      continue;
    }
    const fields = trimmed.split(/\s+/);
    if (bases.length === 0 && !/^\d/.test(trimmed)) continue;
    if (fields.length !== 3) fail(`expected 3 columns (index base partner), got ${fields.length}`);
    const index = integerField(fields[0], 'the index', fail);
    if (index !== bases.length + 1) fail(`expected base index ${bases.length + 1}, got ${index}`);
    checkSequence(fields[1]!, fail);
    if (fields[1]!.length !== 1) fail(`the base must be one letter, got ${JSON.stringify(fields[1])}`);
    bases.push(fields[1]!);
    partnerOf.push(integerField(fields[2], 'the partner', fail));
    lineOf.push(lineNumber);
  }
  const partners = new Int32Array(bases.length);
  partnerOf.forEach((p, i) => {
    if (p < 0 || p > bases.length) fail(`partner ${p} is outside 0…${bases.length}`, lineOf[i]);
    partners[i] = p - 1;
  });
  reciprocal(partners, lineOf, fail);
  return { id: id ?? '', sequence: bases.join(''), partners };
}

/** BPSEQ text (a `# id` comment first when the id is not empty). */
export function formatBpseq(structure: SecondaryStructure): string {
  const { id, sequence, partners } = checked(structure);
  return `${id ? `# ${id}\n` : ''}${Array.from(partners, (j, i) => `${i + 1} ${sequence[i]} ${j + 1}\n`).join('')}`;
}

/** Writers refuse structures that a reader would reject. */
function checked(s: SecondaryStructure): SecondaryStructure {
  if (s.sequence.length !== s.partners.length) {
    throw new RangeError(`structure '${s.id}': ${s.sequence.length} bases but ${s.partners.length} partner entries`);
  }
  if (s.sequence.length > 0 && !SEQUENCE.test(s.sequence))
    throw new RangeError(`structure '${s.id}': the sequence must be letters only`);
  if (/[\n\r]/.test(s.id)) throw new RangeError(`structure id ${JSON.stringify(s.id)} contains a line break`);
  s.partners.forEach((j, i) => {
    if (j !== UNPAIRED && (j < 0 || j >= s.partners.length || j === i || s.partners[j] !== i)) {
      throw new RangeError(`structure '${s.id}': partner table is not symmetric at base ${i}`);
    }
  });
  return s;
}
