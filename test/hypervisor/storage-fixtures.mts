// What the storage setup tests share: a bare simulated node (no pools, no
// datasets, no storages but local and local-lvm) with the disks a manifest
// names, the two manifest shapes (the example manifest, and one in the
// shape of the bash toolkit's own file with values of its own), and running
// a ported script against them.

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord, type SimHost } from '../simhost/index.mts';
import { defaultDisks } from '../simhost/disks.mts';
import type { SimDisk } from '../simhost/disks.mts';
import { emptyRuntime } from '../simhost/state.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

export const BY_ID = '/dev/disk/by-id/';

/** A blank NVMe disk with this by-id name. */
export function nvmeDisk(index: number, id: string, size: number): SimDisk {
  const rest = id.replace(/^nvme-/, '');
  const cut = rest.lastIndexOf('_');
  return { name: `nvme${index}n1`, type: 'disk', ids: [id], model: rest.slice(0, cut).replace(/_/g, ' '), serial: rest.slice(cut + 1), tran: 'nvme', size };
}

export function exampleManifest(): any {
  return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_hypervisor_config.json'), 'utf8'));
}

const TB = 1_000_204_886_016;

/** The example manifest's disks, blank. */
export const EXAMPLE_DISKS = [
  nvmeDisk(0, 'nvme-EXAMPLE_SSD_1TB_SERIAL0001', TB),
  nvmeDisk(1, 'nvme-EXAMPLE_SSD_1TB_SERIAL0002', TB),
  nvmeDisk(2, 'nvme-EXAMPLE_SSD_2TB_SERIAL0003', 2 * TB),
];

/** Disks for the upstream-shaped manifest (its own serials). */
export const UPSTREAM_DISKS = [
  nvmeDisk(0, 'nvme-Samsung_SSD_990_EVO_Plus_2TB_TEST00000A1', 2 * TB),
  nvmeDisk(1, 'nvme-Samsung_SSD_990_EVO_Plus_2TB_TEST00000A2', 2 * TB),
  nvmeDisk(2, 'nvme-Samsung_SSD_990_EVO_Plus_4TB_TEST00000B1', 4 * TB),
];

/**
 * The example manifest with the zfs, nfs, proxmox_storage_ids, network and
 * shared sections in the shape of the bash toolkit's own manifest: storage
 * classes, sync and quota properties, mapping keys that do not match the
 * `<pool>_<name>` rule (so the fallback ids are used), no_root_squash, a
 * shared_volumes map and the shared_zfs_volumes object it documents.
 */
export function upstreamShapedManifest(): any {
  const hv = exampleManifest();
  const ds = (name: string, pool: string, properties: string, type: string, content: string, storageClass: string) => ({ name, pool, properties, proxmox_storage_type: type, proxmox_content_type: content, storage_class: storageClass });
  hv.network = { ...hv.network, portainer_server_ip: '192.168.50.21', interfaces: { name: 'vmbr0', address: '192.168.50.10/24', gateway: '192.168.50.1', dns_nameservers: ['192.168.50.10', '1.1.1.1'] }, default_subnet: '192.168.50.0/24', nfs_server: '192.168.50.10' };
  hv.zfs = {
    arc_max_gb: 16,
    pools: [
      { name: 'quickOS', raid_level: 'mirror', disks: UPSTREAM_DISKS.slice(0, 2).map((d) => `${BY_ID}${d.ids[0]}`) },
      { name: 'fastData', raid_level: 'single', disks: [`${BY_ID}${UPSTREAM_DISKS[2]!.ids[0]}`] },
    ],
    datasets: [
      ds('vm-disks', 'quickOS', 'recordsize=128K,compression=lz4,sync=standard,quota=700G', 'zfspool', 'images', 'direct'),
      ds('lxc-disks', 'quickOS', 'recordsize=16K,compression=lz4,sync=standard,quota=500G', 'zfspool', 'images,rootdir', 'direct'),
      ds('shared-prod-data', 'quickOS', 'recordsize=128K,compression=lz4,sync=standard,quota=300G', 'zfspool', 'images,rootdir', 'shared'),
      ds('shared-prod-data-sync', 'quickOS', 'recordsize=16K,compression=lz4,sync=always,quota=50G', 'zfspool', 'images', 'shared'),
      ds('vm-persistent-data', 'quickOS', 'recordsize=128K,compression=lz4,sync=standard,quota=20G', 'dir', 'images,rootdir', 'shared'),
      ds('portainer_stacks', 'quickOS', 'compression=lz4', 'dir', 'snippets', 'shared'),
      ds('shared-backups', 'fastData', 'recordsize=1M,compression=zstd,sync=standard,quota=1.5T', 'dir', 'backup', 'shared'),
      ds('shared-bulk-data', 'fastData', 'recordsize=1M,compression=lz4,sync=standard,quota=1.2T', 'zfspool', 'images,rootdir', 'shared'),
      ds('shared-iso', 'fastData', 'recordsize=1M,compression=lz4,sync=standard,quota=80G', 'dir', 'iso,vztmpl', 'shared'),
    ],
  };
  hv.proxmox_storage_ids = { quickos_vm: 'quickOS-vm-disks', quickos_lxc: 'quickOS-lxc-disks', fastData_shared_backups: 'fastData-shared-backups', fastData_shared_iso: 'fastData-shared-iso' };
  hv.nfs = {
    exports: [
      { path: '/quickOS/vm-persistent-data', clients: ['192.168.50.31', '192.168.50.32', '192.168.50.10'], options: ['rw', 'sync', 'no_subtree_check', 'no_root_squash'] },
      { path: '/quickOS/portainer_stacks', clients: ['192.168.50.31'], options: ['rw', 'sync', 'no_subtree_check'] },
    ],
  };
  hv.shared_volumes = { nginx_logs: { host_path: '/mnt/pve/quickOS/shared-prod-data/logs/nginx', mounts: { '101': '/logs/nginx' } } };
  hv.shared_zfs_volumes = { 'certs-cache': { pool: 'quickOS-vm-disks', size_gb: 2 }, scratch: { pool: 'quickOS-vm-disks', size_gb: 8 } };
  return hv;
}

