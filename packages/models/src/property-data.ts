/**
 * Downstream mRNA property data sets as codon ids with train/validation/test splits: the CodonBERT
 * regression benchmarks (mRFP expression, Tc-riboswitches, CoV vaccine degradation, MLOS — CSV with
 * Sequence, Value, Split) and the E. coli expression classes of Boel et al. as encoded by MPEPE (CSV
 * with sequence, label, cv_fold). Parsers take the file's text, so they run in a browser too; the
 * Node entry reads paths. The files themselves are never bundled (their licences forbid it).
 */
import { CodonTokenizer, parseCsv } from '@rnagrad/tokenizers';

export interface PropertyExample {
  /** Codon ids (no <cls>/<eos>); a trailing 1–2 nucleotides are dropped, as HELM and CodonBERT do. */
  codons: Int32Array;
  /** The regression value, or the class id. */
  target: number;
}

export interface PropertyDataset {
  name: string;
  task: 'regression' | 'classification';
  /** Classes of a classification task (2 for E. coli high/low). */
  classes?: number;
  train: PropertyExample[];
  validation: PropertyExample[];
  test: PropertyExample[];
}

/** CodonBERT benchmark files under ../shared/data/codonbert_benchmarks, by short name. */
export const CODONBERT_FILES = {
  mrfp: 'mRFP_Expression.csv',
  tc: 'Tc-Riboswitches.csv',
  cov: 'CoV_Vaccine_Degradation.csv',
  mlos: 'MLOS_with_split.csv',
} as const;
export type CodonbertDatasetName = keyof typeof CODONBERT_FILES;

export const ECOLI_EXPRESSION_FILE = 'ecoli_boel2016_mpepe_binary.csv';

const NUCLEOTIDES = /^[ACGTUacgtu]+$/;

function columnsPresent(source: string, columns: string[], needed: string[]): void {
  const missing = needed.filter((c) => !columns.includes(c));
  if (missing.length)
    throw new Error(
      `${source}: missing column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')} ` +
        `(columns: ${columns.join(', ')})`,
    );
}

/** Codon ids of one record; names the line and the first bad letter of a sequence that is not ACGU/T. */
function codonsOf(tokenizer: CodonTokenizer, sequence: string, where: string): Int32Array {
  const trimmed = sequence.trim();
  if (trimmed.length < 3)
    throw new Error(`${where}: the sequence has ${trimmed.length} nucleotides, fewer than one codon`);
  if (!NUCLEOTIDES.test(trimmed)) {
    const at = [...trimmed].findIndex((c) => !'ACGTUacgtu'.includes(c));
    throw new Error(
      `${where}: letter '${trimmed[at]}' at nucleotide ${at + 1} is not A, C, G or U (a codon containing it has no id)`,
    );
  }
  return tokenizer.encode(trimmed, { addSpecialTokens: false });
}

function numberOf(text: string, where: string, column: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value))
    throw new Error(`${where}: column "${column}" is not a finite number: '${text}'`);
  return value;
}

function checkSplits(data: PropertyDataset, source: string): PropertyDataset {
  for (const split of ['train', 'validation', 'test'] as const) {
    if (data[split].length === 0) throw new Error(`${source}: the ${split} split is empty`);
  }
  return data;
}

/**
 * A CodonBERT benchmark CSV (columns Sequence, Value, Split with train/val/test) as a regression
 * data set with its given split.
 */
export function codonbertDatasetFromCsv(text: string, opts: { name: string; sourceName?: string }): PropertyDataset {
  const source = opts.sourceName ?? opts.name;
  const { columns, rows } = parseCsv(text, { sourceName: source });
  columnsPresent(source, columns, ['Sequence', 'Value', 'Split']);
  const tokenizer = new CodonTokenizer({ remainder: 'drop' });
  const data: PropertyDataset = { name: opts.name, task: 'regression', train: [], validation: [], test: [] };
  const splits = {
    train: 'train',
    val: 'validation',
    valid: 'validation',
    validation: 'validation',
    test: 'test',
  } as const;
  for (const row of rows) {
    const where = `${source} line ${row.lineNumber}`;
    const split = splits[row.fields.Split!.trim().toLowerCase() as keyof typeof splits];
    if (!split) throw new Error(`${where}: Split '${row.fields.Split}' is not train, val or test`);
    data[split].push({
      codons: codonsOf(tokenizer, row.fields.Sequence!, where),
      target: numberOf(row.fields.Value!, where, 'Value'),
    });
  }
  return checkSplits(data, source);
}

/**
 * The E. coli expression CSV (columns sequence, label 0/1, cv_fold 1–10) as binary classification:
 * fold `testFold` is the test set, fold `validationFold` (default: the next one) the validation set,
 * the other eight train.
 */
export function ecoliExpressionFromCsv(
  text: string,
  opts: { testFold: number; validationFold?: number; sourceName?: string },
): PropertyDataset {
  const source = opts.sourceName ?? ECOLI_EXPRESSION_FILE;
  const { testFold } = opts;
  const validationFold = opts.validationFold ?? (testFold % 10) + 1;
  for (const [name, fold] of [
    ['testFold', testFold],
    ['validationFold', validationFold],
  ] as const) {
    if (!Number.isInteger(fold) || fold < 1 || fold > 10)
      throw new RangeError(`ecoliExpressionFromCsv: ${name} must be an integer in 1..10, got ${fold}`);
  }
  if (testFold === validationFold)
    throw new RangeError(`ecoliExpressionFromCsv: the test and validation folds are both ${testFold}`);
  const { columns, rows } = parseCsv(text, { sourceName: source });
  columnsPresent(source, columns, ['sequence', 'label', 'cv_fold']);
  const tokenizer = new CodonTokenizer({ remainder: 'drop' });
  const data: PropertyDataset = {
    name: `ecoli-fold${testFold}`,
    task: 'classification',
    classes: 2,
    train: [],
    validation: [],
    test: [],
  };
  for (const row of rows) {
    const where = `${source} line ${row.lineNumber}`;
    const label = numberOf(row.fields.label!, where, 'label');
    if (label !== 0 && label !== 1) throw new Error(`${where}: label must be 0 or 1, got ${row.fields.label}`);
    const fold = numberOf(row.fields.cv_fold!, where, 'cv_fold');
    if (!Number.isInteger(fold) || fold < 1 || fold > 10)
      throw new Error(`${where}: cv_fold must be an integer in 1..10, got ${row.fields.cv_fold}`);
    const split = fold === testFold ? 'test' : fold === validationFold ? 'validation' : 'train';
    data[split].push({ codons: codonsOf(tokenizer, row.fields.sequence!, where), target: label });
  }
  return checkSplits(data, source);
}
