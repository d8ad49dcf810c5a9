#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_provision_shared_resources.sh
// (setup step 13): the volumes of shared_zfs_volumes and the two shared
// directories. What it does: lib/hypervisor/shared-resources.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_provision_shared_resources.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Allocates each volume of shared_zfs_volumes ({ "<name>": { "pool", "size_gb" } })
as vm-99999-disk-<name> when its storage does not list it, and creates the
shared directories that are missing.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_provision_shared_resources.sh', USAGE), async (args, context) => {
  const { provisionSharedResources } = await import('../../lib/hypervisor/shared-resources.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Provisioning shared resources...');
  const result = await withHostLock(context, () => provisionSharedResources(setup));
  return reportStep('shared resources', result, 'shared volumes and directories already in place');
});
