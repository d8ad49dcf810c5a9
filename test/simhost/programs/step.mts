// `step` inside guests (pct exec / qm guest exec), and `env NAME=value… step …`
// so a caller can point it at another STEPPATH. The commands and the CA are
// those of ../step-cli.mts and ../stepca.mts; here only the guest's view is
// set up: paths resolve in the guest's tree (bind mounts included), STEPPATH
// is /root/.step unless the environment says otherwise, and `step ca init`
// records the new CA as living in this guest.

import path from 'node:path';

import { guestPrograms, runCommand, type ExecResult, type GuestFs, type GuestProgram, type RunOptions } from '../guestfs.mts';
import { runStep } from '../step-cli.mts';
import { tree } from '../guest-io.mts';
import { CT_ROOT } from '../idmap.mts';

/** root's STEPPATH, where step looks without an environment variable. */
export const GUEST_STEPPATH = '/root/.step';

function stepInGuest(g: GuestFs, args: readonly string[], options: RunOptions, vars: Readonly<Record<string, string>> = {}): ExecResult {
  const steppath = path.posix.resolve('/', vars.STEPPATH || (vars.HOME ? path.posix.join(vars.HOME, '.step') : GUEST_STEPPATH));
  // Files step may write: its STEPPATH, and paths named on its command line.
  const written = () => [...tree(g, steppath), ...args.filter((a) => a.startsWith('/') && a !== steppath)];
  const before = new Set(written().filter((file) => g.locate(file, { follow: false }).stat));
  const result = runStep(args, {
    resolve: (file) => g.resolve(file),
    steppath,
    guest: options.vmid,
    ...(options.root !== undefined ? { root: options.root } : {}),
  });
  // What step wrote belongs to whoever ran it, as for any program in the
  // guest: on a bind mount of an unprivileged CT, the mapped ids of its root.
  const subject = options.subject ?? CT_ROOT;
  for (const file of written()) {
    if (before.has(file)) continue;
    const loc = g.locate(file, { follow: false });
    if (loc.stat) g.created(subject, loc);
  }
  return result;
}

guestPrograms.step = (g, args, options) => stepInGuest(g, args, options);

// `env` with assignments in front of step passes them on; any other use of
// env goes to whoever handled it before, else runs the command as is.
const previousEnv: GuestProgram | undefined = guestPrograms.env;
guestPrograms.env = (g, args, options) => {
  const vars: Record<string, string> = {};
  let i = 0;
  while (i < args.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(args[i]!)) {
    const arg = args[i]!;
    vars[arg.slice(0, arg.indexOf('='))] = arg.slice(arg.indexOf('=') + 1);
    i++;
  }
  const rest = args.slice(i);
  if (rest.length > 0 && path.posix.basename(rest[0]!) === 'step') {
    if (rest[0]!.includes('/') && !g.stat(rest[0]!)?.isFile()) return runCommand(g, rest, options);
    return stepInGuest(g, rest.slice(1), options, vars);
  }
  if (previousEnv) return previousEnv(g, args, options);
  return rest.length > 0 ? runCommand(g, rest, options) : { exit: 0, stdout: '', stderr: '' };
};
