// The command line of every Phoenix script, declared in one place: its flags,
// its positional arguments (or its subcommands and theirs) and its usage
// text. minimist reads the words; this module checks them against the
// declaration. A script gets for free:
//   --help / -h     the usage on stdout, exit 0 (runMain in main.mts prints it);
//   --dry-run       when it declares `dryRun: true`;
//   usage errors    an unknown flag, a missing or malformed positional, an
//                   unknown subcommand: one line, the usage line as the hint,
//                   and the exit status of the bash original (`usageExitCode`).
//
// minimist's own habits are tamed here once: every positional and every
// string flag stays a string (guest ids such as `0101` are not numbers), `--`
// ends the flags (its words come back in `rest` when the script declares
// `passthrough`, else they are positionals), `--no-x` sets a boolean flag to
// false, and a string flag without a value is refused.

import minimist from 'minimist';
import { UsageError } from './errors.mts';

export interface FlagSpec {
  readonly type: 'boolean' | 'string';
  /** A one-letter alias, e.g. `h` for `-h`. */
  readonly alias?: string;
  /** A string flag that may be given several times: its value is every value, in order. Otherwise the last counts. */
  readonly repeatable?: boolean;
  /** The subcommands it goes with (default: all of them). */
  readonly only?: readonly string[];
  /** What a string flag takes, for the refusal when it has nothing: `--config needs a file`. */
  readonly needs?: string;
  /** Why a string flag's value is refused, or undefined when it is good. */
  readonly check?: (value: string) => string | undefined;
}

export interface PositionalSpec {
  readonly name: string;
  /** An empty word counts as missing, as bash's `[ -z "$1" ]` did. */
  readonly optional?: boolean;
  /** Takes every remaining word (the last positional only). */
  readonly variadic?: boolean;
  /** The refusal when it is missing (default: `missing <name>`). */
  readonly missing?: string | ((command: string | undefined) => string);
  /** Why a value is refused, or undefined when it is good. */
  readonly check?: (value: string) => string | undefined;
}

export interface CommandSpec {
  readonly positionals?: readonly PositionalSpec[];
  /** Words beyond the positionals: refused (the default), or handed back in `ignored` as the bash ignored them. */
  readonly extra?: 'refuse' | 'ignore';
  /** The refusal of words beyond the positionals; it is given every positional word. */
  readonly tooMany?: (words: readonly string[], command: string | undefined) => string;
  /**
   * The words after this subcommand go untouched to the script it runs,
   * which declares them itself; only this script's boolean flags are taken
   * out of them (phoenix's `swarm` and `setup`).
   */
  readonly forward?: boolean;
}

export interface ArgSpec extends CommandSpec {
  /** The upstream name the script logs under, e.g. `lxc-manager.sh`. */
  readonly name: string;
  /** What --help prints; its first line is the hint after a usage error. */
  readonly usage: string;
  readonly flags?: Readonly<Record<string, FlagSpec>>;
  /** The script takes --dry-run. */
  readonly dryRun?: boolean;
  /** Exit status of a usage error (default 1). */
  readonly usageExitCode?: number;
  /** Unknown flags: refused (the default), or handed back in `ignored`. */
  readonly unknownFlags?: 'refuse' | 'ignore';
  /** Words after `--` come back untouched in `rest` instead of being positionals. */
  readonly passthrough?: boolean;
  /** The first positional word names one of these; the rest is declared by it. */
  readonly commands?: Readonly<Record<string, CommandSpec>>;
  /** The refusal of a missing or unknown subcommand. */
  readonly invalidCommand?: (word: string | undefined) => string;
  /** With no positional word at all, the whole usage goes to stderr before the error (a bare `phoenix`). */
  readonly usageWhenEmpty?: boolean;
}

type FlagValue<F> = F extends { type: 'boolean' } ? boolean : F extends { repeatable: true } ? string[] : string | undefined;
type FlagValues<S> = S extends { flags: infer F } ? { -readonly [K in keyof F]: FlagValue<F[K]> } : Record<never, never>;
type PositionalValue<P> = P extends { variadic: true } ? string[] : P extends { optional: true } ? string | undefined : string;
type NameOf<P> = P extends { name: infer N extends string } ? N : never;
type TopPositionals<S> = S extends { positionals: readonly (infer P)[] } ? { [Q in P as NameOf<Q>]: PositionalValue<Q> } : Record<never, never>;
type PositionalsOfCommands<M> = { [K in keyof M]: M[K] extends { positionals: readonly (infer P)[] } ? P : never }[keyof M];
type CommandPositionals<S> = S extends { commands: infer M } ? { [Q in PositionalsOfCommands<M> as NameOf<Q>]?: PositionalValue<Q> } : Record<never, never>;
type CommandOf<S> = S extends { commands: infer M } ? keyof M & string : undefined;

