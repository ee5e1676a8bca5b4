import { CODON_VOCAB, CODONS, GENETIC_CODE } from './codon.js';
import { seededRandom } from './random.js';
import { type LabelTree, type TreeSpec, treeFromSpec } from './tree.js';

/** Amino-acid groups in HELM's order. Met is absent: ATG only appears under `start_codon`. */
const HELM_AMINO_ACID_ORDER = 'VADEGFLSYCWPHQRITNK';
const START_CODON = 'ATG';
const STOP_CODONS = ['TAA', 'TAG', 'TGA'];

/** HELM's special-token subtrees: a node named like the token (without brackets) above its leaf. */
function specialSubtrees(): TreeSpec[] {
  return ['pad', 'cls', 'eos', 'unk', 'mask', 'distill_token'].map((name) => ({
    label: name,
    children: [`<${name}>`],
  }));
}

/**
 * HELM's codon hierarchy (create_tree.py): `all_tokens` → `codons` → {`start_codon` → ATG,
 * `aa_codons` → 19 amino-acid groups → sense codons, `end_codon` → TAA TAG TGA}, plus one
 * subtree per special token. 100 nodes in pre-order; classes follow {@link CODON_VOCAB}.
 * Synonymous codons are listed in standard-table (T, C, A, G) order, matching HELM.
 */
export function codonTree(): LabelTree {
  const aminoAcidGroups: TreeSpec[] = Array.from(HELM_AMINO_ACID_ORDER, (aminoAcid) => ({
    label: aminoAcid,
    children: Object.keys(GENETIC_CODE).filter((codon) => GENETIC_CODE[codon] === aminoAcid),
  }));
  const codons: TreeSpec = {
    label: 'codons',
    children: [
      { label: 'start_codon', children: [START_CODON] },
      { label: 'aa_codons', children: aminoAcidGroups },
      { label: 'end_codon', children: STOP_CODONS },
    ],
  };
  return treeFromSpec({ label: 'all_tokens', children: [codons, ...specialSubtrees()] }, CODON_VOCAB);
}

/** The 20 one-letter names HELM draws group labels from before merging equal draws. */
const GROUP_LETTERS = 'ACDEFGHIKLMNPQRSTVWY';

/**
 * HELM's `--hierarchy random` ablation (shuffle_and_merge_codons), reproducible from `seed`:
 * 1. shuffle the 64 codons and cut them, front to back, into groups of 1–6 (uniform size, capped
 *    by what is left);
 * 2. the group holding ATG is labelled `start_codon`; groups holding a stop codon (and not ATG)
 *    are labelled `end_codon`; every other group draws a random amino-acid letter;
 * 3. groups with the same label are merged (so `end_codon` gathers all stop groups, and an
 *    amino-acid group may end up with more than 6 codons), then letters are renamed
 *    `random#1`, `random#2`, … in order of first appearance (HELM draws random numbers instead).
 * The groups hang directly under `codons` (there is no `aa_codons` level), and the
 * special-token subtrees are unchanged. Class ids still follow {@link CODON_VOCAB}.
 * The PRNG differs from Python's, so a seed does not reproduce a specific HELM run.
 */
export function randomCodonTree(seed: number): LabelTree {
  const random = seededRandom(seed);
  const shuffled = random.shuffle([...CODONS]);
  const groups = new Map<string, string[]>();
  for (let start = 0; start < shuffled.length;) {
    const size = random.intBetween(1, Math.min(6, shuffled.length - start));
    const group = shuffled.slice(start, start + size);
    start += size;
    let label: string;
    if (group.includes(START_CODON)) label = 'start_codon';
    else if (group.some((codon) => STOP_CODONS.includes(codon))) label = 'end_codon';
    else label = GROUP_LETTERS[random.intBetween(0, GROUP_LETTERS.length - 1)]!;
    groups.set(label, [...(groups.get(label) ?? []), ...group]);
  }
  let renamed = 0;
  const children: TreeSpec[] = [...groups].map(([label, codons]) => ({
    label: label === 'start_codon' || label === 'end_codon' ? label : `random#${++renamed}`,
    children: codons,
  }));
  return treeFromSpec(
    { label: 'all_tokens', children: [{ label: 'codons', children }, ...specialSubtrees()] },
    CODON_VOCAB,
  );
}
