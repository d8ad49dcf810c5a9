// A container's view of files: guest paths resolved the way the kernel
// resolves them inside the container (bind mounts, then symlinks followed
// inside the guest tree, never on the host), and owners and permissions
// seen through the container's id maps.
//
// Where ownership lives: a file on a bind mount is a host file, so its real
// uid/gid are host ids. A file of the guest's own tree (<state>/guests/<id>/fs)
// stores container ids (what a guest `chown` set; the simulator's own writes
// leave 0:0, container root). Changing ownership needs a root process; when
// the simulator does not run as root, ownership and permissions are not
// enforced at all (`enforce` is false) and every file counts as container
// root's.

import fs from 'node:fs';
import path from 'node:path';

import { IDENTITY_MAPS, OVERFLOW_ID, capableOver, ownerOf, permits, toCt, toHost, X_OK, W_OK, type IdMaps, type InodeIds, type Subject } from './idmap.mts';

/** A bind mount whose host directory exists: guest paths below `guest` live on the host. */
export interface HostMount {
  guest: string;
  host: string;
}

export type Errno = 'ENOENT' | 'EACCES' | 'ENOTDIR' | 'ELOOP' | 'EISDIR' | 'EPERM' | 'EINVAL' | 'EEXIST';

export const ERRNO_TEXT: Readonly<Record<Errno, string>> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
  EISDIR: 'Is a directory',
  EPERM: 'Operation not permitted',
  EINVAL: 'Invalid argument',
  EEXIST: 'File exists',
};

/** Where a guest path ends up. */
export interface Located {
  /** The guest path with every symlink resolved. */
  guest: string;
  /** The file on disk. */
  host: string;
  /** The bind mount it lies on, if any. */
  mount: HostMount | undefined;
  /** lstat of the file (after following it, when asked to); undefined when it does not exist. */
  stat: fs.Stats | undefined;
  /** Why the path could not be walked (a missing or unsearchable directory on the way). */
  error?: Errno;
}

const MAX_SYMLINKS = 40;

function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}

export class GuestFs {
  readonly base: string;
  readonly mounts: HostMount[];
  readonly maps: IdMaps;
  /** Ownership and permissions are checked (the simulator runs as root). */
  readonly enforce: boolean;

  constructor(base: string, mounts: HostMount[] = [], maps: IdMaps = IDENTITY_MAPS) {
    this.base = base;
    // Longest guest path first, so nested mounts win.
    this.mounts = mounts.map((m) => ({ guest: path.posix.resolve('/', m.guest), host: path.resolve(m.host) })).sort((a, b) => b.guest.length - a.guest.length);
    this.maps = maps;
    // LXC creates a missing mount point (and its parents) in the rootfs when it mounts.
    for (const m of this.mounts) {
      try {
        if (fs.existsSync(base)) fs.mkdirSync(path.join(base, m.guest), { recursive: true });
      } catch {
        // a file in the way: the walk reports it as LXC would fail the mount
      }
    }
    this.enforce = typeof process.getuid === 'function' && process.getuid() === 0;
  }

  mountOf(guestNormal: string): HostMount | undefined {
    return this.mounts.find((m) => guestNormal === m.guest || guestNormal.startsWith(`${m.guest}/`));
  }

  /** A normalised guest path (no symlinks resolved) on disk. */
  private onDisk(guestNormal: string): string {
    const mount = this.mountOf(guestNormal);
    if (mount) return path.join(mount.host, guestNormal.slice(mount.guest.length));
    return path.join(this.base, guestNormal);
  }