/** A command line that passed its declaration. */
export interface ParsedArgs<S extends ArgSpec = ArgSpec> {
  readonly help: false;
  readonly dryRun: boolean;
  /** The subcommand, for a script that declares some. */
  readonly command: CommandOf<S>;
  readonly flags: FlagValues<S> & { readonly [name: string]: unknown };
  /** Positionals by name; those of subcommands may be absent (the subcommand given decides). */
  readonly positional: TopPositionals<S> & CommandPositionals<S>;
  /** Every positional word taken, in order (a forwarding subcommand's words, untouched). */
  readonly operands: string[];
  /** Words after `--` (with `passthrough`). */
  readonly rest: string[];
  /** Words the declaration lets the script ignore (extra words, unknown flags), for a warning. */
  readonly ignored: string[];
}

export type Parsed<S extends ArgSpec = ArgSpec> = ParsedArgs<S> | { readonly help: true };

/** Keeps a declaration's literal types, so `parseArgs` knows each flag's type and each positional's name. */
export function defineArgs<const S extends ArgSpec>(spec: S): S {
  return spec;
}

/** A usage error of this script: its exit status, its usage line as the hint. */
export function usageError(spec: Pick<ArgSpec, 'usage' | 'usageExitCode'>, message: string): UsageError {
  return new UsageError(message, { exitCode: spec.usageExitCode ?? 1, hint: spec.usage.split('\n')[0] ?? '' });
}

const HELP: FlagSpec = { type: 'boolean', alias: 'h' };
const DRY_RUN: FlagSpec = { type: 'boolean' };

function declaredFlags(spec: ArgSpec): Record<string, FlagSpec> {
  return { help: HELP, ...(spec.dryRun ? { 'dry-run': DRY_RUN } : {}), ...spec.flags };
}

/** One minimist pass: every occurrence of each flag, the positional words, the words after `--`, unknown flags. */
interface Pass {
  occurrences: Map<string, unknown[]>;
  words: string[];
  rest: string[];
  unknown: string[];
}

function pass(argv: readonly string[], flags: Record<string, FlagSpec>, stopEarly = false): Pass {
  const names = (type: FlagSpec['type']) => Object.keys(flags).filter((name) => flags[name]?.type === type);
  const alias: Record<string, string> = {};
  for (const [name, flag] of Object.entries(flags)) if (flag.alias) alias[name] = flag.alias;
  const unknown: string[] = [];
  const parsed = minimist([...argv], {
    boolean: names('boolean'),
    // `_` among the strings keeps every positional a string.
    string: ['_', ...names('string')],
    alias,
    '--': true,
    stopEarly,
    unknown: (arg) => {
      // minimist asks about positional words too; only flags are unknown.
      if (!arg.startsWith('-') || arg === '-') return true;
      unknown.push(arg);
      return false;
    },
  });
  const occurrences = new Map<string, unknown[]>();
  for (const name of Object.keys(flags)) {
    const value: unknown = parsed[name];
    occurrences.set(name, value === undefined ? [] : Array.isArray(value) ? value : [value]);
  }
  return { occurrences, words: parsed._.map(String), rest: parsed['--'] ?? [], unknown };
}

/** The boolean flags given as bare words among a forwarding subcommand's words, taken out of them. */
function takeBooleans(words: readonly string[], flags: Record<string, FlagSpec>): { pass: Pass; forwarded: string[] } {
  const taken = new Map<string, unknown[]>();
  const forwarded: string[] = [];
  let ended = false;
  for (const word of words) {
    const name = word.slice(2);
    if (word === '--') ended = true;
    if (!ended && word.startsWith('--') && name !== 'help' && flags[name]?.type === 'boolean') taken.set(name, [true]);
    else forwarded.push(word);
  }
  return { pass: { occurrences: taken, words: [], rest: [], unknown: [] }, forwarded };
}

function messageOf(missing: PositionalSpec['missing'], command: string | undefined, name: string): string {
  if (typeof missing === 'function') return missing(command);
  return missing ?? (command === undefined ? `missing ${name}` : `'${command}' needs ${name}`);
}

interface Assigned {
  positional: Record<string, string | string[] | undefined>;
  operands: string[];
  extra: string[];
}

