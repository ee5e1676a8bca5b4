/**
 * The rnagrad command as a user meets it: every --help, bad invocations (each one line on stderr,
 * a non-zero exit, no stack trace), and a tiny train → Ctrl-C → resume → generate / score / embed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '@rnagrad/tensor';
import '@rnagrad/autograd';
import { HelmModel, decodeSafetensors, helmTask, train } from '@rnagrad/models';
import { saveCheckpointDir } from '@rnagrad/models/node';

/** The installed command's entry: runs the sources through tsx inside the repository. */
const bin = fileURLToPath(new URL('../bin/rnagrad.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'rnagrad-cli-'));
const at = (name: string) => join(root, name);

/** Dawn's notices while it looks for a hardware Vulkan driver; not ours. */
const DAWN_NOISE = /vkCreateInstance|VK_ERROR|CheckVkSuccessImpl|^\s*$/;

function cli(args: string[]): { code: number | null; stdout: string; stderr: string[] } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.split('\n').filter((l) => !DAWN_NOISE.test(l)) };
}

const genes = [
  ['thrL', 'ATGAAACGCATTAGCACCACCATTACCACCACCATCACCATTACCACAGGTAACGGTGCGGGCTGA'],
  ['geneB', 'ATGGCTGCTAAAGAAGTTCTGCGTGGCATCGAAGCGTAA'],
  ['geneC', 'ATGTCTGAACTGCGTCAGCTGTTCGAAGGTAAACTGTGA'],
  ['geneD', 'ATGCGTCTGGCTTTCAAAGAAGCGGGTGCTCTGTAG'],
];
writeFileSync(at('genes.fasta'), genes.map(([n, s]) => `>${n}\n${s}\n`).join(''));
// The CSV adds a gene longer than any training window reaches (38 tokens): scoring it warns.
const longGene = `ATG${'GCTAAAGAA'.repeat(11)}CTGTAA`;
writeFileSync(at('genes.csv'), `id,cds\n${[...genes, ['longE', longGene]].map(([n, s]) => `${n},${s}`).join('\n')}\n`);
writeFileSync(at('not-fasta.fasta'), 'hello world\n>x\nACGT\n');
writeFileSync(at('letters.fasta'), '>x\nATGXYZ\n');
writeFileSync(at('binary.txt'), Buffer.from([0, 1, 2, 3, 0, 255]));
writeFileSync(at('empty.fasta'), '');
writeFileSync(at('rna.fasta'), '>a\nACGUAGCU\n>b\nGGAUCCNRA\n');
writeFileSync(at('rna-bad.fasta'), '>a\nACGU\n>b\nGGAZC\n');
const RINALMO_OFFICIAL = fileURLToPath(
  new URL('../../models/fixtures/rinalmo_tiny_official.safetensors', import.meta.url),
);

// Tiny checkpoints of both objectives, written without the CLI.
await T.init({ quiet: true });
for (const objective of ['mlm', 'clm'] as const) {
  T.manualSeed(1);
  const model = new HelmModel({ dModel: 16, layers: 1, heads: 2, dFF: 32, maxPositions: 40, objective });
  const corpus = { train: [Int32Array.from([20, 45, 54])], validation: [], names: { train: ['a'], validation: [] } };
  const task = helmTask(model, corpus, { batchSize: 2, length: 8 });
  await train(
    task,
    { steps: 0, evalEvery: 0 },
    {
      onSnapshot: async (s) =>
        void (await saveCheckpointDir(at(objective), model, s, { trainedPositions: 8, run: { command: 'train' } })),
    },
  );
  model.dispose();
}
mkdirSync(at('corrupt/checkpoint-000001'), { recursive: true });
writeFileSync(at('corrupt/checkpoint-000001/config.json'), '{"format": "rnagrad.checkpoint", "version": 1, "model": ');

const COMMANDS = ['train', 'finetune', 'generate', 'score', 'embed', 'bench', 'info'];

test('rnagrad --help lists every command; each command has --help with an example', () => {
  const top = cli(['--help']);
  assert.is(top.code, 0);
  for (const c of COMMANDS) assert.match(top.stdout, new RegExp(`\\n  ${c} `));
  for (const c of COMMANDS) {
    const r = cli([c, '--help']);
    assert.is(r.code, 0, `${c} --help exit code`);
    assert.match(r.stdout, new RegExp(`^usage: rnagrad ${c}`));
    assert.match(r.stdout, /\nexamples?:\n {2}rnagrad /);
  }
});

