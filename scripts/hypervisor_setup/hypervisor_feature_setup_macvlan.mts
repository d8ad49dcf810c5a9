#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_setup_macvlan.sh (setup
// step 2): the management bridge, its VLAN interfaces and the internal NAT
// bridge as Phoenix's block of /etc/network/interfaces, applied with
// `ifreload -a` and rolled back when the host loses its management address
// or default route. What it writes and why: lib/hypervisor/network.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_setup_macvlan.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Writes the host's bridges and VLAN interfaces from the manifest's \`network\`
section into Phoenix's block of /etc/network/interfaces (other stanzas are kept)
and applies them with \`ifreload -a\`. If the host then lacks its management
address or default route, the previous file is restored and reloaded.

  --dry-run   print the change (a diff of the file), change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_setup_macvlan.sh', USAGE), async (args, context) => {
  const { INTERFACES_FILE, setupNetwork } = await import('../../lib/hypervisor/network.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Configuring the host network...');
  const result = await withHostLock(context, () => setupNetwork(setup));
  return reportStep('host network', result, `host network already as the manifest says (${INTERFACES_FILE})`);
});
