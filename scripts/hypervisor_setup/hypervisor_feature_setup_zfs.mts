#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_setup_zfs.sh (setup step 3):
// the ZFS pools, the ARC limit, the datasets and their Proxmox storages.
// Same command line: --config <file> (or - for stdin) and --mode
// safe|interactive|force-destructive (mapped in lib/hypervisor/step-script.mts).
// What it does: lib/hypervisor/zfs-setup.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { defineArgs } from '../../lib/core/args.mts';
import { info } from '../../lib/core/log.mts';
import { checkZfsMode, reportStep, zfsScriptContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_setup_zfs.sh [--config FILE|-] [--mode safe|interactive|force-destructive] [--dry-run]

Creates the manifest's ZFS pools (imported pools are left alone), sets the
ARC limit (persisted in /etc/modprobe.d/zfs.conf), creates the datasets or
sets the properties that differ, and adds their Proxmox storages. No
storage is ever removed.

  --config FILE   the hypervisor manifest; - reads it from stdin
  --mode MODE     safe (default): a disk holding anything is refused;
                  interactive: asks before wiping (on a terminal; otherwise as safe);
                  force-destructive: wipes what the plan lists (as --wipe-disks).
                  A mounted disk or one of an imported pool is never wiped.
  --dry-run       print the plan and what would change, change nothing
`;

const ARGS = defineArgs({
  name: 'hypervisor_feature_setup_zfs.sh',
  usage: USAGE,
  dryRun: true,
  flags: { config: { type: 'string', needs: 'a file' }, mode: { type: 'string', needs: 'a mode', check: checkZfsMode } },
  positionals: [],
});

await runMain(ARGS, async (args, context) => {
  const { setupZfs } = await import('../../lib/hypervisor/zfs-setup.mts');
  const setup = zfsScriptContext(ARGS, args.flags, context.options);
  info(`Setting up ZFS (mode ${args.flags.mode ?? 'safe'})...`);
  const result = await withHostLock(context, () => setupZfs(setup));
  return reportStep('ZFS', result, 'ZFS pools, datasets and storages already match the manifest');
});
