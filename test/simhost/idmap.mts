// User and group id maps of simulated containers, as LXC applies them, and
// the Linux permission check made through them.
//
// - A container's maps are its raw `lxc.idmap: u|g <ct> <host> <count>`
//   lines when it has any (pve-container then adds nothing: a kind without
//   entries maps nothing); otherwise `unprivileged: 1` gives the default
//   0 → 100000, 65536 ids of each kind; a privileged container is the identity.
// - Starting needs container root (uid 0 and gid 0) mapped, no two entries of
//   a kind overlapping (the kernel refuses such a uid_map), and every host
//   range delegated to root in <host root>/etc/subuid and /etc/subgid, which
//   shadow's newuidmap/newgidmap check (root is not exempt; PVE installs
//   `root:100000:65536` in both).
// - Container root has its capabilities over an inode only when the inode's
//   host uid and gid are both mapped into the container; otherwise the mode
//   bits decide with the subject's host ids, as for anyone else.

import fs from 'node:fs';
import path from 'node:path';

import type { GuestConfig } from './pveconf.mts';

export interface IdRange {
  ct: number;
  host: number;
  count: number;
}

export interface IdMaps {
  u: IdRange[];
  g: IdRange[];
  /** No user namespace: ids are the host's own. */
  identity: boolean;
}

/** The kernel's overflow ids, shown for host ids without a mapping. */
export const OVERFLOW_ID = 65534;

export const IDENTITY_MAPS: IdMaps = { u: [], g: [], identity: true };
export const DEFAULT_UNPRIVILEGED_MAPS: IdMaps = {
  u: [{ ct: 0, host: 100000, count: 65536 }],
  g: [{ ct: 0, host: 100000, count: 65536 }],
  identity: false,
};

/** Parse the maps of a container; a malformed entry is pve-container's die. */
export function idMapsOf(config: GuestConfig): { maps: IdMaps; error?: string } {
  const maps: IdMaps = { u: [], g: [], identity: false };
  let any = false;
  for (const [key, value] of config.main.raw) {
    if (key !== 'lxc.idmap' && key !== 'lxc.id_map') continue;
    const m = /^([ug])\s+(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(value.trim());
    if (!m) return { maps, error: `failed to parse idmap: ${value}` };
    any = true;
    maps[m[1] as 'u' | 'g'].push({ ct: Number(m[2]), host: Number(m[3]), count: Number(m[4]) });
  }
  if (any) return { maps };
  return { maps: config.main.props.unprivileged === '1' ? DEFAULT_UNPRIVILEGED_MAPS : IDENTITY_MAPS };
}

/** Host id of a container id, or undefined when the map does not cover it. */
export function toHost(maps: IdMaps, kind: 'u' | 'g', id: number): number | undefined {
  if (maps.identity) return id;
  for (const r of maps[kind]) if (id >= r.ct && id < r.ct + r.count) return r.host + (id - r.ct);
  return undefined;
}

/** Container id of a host id, or undefined when no entry maps it. */
export function toCt(maps: IdMaps, kind: 'u' | 'g', hostId: number): number | undefined {
  if (maps.identity) return hostId;
  for (const r of maps[kind]) if (hostId >= r.host && hostId < r.host + r.count) return r.ct + (hostId - r.host);
  return undefined;
}

// ---------------------------------------------------------------------------
// pct start: what LXC and newuidmap/newgidmap refuse

/** Ranges delegated to root in a subuid/subgid file; lines that do not parse are skipped, as shadow does. */
export function delegatedRanges(file: string): Array<{ start: number; count: number }> {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: Array<{ start: number; count: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([^:\s]+):(\d+):(\d+)$/.exec(line.trim());
    if (m && (m[1] === 'root' || m[1] === '0')) out.push({ start: Number(m[2]), count: Number(m[3]) });
  }
  return out;
}

/** Is every id of [start, start+count) inside the union of the delegated ranges? */
function covered(start: number, count: number, allowed: Array<{ start: number; count: number }>): boolean {
  let next = start;
  const end = start + count;
  const sorted = [...allowed].sort((a, b) => a.start - b.start);
  let progress = true;
  while (next < end && progress) {
    progress = false;
    for (const r of sorted) {
      if (r.start <= next && next < r.start + r.count) {
        next = r.start + r.count;
        progress = true;
      }
    }
  }
  return next >= end;
}

function overlapping(ranges: IdRange[]): boolean {
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i]!;
      const b = ranges[j]!;
      if (a.ct < b.ct + b.count && b.ct < a.ct + a.count) return true;
      if (a.host < b.host + b.count && b.host < a.host + a.count) return true;
    }
  }
  return false;
}

