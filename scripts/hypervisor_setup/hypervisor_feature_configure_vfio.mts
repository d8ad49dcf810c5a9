#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_configure_vfio.sh (setup step 6).
// What it does and how it differs from the bash: lib/hypervisor/vfio.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_configure_vfio.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Prepares the host for VFIO passthrough from the manifest's vfio section
(skipped without it, or with vfio.enabled false): the IOMMU on the kernel
command line (/etc/default/grub.d/phoenix.cfg, or /etc/kernel/cmdline on a
host booted by systemd-boot through proxmox-boot-tool), the vfio modules in
/etc/modules, vfio-pci's device ids in /etc/modprobe.d/phoenix-vfio.conf,
nouveau blacklisted for NVIDIA devices, and the initramfs rebuilt when any
of these changed. It takes effect after a reboot, which Phoenix never does.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_configure_vfio.sh', USAGE), async (args, context) => {
  const { configureVfio } = await import('../../lib/hypervisor/vfio.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Configuring VFIO passthrough...');
  const result = await withHostLock(context, () => configureVfio(setup));
  return reportStep('VFIO passthrough', result);
});
