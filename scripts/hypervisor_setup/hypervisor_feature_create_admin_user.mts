#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_create_admin_user.sh
// (setup step 12): the admin user of the manifest's `users` section.
// What it does: lib/hypervisor/accounts.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_create_admin_user.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Creates users.username (default phoenix_admin) when missing, with
users.password_hash (given to chpasswd -e on stdin; NOT_SET leaves it
locked), sudo rights through /etc/sudoers.d/phoenix-<user> when
users.sudo_access is true, Proxmox user <user>@pam with Administrator on /,
and users.ssh_public_key in ~/.ssh/authorized_keys.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_create_admin_user.sh', USAGE), async (args, context) => {
  const { createAdminUser } = await import('../../lib/hypervisor/accounts.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Creating the admin user...');
  const result = await withHostLock(context, () => createAdminUser(setup));
  return reportStep('admin user', result);
});
