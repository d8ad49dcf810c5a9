// `xargs` inside simulated guests: it runs its command through the guest's
// command table, which is how a secret reaches a command line inside a
// guest without passing through the host's argument vectors.

import { runCommand, type ExecResult, type GuestFs, type RunOptions } from '../../guestfs.mts';

/** GNU xargs as scripts use it: `xargs [-r] [-0] [-I R] [-n N] command [args]`. */
export function xargsProgram(g: GuestFs, argv: readonly string[], options: RunOptions): ExecResult {
  let replace: string | undefined;
  let noRunIfEmpty = false;
  let nul = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-r' || a === '--no-run-if-empty') noRunIfEmpty = true;
    else if (a === '-0' || a === '--null') nul = true;
    else if (a === '-I') replace = argv[++i];
    else if (a.startsWith('-I')) replace = a.slice(2);
    else if (a === '-n' || a === '-L') i++;
    else if (a === '--') {
      i++;
      break;
    } else break;
  }
  const command = argv.slice(i);
  if (command.length === 0) command.push('echo');
  const input = (options.stdin ?? Buffer.alloc(0)).toString('utf8');
  const items = replace !== undefined ? input.split(nul ? '\0' : '\n').filter((l) => l !== '') : input.split(nul ? '\0' : /\s+/).filter((w) => w !== '');
  if (items.length === 0 && (noRunIfEmpty || replace !== undefined)) return { exit: 0, stdout: '', stderr: '' };
  const runs = replace !== undefined ? items.map((item) => command.map((w) => w.split(replace as string).join(item))) : [[...command, ...items]];
  let stdout = '';
  let stderr = '';
  let status = 0;
  for (const run of runs) {
    const result = runCommand(g, run, { ...options, stdin: Buffer.alloc(0), inShell: false });
    stdout += result.stdout;
    stderr += result.stderr;
    if (result.exit === 255) return { exit: 124, stdout, stderr: `${stderr}xargs: ${run[0]}: exited with status 255; aborting\n` };
    if (result.exit === 127 || result.exit === 126) return { exit: result.exit, stdout, stderr };
    if (result.exit < 0) return { exit: 127, stdout, stderr };
    if (result.exit !== 0) status = 123;
  }
  return { exit: status, stdout, stderr };
}
