#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_setup_vfio.sh (orphan, never called by the manager).
// What it does and how it differs from the bash: lib/hypervisor/vfio.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_setup_vfio.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

The module part of VFIO passthrough only (see
hypervisor_feature_configure_vfio.sh for the whole): the vfio modules in
/etc/modules and nouveau blacklisted, the initramfs rebuilt when they
changed. Skipped unless the manifest has a vfio section with enabled not
false. It takes effect after a reboot, which Phoenix never does.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_setup_vfio.sh', USAGE), async (args, context) => {
  const { setupVfioModules } = await import('../../lib/hypervisor/vfio.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Setting up the VFIO modules...');
  const result = await withHostLock(context, () => setupVfioModules(setup));
  return reportStep('VFIO modules', result);
});
