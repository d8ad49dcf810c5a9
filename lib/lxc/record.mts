// What lxc-manager has done inside a container that Proxmox cannot tell us:
// which features ran, which application script (by content) ran, whether the
// health checks passed. Kept on the host in
// <PHOENIX_HOST_ROOT>/var/lib/phoenix/lxc/<ctid>.json, so a second create of
// an unchanged container runs none of them again, and a create that failed
// half-way resumes at the step that failed.
//
// A record belongs to one incarnation of the container: it names the root
// disk, and a container whose root disk differs (destroyed and made again
// outside Phoenix) is treated as having no record.

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../core/fs.mts';
import { debug, info } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { readJsonIfPresent } from '../core/json-file.mts';

export interface LifecycleRecord {
  ctid: string;
  /** The rootfs volume the record was written for. */
  rootfs: string;
  features: string[];
  application_script?: { name: string; digest: string };
  health?: 'passed';
}

export function recordPath(hostRoot: string, ctid: string): string {
  return path.join(hostRoot, 'var', 'lib', 'phoenix', 'lxc', `${ctid}.json`);
}

export function emptyRecord(ctid: string, rootfs: string): LifecycleRecord {
  return { ctid, rootfs, features: [] };
}

export function readRecord(hostRoot: string, ctid: string, rootfs: string): LifecycleRecord {
  const file = recordPath(hostRoot, ctid);
  const parsed = readJsonIfPresent(file) as Partial<LifecycleRecord> | undefined;
  if (typeof parsed !== 'object' || parsed === null) return emptyRecord(ctid, rootfs);
  if (parsed.rootfs !== rootfs || parsed.ctid !== ctid) {
    debug(`${file} describes another incarnation of CT ${ctid} (rootfs ${parsed.rootfs ?? '?'}); ignoring it`);
    return emptyRecord(ctid, rootfs);
  }
  const record: LifecycleRecord = { ctid, rootfs, features: Array.isArray(parsed.features) ? parsed.features.filter((f) => typeof f === 'string') : [] };
  if (parsed.application_script && typeof parsed.application_script.name === 'string') record.application_script = parsed.application_script;
  if (parsed.health === 'passed') record.health = 'passed';
  return record;
}

export function writeRecord(hostRoot: string, record: LifecycleRecord): void {
  writeFileAtomic(recordPath(hostRoot, record.ctid), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
}

export function removeRecord(hostRoot: string, ctid: string): boolean {
  const file = recordPath(hostRoot, ctid);
  if (!fs.existsSync(file)) return false;
  if (isDryRun()) info(`DRY-RUN: would remove ${file}`);
  else fs.rmSync(file, { force: true });
  return true;
}
