// <state>/stepca.json: where the simulated host's one CA lives, and
// whether the guest holding it runs.

import fs from 'node:fs';
import path from 'node:path';

import { atomicWrite, loadRuntime, paths, readJson, withStateLock } from '../state.mts';
import { provisioners } from './authority.mts';
import { RECORD_FILE, type CaRecord, type ProvisionerRecord } from './layout.mts';

export function recordPath(root: string): string {
  return path.join(root, RECORD_FILE);
}

export function readRecord(root: string): CaRecord | undefined {
  return readJson<CaRecord | undefined>(recordPath(root), undefined);
}

export function writeRecord(root: string, record: CaRecord): void {
  withStateLock(root, () => atomicWrite(recordPath(root), `${JSON.stringify(record, null, 2)}\n`));
}

/** The record's view of the provisioners in ca.json (password digests kept for those it already knew). */
export function refreshRecordProvisioners(root: string, dir: string, known: ProvisionerRecord[] = []): void {
  const record = readRecord(root);
  if (!record || path.resolve(record.ca_dir) !== path.resolve(dir)) return;
  record.provisioners = provisioners(dir).map((p) => {
    const before = [...known, ...record.provisioners].find((k) => k.name === p.name && k.type === p.type);
    return before?.password_sha256 ? { name: p.name, type: p.type, password_sha256: before.password_sha256 } : { name: p.name, type: p.type };
  });
  writeRecord(root, record);
}

/** Whether the guest holding the CA exists and runs in the simulator's state. */
export function guestRunning(root: string, guest: string): boolean {
  const p = paths(root);
  const configured = fs.existsSync(path.join(p.lxcDir, `${guest}.conf`)) || fs.existsSync(path.join(p.qemuDir, `${guest}.conf`));
  return configured && loadRuntime(root).guests[guest]?.status === 'running';
}
