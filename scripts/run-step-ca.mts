#!/usr/bin/env node
// Port of bin/run-step-ca.sh: the foreground start of step-ca inside the CA
// container, as a systemd ExecStart. Same checks and exits as the bash:
// exit 1 when $STEPPATH/config/ca.json or $STEPPATH/ca_password.txt is
// missing, else step-ca's own exit status.
//
// The step_ca feature installs the shell twin of this script
// (lib/features/lxc/guest/run-step-ca.sh) as /usr/local/bin/run-step-ca.sh,
// because the CA container has no Node; both read the same STEPPATH
// default (/root/.step, Phoenix's CA directory) and the same password file
// name, print the same reasons and exit the same way. Keep them in step.
//
// Signals: systemd stops the unit by signalling every process of its
// cgroup, so step-ca gets SIGTERM itself; this process only waits for it and
// passes its status on. A configuration reload is `systemctl kill -s HUP
// step-ca` for the same reason.

import fs from 'node:fs';
import path from 'node:path';
import { runMain } from '../lib/core/main.mts';
import { defineArgs } from '../lib/core/args.mts';
import { run } from '../lib/core/runner.mts';
import { PhoenixError } from '../lib/core/errors.mts';
import { info } from '../lib/core/log.mts';
import { STEP_CA_STEPPATH } from '../lib/guest/root-ca.mts';
import { CA_PASSWORD_FILE } from '../lib/features/lxc/step-ca.mts';

/** Where the bash wrapper runs step-ca from (the Smallstep package's path). */
export const STEP_CA_BINARY = '/usr/bin/step-ca';

const USAGE = `Usage: run-step-ca.sh [--dry-run]

Runs step-ca in the foreground on $STEPPATH/config/ca.json (STEPPATH
defaults to ${STEP_CA_STEPPATH}) with the password in $STEPPATH/${CA_PASSWORD_FILE}.
Exits 1 when either file is missing, else with step-ca's status.

  --dry-run   check the files and print the command, start nothing
`;

const ARGS = defineArgs({ name: 'run-step-ca.sh', usage: USAGE, dryRun: true });

await runMain(ARGS, async () => {
  const steppath = process.env.STEPPATH || STEP_CA_STEPPATH;
  const config = path.posix.join(steppath, 'config', 'ca.json');
  const passwordFile = path.posix.join(steppath, CA_PASSWORD_FILE);
  if (!fs.existsSync(config)) throw new PhoenixError(`${config} not found; the CA is initialised by the container's application script`);
  if (!fs.existsSync(passwordFile)) throw new PhoenixError(`${passwordFile} not found`);

  info(`Starting step-ca with ${config}`);
  const keepWaiting = () => undefined;
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, keepWaiting);
  const result = await run({
    cmd: STEP_CA_BINARY,
    args: [config, '--password-file', passwordFile],
    env: { ...(process.env as Record<string, string>), STEPPATH: steppath },
    stdio: 'inherit',
    timeoutMs: 0,
    retry: false,
    allowFailure: true,
  });
  return result.skipped ? 0 : result.code;
});
