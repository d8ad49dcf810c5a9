// run-step-ca's work: the foreground start of step-ca inside the CA
// container, as a systemd ExecStart (the bash wrapper's checks and exits).
// The step_ca feature installs its shell twin,
// lib/features/lxc/guest/run-step-ca.sh, as /usr/local/bin/run-step-ca.sh,
// because the CA container has no Node; the two read the same STEPPATH
// default and password file name, print the same reasons and exit the same
// way. Keep them in step.

import fs from 'node:fs';
import path from 'node:path';
import { run } from '../core/runner.mts';
import { PhoenixError } from '../core/errors.mts';
import { error, info } from '../core/log.mts';
import { STEP_CA_STEPPATH } from '../guest/root-ca.mts';
import { CA_PASSWORD_FILE } from '../features/lxc/step-ca.mts';

/** Where the bash wrapper runs step-ca from (the Smallstep package's path). */
export const STEP_CA_BINARY = '/usr/bin/step-ca';

/**
 * The step-ca executable to start: PHOENIX_STEP_CA_BINARY when set (the tests
 * point it at the step-ca they build from Debian's sources, since Debian has
 * no step-ca package), else STEP_CA_BINARY.
 */
export function stepCaBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.PHOENIX_STEP_CA_BINARY || STEP_CA_BINARY;
}

/**
 * Start step-ca in the foreground on STEPPATH's ca.json with its password
 * file, and return its exit status (1 when either file is missing). The
 * signals systemd sends reach step-ca itself; this process only waits.
 */
export async function runStepCa(steppath = process.env.STEPPATH || STEP_CA_STEPPATH): Promise<number> {
  const config = path.posix.join(steppath, 'config', 'ca.json');
  const passwordFile = path.posix.join(steppath, CA_PASSWORD_FILE);
  if (!fs.existsSync(config)) throw new PhoenixError(`${config} not found; the CA is initialised by the container's application script`);
  if (!fs.existsSync(passwordFile)) throw new PhoenixError(`${passwordFile} not found`);

  info(`Starting step-ca with ${config}`);
  const keepWaiting = () => undefined;
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, keepWaiting);
  const result = await run({
    cmd: stepCaBinary(),
    args: [config, '--password-file', passwordFile],
    env: { ...(process.env as Record<string, string>), STEPPATH: steppath },
    stdio: 'inherit',
    timeoutMs: 0,
    retry: false,
    allowFailure: true,
  });
  if (result.skipped) return 0;
  // step-ca prints its own reason on stderr (inherited: it is in the journal
  // just above); say plainly that the CA did not run, and where to look. The
  // shell twin execs step-ca instead, and systemd's "Main process exited,
  // status=N" line says the same there.
  if (result.code !== 0) error(`step-ca exited with status ${result.code} on ${config}: its reason is the step-ca output above (journalctl -u step-ca in the CA container)`);
  return result.code;
}
