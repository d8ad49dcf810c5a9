#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_initialize_nvidia_gpus.sh (setup step 8).
// What it does and how it differs from the bash: lib/hypervisor/nvidia-driver.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_initialize_nvidia_gpus.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Installs and enables nvidia-gpu-init.service, a oneshot unit that runs
nvidia-smi at boot before the guests start. Skipped when the host has no
NVIDIA GPU or the NVIDIA driver is not installed.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_initialize_nvidia_gpus.sh', USAGE), async (args, context) => {
  const { initializeNvidiaGpus } = await import('../../lib/hypervisor/nvidia-driver.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Setting up the NVIDIA GPU initialisation unit...');
  const result = await withHostLock(context, () => initializeNvidiaGpus(setup));
  return reportStep('NVIDIA GPU initialisation', result);
});