const BAD: [string[], RegExp][] = [
  [['frobnicate'], /^rnagrad: unknown command "frobnicate"/],
  [['train', '--batch', '0'], /^rnagrad train: --batch must be an integer in 1\.\.4096, got "0"$/],
  [['train', '--steps', '2.5'], /--steps must be an integer ≥ 0, got "2\.5"/],
  [['train', '--steps', '-3'], /--steps must be an integer ≥ 0, got "-3"/],
  [['train', '--lr', 'fast'], /--lr must be a number > 0/],
  [['train', '--lr', '0'], /--lr must be a number > 0/],
  [['train', '--bogus', '1'], /unknown flag --bogus/],
  [['train', '-x'], /unknown option -x/],
  [['train', '--loss', 'mse'], /--loss must be one of hxe, xe, got "mse"/],
  [['train', '--steps'], /--steps needs a value/],
  [['train', '--steps', '1', '--steps', '2'], /--steps is given twice/],
  [['train', 'helm-xyz'], /unknown model "helm-xyz"/],
  [['train', '--d', '30', '--heads', '4'], /--heads 4 does not divide --d 30/],
  [['train', '--data', 'missing.fasta'], /--data: no such file: missing\.fasta/],
  [['train', '--resume', 'nowhere'], /--resume: nowhere: no such checkpoint or run folder/],
  [['train', '--resume', 'clm', '--lr', '1'], /--lr cannot change when resuming/],
  [['finetune', '--data', 'genes.fasta'], /--from DIR is required/],
  [['generate'], /--model DIR is required/],
  [['generate', '--model', 'nowhere'], /--model: nowhere: no such checkpoint or run folder/],
  [['generate', '--model', 'genes.fasta'], /a checkpoint is a folder/],
  [['generate', '--model', 'mlm'], /generate needs a causal model \(helm-clm\); .* is a masked LM/],
  [['generate', '--model', 'corrupt'], /corrupt checkpoint: not valid JSON/],
  [['generate', '--model', 'clm', '--num', '0'], /--num must be an integer in 1\.\.10000/],
  [['generate', '--model', 'clm', '--top-p', '0'], /--top-p must be a number > 0 and ≤ 1/],
  [['generate', '--model', 'clm', '--prompt', 'ATGA'], /--prompt has 4 nucleotides, not whole codons/],
  [['generate', '--model', 'clm', '--prompt', 'ATGNNN'], /--prompt must be nucleotides/],
  [['score', '--model', 'clm'], /--input FILE is required/],
  [['score', '--model', 'clm', '--input', 'not-fasta.fasta'], /not-fasta\.fasta: not FASTA/],
  [['score', '--model', 'clm', '--input', 'letters.fasta'], /holds "X", not a nucleotide/],
  [['score', '--model', 'clm', '--input', 'binary.txt'], /binary\.txt: a binary file/],
  [['score', '--model', 'clm', '--input', 'empty.fasta'], /empty\.fasta: no sequences found/],
  [
    ['score', '--model', 'clm', '--input', 'genes.csv'],
    /no column "sequence" \(columns: id, cds\); choose one with --column/,
  ],
  [
    ['score', '--model', 'clm', '--input', 'genes.fasta', '--batch', '-1'],
    /--batch must be an integer in 1\.\.4096, got "-1"/,
  ],
  [['embed', '--model', 'clm', '--input', 'genes.fasta', '--output', 'x.npy'], /--output should end in \.safetensors/],
  [
    ['embed', '--model', 'clm', '--input', 'genes.fasta', '--output', 'x.safetensors', '--layer', '5'],
    /--layer must be in -1\.\.1/,
  ],
  [['bench', '--size', '1'], /--size must be an integer in 16\.\.8192/],
  [['train', 'rinalmo', '--config', 'huge'], /--config must be one of nano, micro, mega, giga, tiny, pico, got "huge"/],
  [['train', 'rinalmo', '--loss', 'xe'], /--loss does not apply to rinalmo/],
  [
    [
      'embed',
      '--model',
      'rinalmo',
      '--weights',
      'missing.safetensors',
      '--fasta',
      'rna.fasta',
      '--out',
      'e.safetensors',
    ],
    /--weights: no such file: missing\.safetensors/,
  ],
  [
    [
      'embed',
      '--model',
      'rinalmo',
      '--weights',
      RINALMO_OFFICIAL,
      '--heads',
      '4',
      '--fasta',
      'rna-bad.fasta',
      '--out',
      'e.safetensors',
    ],
    /rna-bad\.fasta: sequence 2 \(b\) holds "Z" at position 3.*not a nucleotide/,
  ],
  [
    [
      'embed',
      '--model',
      'rinalmo',
      '--weights',
      RINALMO_OFFICIAL,
      '--heads',
      '4',
      '--layout',
      'multimolecule',
      '--fasta',
      'rna.fasta',
      '--out',
      'e.safetensors',
    ],
    /multimolecule/,
  ],
  [
    ['embed', '--model', 'rinalmo', '--fasta', 'rna.fasta', '--out', 'e.safetensors'],
    /--model rinalmo needs --weights/,
  ],
];

test(`${BAD.length} bad invocations: one line on stderr, exit code 2, no stack trace`, () => {
  for (const [args, pattern] of BAD) {
    const r = cli(args);
    const what = `rnagrad ${args.join(' ')}`;
    assert.is(r.code, 2, `${what}: exit code (stderr: ${r.stderr.join(' | ')})`);
    assert.is(r.stderr.length, 1, `${what}: one line, got:\n${r.stderr.join('\n')}`);
    assert.match(r.stderr[0]!, pattern, what);
    assert.not.match(r.stderr[0]!, /\n\s+at /);
  }
});

