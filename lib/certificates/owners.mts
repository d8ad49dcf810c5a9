// Who the certificate files on the host belong to.
//
// A file the host alone uses: the manifest's `user:group` are the host's
// names (getent), numbers as they are. A file in a bind mount of an
// unprivileged container is read through that container's id maps: its
// `root:www-data` are the container's root and www-data, which live on the
// host as 100000 and (with gid 33 passed through) 33. Resolving them as the
// host's 0:33 would give a key container root cannot read and cannot chown.
// So such names are looked up in the container (getent there, when it runs;
// else Debian's fixed system ids), then translated through its maps.

import { query } from '../core/runner.mts';
import * as pct from '../pve/pct.mts';
import { PhoenixError } from '../core/errors.mts';
import { toHostId } from '../config/id-maps.mts';
import type { OwnerSpec } from './manifest.mts';

/**
 * The ids Debian and Ubuntu fix for their system users and groups
 * (base-passwd), the same in every container made from their templates.
 */
const DEBIAN_USERS: Record<string, number> = { root: 0, daemon: 1, bin: 2, sys: 3, sync: 4, games: 5, man: 6, lp: 7, mail: 8, news: 9, uucp: 10, proxy: 13, 'www-data': 33, backup: 34, list: 38, irc: 39, nobody: 65534 };
const DEBIAN_GROUPS: Record<string, number> = { root: 0, daemon: 1, bin: 2, sys: 3, adm: 4, tty: 5, disk: 6, lp: 7, mail: 8, news: 9, uucp: 10, man: 12, proxy: 13, kmem: 15, dialout: 20, cdrom: 24, sudo: 27, audio: 29, 'www-data': 33, backup: 34, operator: 37, list: 38, irc: 39, shadow: 42, utmp: 43, video: 44, plugdev: 46, staff: 50, users: 100, nogroup: 65534 };

type Db = 'passwd' | 'group';

/** Owner names looked up once per run, on the host or in a container; numbers taken as they are. */
export class OwnerResolver {
  private readonly cache = new Map<string, number>();
  private readonly runningCache = new Map<string, boolean>();

  async resolve(owner: OwnerSpec): Promise<{ uid: number; gid: number }> {
    if (!owner.container) {
      return { uid: await this.hostLookup('passwd', owner.user), gid: await this.hostLookup('group', owner.group) };
    }
    const { id, ct } = owner.container;
    const uid = await this.guestLookup(id, 'passwd', owner.user);
    const gid = await this.guestLookup(id, 'group', owner.group);
    const hostUid = toHostId(ct, 'uid', uid);
    const hostGid = toHostId(ct, 'gid', gid);
    if (hostUid === undefined || hostGid === undefined) {
      const which = hostUid === undefined ? `uid ${uid} (${owner.user})` : `gid ${gid} (${owner.group})`;
      throw new PhoenixError(`owner ${owner.text}: container ${which} is not mapped by CT ${id}'s id maps, so no host id can make it that owner`, { hint: 'choose an owner the container maps, or add it to id_maps' });
    }
    return { uid: hostUid, gid: hostGid };
  }

  private async hostLookup(db: Db, name: string): Promise<number> {
    if (/^\d+$/.test(name)) return Number(name);
    return this.cached(`host:${db}:${name}`, async () => {
      const id = await getent(undefined, db, name);
      if (id === undefined) throw new PhoenixError(`owner: no ${db === 'passwd' ? 'user' : 'group'} '${name}' on this host`, { hint: 'use an existing name or numeric ids (uid:gid)' });
      return id;
    });
  }

  private async guestLookup(ctid: string, db: Db, name: string): Promise<number> {
    if (/^\d+$/.test(name)) return Number(name);
    return this.cached(`ct${ctid}:${db}:${name}`, async () => {
      const fixed = (db === 'passwd' ? DEBIAN_USERS : DEBIAN_GROUPS)[name];
      const id = (await this.isRunning(ctid)) ? await getent(ctid, db, name) : undefined;
      if (id !== undefined) return id;
      if (fixed !== undefined) return fixed;
      throw new PhoenixError(`owner: no ${db === 'passwd' ? 'user' : 'group'} '${name}' in CT ${ctid}`, { hint: 'use a name the container has, or numeric ids as the container sees them (uid:gid)' });
    });
  }

  private async isRunning(ctid: string): Promise<boolean> {
    let running = this.runningCache.get(ctid);
    if (running === undefined) {
      running = await pct.isRunning(ctid);
      this.runningCache.set(ctid, running);
    }
    return running;
  }

  private async cached(key: string, lookup: () => Promise<number>): Promise<number> {
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const id = await lookup();
    this.cache.set(key, id);
    return id;
  }
}

/** `getent passwd|group NAME` on the host or in a container: the id, or undefined. */
async function getent(ctid: string | undefined, db: Db, name: string): Promise<number | undefined> {
  const result = ctid === undefined
    ? await query({ cmd: 'getent', args: [db, name], allowFailure: true, quiet: true })
    : await pct.exec(ctid, ['getent', db, name], { mutating: false, allowFailure: true, quiet: true });
  const id = Number(result.stdout.split(':')[2]);
  return result.code === 0 && Number.isInteger(id) ? id : undefined;
}
