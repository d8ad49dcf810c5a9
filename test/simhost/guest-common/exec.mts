// What `pct exec` and `qm guest exec` share: knowing whether the command
// reads its stdin.

import path from 'node:path';

/** Does this command read its stdin (so the simulator must consume and count it)? */
export function readsStdin(argv: readonly string[]): boolean {
  const [program, ...args] = argv;
  if (program === undefined) return false;
  const name = path.posix.basename(program);
  if (['bash', 'sh', 'dash', 'ash'].includes(name)) {
    if (args.some((a) => /^-[a-zA-Z]*c[a-zA-Z]*$/.test(a))) return false;
    const firstOperand = args.find((a) => !a.startsWith('-'));
    return args.includes('-s') || firstOperand === undefined;
  }
  if (name === 'tee') return true;
  if (name === 'install') return args.includes('/dev/stdin');
  if (name === 'cat') return args.filter((a) => !a.startsWith('-') || a === '-').length === 0 || args.includes('-');
  return false;
}
