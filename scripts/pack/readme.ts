/**
 * README examples as tests: fenced blocks, and the output each `console.log(…); // comment` line
 * promises. The comment is the printed line with runs of spaces collapsed; `…` stands for any text.
 */
export interface ReadmeBlock {
  /** The fence's language tag ('' when none). */
  lang: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
}

export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) throw new Error(`unclosed code fence at line ${i + 1}`);
    blocks.push({ lang: open[1]!, code: lines.slice(i + 1, end).join('\n') + '\n', line: i + 1 });
    i = end;
  }
  return blocks;
}

/** The comment after each single-line `console.log(…);`, in order. */
export function expectedOutputs(code: string): string[] {
  return code
    .split('\n')
    .map((line) => /\bconsole\.log\(.*\);\s*\/\/\s?(.*)$/.exec(line)?.[1]?.trim())
    .filter((comment): comment is string => comment !== undefined);
}

const squash = (text: string) => text.replace(/\s+/g, ' ').trim();

export function matchesExpected(printed: string, expected: string): boolean {
  const pattern = squash(expected)
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${pattern}$`).test(squash(printed));
}
