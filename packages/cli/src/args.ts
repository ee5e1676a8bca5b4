/**
 * Flags: declared once per command with their type, range and help text; parsed and validated
 * into typed values. A user mistake is a `UsageError` (one line, exit code 2, no stack trace).
 * A value always follows its flag, so negative numbers work as `--layer -1` as well as `--layer=-1`.
 */
import { existsSync, statSync } from 'node:fs';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

interface Base<V> {
  help: string;
  default?: V;
  /** Placeholder in the help text, e.g. FILE. */
  meta?: string;
}
export type FlagSpec =
  | (Base<number> & { type: 'int'; min?: number; max?: number })
  | (Base<number> & { type: 'number'; min?: number; max?: number; exclusiveMin?: boolean })
  | (Base<string> & { type: 'string' })
  | (Base<string> & { type: 'choice'; choices: readonly string[] })
  | (Base<string> & { type: 'file' })
  | (Base<string> & { type: 'dir' })
  | (Base<boolean> & { type: 'bool' });

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S['type'] extends 'int' | 'number'
  ? number
  : S['type'] extends 'bool'
    ? boolean
    : string;
export type Parsed<S extends FlagSpecs> = {
  [K in keyof S]: S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
} & {
  /** Flags the user typed (not defaults). */
  _given: Set<string>;
  /** Positional arguments. */
  _positional: string[];
};

export interface CommandSpec<S extends FlagSpecs> {
  name: string;
  summary: string;
  usage: string;
  flags: S;
  examples: string[];
  /** Positional arguments allowed (default 0). */
  positional?: { max: number; meta: string };
  notes?: string[];
}

function describe(spec: FlagSpec): string {
  switch (spec.type) {
    case 'int':
      return spec.min !== undefined && spec.max !== undefined
        ? `an integer in ${spec.min}..${spec.max}`
        : spec.min !== undefined
          ? `an integer ≥ ${spec.min}`
          : 'an integer';
    case 'number':
      return spec.min !== undefined
        ? `a number ${spec.exclusiveMin ? '>' : '≥'} ${spec.min}${spec.max !== undefined ? ` and ≤ ${spec.max}` : ''}`
        : 'a number';
    case 'choice':
      return `one of ${spec.choices.join(', ')}`;
    default:
      return spec.type;
  }
}

function convert(name: string, spec: FlagSpec, raw: string): number | string | boolean {
  const bad = (): never => {
    throw new UsageError(`--${name} must be ${describe(spec)}, got "${raw}"`);
  };
  switch (spec.type) {
    case 'int': {
      if (!/^[+-]?\d+$/.test(raw.trim())) bad();
      const v = Number(raw);
      if (
        !Number.isSafeInteger(v) ||
        (spec.min !== undefined && v < spec.min) ||
        (spec.max !== undefined && v > spec.max)
      )
        bad();
      return v;
    }
    case 'number': {
      const v = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(v)) bad();
      if (spec.min !== undefined && (spec.exclusiveMin ? v <= spec.min : v < spec.min)) bad();
      if (spec.max !== undefined && v > spec.max) bad();
      return v;
    }
    case 'choice':
      if (!spec.choices.includes(raw)) bad();
      return raw;
    case 'file':
      if (!existsSync(raw)) throw new UsageError(`--${name}: no such file: ${raw}`);
      if (!statSync(raw).isFile()) throw new UsageError(`--${name}: ${raw} is not a file`);
      return raw;
    case 'dir':
      if (!existsSync(raw)) throw new UsageError(`--${name}: no such folder: ${raw}`);
      if (!statSync(raw).isDirectory()) throw new UsageError(`--${name}: ${raw} is not a folder`);
      return raw;
    case 'bool':
      if (!['true', 'false', '1', '0', 'yes', 'no'].includes(raw)) bad();
      return ['true', '1', 'yes'].includes(raw);
    default:
      return raw;
  }
}

/** Parses argv against the command's flags; `--help` is handled by the caller before this. */
export function parseFlags<S extends FlagSpecs>(cmd: CommandSpec<S>, argv: readonly string[]): Parsed<S> {
  const out: Record<string, unknown> = {};
  const given = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      if (arg.startsWith('-') && arg !== '-' && !/^-\d/.test(arg))
        throw new UsageError(`unknown option ${arg} (flags start with --; see rnagrad ${cmd.name} --help)`);
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    let spec = cmd.flags[name];
    if (!spec && name.startsWith('no-') && cmd.flags[name.slice(3)]?.type === 'bool' && eq < 0) {
      name = name.slice(3);
      spec = cmd.flags[name];
      out[name] = false;
      given.add(name);
      continue;
    }
    if (!spec) throw new UsageError(`unknown flag --${name} (see rnagrad ${cmd.name} --help)`);
    if (given.has(name)) throw new UsageError(`--${name} is given twice`);
    given.add(name);
    if (spec.type === 'bool' && eq < 0) {
      out[name] = true;
      continue;
    }
    const raw = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value (${describe(spec)})`);
    out[name] = convert(name, spec, raw);
  }
  const max = cmd.positional?.max ?? 0;
  if (positional.length > max) {
    throw new UsageError(
      max === 0
        ? `unexpected argument "${positional[0]}" (see rnagrad ${cmd.name} --help)`
        : `too many arguments: ${positional.join(' ')}`,
    );
  }
  for (const [name, spec] of Object.entries(cmd.flags))
    if (!(name in out) && spec.default !== undefined) out[name] = spec.default;
  return Object.assign(out, { _given: given, _positional: positional }) as Parsed<S>;
}

/** The `--help` text: usage, summary, flags with their defaults, examples. */
export function helpText<S extends FlagSpecs>(cmd: CommandSpec<S>): string {
  const rows = Object.entries(cmd.flags).map(([name, spec]) => {
    const meta =
      spec.meta ??
      (spec.type === 'choice'
        ? spec.choices.join('|')
        : spec.type === 'int' || spec.type === 'number'
          ? 'N'
          : spec.type.toUpperCase());
    const left = `--${name}${spec.type === 'bool' ? '' : ` ${meta}`}`;
    const def = spec.default !== undefined && spec.default !== false ? ` (default ${String(spec.default)})` : '';
    return [left, `${spec.help}${def}`] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  const lines = [`usage: ${cmd.usage}`, '', cmd.summary, '', 'options:'];
  for (const [left, right] of rows)
    lines.push(left.length >= width ? `  ${left}\n  ${' '.repeat(width)}${right}` : `  ${left.padEnd(width)}${right}`);
  lines.push(`  ${'--help'.padEnd(width)}this text`);
  if (cmd.notes?.length) lines.push('', ...cmd.notes);
  lines.push('', cmd.examples.length > 1 ? 'examples:' : 'example:', ...cmd.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}
