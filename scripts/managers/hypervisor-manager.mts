#!/usr/bin/env node
// hypervisor-manager.sh --config <file> [--wipe-disks]: `phoenix setup`, the
// Proxmox node taken from a fresh install to the state the hypervisor
// manifest describes. The steps and their order: lib/hypervisor/setup.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { defineArgs } from '../../lib/core/args.mts';
import { REBOOT_REQUIRED_EXIT } from '../../lib/hypervisor/setup-step.mts';

const USAGE = `Usage: hypervisor-manager.sh --config HYPERVISOR_CONFIG_FILE [--wipe-disks] [--upgrade] [--dry-run]

Sets up this Proxmox VE node from the hypervisor manifest, one step per
hypervisor_setup script: repositories and packages, bridges and VLANs, ZFS
pools and datasets, the firewall, NFS, VFIO or the NVIDIA driver, dnsmasq,
the operator and admin accounts, Samba, shared volumes, AppArmor and the
certificate renewal timer. Every step changes only what differs from the
manifest, so a second run changes nothing.

  --config FILE   the hypervisor manifest (phoenix_hypervisor_config.json)
  --wipe-disks    a new pool may wipe old signatures from the disks it names
                  (never a disk with an imported pool or a mounted file system)
  --upgrade       also run apt-get dist-upgrade
  --dry-run       print every change (with file diffs), change nothing

Exit status: 0 done, 1 failed (nothing after the failing step ran),
${REBOOT_REQUIRED_EXIT} the host must reboot before setup can go on (run it again after).
`;

const ARGS = defineArgs({
  name: 'hypervisor-manager.sh',
  usage: USAGE,
  dryRun: true,
  flags: {
    config: { type: 'string', needs: 'the hypervisor manifest' },
    'wipe-disks': { type: 'boolean' },
    upgrade: { type: 'boolean' },
  },
});

await runMain(ARGS, async (args, context) => {
  const { setupFromArgs } = await import('../../lib/hypervisor/setup-cli.mts');
  return withHostLock(context, () => setupFromArgs(args.flags, context.options));
});
