// The host side of bind mounts: the source directories exist before the
// container needs them, and belong to the uid/gid the container sees as
// owner_uid/owner_gid.
//
// Ownership is declared, not toggled: the host ids come from the container's
// own id maps (or the unprivileged +100000 offset), a directory is chowned
// only when it is not owned that way already, and a path that two containers
// mount with different owners is left alone with a warning instead of
// flip-flopping with every create. Nothing is chowned recursively:
// files inside belong to whoever wrote them.

import fs from 'node:fs';
import path from 'node:path';
import type { LxcConfig, LxcManifest, MountPoint } from '../config/types.mts';
import { ensureDir } from '../core/fs.mts';
import { isDryRun } from '../core/context.mts';
import { info, warn } from '../core/log.mts';
import { toHostId } from '../config/id-maps.mts';

/** A manifest path on the host, inside PHOENIX_HOST_ROOT. */
export function onHost(hostRoot: string, manifestPath: string): string {
  return hostRoot === '/' ? manifestPath : path.join(hostRoot, manifestPath);
}

export interface HostDirPlan {
  manifestPath: string;
  hostPath: string;
  /** Treated as a file mount: only its parent directory is created. */
  isFile: boolean;
  owner?: { uid: number; gid: number };
  /** Why no owner is applied although the manifest names one. */
  ownerSkipped?: string;
}

/** A name with an extension (`ca.crt`, `app.conf`) is a file mount; the upstream test was "contains a dot". */
function looksLikeFile(p: string): boolean {
  return /^[^.].*\.[A-Za-z0-9]+$/.test(path.basename(p));
}

export function planHostDirs(ctid: string, manifest: LxcManifest, hostRoot: string): HostDirPlan[] {
  const ct = manifest.lxc_configs[ctid];
  if (!ct) return [];
  return (ct.mount_points ?? []).map((mount) => {
    const hostPath = onHost(hostRoot, mount.host_path);
    const plan: HostDirPlan = { manifestPath: mount.host_path, hostPath, isFile: fs.existsSync(hostPath) ? !fs.statSync(hostPath).isDirectory() : looksLikeFile(mount.host_path) };
    const wanted = ownerFor(ct, mount);
    if (wanted === 'none') return plan;
    if (typeof wanted === 'string') {
      plan.ownerSkipped = wanted;
      return plan;
    }
    const rivals = otherOwners(ctid, mount.host_path, manifest).filter((o) => o.owner.uid !== wanted.uid || o.owner.gid !== wanted.gid);
    if (rivals.length > 0) {
      plan.ownerSkipped = `also mounted by ${rivals.map((r) => `CT ${r.ctid} as ${r.owner.uid}:${r.owner.gid}`).join(', ')}; this CT wants ${wanted.uid}:${wanted.gid}`;
      return plan;
    }
    plan.owner = wanted;
    return plan;
  });
}

function ownerFor(ct: LxcConfig, mount: MountPoint): { uid: number; gid: number } | 'none' | string {
  if (mount.owner_uid === undefined && mount.owner_gid === undefined) return 'none';
  const uid = mount.owner_uid === undefined ? undefined : toHostId(ct, 'uid', mount.owner_uid);
  const gid = mount.owner_gid === undefined ? undefined : toHostId(ct, 'gid', mount.owner_gid);
  if (mount.owner_uid !== undefined && uid === undefined) return `uid ${mount.owner_uid} is not mapped by the container's id maps`;
  if (mount.owner_gid !== undefined && gid === undefined) return `gid ${mount.owner_gid} is not mapped by the container's id maps`;
  return { uid: uid ?? -1, gid: gid ?? -1 };
}

function otherOwners(ctid: string, hostPath: string, manifest: LxcManifest): Array<{ ctid: string; owner: { uid: number; gid: number } }> {
  const out: Array<{ ctid: string; owner: { uid: number; gid: number } }> = [];
  for (const [id, other] of Object.entries(manifest.lxc_configs)) {
    if (id === ctid) continue;
    for (const mount of other.mount_points ?? []) {
      if (path.resolve(mount.host_path) !== path.resolve(hostPath)) continue;
      const owner = ownerFor(other, mount);
      if (typeof owner === 'object') out.push({ ctid: id, owner });
    }
  }
  return out;
}

/** Create missing directories and set owners; returns a line per change made (or planned, in a dry-run). */
export function applyHostDirs(plans: readonly HostDirPlan[]): string[] {
  const changes: string[] = [];
  for (const plan of plans) {
    const dir = plan.isFile ? path.dirname(plan.hostPath) : plan.hostPath;
    // An existing directory keeps its mode: its owner (a CA, a web server) chose it.
    if (!fs.existsSync(dir)) {
      ensureDir(dir);
      changes.push(`created ${dir}`);
    }
    if (plan.isFile && !fs.existsSync(plan.hostPath)) warn(`${plan.manifestPath} is a file mount and does not exist yet; the container will not start until it does`);
    if (plan.ownerSkipped) {
      warn(`not changing the owner of ${plan.manifestPath}: ${plan.ownerSkipped}`);
      continue;
    }
    if (!plan.owner || plan.isFile) continue;
    const stat = statOrUndefined(dir);
    const { uid, gid } = plan.owner;
    if (stat && (uid < 0 || stat.uid === uid) && (gid < 0 || stat.gid === gid)) continue;
    if (isDryRun()) info(`DRY-RUN: would chown ${uid}:${gid} ${dir}`);
    else {
      fs.chownSync(dir, uid, gid);
      info(`${dir} now belongs to ${uid}:${gid}`);
    }
    changes.push(`chown ${uid}:${gid} ${dir}`);
  }
  return changes;
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/** Host directories only this container mounts (what `delete --purge-data` may remove). */
export function exclusiveHostDirs(ctid: string, manifest: LxcManifest, hostRoot: string): { remove: string[]; shared: string[] } {
  const ct = manifest.lxc_configs[ctid];
  const remove: string[] = [];
  const shared: string[] = [];
  for (const mount of ct?.mount_points ?? []) {
    const users = Object.entries(manifest.lxc_configs).filter(([id, other]) => id !== ctid && (other.mount_points ?? []).some((m) => path.resolve(m.host_path) === path.resolve(mount.host_path)));
    (users.length > 0 ? shared : remove).push(onHost(hostRoot, mount.host_path));
  }
  return { remove, shared };
}