test(
  'a tiny run: train (plain progress lines, compiling notice, JSON lines), Ctrl-C → checkpoint, resume, then ' +
    'generate / score / embed',
  async () => {
    const common = [
      '--d',
      '16',
      '--layers',
      '1',
      '--heads',
      '2',
      '--length',
      '8',
      '--batch',
      '2',
      '--max-positions',
      '40',
      '--data',
      'genes.fasta',
      '--eval-every',
      '0',
      '--log-every',
      '1',
    ];
    // Ctrl-C once the first step is done: a checkpoint, exit code 130.
    const proc = spawn(process.execPath, [bin, 'train', 'helm-clm', '--steps', '200', '--out', 'run', ...common], {
      cwd: root,
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d));
    proc.stderr.on('data', (d: Buffer) => {
      out += d;
      if (/step +2\/200/.test(out) && !proc.killed) proc.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    assert.is(code, 130, out);
    // Shaders compile ahead of the first step, with a count that reaches its total.
    const total = /compiling shaders \(0\/(\d+)\)/.exec(out)?.[1];
    assert.ok(total && Number(total) > 10, out);
    assert.match(out, new RegExp(`compiling shaders \\(${total}/${total}\\)\ncompiled ${total} GPU pipelines in`));
    assert.ok(out.indexOf('compiled ') < out.search(/step +1\/200/), 'compiled before the first step');
    assert.match(out, /Ctrl-C: stopping after this step/);
    assert.match(out, /continue with: rnagrad train --resume run/);
    const stopped = readdirSync(at('run')).filter((n) => n.startsWith('checkpoint-'));
    assert.is(stopped.length, 1);
    assert.match(readFileSync(join(at('run'), stopped[0]!, 'state.json'), 'utf8'), /"reason": "interrupt"/);

    // Resume to a few steps more.
    const resumed = cli(['train', '--resume', 'run', '--steps', `${Number(stopped[0]!.slice(11)) + 2}`]);
    assert.is(resumed.code, 0, resumed.stderr.join('\n'));
    assert.match(resumed.stdout, /resuming from .*checkpoint-0000\d\d at step \d+/);
    const lines = readFileSync(at('run/metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; step: number });
    assert.equal(
      lines.map((l) => l.step),
      Array.from({ length: lines.length }, (_, i) => i + 1),
      'metrics.jsonl: steps 1..n once each',
    );
    assert.ok(existsSync(at('run/loss.svg')));

    const gen = cli([
      'generate',
      '--model',
      'run',
      '--num',
      '3',
      '--max-codons',
      '6',
      '--prompt',
      'ATG',
      '--format',
      'json',
      '--seed',
      '4',
    ]);
    assert.is(gen.code, 0, gen.stderr.join('\n'));
    const seqs = gen.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { codons: string[]; nucleotides: string; protein: string });
    assert.is(seqs.length, 3);
    for (const s of seqs) {
      assert.is(s.codons[0], 'ATG');
      assert.ok(s.codons.length <= 6 && /^([ACGT]{3})+$/.test(s.nucleotides) && s.protein.startsWith('M'));
    }

    const scored = cli(['score', '--model', 'run', '--input', 'genes.csv', '--column', 'cds']);
    assert.is(scored.code, 0, scored.stderr.join('\n'));
    const rows = scored.stdout.trim().split('\n');
    assert.is(rows[0], 'name\tcodons\tscored_tokens\tlog_likelihood\tmean_per_token');
    assert.equal(
      rows.slice(1).map((r) => r.split('\t')[0]),
      ['thrL', 'geneB', 'geneC', 'geneD', 'longE'],
    );
    assert.ok(rows.slice(1).every((r) => Number(r.split('\t')[3]) < 0));
    assert.ok(
      scored.stderr.some((l) =>
        new RegExp(
          '^warning: [12] of 5 sequences are longer than \\d+ tokens, ' +
            'the furthest position this model was trained on',
        ).test(l),
      ),
      'longE is past the trained positions',
    );

    const embedded = cli([
      'embed',
      '--model',
      'run',
      '--input',
      'genes.fasta',
      '--output',
      'e.safetensors',
      '--per-token',
      '--layer',
      '0',
    ]);
    assert.is(embedded.code, 0, embedded.stderr.join('\n'));
    const file = decodeSafetensors(readFileSync(at('e.safetensors')), { device: 'cpu' });
    assert.equal(file.tensors.get('mean')!.shape, [4, 16]);
    assert.equal(file.tensors.get('tokens.1')!.shape, [15, 16]);
    assert.equal(JSON.parse(file.metadata.names!), ['thrL', 'geneB', 'geneC', 'geneD']);
    for (const t of file.tensors.values()) t.dispose();
  },
);

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
