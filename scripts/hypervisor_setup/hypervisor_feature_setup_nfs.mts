#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_setup_nfs.sh (setup step 5)
// and hypervisor-manager's wait_for_nfs_ready: the NFS server, Phoenix's
// block of /etc/exports, and the Proxmox NFS storages. What it does:
// lib/hypervisor/nfs.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_setup_nfs.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Installs the NFS server when missing, writes nfs.exports into Phoenix's block
of /etc/exports (every other line is kept), re-exports only when the block
changed, waits until showmount lists every export, and adds the missing
nfs-<name> Proxmox storages.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_setup_nfs.sh', USAGE), async (args, context) => {
  const { setupNfs } = await import('../../lib/hypervisor/nfs.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Setting up the NFS server and its exports...');
  const result = await withHostLock(context, () => setupNfs(setup));
  return reportStep('NFS', result, 'NFS exports and storages already match the manifest');
});
