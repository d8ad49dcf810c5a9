// getopt_long as util-linux uses it: short options may be bundled (-Jb),
// a short option's value may be attached (-oNAME) or the next word, long
// options take `--opt=value` or `--opt value`, options and operands mix
// (GNU permutation) until `--`. Refusals with glibc's words and util-linux's
// "Try '<tool> --help' for more information." (exit 1).

import { ToolExit } from '../state.mts';

export interface OptionDef {
  short?: string;
  long: string;
  value?: boolean;
}

export interface ParsedOptions {
  /** Each option seen, by its long name, with its values in order ('' for a flag). */
  seen: Map<string, string[]>;
  operands: string[];
}

function refuse(tool: string, message: string): never {
  throw new ToolExit(1, `${tool}: ${message}\nTry '${tool} --help' for more information.\n`);
}

export function parseOptions(tool: string, argv: readonly string[], defs: readonly OptionDef[]): ParsedOptions {
  const seen = new Map<string, string[]>();
  const operands: string[] = [];
  const add = (def: OptionDef, value: string) => {
    const list = seen.get(def.long) ?? [];
    list.push(value);
    seen.set(def.long, list);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq === -1 ? undefined : eq);
      // glibc accepts an unambiguous prefix of a long option.
      const exact = defs.find((d) => d.long === name);
      const prefixed = defs.filter((d) => d.long.startsWith(name));
      const def = exact ?? (prefixed.length === 1 ? prefixed[0] : undefined);
      if (!def) refuse(tool, prefixed.length > 1 ? `option '${a}' is ambiguous` : `unrecognized option '${a}'`);
      if (def.value) {
        const value = eq === -1 ? argv[++i] : a.slice(eq + 1);
        if (value === undefined) refuse(tool, `option '--${def.long}' requires an argument`);
        add(def, value);
      } else {
        if (eq !== -1) refuse(tool, `option '--${def.long}' doesn't allow an argument`);
        add(def, '');
      }
      continue;
    }
    if (!a.startsWith('-') || a === '-') {
      operands.push(a);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const letter = a[j]!;
      const def = defs.find((d) => d.short === letter);
      if (!def) refuse(tool, `invalid option -- '${letter}'`);
      if (def.value) {
        const value = j + 1 < a.length ? a.slice(j + 1) : argv[++i];
        if (value === undefined) refuse(tool, `option requires an argument -- '${letter}'`);
        add(def, value);
        break;
      }
      add(def, '');
    }
  }
  return { seen, operands };
}
