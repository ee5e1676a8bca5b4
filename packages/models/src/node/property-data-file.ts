/** Node: the downstream property data sets read from the paths a user gives (never bundled). */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CODONBERT_FILES,
  type CodonbertDatasetName,
  ECOLI_EXPRESSION_FILE,
  type PropertyDataset,
  codonbertDatasetFromCsv,
  ecoliExpressionFromCsv,
} from '../property-data.js';

/** The file itself, or `file` inside `path` when it is a folder; a clear error when neither exists. */
async function readDataFile(path: string, file: string): Promise<{ text: string; source: string }> {
  let source = path;
  try {
    if ((await stat(path)).isDirectory()) source = join(path, file);
    return { text: await readFile(source, 'utf8'), source };
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new Error(`${source}: cannot read the data set: ${reason}`);
  }
}

/**
 * A CodonBERT benchmark (mrfp, tc, cov, mlos) from its CSV or from the folder holding it
 * (e.g. ../shared/data/codonbert_benchmarks; MLOS reads MLOS_with_split.csv).
 */
export async function loadCodonbertDataset(name: CodonbertDatasetName, path: string): Promise<PropertyDataset> {
  const file = CODONBERT_FILES[name];
  if (!file)
    throw new RangeError(
      `unknown CodonBERT data set "${String(name)}" (known: ${Object.keys(CODONBERT_FILES).join(', ')})`,
    );
  const { text, source } = await readDataFile(path, file);
  return codonbertDatasetFromCsv(text, { name, sourceName: source });
}

/** The E. coli expression classes (file or its folder, ../shared/data/ecoli_expression_mpepe) with one fold as test. */
export async function loadEcoliExpression(
  path: string,
  opts: { testFold: number; validationFold?: number },
): Promise<PropertyDataset> {
  const { text, source } = await readDataFile(path, ECOLI_EXPRESSION_FILE);
  return ecoliExpressionFromCsv(text, { ...opts, sourceName: source });
}
