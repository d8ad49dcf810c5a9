#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_create_heads_user.sh
// (setup step 10): the operator's login (operator_user, default `heads`), a
// sudoer through a visudo-checked fragment and a Proxmox Administrator.
// Never blocks on a prompt without a terminal. What it does:
// lib/hypervisor/accounts.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_create_heads_user.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Creates the operator's login (operator_user.username, default heads) when
missing: Linux user in group sudo, /etc/sudoers.d/phoenix-<user> (checked with
visudo), Proxmox user <user>@pam with Administrator on /. The password is set
once, when the user is created: from operator_user.password_hash or
operator_user.password_file, else asked on the terminal, else the account
stays locked (and the run says so).

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_create_heads_user.sh', USAGE), async (args, context) => {
  const { createHeadsUser } = await import('../../lib/hypervisor/accounts.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Creating the operator user...');
  const result = await withHostLock(context, () => createHeadsUser(setup));
  return reportStep('operator user', result);
});
