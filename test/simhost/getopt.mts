// getopt as the ZFS tools parse their command lines: single-letter flags
// that may be grouped (-fn), some taking a value (-o x or -ox), `--` ending
// the options. A bad option is reported through the caller's usage error.

export interface Flags {
  flags: Set<string>;
  values: Record<string, string[]>;
  operands: string[];
}

export function getopt(args: readonly string[], withValue: string, plain: string, usage: (message: string) => never): Flags {
  const flags = new Set<string>();
  const values: Record<string, string[]> = {};
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      operands.push(a);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const f = a[j]!;
      if (withValue.includes(f)) {
        const v = j + 1 < a.length ? a.slice(j + 1) : args[++i];
        if (v === undefined) usage(`missing argument for '${f}' option`);
        (values[f] ??= []).push(v);
        break;
      }
      if (!plain.includes(f)) usage(`invalid option '${f}'`);
      flags.add(f);
    }
  }
  return { flags, values, operands };
}
