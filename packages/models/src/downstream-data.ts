/**
 * Downstream data sets for RiNALMo fine-tuning, from already-parsed rows (browser-safe; reading
 * files lives in `node/downstream-data-file.ts`):
 * - ArchiveII secondary structures with their family, and leave-one-family-out splits;
 * - nRC ncRNA family classification (13 classes), optionally without the test sequences that
 *   also occur in train;
 * - any CSV of sequence,value for regression, with the target standardiser fitted on train only.
 * Splits drawn here are seeded shuffles, so a run is reproducible from its seed.
 */
import {
  type CsvRow,
  type SecondaryStructure,
  partnersFromDotBracket,
  partnersFromPairs,
  seededRandom,
} from '@rnagrad/tokenizers';

export interface StructureRecord extends SecondaryStructure {
  /** ArchiveII family: the file name up to the first `_` (5s, srp, tRNA, …). */
  family: string;
}

/** The ArchiveII family of a file name / id: the prefix before the first `_` (as the data set defines it). */
export function archiveIIFamily(id: string): string {
  const name = id.replace(/^.*[\\/]/, '').replace(/\.ct$/i, '');
  const cut = name.indexOf('_');
  return cut === -1 ? name : name.slice(0, cut);
}

function requireColumns(row: CsvRow | undefined, columns: readonly string[], source: string): void {
  if (!row) throw new Error(`${source}: no data rows`);
  const missing = columns.filter((c) => !(c in row.fields));
  if (missing.length)
    throw new Error(
      `${source}: missing column(s) ${missing.join(', ')}; the header has ${Object.keys(row.fields).join(', ')}`,
    );
}

export interface ArchiveIIOptions {
  /** Keep sequences of at most this many bases (default 512; `Infinity` keeps all). */
  maxLength?: number;
  /** Label for error messages (a file name). */
  source?: string;
}

/**
 * ArchiveII records from the rows of `archiveII.csv` (id, family, length, sequence, structure,
 * pairs). The lossless `pairs` column (`i-j;…`, 1-based) gives the structure; it must agree with
 * the dot-bracket column, the length column and the family of the id, or the row's line is named.
 */
export function archiveIIRecords(rows: readonly CsvRow[], opts: ArchiveIIOptions = {}): StructureRecord[] {
  const source = opts.source ?? 'archiveII.csv';
  const maxLength = opts.maxLength ?? 512;
  requireColumns(rows[0], ['id', 'family', 'length', 'sequence', 'structure', 'pairs'], source);
  const records: StructureRecord[] = [];
  for (const { fields, lineNumber } of rows) {
    const fail = (detail: string): never => {
      throw new Error(`${source} line ${lineNumber} (${fields.id}): ${detail}`);
    };
    const sequence = fields.sequence!.toUpperCase();
    if (!/^[A-Z]+$/.test(sequence)) fail('the sequence must be letters only');
    if (Number(fields.length) !== sequence.length)
      fail(`length column says ${fields.length} but the sequence has ${sequence.length} bases`);
    if (sequence.length > maxLength) continue;
    const family = archiveIIFamily(fields.id!);
    if (family !== fields.family) fail(`family column "${fields.family}" differs from the id's prefix "${family}"`);
    const pairs =
      fields.pairs === ''
        ? []
        : fields.pairs!.split(';').map((p) => {
            const m = /^(\d+)-(\d+)$/.exec(p);
            if (!m) return fail(`malformed pair "${p}" (expected i-j, 1-based)`);
            return [Number(m[1]) - 1, Number(m[2]) - 1] as [number, number];
          });
    let partners: Int32Array;
    try {
      partners = partnersFromPairs(sequence.length, pairs);
    } catch (error) {
      return fail((error as Error).message);
    }
    let fromBrackets: Int32Array;
    try {
      fromBrackets = partnersFromDotBracket(fields.structure!);
    } catch (error) {
      return fail(`structure column: ${(error as Error).message}`);
    }
    if (fromBrackets.length !== partners.length || fromBrackets.some((p, i) => p !== partners[i]))
      fail('the pairs and structure columns disagree');
    records.push({ id: fields.id!, family, sequence, partners });
  }
  return records;
}

/** Records from `.ct`-style structures whose ids are ArchiveII file names (a folder of .ct files). */
export function archiveIIFromStructures(
  structures: readonly SecondaryStructure[],
  opts: { maxLength?: number } = {},
): StructureRecord[] {
  const maxLength = opts.maxLength ?? 512;
  return structures
    .filter((s) => s.sequence.length <= maxLength)
    .map((s) => ({ ...s, sequence: s.sequence.toUpperCase(), family: archiveIIFamily(s.id) }));
}