function assignPositionals(shape: CommandSpec, command: string | undefined, words: readonly string[], fail: (message: string) => UsageError): Assigned {
  const positional: Assigned['positional'] = {};
  const declared = shape.positionals ?? [];
  let next = 0;
  for (const spec of declared) {
    if (spec.variadic) {
      const values = words.slice(next);
      next = words.length;
      if (!spec.optional && values.filter(Boolean).length === 0) throw fail(messageOf(spec.missing, command, spec.name));
      for (const value of values) {
        const problem = spec.check?.(value);
        if (problem !== undefined) throw fail(problem);
      }
      positional[spec.name] = values;
      continue;
    }
    const value = words[next];
    next += 1;
    if (value === undefined || value === '') {
      if (!spec.optional) throw fail(messageOf(spec.missing, command, spec.name));
      positional[spec.name] = undefined;
      continue;
    }
    const problem = spec.check?.(value);
    if (problem !== undefined) throw fail(problem);
    positional[spec.name] = value;
  }
  const extra = words.slice(next);
  if (extra.length > 0 && shape.extra !== 'ignore') {
    if (shape.tooMany) throw fail(shape.tooMany(words, command));
    throw fail(declared.length === 0 ? `unknown argument '${extra[0]}'` : `too many arguments: ${words.join(' ')}`);
  }
  return { positional, operands: words.slice(0, Math.min(next, words.length)), extra };
}

/**
 * Read `argv` (without node and the script) as `spec` declares it. Throws a
 * UsageError with the script's usage exit status for anything the
 * declaration refuses; `{ help: true }` when --help or -h was given.
 */
export function parseArgs<const S extends ArgSpec>(spec: S, argv: readonly string[]): Parsed<S> {
  const flags = declaredFlags(spec);
  const fail = (message: string) => usageError(spec, message);
  const passes: Pass[] = [];
  let command: string | undefined;
  let shape: CommandSpec = spec;
  let words: string[];
  let forwarded = false;

  if (spec.commands) {
    // The subcommand is the first positional word; minimist finds it (stopEarly),
    // then the flags before and the words after it are read on their own.
    const dash = argv.indexOf('--');
    const head = dash < 0 ? argv : argv.slice(0, dash);
    const first = pass(head, flags, true);
    const at = first.words.length > 0 ? head.length - first.words.length : dash >= 0 && dash + 1 < argv.length ? dash + 1 : -1;
    passes.push(pass(at < 0 ? argv : argv.slice(0, at), flags));
    command = at < 0 ? undefined : argv[at];
    const after = at < 0 ? [] : argv.slice(at + 1);
    const chosen = command !== undefined && Object.hasOwn(spec.commands, command) ? spec.commands[command] : undefined;
    if (chosen) shape = chosen;
    if (chosen?.forward) {
      const taken = takeBooleans(after, flags);
      passes.push(taken.pass);
      words = taken.forwarded;
      forwarded = true;
    } else if (dash >= 0 && at > dash) {
      // The subcommand came after `--`: everything after it is a word.
      words = after;
    } else {
      const second = pass(after, flags);
      passes.push(second);
      words = [...passes[0]!.words, ...second.words];
    }
  } else {
    passes.push(pass(argv, flags));
    words = passes[0]!.words;
  }

  const all = (name: string) => passes.flatMap((p) => p.occurrences.get(name) ?? []);
  if (all('help').includes(true)) return { help: true };

  const ignored: string[] = [];
  const unknown = passes.flatMap((p) => p.unknown);
  if (unknown.length > 0) {
    if (spec.unknownFlags !== 'ignore') throw fail(`unknown option '${unknown[0]}'`);
    ignored.push(...unknown);
  }
  if (spec.commands && (command === undefined || !Object.hasOwn(spec.commands, command))) {
    throw fail(spec.invalidCommand?.(command) ?? (command === undefined ? 'missing command' : `unknown command '${command}'`));
  }

  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(flags)) {
    const given = all(name);
    if (flag.type === 'boolean') {
      // minimist gives every pass a false for each boolean it did not see: any true counts.
      values[name] = given.includes(true);
      if (values[name] !== true) continue;
    } else {
      if (given.some((value) => typeof value !== 'string' || value === '')) throw fail(`--${name} needs ${flag.needs ?? 'a value'}`);
      const strings = given as string[];
      for (const value of strings) {
        const problem = flag.check?.(value);
        if (problem !== undefined) throw fail(problem);
      }
      values[name] = flag.repeatable ? strings : strings[strings.length - 1];
      if (strings.length === 0) continue;
    }
    if (command !== undefined && flag.only && !flag.only.includes(command)) throw fail(`--${name} only goes with ${flag.only.join('|')}`);
  }

  const rest = passes.flatMap((p) => p.rest);
  if (!spec.passthrough && !forwarded) words.push(...rest.splice(0));
  let assigned: Assigned;
  if (forwarded) {
    const required = (shape.positionals ?? []).find((p) => !p.optional);
    if (required && words.length === 0) throw fail(messageOf(required.missing, command, required.name));
    assigned = { positional: {}, operands: words, extra: [] };
  } else {
    assigned = assignPositionals(shape, command, words, fail);
  }
  ignored.push(...assigned.extra);

  return {
    help: false,
    dryRun: values['dry-run'] === true,
    command: command as CommandOf<S>,
    flags: values as ParsedArgs<S>['flags'],
    positional: assigned.positional as ParsedArgs<S>['positional'],
    operands: assigned.operands,
    rest,
    ignored,
  };
}