/**
 * The lines a failed `pct start` prints for these maps, or undefined when
 * LXC would set them up. `pid` only decorates newuidmap's command line.
 */
export function startFailure(vmid: string, maps: IdMaps, hostRoot: string, pid: number): string | undefined {
  if (maps.identity) return undefined;
  const tail = [`lxc_spawn: 1795 Failed to set up id mapping.`, `__lxc_start: 2114 Failed to spawn container "${vmid}"`, `startup for container '${vmid}' failed`];
  for (const kind of ['u', 'g'] as const) {
    if (toHost(maps, kind, 0) === undefined) {
      return [`chown_mapped_root: 3222 No ${kind}id mapping for container root`, `__lxc_start: 2107 Failed to initialize container "${vmid}"`, `startup for container '${vmid}' failed`].join('\n');
    }
  }
  for (const kind of ['u', 'g'] as const) {
    const tool = `new${kind}idmap`;
    const ranges = maps[kind];
    const command = `${tool} ${pid} ${ranges.map((r) => `${r.ct} ${r.host} ${r.count}`).join(' ')}`;
    const allowed = delegatedRanges(path.join(hostRoot, 'etc', kind === 'u' ? 'subuid' : 'subgid'));
    for (const r of ranges) {
      if (!covered(r.host, r.count, allowed)) {
        const why = `${tool}: ${kind}id range [${r.ct}-${r.ct + r.count}) -> [${r.host}-${r.host + r.count}) not allowed`;
        return [`lxc_map_ids: 3701 ${tool} failed to write mapping "${why}": ${command}`, ...tail].join('\n');
      }
    }
    if (overlapping(ranges)) {
      return [`lxc_map_ids: 3701 ${tool} failed to write mapping "${tool}: write to ${kind}id_map failed: Invalid argument": ${command}`, ...tail].join('\n');
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Who acts inside a container, and what the kernel lets them do

/** The acting user inside a container, in container ids. */
export interface Subject {
  uid: number;
  gid: number;
  groups: number[];
}

/** lxc-attach's default: container root, supplementary groups dropped. */
export const CT_ROOT: Subject = { uid: 0, gid: 0, groups: [] };

export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

/** An inode as the kernel sees it: host ids and mode. */
export interface InodeIds {
  uid: number;
  gid: number;
  mode: number;
  isDir: boolean;
}

/** Does container root hold its capabilities over this inode (both its ids mapped)? */
export function capableOver(maps: IdMaps, subject: Subject, inode: InodeIds): boolean {
  return subject.uid === 0 && toCt(maps, 'u', inode.uid) !== undefined && toCt(maps, 'g', inode.gid) !== undefined;
}

/** Is the subject the inode's owner (same host uid)? */
export function ownerOf(maps: IdMaps, subject: Subject, inode: InodeIds): boolean {
  return toHost(maps, 'u', subject.uid) === inode.uid;
}

/** Is the inode's group one of the subject's (host ids)? */
export function inGroup(maps: IdMaps, subject: Subject, hostGid: number): boolean {
  return [subject.gid, ...subject.groups].some((g) => toHost(maps, 'g', g) === hostGid);
}

/** access(2) for `want` (R_OK|W_OK|X_OK bits) on one inode. */
export function permits(maps: IdMaps, subject: Subject, inode: InodeIds, want: number): boolean {
  if (capableOver(maps, subject, inode)) {
    // CAP_DAC_OVERRIDE: anything but executing a file without any x bit.
    return (want & X_OK) === 0 || inode.isDir || (inode.mode & 0o111) !== 0;
  }
  let bits: number;
  if (ownerOf(maps, subject, inode)) bits = (inode.mode >> 6) & 7;
  else if (inGroup(maps, subject, inode.gid)) bits = (inode.mode >> 3) & 7;
  else bits = inode.mode & 7;
  return (bits & want) === want;
}
