// "A bare Proxmox VE 8 node before setup": what the PVE 8 installer leaves
// on an ext4 install, plus the new disks the operator put in for the pools
// the manifest names. Nothing of Phoenix's yet:
//
//   - storages `local` (dir) and `local-lvm` (LVM-thin) only; no ZFS pools;
//   - the boot disk, the disks the manifest's pools name (blank, as shipped),
//     and the spare disks of disks/defaults.mts (a blank disk, one with an
//     old MBR table and an NTFS partition, one member of an exported pool);
//   - the enterprise repository enabled, Debian bookworm's sources;
//   - the default /etc/network/interfaces (vmbr0 on the first NIC), hosts,
//     hostname, os-release, GRUB defaults, /etc/modules, the AppArmor tree;
//     root as the only login user; no sudo (PVE does not ship it);
//   - the Ubuntu cloud image in `local` (the one download an operator does
//     by hand before building VMs; LXC templates come through pveam).
//
//   node test/simhost/seed.mjs <dir> --bare [--disks-from <hypervisor config>]

import fs from 'node:fs';
import path from 'node:path';

import { DEFAULT_CLOUD_IMAGE, type SeedOptions } from './seed.mts';
import { seedNodeFiles } from './hostsvc/node.mts';
import { FRESH_INTERFACES, seedNetworkState } from './hostsvc/network.mts';
import { loadServices, saveServices } from './hostsvc/units.mts';
import { ensureSimNode } from './hostsvc/kernel-state.mts';
import { describeId, spareDisks } from './disks/defaults.mts';
import { BY_ID, type SimDisk } from './disks/model.mts';

const GB = 1000 ** 3;

/** Blank disks (no table, no signature) for the by-id paths a manifest's pools name. */
export function blankDisksFor(byIdPaths: readonly string[]): SimDisk[] {
  let nvme = 0;
  let letter = 'e'.charCodeAt(0);
  return byIdPaths.map((p) => {
    const id = p.startsWith(BY_ID) ? p.slice(BY_ID.length) : p.replace(/^\/dev\//, '');
    const info = describeId(id);
    const sizeMatch = /(\d+)\s*(TB|GB)/i.exec(info.model);
    const size = sizeMatch ? Number(sizeMatch[1]) * (sizeMatch[2]!.toUpperCase() === 'TB' ? 1000 * GB : GB) : 1000 * GB;
    const name = info.tran === 'nvme' ? `nvme${nvme++}n1` : `sd${String.fromCharCode(letter++)}`;
    return { name, type: 'disk', ids: [id], size, ...info } satisfies SimDisk;
  });
}

/** The by-id paths of every pool disk of a hypervisor manifest (parsed). */
export function poolDisksIn(hv: { zfs?: { pools?: Array<{ disks?: string[] }> } }): string[] {
  return [...new Set((hv.zfs?.pools ?? []).flatMap((p) => p.disks ?? []))];
}

/** The by-id paths of every pool disk in a hypervisor manifest file. */
export function poolDisksOf(manifestFile: string): string[] {
  return poolDisksIn(JSON.parse(fs.readFileSync(manifestFile, 'utf8')));
}

export function bareSeedOptions(poolDisks: readonly string[], node = 'pve'): SeedOptions {
  return {
    node,
    ip: '10.0.0.5',
    pools: [],
    datasets: [],
    templates: [],
    isos: [{ storage: 'local', file: DEFAULT_CLOUD_IMAGE, size: 3_758_096_384 }],
    disks: [...spareDisks(), ...blankDisksFor(poolDisks)],
  };
}

/**
 * The host files of a fresh install, each written by the module of the
 * simulator that answers for it, and only where missing: os-release,
 * hostname, hosts and the apt sources (hostsvc/node.mts), the installer's
 * /etc/network/interfaces (hostsvc/network.mts), the kernel, GRUB, modules
 * and AppArmor trees (hostsvc/kernel-state.mts). Accounts and package
 * conffiles appear when a tool first reads them, as on a node.
 */
export function seedBareHostFiles(root: string, hostRoot: string): void {
  seedNodeFiles(root, hostRoot);
  const interfaces = path.join(hostRoot, 'etc', 'network', 'interfaces');
  if (!fs.existsSync(interfaces)) {
    fs.mkdirSync(path.dirname(interfaces), { recursive: true });
    fs.writeFileSync(interfaces, FRESH_INTERFACES);
  }
  fs.mkdirSync(path.join(hostRoot, 'etc', 'network', 'interfaces.d'), { recursive: true });
  ensureSimNode(root, { ...process.env, PHOENIX_HOST_ROOT: hostRoot });
  // The runtime state files too, so that no read-only call later creates one.
  seedNetworkState(root, hostRoot);
  saveServices(root, loadServices(root));
}