export interface Bench {
  host: SimHost;
  work: string;
  hostfs: string;
  onHost(p: string): string;
  /** Write the manifest and return its path. */
  manifest(doc: unknown): string;
  script(name: string, args: string[], extraEnv?: Record<string, string>, input?: string): { code: number; stdout: string; stderr: string };
}

/** A bare node: no pools, datasets or dataset storages; the spare disks of a used node plus `disks`. */
export function bareNode(disks: SimDisk[], hostAddress = '10.0.0.5'): Bench {
  const host = createSimHost(undefined, { pools: [], datasets: [], templates: [], isos: [], disks: [...defaultDisks(emptyRuntime()), ...disks] });
  const work = tmpDir('phoenix-storage-');
  const hostfs = path.join(host.stateDir, 'hostfs');
  const onHost = (p: string) => path.join(hostfs, p);
  // The node's own address (showmount reaches the NFS server there) and a loaded zfs module.
  fs.mkdirSync(onHost('/etc/network'), { recursive: true });
  fs.writeFileSync(onHost('/etc/network/interfaces'), `auto vmbr0\niface vmbr0 inet static\n\taddress ${hostAddress}/24\n`);
  fs.mkdirSync(onHost('/sys/module/zfs/parameters'), { recursive: true });
  fs.writeFileSync(onHost('/sys/module/zfs/parameters/zfs_arc_max'), '0\n');
  return {
    host,
    work,
    hostfs,
    onHost,
    manifest(doc) {
      const file = path.join(work, 'phoenix_hypervisor_config.json');
      fs.writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
      return file;
    },
    script(name, args, extraEnv = {}, input) {
      const env: Record<string, string> = {
        ...host.env,
        PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
        MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
        PHOENIX_CACHE_DIR: path.join(work, 'cache'),
        PHOENIX_POLL_INTERVAL_MS: '20',
        PHOENIX_NFS_WAIT_SECONDS: '2',
        ...extraEnv,
      };
      delete env.PHOENIX_DRY_RUN;
      delete env.PHOENIX_HOST_ROOT;
      const file = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', `${name}.mjs`);
      const r = spawnSync(process.execPath, [file, ...args], { env, encoding: 'utf8', timeout: 120_000, input: input ?? '' });
      return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

/** Calls that change the host (what a second run or a dry-run must not make). */
export function changingCalls(calls: CallRecord[]): string[] {
  const changing = (c: CallRecord) =>
    (c.tool === 'zpool' && c.argv[0] === 'create') ||
    (c.tool === 'zfs' && ['create', 'set', 'destroy'].includes(c.argv[0] ?? '')) ||
    (c.tool === 'pvesm' && ['add', 'set', 'remove', 'alloc', 'free'].includes(c.argv[0] ?? '')) ||
    c.tool === 'wipefs' && c.argv.some((a) => a === '--all' || a === '-a') ||
    c.tool === 'exportfs' && c.argv.some((a) => /^-[a-z]*r/.test(a)) ||
    c.tool === 'apt-get' ||
    (c.tool === 'systemctl' && ['start', 'stop', 'restart', 'reload', 'enable', 'daemon-reload'].includes(c.argv[0] ?? ''));
  return calls.filter(changing).map((c) => `${c.tool} ${c.argv.join(' ')}`);
}