export interface FamilySplit {
  testFamily: string;
  train: StructureRecord[];
  /** Held out from the training families, for threshold tuning and early stopping. */
  validation: StructureRecord[];
  test: StructureRecord[];
  /** Training-family sequences dropped because the same sequence is in the test family. */
  droppedDuplicates: number;
}

/**
 * Leave one family out: `test` is the family, the other families are shuffled (seeded) and a
 * `validationFraction` of them held out for validation. A training sequence identical to a test
 * sequence is dropped, so the test family is unseen.
 */
export function leaveOneFamilyOut(
  records: readonly StructureRecord[],
  testFamily: string,
  opts: { validationFraction?: number; seed?: number } = {},
): FamilySplit {
  const fraction = opts.validationFraction ?? 0.05;
  if (!(fraction >= 0 && fraction < 1))
    throw new RangeError(`leaveOneFamilyOut: validationFraction must be in [0, 1), got ${fraction}`);
  const families = [...new Set(records.map((r) => r.family))].sort();
  if (!families.includes(testFamily))
    throw new RangeError(`leaveOneFamilyOut: no family "${testFamily}" (families: ${families.join(', ')})`);
  const test = records.filter((r) => r.family === testFamily);
  const testSequences = new Set(test.map((r) => r.sequence));
  const others = records.filter((r) => r.family !== testFamily);
  const kept = others.filter((r) => !testSequences.has(r.sequence));
  const shuffled = seededRandom(opts.seed ?? 0).shuffle([...kept]);
  const validationCount = Math.round(fraction * shuffled.length);
  return {
    testFamily,
    validation: shuffled.slice(0, validationCount),
    train: shuffled.slice(validationCount),
    test,
    droppedDuplicates: others.length - kept.length,
  };
}

/** The 13 nRC classes in the data set's README order; a label's index is its class id. */
export const NRC_CLASSES = [
  '5S_rRNA',
  '5_8S_rRNA',
  'tRNA',
  'ribozyme',
  'CD-box',
  'miRNA',
  'Intron_gpI',
  'Intron_gpII',
  'HACA-box',
  'riboswitch',
  'leader',
  'scaRNA',
  'IRES',
] as const;

export interface LabelledSequence {
  id: string;
  sequence: string;
  label: number;
}

export interface ClassificationDataset {
  classes: readonly string[];
  train: LabelledSequence[];
  validation: LabelledSequence[];
  test: LabelledSequence[];
  /** Test sequences dropped because the same sequence is in train (0 unless asked). */
  droppedDuplicates: number;
}

/**
 * nRC from the rows of `nrc_13class.csv` (id, label, split, sequence). Validation is a seeded
 * `validationFraction` of train. `dropTestDuplicates` removes the test sequences that occur
 * verbatim in train (347 in the published split), for a clean held-out estimate.
 */
export function nrcDataset(
  rows: readonly CsvRow[],
  opts: { dropTestDuplicates?: boolean; validationFraction?: number; seed?: number; source?: string } = {},
): ClassificationDataset {
  const source = opts.source ?? 'nrc_13class.csv';
  requireColumns(rows[0], ['id', 'label', 'split', 'sequence'], source);
  const fraction = opts.validationFraction ?? 0.1;
  if (!(fraction >= 0 && fraction < 1))
    throw new RangeError(`nrcDataset: validationFraction must be in [0, 1), got ${fraction}`);
  const classOf = new Map<string, number>(NRC_CLASSES.map((c, i) => [c, i]));
  const trainAll: LabelledSequence[] = [];
  let test: LabelledSequence[] = [];
  for (const { fields, lineNumber } of rows) {
    const label = classOf.get(fields.label!);
    if (label === undefined)
      throw new Error(
        `${source} line ${lineNumber}: unknown class "${fields.label}" (classes: ${NRC_CLASSES.join(', ')})`,
      );
    if (fields.sequence === '') throw new Error(`${source} line ${lineNumber}: empty sequence`);
    const item = { id: fields.id!, sequence: fields.sequence!.toUpperCase(), label };
    if (fields.split === 'train') trainAll.push(item);
    else if (fields.split === 'test') test.push(item);
    else throw new Error(`${source} line ${lineNumber}: split must be train or test, got "${fields.split}"`);
  }
  let droppedDuplicates = 0;
  if (opts.dropTestDuplicates) {
    const seen = new Set(trainAll.map((r) => r.sequence));
    const kept = test.filter((r) => !seen.has(r.sequence));
    droppedDuplicates = test.length - kept.length;
    test = kept;
  }
  const shuffled = seededRandom(opts.seed ?? 0).shuffle([...trainAll]);
  const validationCount = Math.round(fraction * shuffled.length);
  return {
    classes: NRC_CLASSES,
    validation: shuffled.slice(0, validationCount),
    train: shuffled.slice(validationCount),
    test,
    droppedDuplicates,
  };
}

