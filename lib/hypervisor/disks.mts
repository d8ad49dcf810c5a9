// Which disks a ZFS pool may be created on, decided before anything is
// touched; used by the ZFS setup step. Disks are sacred:
//
// - a pool is created only on disks that carry no partition table, no
//   file-system signature and no pool label, unless the operator said
//   --wipe-disks;
// - even then, a disk with anything mounted on it (or active swap, or
//   device-mapper volumes), or a disk of an imported pool, is refused;
// - disks are named by their /dev/disk/by-id path (kernel names such as
//   /dev/sdb change between boots), and the plan shows each with its size
//   and model and what would be wiped from it.
//
// inspectDisks() reads the host (lsblk for the device tree, sizes, models
// and mounts; blkid -p for what is written on the disk itself, bypassing
// udev's cache), read-only and in dry-run too. planPools() is pure: the
// manifest's zfs section, what was found, the pools already imported and
// the operator's --wipe-disks go in; the pools to create, the pools that
// exist (left alone, so a second run changes nothing) and every refusal,
// each with the JSON path of the manifest value it is about, come out.

import { ConfigError, PhoenixError } from '../core/errors.mts';
import { query } from '../core/runner.mts';
import type { HypervisorConfig } from '../config/types.mts';

export const BY_ID_DIR = '/dev/disk/by-id/';

/** A device below the disk (partition, device-mapper volume), as lsblk lists it. */
export interface BlockChild {
  path: string;
  type: string;
  fstype?: string;
  label?: string;
  mountpoint?: string;
}

/** What one disk named in the manifest holds. */
export interface InspectedDisk {
  /** The path as the manifest names it. */
  requested: string;
  found: boolean;
  /** The kernel's device (/dev/sdb), as lsblk resolves the path. */
  device?: string;
  type?: string;
  size?: number;
  model?: string;
  /** PTTYPE of the disk itself (gpt, dos). */
  partitionTable?: string;
  /** TYPE found on the disk itself (ext4, zfs_member, …); "ambivalent" when several are. */
  signature?: string;
  signatureLabel?: string;
  children: BlockChild[];
}

interface LsblkNode {
  name?: string;
  path?: string;
  size?: number | string;
  model?: string | null;
  type?: string;
  fstype?: string | null;
  label?: string | null;
  pttype?: string | null;
  mountpoint?: string | null;
  children?: LsblkNode[];
}

const LSBLK_COLUMNS = 'NAME,PATH,SIZE,MODEL,TYPE,FSTYPE,LABEL,PTTYPE,MOUNTPOINT,PKNAME';
/** lsblk's exit status when none of the named devices exists. */
const LSBLK_NONE_FOUND = 32;
/** blkid's exit status when nothing was found (or the device could not be opened). */
const BLKID_NOTHING = 2;
/** blkid -p: more than one signature where one was expected. */
const BLKID_AMBIVALENT = 8;

function flatten(nodes: LsblkNode[] | undefined): BlockChild[] {
  const out: BlockChild[] = [];
  for (const n of nodes ?? []) {
    out.push({
      path: n.path ?? `/dev/${n.name ?? '?'}`,
      type: n.type ?? 'unknown',
      ...(n.fstype ? { fstype: n.fstype } : {}),
      ...(n.label ? { label: n.label } : {}),
      ...(n.mountpoint ? { mountpoint: n.mountpoint } : {}),
    });
    out.push(...flatten(n.children));
  }
  return out;
}

/** `blkid -o export` lines: KEY=value, with backslash-escaped characters. */
export function parseBlkidExport(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    out[line.slice(0, eq)] = line.slice(eq + 1).replace(/\\(.)/g, '$1');
  }
  return out;
}

async function inspectOne(requested: string): Promise<InspectedDisk> {
  const listed = await query({ cmd: 'lsblk', args: ['--json', '--bytes', '--output', LSBLK_COLUMNS, requested], allowFailure: true, quiet: true });
  if (listed.code === LSBLK_NONE_FOUND) return { requested, found: false, children: [] };
  if (listed.code !== 0) throw new PhoenixError(`cannot list block device ${requested}: lsblk exited ${listed.code}: ${listed.stderr.trim()}`);
  const top = (JSON.parse(listed.stdout) as { blockdevices?: LsblkNode[] }).blockdevices?.[0];
  if (!top) return { requested, found: false, children: [] };
  const probed = await query({ cmd: 'blkid', args: ['-p', '-o', 'export', requested], allowFailure: true, quiet: true });
  let tags: Record<string, string> = {};
  if (probed.code === 0) tags = parseBlkidExport(probed.stdout);
  else if (probed.code === BLKID_AMBIVALENT) tags = { TYPE: 'ambivalent' };
  else if (probed.code !== BLKID_NOTHING) throw new PhoenixError(`cannot probe ${requested}: blkid exited ${probed.code}: ${probed.stderr.trim()}`);
  const partitionTable = tags.PTTYPE ?? top.pttype ?? undefined;
  const signature = tags.TYPE ?? top.fstype ?? undefined;
  const signatureLabel = tags.LABEL ?? top.label ?? undefined;
  return {
    requested,
    found: true,
    device: top.path ?? requested,
    type: top.type ?? 'unknown',
    size: Number(top.size ?? 0),
    model: (top.model ?? '').trim() || 'unknown model',
    ...(partitionTable ? { partitionTable } : {}),
    ...(signature ? { signature } : {}),
    ...(signatureLabel ? { signatureLabel } : {}),
    children: [
      // A signature or mount on the disk itself counts like one below it.
      ...(top.mountpoint ? [{ path: top.path ?? requested, type: top.type ?? 'disk', mountpoint: top.mountpoint }] : []),
      ...flatten(top.children),
    ],
  };
}

