// Opening, creating and removing files inside a simulated guest as a
// subject, with the kernel's rules (see guestview.mts), for the guest's
// coreutils (guest-builtins.mts), pct push/pull and nginx -t.

import fs from 'node:fs';
import path from 'node:path';

import { lookupGroup, lookupUser } from './guest-accounts.mts';
import { ERRNO_TEXT, type Errno, type GuestFs, type Located } from './guestview.mts';
import { R_OK, W_OK, type Subject } from './idmap.mts';

const text = (errno: Errno): string => ERRNO_TEXT[errno];

// ---------------------------------------------------------------------------
// Opening files as the subject

/** Read a file as open(O_RDONLY) would, or the errno it fails with. */
export function readAs(g: GuestFs, subject: Subject, guestPath: string): Buffer | Errno {
  const loc = g.locate(guestPath, { subject });
  if (loc.error) return loc.error;
  if (!loc.stat) return 'ENOENT';
  if (loc.stat.isDirectory()) return 'EISDIR';
  if (!g.permits(subject, loc.guest, loc.stat, R_OK)) return 'EACCES';
  return fs.readFileSync(loc.host);
}

/** open(O_WRONLY|O_CREAT): an existing file needs write permission, a new one write and search on its directory. */
export function openForWrite(g: GuestFs, subject: Subject, guestPath: string): { loc: Located; created: boolean } | Errno {
  const loc = g.locate(guestPath, { subject });
  if (loc.error) return loc.error;
  if (loc.stat) {
    if (loc.stat.isDirectory()) return 'EISDIR';
    return g.permits(subject, loc.guest, loc.stat, W_OK) ? { loc, created: false } : 'EACCES';
  }
  const denied = g.parentWritable(subject, loc);
  if (denied) return denied;
  return { loc, created: true };
}

/** Write data through openForWrite; a new file gets the subject's ids. */
export function writeAs(g: GuestFs, subject: Subject, guestPath: string, data: string | Buffer, append = false): Errno | undefined {
  const opened = openForWrite(g, subject, guestPath);
  if (typeof opened === 'string') return opened;
  if (append) fs.appendFileSync(opened.loc.host, data);
  else fs.writeFileSync(opened.loc.host, data);
  if (opened.created) g.created(subject, { ...opened.loc, stat: fs.lstatSync(opened.loc.host) });
  return undefined;
}

/** unlink/rmdir permission: write and search on the directory, and the sticky bit's owner rule. */
export function removable(g: GuestFs, subject: Subject, loc: Located): Errno | undefined {
  const denied = g.parentWritable(subject, loc);
  if (denied) return denied;
  const parent = g.locate(path.posix.dirname(loc.guest));
  if (parent.stat && (parent.stat.mode & 0o1000) !== 0 && g.enforce) {
    if (!g.owns(subject, loc) && !g.owns(subject, parent) && !g.capable(subject, loc)) return 'EPERM';
  }
  return undefined;
}

export function mkdirAs(g: GuestFs, subject: Subject, dir: string, mode: number | undefined): Errno | undefined {
  const loc = g.locate(dir, { subject });
  if (loc.error) return loc.error;
  if (loc.stat) return 'EEXIST';
  const denied = g.parentWritable(subject, loc);
  if (denied) return denied;
  fs.mkdirSync(loc.host);
  if (mode !== undefined) fs.chmodSync(loc.host, mode);
  g.created(subject, { ...loc, stat: fs.lstatSync(loc.host) });
  return undefined;
}

/** Guest paths below a directory (itself first), for -R. */
export function tree(g: GuestFs, guestPath: string): string[] {
  const out = [guestPath];
  const loc = g.locate(guestPath, { follow: false });
  if (loc.stat?.isDirectory()) for (const child of fs.readdirSync(loc.host).sort()) out.push(...tree(g, path.posix.join(loc.guest, child)));
  return out;
}

// ---------------------------------------------------------------------------
// chown

export interface OwnerSpec {
  uid: number | undefined;
  gid: number | undefined;
}

export function parseOwnerSpec(g: GuestFs, spec: string): OwnerSpec | string {
  const sep = spec.search(/[:.]/);
  const user = sep === -1 ? spec : spec.slice(0, sep);
  const group = sep === -1 ? undefined : spec.slice(sep + 1);
  let uid: number | undefined;
  let gid: number | undefined;
  if (user !== '') {
    const entry = lookupUser(g, user);
    if (entry) uid = entry.uid;
    else if (/^\d+$/.test(user)) uid = Number(user);
    else return `chown: invalid user: '${spec}'\n`;
    // `user:` means the user's login group.
    if (group === '') gid = entry?.gid;
  }
  if (group) {
    const entry = lookupGroup(g, group);
    if (entry) gid = entry.gid;
    else if (/^\d+$/.test(group)) gid = Number(group);
    else return `chown: invalid group: '${spec}'\n`;
  }
  return { uid, gid };
}

export function chownOne(g: GuestFs, subject: Subject, file: string, spec: OwnerSpec, follow: boolean): string {
  const loc = g.locate(file, { subject, follow });
  if (loc.error || !loc.stat) return `chown: cannot access '${file}': ${text(loc.error ?? 'ENOENT')}\n`;
  if (!g.enforce) return '';
  const now = g.ctIds(loc.guest, loc.stat);
  const uid = spec.uid ?? now.uid;
  const gid = spec.gid ?? now.gid;
  if (!g.capable(subject, loc)) {
    // Without CAP_CHOWN: only the owner, only the group, only to one of their own groups.
    const allowed = g.owns(subject, loc) && uid === now.uid && (gid === now.gid || [subject.gid, ...subject.groups].includes(gid));
    if (!allowed) return `chown: changing ownership of '${file}': ${text('EPERM')}\n`;
  }
  const error = g.chownCt(loc, uid, gid);
  return error ? `chown: changing ownership of '${file}': ${text(error)}\n` : '';
}

