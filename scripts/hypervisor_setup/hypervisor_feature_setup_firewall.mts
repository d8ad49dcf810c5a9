#!/usr/bin/env node
// hypervisor_feature_setup_firewall: the Proxmox firewall files from the
// manifests (cluster.fw, nodes/<node>/host.fw, <id>.fw per guest). Called by
// hypervisor-manager (setup), lxc-manager (create) and portainer-manager
// (sync); the optional first argument is the hypervisor config, as the bash
// was given (and ignored).

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { setupFeatureContext, setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { applyFirewall } from '../../lib/firewall/apply.mts';
import { info } from '../../lib/core/log.mts';

const USAGE = `Usage: hypervisor_feature_setup_firewall.sh [HYPERVISOR_CONFIG_FILE] [--force] [--dry-run]

Writes the Proxmox firewall files from the manifests and restarts
pve-firewall when one of them changed.

  --force     also replace or remove firewall files without the Phoenix
              marker line (files someone manages by hand)
  --dry-run   print what would change, change nothing
`;

const ARGS = setupScriptArgs('hypervisor_feature_setup_firewall.sh', USAGE, { force: { type: 'boolean' } });

await runMain(ARGS, async (args, context) => {
  const { config } = setupFeatureContext(args.positional.hypervisorConfig, context.options);
  info('Configuring the Proxmox firewall from the manifests...');
  await withHostLock(context, () => applyFirewall(config, { force: args.flags.force, alwaysValidate: true, pveDir: context.options.pveDir }));
  return 0;
});
