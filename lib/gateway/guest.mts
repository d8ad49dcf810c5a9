// What the gateway (CT 101) and mesh (CT 102) application scripts share: their
// argument contract and the few guest operations both need. Like the LXC
// features they run on the host and act on the container through pct; every
// look into the container is a read-only probe, so a run on an unchanged
// container issues no mutating command and dry-run answers from real state.

import * as pct from '../pve/pct.mts';
import { PhoenixError } from '../core/errors.mts';
import { defineArgs } from '../core/args.mts';
import { probe, pushContent, readGuestFile } from '../guest/container.mts';

const validCtid = (ctid: string) => (/^[1-9]\d{2,8}$/.test(ctid) ? undefined : `'${ctid}' is not a container id`);

/** `<script> <CTID> [--dry-run]`, as lxc-manager calls an application script (CTID first). */
export function appScriptArgs(name: string, usage: string) {
  return defineArgs({ name, usage, dryRun: true, positionals: [{ name: 'ctid', missing: 'missing CTID', check: validCtid }] });
}

const seconds = (value: string) => (value.trim() !== '' && Number.isFinite(Number(value)) && Number(value) >= 0 ? undefined : `--ca-timeout needs a number of seconds, not '${value}'`);

/** The same with `--ca-timeout <seconds>` (how long to wait for the CA). */
export function appScriptArgsWithCaTimeout(name: string, usage: string) {
  return defineArgs({
    name,
    usage,
    dryRun: true,
    flags: { 'ca-timeout': { type: 'string', needs: 'a number of seconds', check: seconds } },
    positionals: [{ name: 'ctid', missing: 'missing CTID', check: validCtid }],
  });
}

/** A file this run installed, with what was there before (undefined: nothing). */
export interface InstalledFile {
  path: string;
  previous: string | undefined;
  perms: string;
}

/**
 * Make files in the container hold exactly the given content with mode
 * `perms`: each is read first (read-only) and pushed only when it differs;
 * their directories are created in one call when something is pushed.
 * Returns what was replaced, in order; files already right are left out.
 */
export async function installGuestFiles(ctid: string, files: readonly { path: string; content: string; perms: string }[], what: string): Promise<InstalledFile[]> {
  const stale: { path: string; content: string; perms: string; previous: string | undefined }[] = [];
  for (const file of files) {
    const previous = await readGuestFile(ctid, file.path);
    if (previous !== file.content) stale.push({ ...file, previous });
  }
  if (stale.length === 0) return [];
  const dirs = [...new Set(stale.map((file) => file.path.slice(0, file.path.lastIndexOf('/')) || '/'))];
  await pct.exec(ctid, ['mkdir', '-p', ...dirs], { quiet: true });
  for (const file of stale) await pushContent(ctid, file.path, file.content, { feature: what, label: `writing ${file.path}`, perms: file.perms });
  return stale.map((file) => ({ path: file.path, previous: file.previous, perms: file.perms }));
}

/** One file, as installGuestFiles; undefined when it was already right. */
export async function installGuestFile(ctid: string, guestPath: string, content: string, perms: string, what: string): Promise<InstalledFile | undefined> {
  return (await installGuestFiles(ctid, [{ path: guestPath, content, perms }], what))[0];
}

/** Which of these paths are not regular files in the container (one `ls` for all). */
export async function missingGuestFiles(ctid: string, paths: readonly string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const listing = await probe(ctid, ['ls', '-d', '--', ...paths]);
  const present = new Set(listing.stdout.split('\n').map((entry) => entry.trim()).filter(Boolean));
  return paths.filter((file) => !present.has(file));
}

/** Put files back as they were before this run (after the service refused the new ones). */
export async function restoreGuestFiles(ctid: string, files: readonly InstalledFile[], what: string): Promise<void> {
  for (const file of [...files].reverse()) {
    if (file.previous === undefined) await pct.exec(ctid, ['rm', '-f', file.path], { quiet: true });
    else await pushContent(ctid, file.path, file.previous, { feature: what, label: `restoring ${file.path}`, perms: file.perms });
  }
}

/** `systemctl is-active` / `is-enabled`: exit status only, read-only. */
export async function unitIs(ctid: string, state: 'active' | 'enabled', unit: string): Promise<boolean> {
  return (await probe(ctid, ['systemctl', `is-${state}`, '--quiet', unit])).code === 0;
}

