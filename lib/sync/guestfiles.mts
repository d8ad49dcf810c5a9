// Putting a generated file into a container without ever leaving it half
// written: the current content is read first (nothing is pushed when it is
// already there), the new content is pushed next to the target under a name
// no service reads (`.<name>.phoenix-new`, which Traefik's and nginx's
// include patterns skip) and then renamed over the target inside the guest.
// A run killed at any point leaves the old file or the new one, and the next
// run compares again and converges.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { info } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';

export interface GuestFile {
  guestPath: string;
  text: string;
  /** Octal permission string for pct push, default 0644. */
  perms?: string;
}

export interface DeployedFile {
  guestPath: string;
  outcome: 'created' | 'changed' | 'unchanged';
  /** What was there before (undefined: absent), for a rollback. */
  previous: string | undefined;
}

/** The file's content in the container, or undefined when it is absent or unreadable (read in dry-run too). */
export async function readGuestText(ctid: string, guestPath: string): Promise<string | undefined> {
  const result = await pct.exec(ctid, ['cat', guestPath], { mutating: false, allowFailure: true, quiet: true });
  return result.code === 0 ? result.stdout : undefined;
}

export async function deployGuestFile(ctid: string, file: GuestFile, scratch: string): Promise<DeployedFile> {
  const previous = await readGuestText(ctid, file.guestPath);
  if (previous === file.text) return { guestPath: file.guestPath, outcome: 'unchanged', previous };
  if (isDryRun()) {
    info(`DRY-RUN: would ${previous === undefined ? 'install' : 'update'} ${file.guestPath} in CT ${ctid} (${Buffer.byteLength(file.text)} bytes)`);
    return { guestPath: file.guestPath, outcome: 'changed', previous };
  }
  await pushText(ctid, file.guestPath, file.text, file.perms ?? '0644', scratch);
  info(`${previous === undefined ? 'installed' : 'updated'} ${file.guestPath} in CT ${ctid}`);
  return { guestPath: file.guestPath, outcome: previous === undefined ? 'created' : 'changed', previous };
}

/** Put back what a deploy replaced (or remove what it created). */
export async function restoreGuestFile(ctid: string, deployed: DeployedFile, scratch: string): Promise<void> {
  if (deployed.outcome === 'unchanged') return;
  if (deployed.previous === undefined) await pct.exec(ctid, ['rm', '-f', deployed.guestPath]);
  else await pushText(ctid, deployed.guestPath, deployed.previous, '0644', scratch);
  info(`restored the previous ${deployed.guestPath} in CT ${ctid}`);
}

async function pushText(ctid: string, guestPath: string, text: string, perms: string, scratch: string): Promise<void> {
  const local = path.join(scratch, `push-${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(local, text, { mode: 0o600 });
  const dir = path.posix.dirname(guestPath);
  const staged = path.posix.join(dir, `.${path.posix.basename(guestPath)}.phoenix-new`);
  try {
    await pct.exec(ctid, ['mkdir', '-p', dir], { quiet: true });
    await pct.push(ctid, local, staged, { perms });
    await pct.exec(ctid, ['mv', '-f', staged, guestPath]);
  } finally {
    fs.rmSync(local, { force: true });
  }
}
