#!/usr/bin/env node
// hypervisor_feature_setup_firewall: the Proxmox firewall files from the
// manifests (cluster.fw, nodes/<node>/host.fw, <id>.fw per guest). Called by
// hypervisor-manager (setup), lxc-manager (create) and portainer-manager
// (sync); the optional first argument is the hypervisor config, as the bash
// was given (and ignored).

import { runMain, withHostLock } from '../../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config.mts';
import { applyFirewall } from '../../lib/firewall.mts';
import { configureRunner } from '../../lib/runner.mts';
import { UsageError } from '../../lib/errors.mts';
import { info } from '../../lib/log.mts';

const USAGE = `Usage: hypervisor_feature_setup_firewall.sh [HYPERVISOR_CONFIG_FILE] [--force] [--dry-run]

Writes the Proxmox firewall files from the manifests and restarts
pve-firewall when one of them changed.

  --force     also replace or remove firewall files without the Phoenix
              marker line (files someone manages by hand)
  --dry-run   print what would change, change nothing
`;

await runMain('hypervisor_feature_setup_firewall.sh', async (context) => {
  const positional: string[] = [];
  let force = false;
  for (const arg of context.argv) {
    if (arg === '--force') force = true;
    else if (arg === '--dry-run') {
      context.options.dryRun = true;
      configureRunner({ dryRun: true });
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(USAGE);
      return 0;
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`, { hint: USAGE.split('\n')[0] });
    else positional.push(arg);
  }
  if (positional.length > 1) throw new UsageError(`too many arguments: ${positional.join(' ')}`, { hint: USAGE.split('\n')[0] });

  const config = loadConfig(resolveConfigPaths(positional[0] === undefined ? {} : { hypervisor: positional[0] }));
  info('Configuring the Proxmox firewall from the manifests...');
  await withHostLock(context, () => applyFirewall(config, { force, alwaysValidate: true, pveDir: context.options.pveDir }));
  return 0;
});