export interface ValuedSequence {
  id: string;
  sequence: string;
  value: number;
}

export interface RegressionDataset {
  train: ValuedSequence[];
  validation: ValuedSequence[];
  test: ValuedSequence[];
}

export interface RegressionCsvOptions {
  sequenceColumn?: string;
  valueColumn?: string;
  /** Column with train / validation / test; when absent from the file, a seeded split is drawn. */
  splitColumn?: string;
  /** Fractions of the seeded split (default 0.1 each). */
  validationFraction?: number;
  testFraction?: number;
  seed?: number;
  source?: string;
}

const SPLIT_NAMES: Record<string, keyof RegressionDataset> = {
  train: 'train',
  validation: 'validation',
  valid: 'validation',
  val: 'validation',
  test: 'test',
};

/**
 * A sequence → value data set from CSV rows. Values must be finite numbers; the split comes from
 * the split column when the file has one, else from a seeded shuffle.
 */
export function regressionDataset(rows: readonly CsvRow[], opts: RegressionCsvOptions = {}): RegressionDataset {
  const source = opts.source ?? 'regression CSV';
  const sequenceColumn = opts.sequenceColumn ?? 'sequence';
  const valueColumn = opts.valueColumn ?? 'value';
  const splitColumn = opts.splitColumn ?? 'split';
  requireColumns(rows[0], [sequenceColumn, valueColumn], source);
  const hasSplit = splitColumn in rows[0]!.fields;
  const out: RegressionDataset = { train: [], validation: [], test: [] };
  const all: ValuedSequence[] = [];
  for (const { fields, lineNumber } of rows) {
    const sequence = fields[sequenceColumn]!.trim().toUpperCase();
    const value = Number(fields[valueColumn]!.trim() === '' ? NaN : fields[valueColumn]);
    if (sequence === '') throw new Error(`${source} line ${lineNumber}: empty sequence`);
    if (!Number.isFinite(value))
      throw new Error(`${source} line ${lineNumber}: ${valueColumn} "${fields[valueColumn]}" is not a finite number`);
    const item = { id: fields.id ?? `line${lineNumber}`, sequence, value };
    if (!hasSplit) {
      all.push(item);
      continue;
    }
    const split = SPLIT_NAMES[fields[splitColumn]!.trim().toLowerCase()];
    if (!split)
      throw new Error(
        `${source} line ${lineNumber}: ${splitColumn} must be train, validation or test, got "${fields[splitColumn]}"`,
      );
    out[split].push(item);
  }
  if (!hasSplit) {
    const validation = opts.validationFraction ?? 0.1;
    const test = opts.testFraction ?? 0.1;
    if (!(validation >= 0 && test >= 0 && validation + test < 1))
      throw new RangeError(`regressionDataset: need validation, test fractions ≥ 0 with a sum < 1`);
    const shuffled = seededRandom(opts.seed ?? 0).shuffle(all);
    const nValidation = Math.round(validation * shuffled.length);
    const nTest = Math.round(test * shuffled.length);
    out.validation = shuffled.slice(0, nValidation);
    out.test = shuffled.slice(nValidation, nValidation + nTest);
    out.train = shuffled.slice(nValidation + nTest);
  }
  if (out.train.length < 2)
    throw new Error(`${source}: ${out.train.length} training rows; at least 2 are needed to fit the target scale`);
  return out;
}

/** Target standardisation (mean, population std) fitted on training values only. */
export interface Standardizer {
  mean: number;
  std: number;
}

export function fitStandardizer(values: readonly number[]): Standardizer {
  if (values.length === 0) throw new RangeError('fitStandardizer: no values');
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
  if (!(std > 0))
    throw new RangeError(`fitStandardizer: all ${values.length} training targets equal ${mean}; nothing to learn`);
  return { mean, std };
}

export const standardize = (s: Standardizer, value: number): number => (value - s.mean) / s.std;
export const unstandardize = (s: Standardizer, z: number): number => z * s.std + s.mean;