  /**
   * Walk a guest path component by component. Symlinks resolve inside the
   * guest (an absolute target starts again at the guest's /); with a
   * subject, every directory passed needs search permission.
   */
  locate(guestPath: string, options: { follow?: boolean; subject?: Subject; cwd?: string } = {}): Located {
    const follow = options.follow ?? true;
    const start = guestPath.startsWith('/') ? guestPath : `${options.cwd ?? '/'}/${guestPath}`;
    let pending = start.split('/').filter((p) => p !== '' && p !== '.');
    let current = '/';
    let hops = 0;
    const result = (guest: string, stat: fs.Stats | undefined, error?: Errno): Located => ({
      guest,
      host: this.onDisk(guest),
      mount: this.mountOf(guest),
      stat,
      ...(error ? { error } : {}),
    });
    let stat = lstatOrUndefined(this.onDisk('/'));
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === '..') {
        current = path.posix.dirname(current);
        stat = lstatOrUndefined(this.onDisk(current));
        continue;
      }
      if (options.subject && stat && !this.permits(options.subject, current, stat, X_OK)) return result(path.posix.join(current, name, ...pending), undefined, 'EACCES');
      const next = path.posix.join(current, name);
      const st = lstatOrUndefined(this.onDisk(next));
      if (!st) return result(path.posix.join(next, ...pending), undefined, pending.length > 0 ? 'ENOENT' : undefined);
      if (st.isSymbolicLink() && (pending.length > 0 || follow)) {
        if (++hops > MAX_SYMLINKS) return result(next, undefined, 'ELOOP');
        const target = fs.readlinkSync(this.onDisk(next));
        if (target.startsWith('/')) {
          current = '/';
          stat = lstatOrUndefined(this.onDisk('/'));
        }
        pending = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...pending];
        continue;
      }
      if (pending.length > 0 && !st.isDirectory()) return result(path.posix.join(next, ...pending), undefined, 'ENOTDIR');
      current = next;
      stat = st;
    }
    return result(current, stat);
  }

  /** Map a guest path (absolute, or relative to cwd) to the file on disk, following symlinks inside the guest. */
  resolve(guestPath: string, cwd = '/'): string {
    return this.locate(guestPath, { cwd }).host;
  }

  /** As resolve, but a symlink in the last component is the link itself. */
  resolveNoFollow(guestPath: string): string {
    return this.locate(guestPath, { follow: false }).host;
  }

  stat(guestPath: string): fs.Stats | undefined {
    return this.locate(guestPath).stat;
  }

  // -------------------------------------------------------------------------
  // ownership

  /** The inode as the kernel sees it: host ids (guest-tree files store container ids). */
  inode(guestNormal: string, st: fs.Stats): InodeIds {
    if (this.mountOf(guestNormal)) return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, isDir: st.isDirectory() };
    const ids = this.enforce ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 };
    return { uid: toHost(this.maps, 'u', ids.uid) ?? -1, gid: toHost(this.maps, 'g', ids.gid) ?? -1, mode: st.mode & 0o7777, isDir: st.isDirectory() };
  }

  /** Owner and group as the container shows them (unmapped: 65534). */
  ctIds(guestNormal: string, st: fs.Stats): { uid: number; gid: number } {
    const inode = this.inode(guestNormal, st);
    return { uid: toCt(this.maps, 'u', inode.uid) ?? OVERFLOW_ID, gid: toCt(this.maps, 'g', inode.gid) ?? OVERFLOW_ID };
  }

  permits(subject: Subject, guestNormal: string, st: fs.Stats, want: number): boolean {
    if (!this.enforce) return true;
    return permits(this.maps, subject, this.inode(guestNormal, st), want);
  }

  /** Does the subject hold CAP_CHOWN/CAP_FOWNER over this file? */
  capable(subject: Subject, loc: Located): boolean {
    if (!this.enforce || !loc.stat) return true;
    return capableOver(this.maps, subject, this.inode(loc.guest, loc.stat));
  }

  owns(subject: Subject, loc: Located): boolean {
    if (!this.enforce || !loc.stat) return true;
    return ownerOf(this.maps, subject, this.inode(loc.guest, loc.stat));
  }

  /** access(2) on a guest path: the walk, then `want` on the file itself. */
  access(subject: Subject, guestPath: string, want: number): Errno | undefined {
    const loc = this.locate(guestPath, { subject });
    if (loc.error) return loc.error;
    if (!loc.stat) return 'ENOENT';
    return this.permits(subject, loc.guest, loc.stat, want) ? undefined : 'EACCES';
  }

  /** May the subject add or remove entries in the directory holding `loc` (write and search on it)? */
  parentWritable(subject: Subject, loc: Located): Errno | undefined {
    const dir = path.posix.dirname(loc.guest);
    const parent = this.locate(dir, { subject });
    if (parent.error) return parent.error;
    if (!parent.stat) return 'ENOENT';
    if (!parent.stat.isDirectory()) return 'ENOTDIR';
    return this.permits(subject, parent.guest, parent.stat, W_OK | X_OK) ? undefined : 'EACCES';
  }

  /** Store ownership for a guest path: container ids, kept as the kernel would keep them. */
  chownCt(loc: Located, uid: number, gid: number): Errno | undefined {
    if (!this.enforce) return undefined;
    const hostUid = toHost(this.maps, 'u', uid);
    const hostGid = toHost(this.maps, 'g', gid);
    if (hostUid === undefined || hostGid === undefined) return 'EINVAL';
    if (loc.mount) fs.lchownSync(loc.host, hostUid, hostGid);
    else fs.lchownSync(loc.host, uid, gid);
    return undefined;
  }

  /** A file the subject just created: its ids (the directory's group when it is set-group-id). */
  created(subject: Subject, loc: Located): void {
    if (!this.enforce) return;
    let gid = subject.gid;
    const parent = this.locate(path.posix.dirname(loc.guest));
    if (parent.stat && (parent.stat.mode & 0o2000) !== 0) gid = this.ctIds(parent.guest, parent.stat).gid;
    this.chownCt(loc, subject.uid, gid);
  }

  /** After a move across a mount boundary, keep the owner the container saw. */
  carryOwnership(from: HostMount | undefined, to: Located): void {
    if (!this.enforce || from === to.mount) return;
    const retag = (file: string) => {
      const st = fs.lstatSync(file);
      const ct = from ? { uid: toCt(this.maps, 'u', st.uid) ?? OVERFLOW_ID, gid: toCt(this.maps, 'g', st.gid) ?? OVERFLOW_ID } : { uid: st.uid, gid: st.gid };
      const ids = to.mount ? { uid: toHost(this.maps, 'u', ct.uid) ?? st.uid, gid: toHost(this.maps, 'g', ct.gid) ?? st.gid } : ct;
      fs.lchownSync(file, ids.uid, ids.gid);
      if (st.isDirectory()) for (const child of fs.readdirSync(file)) retag(path.join(file, child));
    };
    retag(to.host);
  }
}