/** What each path holds, one lsblk and one blkid call per distinct path, read-only. */
export async function inspectDisks(paths: readonly string[]): Promise<InspectedDisk[]> {
  const out: InspectedDisk[] = [];
  for (const p of [...new Set(paths)]) out.push(await inspectOne(p));
  return out;
}

export type ZfsSection = NonNullable<HypervisorConfig['zfs']>;

export type RefusalRule =
  | 'unknown-raid-level'
  | 'too-few-disks'
  | 'duplicate-disk'
  | 'not-by-id'
  | 'dataset-unknown-pool'
  | 'disk-not-found'
  | 'disk-in-use'
  | 'disk-imported-pool'
  | 'disk-partition-table'
  | 'disk-signature'
  | 'disk-pool-label';

export interface Refusal {
  rule: RefusalRule;
  /** JSON pointer into the hypervisor manifest. */
  pointer: string;
  message: string;
}

export interface PlannedDisk {
  byId: string;
  device: string;
  size: number;
  model: string;
  /** What --wipe-disks would erase, in words; empty for a clean disk. */
  wipe: string[];
}

export type VdevType = 'stripe' | 'mirror' | 'raidz1' | 'raidz2' | 'raidz3';

export interface PlannedPool {
  name: string;
  pointer: string;
  vdev: VdevType;
  disks: PlannedDisk[];
}

export interface PoolPlan {
  create: PlannedPool[];
  /** Pools of the manifest that are imported already: left as they are. */
  existing: string[];
  /** Any refusal means nothing of the plan may be carried out. */
  refusals: Refusal[];
}

const VDEV_OF_RAID_LEVEL: Readonly<Record<string, VdevType>> = {
  single: 'stripe',
  stripe: 'stripe',
  mirror: 'mirror',
  raidz1: 'raidz1',
  RAIDZ1: 'raidz1',
  raidz2: 'raidz2',
  RAIDZ2: 'raidz2',
  raidz3: 'raidz3',
  RAIDZ3: 'raidz3',
};
const MIN_DISKS: Readonly<Record<VdevType, number>> = { stripe: 1, mirror: 2, raidz1: 2, raidz2: 3, raidz3: 4 };

/** Bytes in decimal units, as disk vendors and the plan state them. */
export function formatSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** One line of the plan: the disk by its by-id path, with size, model and what would be wiped. */
export function describePlannedDisk(disk: PlannedDisk): string {
  const wipe = disk.wipe.length > 0 ? `; wipes ${disk.wipe.join(', ')}` : '';
  return `${disk.byId} (${disk.device}, ${formatSize(disk.size)}, ${disk.model})${wipe}`;
}

/** What is on the disk, each item paired with whether --wipe-disks may erase it. */
function contentsOf(disk: InspectedDisk, importedPools: ReadonlySet<string>): Array<{ rule: RefusalRule; text: string }> {
  const found: Array<{ rule: RefusalRule; text: string }> = [];
  const poolLabel = (label: string | undefined): { rule: RefusalRule; text: string } =>
    label !== undefined && importedPools.has(label)
      ? { rule: 'disk-imported-pool', text: `a vdev of the imported pool '${label}'` }
      : { rule: 'disk-pool-label', text: `a label of the pool '${label ?? '?'}' (not imported)` };
  for (const child of disk.children) {
    if (child.mountpoint) found.push({ rule: 'disk-in-use', text: `${child.path} mounted on ${child.mountpoint}` });
    else if (child.type !== 'part' && child.type !== 'disk') found.push({ rule: 'disk-in-use', text: `the active ${child.type} volume ${child.path}` });
  }
  if (disk.signature === 'zfs_member') found.push(poolLabel(disk.signatureLabel));
  else if (disk.signature) found.push({ rule: 'disk-signature', text: `a ${disk.signature} signature` });
  if (disk.partitionTable) found.push({ rule: 'disk-partition-table', text: `a ${disk.partitionTable} partition table` });
  for (const child of disk.children) {
    if (child.type !== 'part' || !child.fstype) continue;
    if (child.fstype === 'zfs_member') {
      const item = poolLabel(child.label);
      found.push({ rule: item.rule, text: `${child.path}: ${item.text}` });
    } else {
      found.push({ rule: 'disk-signature', text: `${child.path}: ${child.fstype}${child.label ? ` '${child.label}'` : ''}` });
    }
  }
  return found;
}

/** Rules --wipe-disks does not lift. */
const ALWAYS_REFUSED: ReadonlySet<RefusalRule> = new Set(['disk-in-use', 'disk-imported-pool']);

