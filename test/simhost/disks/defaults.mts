// The block devices a seeded host starts with: a disk behind every vdev of
// the seeded pools (GPT, partition 1 labelled with the pool, partition 9
// reserved, as `zpool create` leaves a whole disk), plus the disks a used
// Proxmox node has lying around:
//
//   sda  boot disk: BIOS-boot, EFI (vfat on /boot/efi), LVM (pve-swap as
//        swap, pve-root on /, pve-data)          → busy, never to be wiped
//   sdb  blank 4 TB disk                          → free
//   sdc  old MBR partition table with an NTFS partition
//   sdd  member of an exported pool "oldtank"
//
// Non-NVMe pool disks take the letters after these.

import type { Runtime } from '../state.mts';
import { BY_ID, partitionName, poolGuid, stableUuid, type SimBlock, type SimDisk } from './model.mts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export const BOOT_DISK_ID = 'ata-Samsung_SSD_870_EVO_500GB_S6PXNSIM0000010';
export const BLANK_DISK_ID = 'ata-WDC_WD40EFRX-68N32N0_WD-SIM0000011';
export const OLD_TABLE_DISK_ID = 'ata-ST4000VN008-2DR166_ZDHSIM12';
export const EXPORTED_POOL_DISK_ID = 'ata-WDC_WD20EFRX-68EUZN0_WD-SIM0000013';
export const EXPORTED_POOL = 'oldtank';

function part(disk: string, n: number, size: number, extra: Partial<SimBlock> = {}): SimBlock {
  return { name: partitionName(disk, n), type: 'part', size, ...extra };
}

/** A ZFS whole-disk vdev as `zpool create` labels it. */
export function zfsMemberDisk(disk: Omit<SimDisk, 'type' | 'children' | 'pttype' | 'ptuuid'>, pool: string, guidSeed: string): SimDisk {
  return {
    ...disk,
    type: 'disk',
    pttype: 'gpt',
    ptuuid: stableUuid(`gpt:${pool}:${disk.name}`),
    children: [
      part(disk.name, 1, disk.size - 10 * MiB, { fstype: 'zfs_member', label: pool, uuid: poolGuid(guidSeed) }),
      part(disk.name, 9, 8 * MiB),
    ],
  };
}

export function spareDisks(): SimDisk[] {
  const boot: SimDisk = {
    name: 'sda',
    type: 'disk',
    ids: [BOOT_DISK_ID, 'wwn-0x5002538f0000a010'],
    model: 'Samsung SSD 870 EVO 500GB',
    serial: 'S6PXNSIM0000010',
    tran: 'sata',
    size: 500_107_862_016,
    pttype: 'gpt',
    ptuuid: stableUuid('gpt:sda'),
    children: [
      part('sda', 1, 1007 * 1024),
      part('sda', 2, 1 * GiB, { fstype: 'vfat', uuid: '6A1B-2C3D', mountpoint: '/boot/efi' }),
      part('sda', 3, 499_000_000_000, {
        fstype: 'LVM2_member',
        uuid: 'sIm0Lv-M2me-mber-0000-0000-0000-sda3v0',
        children: [
          { name: 'pve-swap', type: 'lvm', size: 8 * GiB, fstype: 'swap', uuid: stableUuid('pve-swap'), mountpoint: '[SWAP]' },
          { name: 'pve-root', type: 'lvm', size: 96 * GiB, fstype: 'ext4', uuid: stableUuid('pve-root'), mountpoint: '/' },
          { name: 'pve-data', type: 'lvm', size: 350 * GiB },
        ],
      }),
    ],
  };
  const blank: SimDisk = { name: 'sdb', type: 'disk', ids: [BLANK_DISK_ID], model: 'WDC WD40EFRX-68N32N0', serial: 'WD-SIM0000011', tran: 'sata', size: 4_000_787_030_016 };
  const oldTable: SimDisk = {
    name: 'sdc',
    type: 'disk',
    ids: [OLD_TABLE_DISK_ID],
    model: 'ST4000VN008-2DR166',
    serial: 'ZDHSIM12',
    tran: 'sata',
    size: 4_000_787_030_016,
    pttype: 'dos',
    ptuuid: '5a1e0c12',
    children: [part('sdc', 1, 4_000_785_981_440, { fstype: 'ntfs', label: 'Backup', uuid: '3C1A5F0E1A5EC6D8' })],
  };
  const exported = zfsMemberDisk(
    { name: 'sdd', ids: [EXPORTED_POOL_DISK_ID], model: 'WDC WD20EFRX-68EUZN0', serial: 'WD-SIM0000013', tran: 'sata', size: 2_000_398_934_016 },
    EXPORTED_POOL,
    `${EXPORTED_POOL}:sdd`,
  );
  return [boot, blank, oldTable, exported];
}

/** Model and serial from a by-id name: "<bus>-<Model_With_Underscores>_<SERIAL>". */
export function describeId(id: string): { model: string; serial: string; tran: SimDisk['tran'] } {
  const dash = id.indexOf('-');
  const bus = dash > 0 ? id.slice(0, dash) : '';
  const rest = dash > 0 ? id.slice(dash + 1) : id;
  const cut = rest.lastIndexOf('_');
  const model = (cut > 0 ? rest.slice(0, cut) : rest).replace(/_/g, ' ');
  const serial = cut > 0 ? rest.slice(cut + 1) : rest;
  return { model, serial, tran: bus === 'nvme' ? 'nvme' : bus === 'usb' ? 'usb' : bus === 'scsi' ? 'sas' : 'sata' };
}

/** The default disks of a seeded host whose runtime already holds its pools. */
export function defaultDisks(rt: Runtime): SimDisk[] {
  const disks = spareDisks();
  let nvme = 0;
  let letter = 'e'.charCodeAt(0);
  for (const name of Object.keys(rt.zfs.pools).sort()) {
    const pool = rt.zfs.pools[name]!;
    const share = pool.layout === 'mirror' ? pool.size : pool.size / Math.max(pool.vdevs.length, 1);
    for (const vdev of pool.vdevs) {
      const id = vdev.startsWith(BY_ID) ? vdev.slice(BY_ID.length) : vdev.replace(/^\/dev\//, '');
      const info = describeId(id);
      const kernelName = info.tran === 'nvme' ? `nvme${nvme++}n1` : `sd${String.fromCharCode(letter++)}`;
      // The disk is a little larger than its share of the pool: ZFS keeps partition 9 and some slack.
      const size = Math.ceil((share + 16 * MiB) / (1024 * 1024)) * 1024 * 1024;
      disks.push(zfsMemberDisk({ name: kernelName, ids: [id], size, ...info }, name, `${name}:pool`));
    }
  }
  return disks;
}
