// Mount points and volumes: the manifest's bind mounts and volumes as `mpN`
// values, matched to the container's current ones by container path, and
// the resizes a larger volume needs.

import { type LxcConfig } from '../config/types.mts';
import { formatProps, parseProps } from './props.mts';
import { MOUNT_PATH, integerIn, matching } from '../config/field-values.mts';
import { type PveConfig } from '../pve/args.mts';

export const STORAGE_ID = /^[A-Za-z][A-Za-z0-9_.-]*$/;
export const MAX_DISK_GB = 1048576;

export interface DesiredMount {
  kind: 'bind' | 'volume';
  containerPath: string;
  /** bind: the host directory or file. */
  hostPath?: string;
  readOnly?: boolean;
  /** volume: storage and size. */
  storage?: string;
  sizeGb?: number;
  /** For messages: the manifest key it came from. */
  source: string;
}

export function desiredMounts(ct: LxcConfig): DesiredMount[] {
  const mounts: DesiredMount[] = [];
  const path = (field: string, value: string) => matching(field, value, MOUNT_PATH, "an absolute path without blanks, ',', '=' or ':'");
  for (const [source, list] of [['zfs_volumes', ct.zfs_volumes], ['volumes', ct.volumes]] as const) {
    (list ?? []).forEach((v, i) => {
      path(`${source}/${i}/mount_point`, v.mount_point);
      matching(`${source}/${i}/pool`, v.pool, STORAGE_ID, 'a Proxmox storage id');
      integerIn(`${source}/${i}/size_gb`, v.size_gb, 1, MAX_DISK_GB);
      mounts.push({ kind: 'volume', containerPath: v.mount_point, storage: v.pool, sizeGb: v.size_gb, source: `${source} '${v.name}'` });
    });
  }
  (ct.mount_points ?? []).forEach((m, i) => {
    path(`mount_points/${i}/host_path`, m.host_path);
    path(`mount_points/${i}/container_path`, m.container_path);
    mounts.push({ kind: 'bind', containerPath: m.container_path, hostPath: m.host_path, readOnly: m.read_only === true, source: `mount_points ${m.host_path}` });
  });
  return mounts;
}

/** The `mpN` value for a mount that does not exist yet. */
export function mountValue(mount: DesiredMount): string {
  if (mount.kind === 'bind') return formatProps({ volume: mount.hostPath, mp: mount.containerPath, ro: mount.readOnly ? '1' : undefined }, 'volume');
  return formatProps({ volume: `${mount.storage}:${mount.sizeGb}`, mp: mount.containerPath }, 'volume');
}

const normPath = (p: string) => (p.length > 1 ? p.replace(/\/+$/, '') : p);

/**
 * Mount slots: an existing `mpN` is found by its container path, never by
 * guessing the next free slot (a guess adds the same mount again on every
 * run, or overwrites another); new mounts take the lowest free slots.
 */
export function planMounts(mounts: readonly DesiredMount[], current: PveConfig): { set: Record<string, string>; resize: Array<{ disk: string; size: string }>; notes: string[] } {
  const set: Record<string, string> = {};
  const resize: Array<{ disk: string; size: string }> = [];
  const notes: string[] = [];
  const slots = Object.entries(current.values)
    .filter(([key]) => /^mp\d+$/.test(key))
    .map(([key, value]) => ({ key, props: parseProps(value, 'volume') }));
  const used = new Set(slots.map((s) => s.key));
  const nextFree = (): string => {
    for (let i = 0; ; i++) {
      if (!used.has(`mp${i}`)) {
        used.add(`mp${i}`);
        return `mp${i}`;
      }
    }
  };
  for (const mount of mounts) {
    const slot = slots.find((s) => s.props.mp !== undefined && normPath(s.props.mp) === normPath(mount.containerPath));
    if (!slot) {
      set[nextFree()] = mountValue(mount);
      continue;
    }
    const volume = slot.props.volume ?? '';
    if (mount.kind === 'bind') {
      const ro = slot.props.ro === '1';
      if (normPath(volume) !== normPath(mount.hostPath ?? '') || ro !== (mount.readOnly === true)) set[slot.key] = mountValue(mount);
      continue;
    }
    if (volume.startsWith('/')) {
      notes.push(`${slot.key} at ${mount.containerPath} is a bind mount of ${volume}, but ${mount.source} wants a volume; left as is`);
      continue;
    }
    if (mount.storage !== undefined && !volume.startsWith(`${mount.storage}:`)) {
      notes.push(`${slot.key} at ${mount.containerPath} lives on ${volume.split(':')[0]}, not on ${mount.storage}; moving volumes is not automatic`);
    }
    const have = sizeInGb(slot.props.size);
    const want = mount.sizeGb ?? 0;
    if (have !== undefined && want > have) resize.push({ disk: slot.key, size: `${want}G` });
    else if (have !== undefined && want < have) notes.push(`${slot.key} is ${have}G, ${mount.source} asks for ${want}G; volumes are never shrunk`);
  }
  return { set, resize, notes };
}

/** "8G", "512M", "1T", a plain number of bytes → gigabytes. */
export function sizeInGb(size: string | undefined): number | undefined {
  if (size === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)([KMGT])?$/i.exec(size.trim());
  if (!match) return undefined;
  const n = Number(match[1]);
  switch ((match[2] ?? '').toUpperCase()) {
    case 'K':
      return n / 1024 ** 2;
    case 'M':
      return n / 1024;
    case 'G':
      return n;
    case 'T':
      return n * 1024;
    default:
      return n / 1024 ** 3;
  }
}
