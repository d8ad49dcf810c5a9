// Freeing a guest's disks, as pct destroy and qm destroy (and qm set on a
// dropped disk) do through PVE::Storage.

import { guestVolumes } from '../guests.mts';
import { emptySection, type GuestConfig } from '../pveconf.mts';
import { freeVolume, listVolumes, parseVolid } from '../storage.mts';
import { die, type Runtime } from '../state.mts';

/** Free every volume of a guest (live, snapshots, unused); a base with linked clones refuses. */
export function freeGuestVolumes(rt: Runtime, config: GuestConfig, kind: 'lxc' | 'qemu'): void {
  const seen = new Set<string>();
  for (const section of [config.main, config.pending, ...Object.values(config.snapshots)]) {
    if (!section) continue;
    for (const [, volid] of guestVolumes(kind, section)) {
      if (seen.has(volid)) continue;
      seen.add(volid);
      const { storeid, volname } = parseVolid(volid);
      if (!rt.storage[storeid]) continue;
      if (/^(base|basevol)-/.test(volname.split('/').pop()!) && !volname.includes('/')) {
        const inUse = listVolumes(rt, storeid).some((v) => v.volname.startsWith(`${volname}/`));
        if (inUse) die(`base volume '${volname}' is still in use by linked clones`);
      }
      freeVolume(rt, volid);
    }
  }
}

/** Free one volume that no config key refers to any more, as if it were an `unusedN` entry. */
export function freeUnusedVolume(rt: Runtime, kind: 'lxc' | 'qemu', volid: string): void {
  freeGuestVolumes(rt, { main: { ...emptySection(), props: { unused0: volid } }, pending: undefined, snapshots: {} }, kind);
}
