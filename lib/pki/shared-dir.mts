// The CA's shared directory, for the bash scripts that are not ported yet.
//
// The bash CA kept its whole state in /etc/step-ca/ssl of CT 103, a bind
// mount of a host directory that other containers mount at the same path,
// and the bash scripts still read a few files from it: the root certificate
// (phoenix_root_ca.crt: trusted_ca, sync_traefik_certs, the Traefik files,
// the host's trust store and step bootstrap), the intermediate + root bundle
// (phoenix_ca.crt: vm-manager, a Portainer health check), the root
// fingerprint (root_ca.fingerprint: vm-manager, portainer-manager),
// certs/root_ca.crt (the step-ca health check run in CT 103) and the ready
// marker (ca.ready: the CT 102 and vLLM application scripts wait for it).
//
// When the manifest still mounts a host directory at /etc/step-ca/ssl in
// the CA container, those public files are written there, on the host side,
// 0644. The passwords are not: the CA password stays in the CA's own
// STEPPATH, the provisioner password on the host (the legacy bridge refuses
// the bash scripts that would need it, lib/core/bridge.mts). The directory loses
// any group or other write bit, so no container that mounts it can replace
// the root certificate the others trust.

import fs from 'node:fs';
import path from 'node:path';
import { removeFile, writeFileAtomic } from '../core/fs.mts';
import { isDryRun } from '../core/context.mts';
import { info, warn } from '../core/log.mts';

/** Where the bash CA's directory is mounted, in CT 103 and in the containers that share it. */
export const LEGACY_SHARED_DIR = '/etc/step-ca/ssl';

/** The public files, by the names the bash scripts read. */
export const SHARED_FILES = {
  root: 'phoenix_root_ca.crt',
  chain: 'phoenix_ca.crt',
  fingerprint: 'root_ca.fingerprint',
  stepRoot: 'certs/root_ca.crt',
  ready: 'ca.ready',
} as const;

/** What a CA made by the bash left in the directory: its own state, secrets included. */
const BASH_CA_STATE = ['config/ca.json', 'ca_password.txt', 'provisioner_password.txt', 'secrets'] as const;

export interface SharedFile {
  name: string;
  text: string;
}

/**
 * The files as the bash wrote them: the bundle is the intermediate, a blank
 * line, then the root; the fingerprint file is the hex digest and a newline.
 * The ready marker is not among them (it is written last, and only after a
 * passing health check).
 */
export function sharedFiles(rootPem: string, intermediatePem: string, fingerprint: string, withStepRoot: boolean): SharedFile[] {
  return [
    { name: SHARED_FILES.root, text: rootPem },
    { name: SHARED_FILES.chain, text: `${intermediatePem}\n${rootPem}` },
    { name: SHARED_FILES.fingerprint, text: `${fingerprint}\n` },
    ...(withStepRoot ? [{ name: SHARED_FILES.stepRoot, text: rootPem }] : []),
  ];
}

/** The parts of a bash CA's state found in the directory (empty when there are none). */
export function bashCaLeftovers(dir: string): string[] {
  return BASH_CA_STATE.filter((name) => fs.existsSync(path.join(dir, name)));
}

/**
 * Write the public files (0644) into the host directory; returns a line per
 * change. certs/root_ca.crt is left alone where a bash CA still has its
 * state: that is its own root, which it needs should it be brought back.
 */
export function writeSharedFiles(dir: string, rootPem: string, intermediatePem: string, fingerprint: string): string[] {
  const changes: string[] = [];
  const leftovers = bashCaLeftovers(dir);
  if (leftovers.length > 0) {
    warn(
      `${dir} still holds a CA made by the bash toolkit (${leftovers.join(', ')}), readable by every container that mounts it; ` +
        'the running CA is the one in the CA container, and its public files replace the bash ones here. Move the old state somewhere private once nothing needs it',
    );
  }
  changes.push(...closeDir(dir));
  const ownState = leftovers.includes('config/ca.json');
  for (const file of sharedFiles(rootPem, intermediatePem, fingerprint, !ownState)) {
    const outcome = writeFileAtomic(path.join(dir, file.name), file.text, { mode: 0o644, dirMode: 0o755 });
    if (outcome !== 'unchanged') changes.push(`${outcome === 'created' ? 'wrote' : 'updated'} ${path.join(dir, file.name)} for the bash scripts`);
  }
  return changes;
}

/** The ready marker in the directory; written after the other files. */
export function writeSharedReady(dir: string, text: string): string[] {
  const file = path.join(dir, SHARED_FILES.ready);
  const outcome = writeFileAtomic(file, text, { mode: 0o644, dirMode: 0o755 });
  return outcome === 'unchanged' ? [] : [`wrote ${file}`];
}

/** Remove the ready marker (the CA does not answer); true when there was one. */
export function clearSharedReady(dir: string): boolean {
  return removeFile(path.join(dir, SHARED_FILES.ready)) === 'removed';
}

/** Take group and other write away from the directory (the bash made it 0777); nothing else of its mode changes. */
function closeDir(dir: string): string[] {
  let mode: number;
  try {
    mode = fs.statSync(dir).mode & 0o7777;
  } catch {
    return [];
  }
  if ((mode & 0o022) === 0) return [];
  const closed = mode & ~0o022;
  if (isDryRun()) info(`DRY-RUN: would chmod ${closed.toString(8)} ${dir}`);
  else fs.chmodSync(dir, closed);
  return [`made ${dir} writable by its owner only (${closed.toString(8)}, was ${mode.toString(8)})`];
}
