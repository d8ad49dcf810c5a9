// Command lines as the docker CLI (cobra) reads them: flags with values,
// repeated and boolean flags, operand counts, --filter and --label values.

import { Fail } from './state.mts';

// ---------------------------------------------------------------------------
// Flags, cobra style

interface FlagSpec {
  /** Flags that take a value (long and short names). */
  values?: string[];
  /** Flags that may be repeated. */
  multi?: string[];
  bools?: string[];
  /** `docker run IMAGE --flag`: flags after the first operand belong to the container's command. */
  stopAtOperand?: boolean;
}

interface Parsed {
  values: Map<string, string[]>;
  bools: Set<string>;
  operands: string[];
}

export function parseFlags(command: string, args: readonly string[], spec: FlagSpec): Parsed {
  const values = new Map<string, string[]>();
  const bools = new Set<string>();
  const operands: string[] = [];
  const takes = new Set([...(spec.values ?? []), ...(spec.multi ?? [])]);
  const isBool = new Set([...(spec.bools ?? []), '--help']);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (arg === '-' || !arg.startsWith('-')) {
      if (spec.stopAtOperand) {
        operands.push(...args.slice(i));
        break;
      }
      operands.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (takes.has(name)) {
      let value: string | undefined;
      if (eq !== -1) value = arg.slice(eq + 1);
      else {
        value = args[i + 1];
        i++;
      }
      if (value === undefined) throw new Fail(125, `flag needs an argument: ${name}\nSee 'docker ${command} --help'.\n`);
      const list = values.get(name) ?? [];
      list.push(value);
      values.set(name, list);
      continue;
    }
    if (isBool.has(name)) {
      bools.add(name);
      continue;
    }
    throw new Fail(125, `unknown ${name.startsWith('--') ? 'flag' : 'shorthand flag'}: ${name.startsWith('--') ? name : `'${name.slice(1)}' in ${name}`}\nSee 'docker ${command} --help'.\n`);
  }
  return { values, bools, operands };
}

export const one = (p: Parsed, ...names: string[]): string | undefined => {
  for (const n of names) {
    const v = p.values.get(n);
    if (v && v.length) return v[v.length - 1];
  }
  return undefined;
};
export const many = (p: Parsed, ...names: string[]): string[] => names.flatMap((n) => p.values.get(n) ?? []);
export const has = (p: Parsed, ...names: string[]): boolean => names.some((n) => p.bools.has(n));

export function requireArgs(command: string, p: Parsed, min: number, max = min, usage = ''): void {
  const n = p.operands.length;
  if (n >= min && n <= max) return;
  const what = min === max ? `exactly ${min} argument${min === 1 ? '' : 's'}` : max === Infinity ? `at least ${min} argument${min === 1 ? '' : 's'}` : `at most ${max} argument${max === 1 ? '' : 's'}`;
  throw new Fail(1, `"docker ${command}" requires ${what}.\nSee 'docker ${command} --help'.\n\nUsage:  docker ${command} ${usage}\n`);
}

// ---------------------------------------------------------------------------
// Filters

export function filtersOf(p: Parsed): Array<[string, string]> {
  return many(p, '--filter', '-f').map((f) => {
    const eq = f.indexOf('=');
    if (eq === -1) throw new Fail(1, `Error response from daemon: bad format of filter (expected name=value)\n`);
    return [f.slice(0, eq), f.slice(eq + 1)];
  });
}

export function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq === -1) return Object.hasOwn(labels, filter);
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

// `KEY=VALUE` lists (or a compose mapping) as a label map.
export function labelMap(value: unknown): Record<string, string> {
  if (Array.isArray(value)) {
    return Object.fromEntries(
      value.map((item) => {
        const s = String(item);
        const eq = s.indexOf('=');
        return eq === -1 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  }
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, v === null ? '' : String(v)]));
  return {};
}