/**
 * The pools to create and on which disks, or why not. `inspected` must hold
 * every disk of the pools that do not exist yet (inspectDisks on them);
 * `existingPools` are the imported pools (`zpool list -H -o name`).
 */
export function planPools(zfs: ZfsSection, inspected: readonly InspectedDisk[], existingPools: readonly string[], options: { wipeDisks: boolean }): PoolPlan {
  const refusals: Refusal[] = [];
  const create: PlannedPool[] = [];
  const existing: string[] = [];
  const imported = new Set(existingPools);
  const byPath = new Map(inspected.map((d) => [d.requested, d]));
  const firstUse = new Map<string, string>();
  const firstDevice = new Map<string, string>();
  const pools = zfs.pools ?? [];

  pools.forEach((pool, i) => {
    const at = `/zfs/pools/${i}`;
    const raidLevel = String(pool.raid_level);
    const vdev = VDEV_OF_RAID_LEVEL[raidLevel];
    if (vdev === undefined) {
      refusals.push({ rule: 'unknown-raid-level', pointer: `${at}/raid_level`, message: `unknown raid level '${raidLevel}' (one of ${Object.keys(VDEV_OF_RAID_LEVEL).join(', ')})` });
    } else if (pool.disks.length < MIN_DISKS[vdev]) {
      refusals.push({ rule: 'too-few-disks', pointer: `${at}/disks`, message: `${raidLevel} needs at least ${MIN_DISKS[vdev]} disks, ${pool.disks.length} given` });
    }
    pool.disks.forEach((disk, j) => {
      const first = firstUse.get(disk);
      if (first !== undefined) refusals.push({ rule: 'duplicate-disk', pointer: `${at}/disks/${j}`, message: `${disk} is listed twice (first at ${first})` });
      else firstUse.set(disk, `${at}/disks/${j}`);
    });
    if (imported.has(pool.name)) {
      existing.push(pool.name);
      return;
    }
    const planned: PlannedDisk[] = [];
    pool.disks.forEach((disk, j) => {
      const pointer = `${at}/disks/${j}`;
      if (firstUse.get(disk) !== pointer) return; // a repeat, refused above
      if (!disk.startsWith(BY_ID_DIR)) {
        refusals.push({ rule: 'not-by-id', pointer, message: `${disk}: name the disk by its ${BY_ID_DIR} path; kernel names change between boots` });
        return;
      }
      const found = byPath.get(disk);
      if (!found?.found) {
        refusals.push({ rule: 'disk-not-found', pointer, message: `${disk}: no such block device` });
        return;
      }
      const device = found.device ?? disk;
      const sameDevice = firstDevice.get(device);
      if (sameDevice !== undefined) {
        refusals.push({ rule: 'duplicate-disk', pointer, message: `${disk} is the same disk (${device}) as ${sameDevice}` });
        return;
      }
      firstDevice.set(device, pointer);
      const contents = contentsOf(found, imported);
      const blocking = contents.filter((c) => ALWAYS_REFUSED.has(c.rule) || !options.wipeDisks);
      for (const c of blocking) {
        const hint = ALWAYS_REFUSED.has(c.rule) ? 'never wiped, --wipe-disks or not' : 'give --wipe-disks to erase it';
        refusals.push({ rule: c.rule, pointer, message: `${disk} (${device}) holds ${c.text}: ${hint}` });
      }
      planned.push({ byId: disk, device, size: found.size ?? 0, model: found.model ?? 'unknown model', wipe: contents.map((c) => c.text) });
    });
    if (vdev !== undefined) create.push({ name: pool.name, pointer: at, vdev, disks: planned });
  });

  const known = new Set([...pools.map((p) => p.name), ...existingPools]);
  (zfs.datasets ?? []).forEach((ds, i) => {
    if (!known.has(ds.pool)) refusals.push({ rule: 'dataset-unknown-pool', pointer: `/zfs/datasets/${i}/pool`, message: `dataset '${ds.name}' is on the pool '${ds.pool}', which the manifest does not define and the host does not have` });
  });
  return { create, existing, refusals };
}

/** The `zpool create` arguments for a planned pool (-f only when the operator allowed wiping). */
export function zpoolCreateArgs(pool: PlannedPool, options: { force: boolean }): string[] {
  return [
    'create',
    ...(options.force ? ['-f'] : []),
    '-o', 'autotrim=on',
    '-O', 'compression=lz4',
    '-O', 'atime=off',
    pool.name,
    ...(pool.vdev === 'stripe' ? [] : [pool.vdev]),
    ...pool.disks.map((d) => d.byId),
  ];
}

/** The error a plan with refusals ends in: the first refusal's JSON path, every refusal in the message. */
export function refusalError(file: string, refusals: readonly Refusal[]): ConfigError {
  const [first, ...rest] = refusals;
  if (first === undefined) throw new Error('refusalError needs at least one refusal');
  const more = rest.map((r) => `\n  ${r.pointer}: ${r.message}`).join('');
  return new ConfigError(file, first.pointer, `${first.message}${more}`, 'nothing was changed');
}
