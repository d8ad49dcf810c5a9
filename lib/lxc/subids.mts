// Root's subordinate id grants (/etc/subuid, /etc/subgid) for the id maps
// the manifests use.
//
// On a Proxmox node LXC writes a container's id map through shadow's
// newuidmap/newgidmap, which refuse any host range root is not granted in
// these files. A fresh node grants root 100000…165535, Proxmox's default;
// a map that passes a host id through (gid 33 for www-data) needs its own
// line, or the container does not start. These files are shared with the
// rest of the system: Phoenix keeps its lines in a marked block of its own
// (lib/core/owned-block.mts), lists there only what no other line already
// grants, and rewrites the block from all manifests at once, so one
// container never drops another's grant.

import fs from 'node:fs';
import type { LxcManifest } from '../config/types.mts';
import { extraHostRanges, type IdKind } from '../config/id-maps.mts';
import { ensureOwnedBlock, locateOwnedBlock, replaceOwnedBlock, type BlockMarkers } from '../core/owned-block.mts';
import { onHost } from '../guest/hostdirs.mts';

const MARKERS: BlockMarkers = {
  begin: '# BEGIN phoenix: id ranges of container id maps (managed by lxc-manager; edit the manifests instead)',
  end: '# END phoenix',
};

export const SUBID_FILES: Record<IdKind, string> = { u: '/etc/subuid', g: '/etc/subgid' };

interface Grant {
  start: number;
  size: number;
}

/** Root's grants in a subid file: `root:<start>:<count>` (or uid 0). */
function rootGrants(lines: readonly string[]): Grant[] {
  const grants: Grant[] = [];
  for (const line of lines) {
    const match = /^(root|0):(\d+):(\d+)\s*$/.exec(line);
    if (match) grants.push({ start: Number(match[2]), size: Number(match[3]) });
  }
  return grants;
}

function covered(range: Grant, grants: readonly Grant[]): boolean {
  // Ranges may be granted in several adjacent pieces: walk id by id range.
  let next = range.start;
  const end = range.start + range.size;
  const sorted = [...grants].sort((a, b) => a.start - b.start);
  for (const grant of sorted) {
    if (grant.start > next) break;
    next = Math.max(next, grant.start + grant.size);
    if (next >= end) return true;
  }
  return next >= end;
}

/** The block's lines: each needed range that no line outside the block grants yet. */
function missingGrantLines(current: string, needed: readonly Grant[], file: string): string[] {
  const block = locateOwnedBlock(current, MARKERS, file);
  const outside = block === undefined ? current : block.before + block.after;
  const grants = rootGrants(outside.split('\n'));
  const missing: Grant[] = [];
  for (const range of needed) {
    if (covered(range, grants) || missing.some((m) => m.start === range.start && m.size === range.size)) continue;
    missing.push(range);
  }
  missing.sort((a, b) => a.start - b.start);
  return missing.map((g) => `root:${g.start}:${g.size}`);
}

/**
 * The new text of one subid file, given every container's extra ranges of
 * that kind; undefined when the file needs no change (no block, nothing missing).
 */
export function subidFileText(current: string, needed: readonly Grant[], file = 'subid file'): string | undefined {
  const lines = missingGrantLines(current, needed, file);
  const text = replaceOwnedBlock(current, { ...MARKERS, lines, removeWhenEmpty: true }, file);
  return text === current ? undefined : text;
}

/** Make root's grants cover every container's id maps; returns a line per file changed. */
export function grantIdRanges(manifest: LxcManifest, hostRoot: string): string[] {
  const needed: Record<IdKind, Grant[]> = { u: [], g: [] };
  for (const ct of Object.values(manifest.lxc_configs)) {
    for (const range of extraHostRanges(ct)) needed[range.kind].push({ start: range.start, size: range.size });
  }
  const changes: string[] = [];
  for (const kind of ['u', 'g'] as const) {
    const file = onHost(hostRoot, SUBID_FILES[kind]);
    const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    const lines = missingGrantLines(current, needed[kind], file);
    const outcome = ensureOwnedBlock(file, { ...MARKERS, lines, removeWhenEmpty: true, createMode: 0o644 });
    if (outcome !== 'unchanged') changes.push(`updated root's id ranges in ${SUBID_FILES[kind]}`);
  }
  return changes;
}
