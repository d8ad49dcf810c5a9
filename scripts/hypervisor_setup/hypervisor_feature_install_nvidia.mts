#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_install_nvidia.sh (setup
// step 7). What it does and how it differs from the bash (it never reboots
// the host; it exits REBOOT_REQUIRED_EXIT instead): lib/hypervisor/nvidia-driver.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info, warn } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { REBOOT_REQUIRED_EXIT } from '../../lib/hypervisor/setup-step.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_install_nvidia.sh [HYPERVISOR_CONFIG_FILE] [--no-reboot] [--dry-run]

Installs the NVIDIA host driver nvidia_driver.version from
nvidia_driver.runfile_url (built with DKMS, so kernel updates keep it),
when nvidia_driver.install is true and the host has an NVIDIA GPU.
Nothing is done when that version is already loaded.

After an install the driver loads at the next boot. Phoenix never reboots
the host: the script exits ${REBOOT_REQUIRED_EXIT}; until the host has rebooted, every run
exits ${REBOOT_REQUIRED_EXIT} again without reinstalling.

  --no-reboot   accepted for compatibility; it changes nothing, since the
                host is never rebooted by Phoenix
  --dry-run     print what would change, change nothing
`;

// minimist reads --no-reboot as reboot=false.
const ARGS = setupScriptArgs('hypervisor_feature_install_nvidia.sh', USAGE, { reboot: { type: 'boolean' } });

await runMain(ARGS, async (args, context) => {
  if (args.flags.reboot === false) warn('--no-reboot is no longer needed: Phoenix never reboots the host');
  const { installNvidiaDriver } = await import('../../lib/hypervisor/nvidia-driver.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Installing the NVIDIA host driver...');
  const result = await withHostLock(context, () => installNvidiaDriver(setup));
  return reportStep('NVIDIA host driver', result);
});
