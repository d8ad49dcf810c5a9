// The simulated host's block devices: whole disks with their /dev/disk/by-id
// names, size and model, and what is on them (a partition table, file-system
// or pool signatures, partitions, device-mapper volumes, mounts). Kept in
// <state>/host-disks.json and changed under the state lock, like the rest.
//
// What the kernel would say about a device is derived here once, for lsblk,
// blkid, wipefs and zpool create alike: which device a path names (kernel
// name, /dev/mapper name, by-id link or its -partN link), whether a device is
// busy (something below it mounted, held by device-mapper, or a vdev of an
// imported pool), and which signatures libblkid finds on it and where.

import crypto from 'node:crypto';
import path from 'node:path';

import { atomicWrite, readJson, type Runtime } from '../state.mts';

export interface SimBlock {
  /** Kernel name (sdb, sdb1, nvme0n1p1) or device-mapper name (pve-root). */
  name: string;
  type: 'disk' | 'part' | 'lvm';
  size: number;
  fstype?: string;
  label?: string;
  uuid?: string;
  pttype?: 'gpt' | 'dos';
  ptuuid?: string;
  /** Where it is mounted; "[SWAP]" for active swap, as lsblk shows it. */
  mountpoint?: string;
  children?: SimBlock[];
}

export interface SimDisk extends SimBlock {
  type: 'disk';
  /** Names under /dev/disk/by-id/, the usual one first. */
  ids: string[];
  model: string;
  serial: string;
  tran: 'nvme' | 'sata' | 'sas' | 'usb';
}

export interface DiskState {
  disks: SimDisk[];
}

export const BY_ID = '/dev/disk/by-id/';
export const SECTOR = 512;

export function disksFile(root: string): string {
  return path.join(root, 'host-disks.json');
}

export function loadDisks(root: string): DiskState {
  return readJson<DiskState>(disksFile(root), { disks: [] });
}

export function saveDisks(root: string, state: DiskState): void {
  atomicWrite(disksFile(root), `${JSON.stringify(state, null, 2)}\n`);
}

export function devicePath(node: SimBlock): string {
  return node.type === 'lvm' ? `/dev/mapper/${node.name}` : `/dev/${node.name}`;
}

/** The partition's number, from its kernel name (sdb1 → 1, nvme0n1p9 → 9). */
export function partNumber(node: SimBlock): number {
  return Number(/(\d+)$/.exec(node.name)?.[1] ?? NaN);
}

