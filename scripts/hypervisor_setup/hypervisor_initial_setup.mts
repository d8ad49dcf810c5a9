#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_initial_setup.sh (setup step 1):
// log rotation, the Proxmox repositories of the node's release, the host
// tools, the time zone and NTP, the node's name in /etc/hosts. What it does
// and what it no longer does: lib/hypervisor/initial-setup.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_initial_setup.sh [HYPERVISOR_CONFIG_FILE] [--upgrade] [--dry-run]

The node's basics: /etc/logrotate.d/phoenix_hypervisor; the Proxmox VE
no-subscription repositories of the node's release (enterprise ones
disabled); step-cli, s-tui, samba, samba-common-bin, smbclient,
libguestfs-tools, yq and chrony where missing; the time zone (timezone);
chrony running; the node's name resolvable in /etc/hosts. The node is never
renamed. A second run changes nothing.

  --upgrade   also run apt-get dist-upgrade (never done otherwise)
  --dry-run   print what would change, change nothing
`;

const ARGS = setupScriptArgs('hypervisor_initial_setup.sh', USAGE, { upgrade: { type: 'boolean' } });

await runMain(ARGS, async (args, context) => {
  const { initialSetup } = await import('../../lib/hypervisor/initial-setup.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options, { upgrade: args.flags.upgrade === true });
  info('Running the initial host setup...');
  const result = await withHostLock(context, () => initialSetup(setup));
  return reportStep('initial host setup', result, 'initial host setup: the node already matched');
});
