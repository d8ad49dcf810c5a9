// What vm-manager has done inside a VM that Proxmox cannot tell: which
// features ran to success and which set of NFS mounts was put in place.
// Kept on the host in <PHOENIX_HOST_ROOT>/var/lib/phoenix/vm/<vmid>.json
// (next to lxc-manager's records), so a second create of an unchanged VM
// does not start it or run anything in it, and a create that failed half-way
// resumes with the first feature that did not finish.
//
// A record belongs to one incarnation of the VM, named by its SMBIOS UUID:
// a VM destroyed and made again (or cloned anew) has another one, and its
// old record is ignored.

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../core/fs.mts';
import { debug, info } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { readJsonIfPresent } from '../core/json-file.mts';

export interface VmRecord {
  vmid: string;
  /** smbios1 uuid of the VM the record describes. */
  uuid: string;
  /** Features that ran to success, in the order they ran. */
  features: string[];
  /** Fingerprint of the NFS mounts last put in place. */
  mounts?: string;
}

export function recordPath(hostRoot: string, vmid: string): string {
  return path.join(hostRoot, 'var', 'lib', 'phoenix', 'vm', `${vmid}.json`);
}

/** `smbios1: uuid=…,manufacturer=…` → the uuid. */
export function uuidOf(config: Readonly<Record<string, string>>): string {
  return /(?:^|,)uuid=([^,]+)/.exec(config.smbios1 ?? '')?.[1] ?? '';
}

export function readRecord(hostRoot: string, vmid: string, uuid: string): VmRecord {
  const fresh: VmRecord = { vmid, uuid, features: [] };
  const parsed = readJsonIfPresent(recordPath(hostRoot, vmid)) as Partial<VmRecord> | undefined;
  if (typeof parsed !== 'object' || parsed === null) return fresh;
  if (parsed.vmid !== vmid || !uuid || parsed.uuid !== uuid) {
    debug(`the record of VM ${vmid} describes another incarnation (uuid ${parsed.uuid ?? '?'}); ignoring it`);
    return fresh;
  }
  const record: VmRecord = { vmid, uuid, features: Array.isArray(parsed.features) ? parsed.features.filter((f): f is string => typeof f === 'string') : [] };
  if (typeof parsed.mounts === 'string') record.mounts = parsed.mounts;
  return record;
}

export function writeRecord(hostRoot: string, record: VmRecord): void {
  writeFileAtomic(recordPath(hostRoot, record.vmid), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
}

export function removeRecord(hostRoot: string, vmid: string): void {
  const file = recordPath(hostRoot, vmid);
  if (!fs.existsSync(file)) return;
  if (isDryRun()) info(`DRY-RUN: would remove ${file}`);
  else fs.rmSync(file, { force: true });
}
