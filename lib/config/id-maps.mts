// A container's user and group id maps as LXC applies them.
//
// LXC uses the explicit `lxc.idmap` lines and nothing else: once a container
// names one map of a kind, every id of that kind it does not name is
// unmapped. A manifest that lists only its exceptions (CT 101 passes the
// host's www-data group through as gid 33) would leave container root
// unmapped, and the container would not start. So the manifest's maps are
// completed: Proxmox's unprivileged default (container 0…65535 → host
// 100000…165535) with the named ids punched through, then checked that no
// two ranges claim one id on either side.

import type { IdMap, LxcConfig } from './types.mts';

/** Proxmox's default for unprivileged containers. */
export const DEFAULT_HOST_BASE = 100000;
export const DEFAULT_RANGE = 65536;

export type IdKind = 'u' | 'g';

export interface IdRange {
  kind: IdKind;
  container: number;
  host: number;
  size: number;
  /** Index in the manifest's id_maps, or undefined for a filled-in default range. */
  entry?: number;
}

export interface IdMapProblem {
  /** Index in id_maps of the entry at fault. */
  entry: number;
  message: string;
}

const KIND_NAME: Record<IdKind, string> = { u: 'uid', g: 'gid' };

function kindOf(map: IdMap): IdKind {
  return map.type === 'uid' ? 'u' : 'g';
}

function describe(range: IdRange): string {
  const last = (start: number) => start + range.size - 1;
  const ids = (start: number) => (range.size === 1 ? `${start}` : `${start}-${last(start)}`);
  return `container ${KIND_NAME[range.kind]} ${ids(range.container)} → host ${ids(range.host)}`;
}

/**
 * The complete maps for a manifest's id_maps: for each kind, the manifest's
 * ranges plus default ranges in every gap of container ids 0…65535. A kind
 * the manifest does not name gets the whole default range. Empty when the
 * manifest names no maps (Proxmox then writes its own defaults).
 */
export function completeIdMaps(maps: readonly IdMap[] | undefined): { ranges: IdRange[]; problems: IdMapProblem[] } {
  const ranges: IdRange[] = [];
  const problems: IdMapProblem[] = [];
  if (!maps || maps.length === 0) return { ranges, problems };
  for (const kind of ['u', 'g'] as const) {
    const explicit = maps
      .map((map, entry): IdRange => ({ kind, container: map.container_id, host: map.host_id, size: map.size, entry }))
      .filter((range) => kindOf(maps[range.entry as number] as IdMap) === kind)
      .sort((a, b) => a.container - b.container);
    const all: IdRange[] = [];
    let cursor = 0;
    for (const range of explicit) {
      if (range.container < cursor) {
        const earlier = all.filter((r) => r.entry !== undefined).at(-1) as IdRange;
        problems.push({ entry: range.entry as number, message: `${describe(range)} overlaps ${describe(earlier)} (id_maps/${earlier.entry})` });
        continue;
      }
      if (range.container > cursor && cursor < DEFAULT_RANGE) {
        const end = Math.min(range.container, DEFAULT_RANGE);
        all.push({ kind, container: cursor, host: DEFAULT_HOST_BASE + cursor, size: end - cursor });
      }
      all.push(range);
      cursor = range.container + range.size;
    }
    if (cursor < DEFAULT_RANGE) all.push({ kind, container: cursor, host: DEFAULT_HOST_BASE + cursor, size: DEFAULT_RANGE - cursor });
    // Two container ids on one host id would make one file belong to both.
    const byHost = [...all].sort((a, b) => a.host - b.host);
    for (let i = 1; i < byHost.length; i++) {
      const before = byHost[i - 1] as IdRange;
      const current = byHost[i] as IdRange;
      if (current.host >= before.host + before.size) continue;
      const culprit = current.entry !== undefined ? current : before;
      const other = culprit === current ? before : current;
      const otherText = other.entry !== undefined ? `${describe(other)} (id_maps/${other.entry})` : `the default range ${describe(other)} that completes the map`;
      problems.push({ entry: culprit.entry as number, message: `${describe(culprit)} shares host ids with ${otherText}` });
    }
    ranges.push(...all);
  }
  return { ranges, problems };
}

/** The `lxc.idmap` values for a container, in LXC's `u|g <container> <host> <count>` form. */
export function idMapLines(maps: readonly IdMap[] | undefined): string[] {
  return completeIdMaps(maps).ranges.map((r) => `${r.kind} ${r.container} ${r.host} ${r.size}`);
}

/**
 * The ranges a container runs with: its completed maps; Proxmox's default
 * when it is unprivileged and names none; undefined for a privileged
 * container without maps (ids are the host's own).
 */
export function effectiveRanges(ct: Pick<LxcConfig, 'id_maps' | 'unprivileged'>): IdRange[] | undefined {
  const { ranges } = completeIdMaps(ct.id_maps);
  if (ranges.length > 0) return ranges;
  if (ct.unprivileged !== true) return undefined;
  return (['u', 'g'] as const).map((kind) => ({ kind, container: 0, host: DEFAULT_HOST_BASE, size: DEFAULT_RANGE }));
}

/** The host id a container id maps to, or undefined when it is unmapped. */
export function toHostId(ct: Pick<LxcConfig, 'id_maps' | 'unprivileged'>, kind: 'uid' | 'gid', id: number): number | undefined {
  const ranges = effectiveRanges(ct);
  if (!ranges) return id;
  const want: IdKind = kind === 'uid' ? 'u' : 'g';
  const range = ranges.find((r) => r.kind === want && id >= r.container && id < r.container + r.size);
  return range ? range.host + (id - range.container) : undefined;
}

/**
 * Host ranges the maps use outside Proxmox's default (what root must be
 * granted in /etc/subuid and /etc/subgid before LXC will write the map).
 */
export function extraHostRanges(ct: Pick<LxcConfig, 'id_maps'>): Array<{ kind: IdKind; start: number; size: number }> {
  return completeIdMaps(ct.id_maps)
    .ranges.filter((r) => r.entry !== undefined && !(r.host >= DEFAULT_HOST_BASE && r.host + r.size <= DEFAULT_HOST_BASE + DEFAULT_RANGE))
    .map((r) => ({ kind: r.kind, start: r.host, size: r.size }));
}
