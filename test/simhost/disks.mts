// The simulated host's block devices and the util-linux tools that look at
// them: `lsblk`, `blkid` and `wipefs` (run through cli.mts like the Proxmox
// tools), and what `zpool create` checks before it labels a disk. The state
// is <state>/host-disks.json; see disks/README.md for what is faithful.
//
// Each tool is a module in disks/; this one routes a call to it and seeds
// the devices of a new host.

import { defaultDisks } from './disks/defaults.mts';
import { saveDisks, type SimDisk } from './disks/model.mts';
import type { Runtime } from './state.mts';

export { runBlkid } from './disks/blkid.mts';
export { runLsblk } from './disks/lsblk.mts';
export { runWipefs } from './disks/wipefs.mts';
export { runZpoolCreate } from './disks/zpool-create.mts';
export { BLANK_DISK_ID, BOOT_DISK_ID, defaultDisks, EXPORTED_POOL, EXPORTED_POOL_DISK_ID, OLD_TABLE_DISK_ID, zfsMemberDisk } from './disks/defaults.mts';
export { loadDisks, type SimBlock, type SimDisk } from './disks/model.mts';

/** Write a new host's block devices: the given ones, or the defaults for the pools it was seeded with. */
export function seedDisks(root: string, rt: Runtime, disks?: SimDisk[]): void {
  saveDisks(root, { disks: disks ?? defaultDisks(rt) });
}