/** The unit's last journal lines, for an error message (empty when there are none). */
export async function journalTail(ctid: string, unit: string, lines = 20): Promise<string> {
  const result = await probe(ctid, ['journalctl', '-u', unit, '-n', String(lines), '--no-pager']);
  return result.code === 0 ? result.stdout.trim() : '';
}

/** Whether something (a file or a link, even a dangling one) is at a path in the container. */
export async function guestPathPresent(ctid: string, guestPath: string): Promise<boolean> {
  if (await pct.test(ctid, '-e', guestPath)) return true;
  return (await probe(ctid, ['test', '-L', guestPath])).code === 0;
}

/** Where a symbolic link in the container points (read-only); undefined when the path is no link. */
export async function guestLinkTarget(ctid: string, guestPath: string): Promise<string | undefined> {
  const result = await probe(ctid, ['readlink', '--', guestPath]);
  const target = result.stdout.trim();
  return result.code === 0 && target !== '' ? target : undefined;
}

/** A link this run made, with what was at its path before (for a rollback). */
export interface LinkChange {
  path: string;
  /** The link's previous target, when it was a link. */
  previousTarget?: string;
  /** The previous file's content, when it was a regular file. */
  previousContent?: string;
}

/**
 * Make `guestPath` a symbolic link to `target` (kept as given, so a relative
 * target stays relative), replacing a file or another link there. Undefined
 * when the link was already right: nothing is run then.
 */
export async function ensureGuestLink(ctid: string, guestPath: string, target: string): Promise<LinkChange | undefined> {
  const current = await guestLinkTarget(ctid, guestPath);
  if (current === target) return undefined;
  const previousContent = current === undefined ? await readGuestFile(ctid, guestPath) : undefined;
  await pct.exec(ctid, ['mkdir', '-p', guestPath.slice(0, guestPath.lastIndexOf('/')) || '/'], { quiet: true });
  // -T: a directory at the path is an error, not a place to put the link in.
  await pct.exec(ctid, ['ln', '-sfT', target, guestPath]);
  return { path: guestPath, ...(current !== undefined ? { previousTarget: current } : {}), ...(previousContent !== undefined ? { previousContent } : {}) };
}

/** Put back what ensureGuestLink replaced. */
export async function restoreGuestLink(ctid: string, change: LinkChange, what: string): Promise<void> {
  if (change.previousTarget !== undefined) {
    await pct.exec(ctid, ['ln', '-sfT', change.previousTarget, change.path], { quiet: true });
  } else {
    await pct.exec(ctid, ['rm', '-f', change.path], { quiet: true });
    if (change.previousContent !== undefined) await pushContent(ctid, change.path, change.previousContent, { feature: what, label: `restoring ${change.path}`, perms: '0644' });
  }
}

/**
 * Directories that must exist and belong, with everything in them, to
 * `owner` (user:group). One read-only `find` looks for anything owned
 * otherwise; only then is `chown -R` run. Returns a line per change.
 */
export async function ensureGuestOwnedDirs(ctid: string, dirs: readonly string[], owner: { user: string; group: string }): Promise<string[]> {
  const changes: string[] = [];
  const missing: string[] = [];
  for (const dir of dirs) if (!(await pct.test(ctid, '-d', dir))) missing.push(dir);
  if (missing.length > 0) {
    await pct.exec(ctid, ['mkdir', '-p', ...missing]);
    changes.push(`created ${missing.join(', ')}`);
  }
  const stray = await probe(ctid, ['find', ...dirs, '(', '!', '-user', owner.user, '-o', '!', '-group', owner.group, ')', '-print', '-quit']);
  // A failed look (a directory that is not there yet in a dry-run) counts as stray.
  if (stray.code === 0 && stray.stdout.trim() === '') return changes;
  await pct.exec(ctid, ['chown', '-R', `${owner.user}:${owner.group}`, ...dirs]);
  changes.push(`gave ${dirs.join(', ')} to ${owner.user}:${owner.group}`);
  return changes;
}

/** Fail plainly when `ctid` is not the container the manifests give this role. */
export function requireRole(ctid: string, expected: string, role: string, why: string): void {
  if (ctid !== expected) {
    throw new PhoenixError(`CT ${ctid} is not the ${role}: the manifests make CT ${expected} the ${role} (${why})`, {
      hint: `run the script for CT ${expected}, or change the manifests`,
    });
  }
}
