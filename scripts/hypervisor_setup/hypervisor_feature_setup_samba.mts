#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_setup_samba.sh (setup step
// 11): Samba installed, its user's password from the manifest (never from
// code), the share directories, Phoenix's block in /etc/samba/smb.conf checked
// with testparm, smbd and nmbd restarted only on a change.
// What it does: lib/hypervisor/samba.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_setup_samba.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Installs Samba when missing, adds samba.user to Samba's password database
once (password from samba.password_file, a root-owned file of mode 0600, or
samba.password; asked on the terminal when neither is set), creates the
share directories that are missing, and writes the shares (with their
options) and network.workgroup into Phoenix's block at the end of
/etc/samba/smb.conf after testparm accepts the result. Every other line of
smb.conf is kept. smbd and nmbd are restarted only when it changed.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_setup_samba.sh', USAGE), async (args, context) => {
  const { setupSamba } = await import('../../lib/hypervisor/samba.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Setting up Samba...');
  const result = await withHostLock(context, () => setupSamba(setup));
  return reportStep('Samba', result, 'Samba already matches the manifest');
});
