#!/usr/bin/env node
// Port of bin/run-step-ca.sh: the foreground start of step-ca inside the CA
// container, as a systemd ExecStart. Same checks and exits as the bash:
// exit 1 when $STEPPATH/config/ca.json or $STEPPATH/ca_password.txt is
// missing, else step-ca's own exit status.
//
// What it does: lib/pki/run-step-ca.mts (with its shell twin, installed in
// the CA container by the step_ca feature).
//
// Signals: systemd stops the unit by signalling every process of its
// cgroup, so step-ca gets SIGTERM itself; this process only waits for it and
// passes its status on. A configuration reload is `systemctl kill -s HUP
// step-ca` for the same reason.

import { runMain } from '../lib/core/main.mts';
import { defineArgs } from '../lib/core/args.mts';
import { STEP_CA_STEPPATH } from '../lib/guest/root-ca.mts';
import { CA_PASSWORD_FILE } from '../lib/features/lxc/step-ca.mts';
import { runStepCa } from '../lib/pki/run-step-ca.mts';

const USAGE = `Usage: run-step-ca.sh [--dry-run]

Runs step-ca in the foreground on $STEPPATH/config/ca.json (STEPPATH
defaults to ${STEP_CA_STEPPATH}) with the password in $STEPPATH/${CA_PASSWORD_FILE}.
Exits 1 when either file is missing, else with step-ca's status.

  --dry-run   check the files and print the command, start nothing
`;

const ARGS = defineArgs({ name: 'run-step-ca.sh', usage: USAGE, dryRun: true });

await runMain(ARGS, () => runStepCa());