export function partitionName(disk: string, n: number): string {
  return /\d$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

export interface Located {
  node: SimBlock;
  disk: SimDisk;
  parent?: SimBlock;
}

export function* walk(node: SimBlock, parent?: SimBlock): Generator<{ node: SimBlock; parent?: SimBlock }> {
  yield parent === undefined ? { node } : { node, parent };
  for (const child of node.children ?? []) yield* walk(child, node);
}

/** The device a path names, as the kernel and udev would resolve it; undefined when no such device exists. */
export function locate(state: DiskState, devPath: string): Located | undefined {
  const clean = path.posix.normalize(devPath);
  for (const disk of state.disks) {
    for (const { node, parent } of walk(disk)) {
      if (devicePath(node) === clean) return parent === undefined ? { node, disk } : { node, disk, parent };
    }
    if (!clean.startsWith(BY_ID)) continue;
    const link = clean.slice(BY_ID.length);
    for (const id of disk.ids) {
      if (link === id) return { node: disk, disk };
      const n = link.startsWith(`${id}-part`) ? link.slice(id.length + 5) : '';
      if (!/^\d+$/.test(n)) continue;
      const part = disk.children?.find((c) => c.type === 'part' && partNumber(c) === Number(n));
      if (part) return { node: part, disk, parent: disk };
    }
  }
  return undefined;
}

/** The imported pool whose vdevs include this disk (the kernel's view, from the pool list). */
export function importedPoolOf(state: DiskState, rt: Runtime, disk: SimDisk): string | undefined {
  for (const [name, pool] of Object.entries(rt.zfs.pools)) {
    if (pool.vdevs.some((v) => locate(state, v)?.disk.name === disk.name)) return name;
  }
  return undefined;
}

/**
 * Why an exclusive open (O_EXCL) of the device fails with EBUSY, if it does:
 * a mounted file system or active swap on it or below it, device-mapper
 * volumes on it, or the disk being a vdev of an imported pool.
 */
export function busyReason(state: DiskState, rt: Runtime, located: Located): string | undefined {
  for (const { node } of walk(located.node)) {
    if (node.mountpoint) return `${devicePath(node)} is mounted on ${node.mountpoint}`;
    if (node.type === 'lvm') return `${devicePath(node)} holds it`;
  }
  const pool = importedPoolOf(state, rt, located.disk);
  if (pool !== undefined) {
    const zfsNodes = [...walk(located.node)].filter(({ node }) => node.fstype === 'zfs_member');
    if (zfsNodes.length > 0) return `vdev of imported pool '${pool}'`;
  }
  return undefined;
}

export interface Signature {
  offset: number;
  type: string;
  /** The magic bytes, as wipefs prints them. */
  magic: string;
  uuid?: string;
  label?: string;
}

const FS_MAGIC: Record<string, Array<{ offset: (size: number) => number; magic: string }>> = {
  ext2: [{ offset: () => 0x438, magic: '53 ef' }],
  ext3: [{ offset: () => 0x438, magic: '53 ef' }],
  ext4: [{ offset: () => 0x438, magic: '53 ef' }],
  xfs: [{ offset: () => 0x0, magic: '58 46 53 42' }],
  btrfs: [{ offset: () => 0x10040, magic: '5f 42 48 52 66 53 5f 4d' }],
  vfat: [
    { offset: () => 0x52, magic: '46 41 54 33 32 20 20 20' },
    { offset: () => 0x1fe, magic: '55 aa' },
  ],
  ntfs: [
    { offset: () => 0x3, magic: '4e 54 46 53 20 20 20 20' },
    { offset: () => 0x1fe, magic: '55 aa' },
  ],
  swap: [{ offset: () => 0xff6, magic: '53 57 41 50 53 50 41 43 45 32' }],
  LVM2_member: [{ offset: () => 0x218, magic: '4c 56 4d 32 20 30 30 31' }],
  // The four vdev labels: two at the start of the device, two at its end.
  zfs_member: [
    { offset: () => 0x3f000, magic: '0c b1 ba 00 00 00 00 00' },
    { offset: () => 0x7f000, magic: '0c b1 ba 00 00 00 00 00' },
    { offset: (size) => size - 0x41000, magic: '0c b1 ba 00 00 00 00 00' },
    { offset: (size) => size - 0x1000, magic: '0c b1 ba 00 00 00 00 00' },
  ],
};

/**
 * What libblkid finds on one device, in wipefs's order (file systems and
 * raid/pool labels first, then the partition table). Partitions are not
 * looked into: they are devices of their own.
 */
export function signaturesOf(node: SimBlock): Signature[] {
  const out: Signature[] = [];
  if (node.fstype) {
    for (const m of FS_MAGIC[node.fstype] ?? [{ offset: () => 0, magic: '00 00' }]) {
      out.push({ offset: m.offset(node.size), type: node.fstype, magic: m.magic, ...(node.uuid ? { uuid: node.uuid } : {}), ...(node.label ? { label: node.label } : {}) });
    }
  }
  if (node.pttype === 'gpt') {
    out.push({ offset: 0x200, type: 'gpt', magic: '45 46 49 20 50 41 52 54', ...(node.ptuuid ? { uuid: node.ptuuid } : {}) });
    out.push({ offset: node.size - SECTOR, type: 'gpt', magic: '45 46 49 20 50 41 52 54', ...(node.ptuuid ? { uuid: node.ptuuid } : {}) });
    out.push({ offset: 0x1fe, type: 'PMBR', magic: '55 aa' });
  } else if (node.pttype === 'dos') {
    out.push({ offset: 0x1fe, type: 'dos', magic: '55 aa', ...(node.ptuuid ? { uuid: node.ptuuid } : {}) });
  }
  return out;
}

/** A stable UUID from a seed text, so seeded and created devices look the same on every run. */
export function stableUuid(seed: string): string {
  const h = crypto.createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A ZFS pool GUID as blkid shows it (a decimal 64-bit number). */
export function poolGuid(seed: string): string {
  return BigInt(`0x${crypto.createHash('sha256').update(seed).digest('hex').slice(0, 16)}`).toString();
}

/** util-linux's size_to_human_string with one-letter suffixes (lsblk without --bytes). */
export function humanSize(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
  let exp = 0;
  let v = bytes;
  while (v >= 1024 && exp < units.length - 1) {
    v /= 1024;
    exp++;
  }
  if (exp === 0) return `${bytes}B`;
  const rounded = Math.round(v * 10) / 10;
  return `${Number.isInteger(rounded) ? rounded.toFixed(0) : rounded.toFixed(1)}${units[exp]}`;
}
