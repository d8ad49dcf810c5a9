// A realistic empty Proxmox host to start from: node "pve", the storages
// the manifests name (local, local-lvm and one per ZFS dataset of
// phoenix_hypervisor_config.json, named <pool>-<dataset> as the setup
// script names them), the Ubuntu 24.04 LXC template and the Noble cloud
// image on the shared ISO storage, ZFS pools quickOS and fastData.
//
//   node test/simhost/seed.mjs <dir> [--reset] [--node <name>]
//
// Seeding is idempotent: an existing state is left alone unless --reset.

import fs from 'node:fs';
import path from 'node:path';

import { writeStorageCfg, formatOfFile } from './storage.mts';
import { seedDisks, type SimDisk } from './disks.mts';
import { bareSeedOptions, poolDisksOf, seedBareHostFiles } from './bare-node.mts';
import { atomicWrite, emptyRuntime, paths, type Appliance, type Runtime, type StorageDef, type ZfsPool } from './state.mts';

export const DEFAULT_TEMPLATE = 'ubuntu-24.04-standard_24.04-2_amd64.tar.zst';
export const DEFAULT_CLOUD_IMAGE = 'noble-server-cloudimg-amd64.img';

/** A dataset in the shape of phoenix_hypervisor_config.json's zfs.datasets[]. */
export interface DatasetSpec {
  name: string;
  pool: string;
  /** "recordsize=128K,compression=lz4,…" */
  properties?: string;
  /** Omit for a plain dataset with no Proxmox storage on it. */
  proxmox_storage_type?: 'zfspool' | 'dir';
  proxmox_content_type?: string;
}

export interface PoolSpec {
  name: string;
  /** Bytes, or a size such as "2T". */
  size: number | string;
  layout?: 'mirror' | 'raidz1' | 'single';
  disks?: string[];
}

export interface FileSpec {
  storage: string;
  file: string;
  size?: number;
}

export interface SeedOptions {
  node?: string;
  /** The node's management address (host.json; the simulated tools' default is 192.168.1.50). */
  ip?: string;
  pools?: PoolSpec[];
  datasets?: DatasetSpec[];
  /** Extra storages, or overrides of generated ones (merged by id). */
  storages?: Record<string, Partial<StorageDef> & { type?: StorageDef['type'] }>;
  /** LXC templates present in storages (vztmpl content). */
  templates?: FileSpec[];
  /** ISO/cloud images present in storages (iso content). */
  isos?: FileSpec[];
  /** The pveam appliance index. */
  appliances?: Appliance[];
  /** pve-firewall daemon state at start. */
  firewallRunning?: boolean;
  /** Block devices (host-disks.json); default: one disk per pool vdev and the spare disks of disks/defaults.mts. */
  disks?: SimDisk[];
  /** Also write a fresh install's host files (bare-node.mts): os-release, interfaces, hosts, sudoers… */
  bareHost?: boolean;
}

export const DEFAULT_POOLS: PoolSpec[] = [
  { name: 'quickOS', size: '1.81T', layout: 'mirror', disks: ['/dev/disk/by-id/nvme-Samsung_SSD_990_EVO_Plus_2TB_SIM0000001', '/dev/disk/by-id/nvme-Samsung_SSD_990_EVO_Plus_2TB_SIM0000002'] },
  { name: 'fastData', size: '3.62T', layout: 'single', disks: ['/dev/disk/by-id/nvme-Samsung_SSD_990_EVO_Plus_4TB_SIM0000003'] },
];

export const DEFAULT_DATASETS: DatasetSpec[] = [
  { name: 'vm-disks', pool: 'quickOS', properties: 'recordsize=128K,compression=lz4,sync=standard,quota=800G', proxmox_storage_type: 'zfspool', proxmox_content_type: 'images' },
  { name: 'lxc-disks', pool: 'quickOS', properties: 'recordsize=16K,compression=lz4,sync=standard,quota=600G', proxmox_storage_type: 'zfspool', proxmox_content_type: 'images,rootdir' },
  { name: 'shared-prod-data', pool: 'quickOS', properties: 'recordsize=128K,compression=lz4,sync=standard,quota=400G', proxmox_storage_type: 'zfspool', proxmox_content_type: 'images,rootdir' },
  { name: 'shared-prod-data-sync', pool: 'quickOS', properties: 'recordsize=16K,compression=lz4,sync=always,quota=100G', proxmox_storage_type: 'zfspool', proxmox_content_type: 'images' },
  { name: 'vm-persistent-data', pool: 'quickOS', properties: 'recordsize=128K,compression=lz4,sync=standard,quota=10G', proxmox_storage_type: 'dir', proxmox_content_type: 'images,rootdir' },
  { name: 'lxc-persistent-data', pool: 'quickOS', properties: 'recordsize=128K,compression=lz4,sync=standard,quota=10G', proxmox_storage_type: 'zfspool', proxmox_content_type: 'images,rootdir' },
  { name: 'portainer_stacks', pool: 'quickOS', properties: 'compression=lz4' },
  { name: 'shared-test-data', pool: 'fastData', properties: 'recordsize=128K,compression=lz4,sync=standard,quota=500G', proxmox_storage_type: 'zfspool', proxmox_content_type: 'images,rootdir' },
  { name: 'shared-test-data-sync', pool: 'fastData', properties: 'recordsize=16K,compression=lz4,sync=always,quota=100G', proxmox_storage_type: 'zfspool', proxmox_content_type: 'images,rootdir' },
  { name: 'shared-backups', pool: 'fastData', properties: 'recordsize=1M,compression=zstd,sync=standard,quota=2T', proxmox_storage_type: 'dir', proxmox_content_type: 'backup' },
  { name: 'shared-bulk-data', pool: 'fastData', properties: 'recordsize=1M,compression=lz4,sync=standard,quota=1.4T', proxmox_storage_type: 'zfspool', proxmox_content_type: 'images,rootdir' },
  { name: 'shared-iso', pool: 'fastData', properties: 'recordsize=1M,compression=lz4,sync=standard,quota=100G', proxmox_storage_type: 'dir', proxmox_content_type: 'iso,vztmpl' },
];

export const DEFAULT_APPLIANCES: Appliance[] = [
  { section: 'system', template: 'alpine-3.20-default_20240908_amd64.tar.xz', architecture: 'amd64', size: 2_988_432 },
  { section: 'system', template: 'debian-12-standard_12.7-1_amd64.tar.zst', architecture: 'amd64', size: 126_499_037 },
  { section: 'system', template: 'rockylinux-9-default_20240912_amd64.tar.xz', architecture: 'amd64', size: 100_418_336 },
  { section: 'system', template: 'ubuntu-22.04-standard_22.04-1_amd64.tar.zst', architecture: 'amd64', size: 129_824_858 },
  { section: 'system', template: DEFAULT_TEMPLATE, architecture: 'amd64', size: 141_574_580 },
  { section: 'turnkeylinux', template: 'debian-12-turnkey-nginx-php-fastcgi_18.0-1_amd64.tar.gz', architecture: 'amd64', size: 236_617_277 },
];

function toBytes(size: number | string): number {
  if (typeof size === 'number') return size;
  const m = /^(\d+(?:\.\d+)?)([KMGTP])?$/i.exec(size);
  if (!m) throw new Error(`bad size '${size}'`);
  return Math.round(Number(m[1]) * 1024 ** ('BKMGTP'.indexOf((m[2] ?? 'B').toUpperCase()) || 0));
}

function parseProps(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (text ?? '').split(',').filter(Boolean)) {
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

export function buildRuntime(options: SeedOptions = {}): Runtime {
  const rt = emptyRuntime();
  const now = Date.now();
  const pools = options.pools ?? DEFAULT_POOLS;
  for (const p of pools) {
    const pool: ZfsPool = { size: toBytes(p.size), health: 'ONLINE', vdevs: p.disks ?? [`/dev/disk/by-id/sim-${p.name}-disk0`], layout: p.layout ?? 'single' };
    rt.zfs.pools[p.name] = pool;
    // zpool create -O compression=lz4 -O atime=off, as the setup script does
    rt.zfs.datasets[p.name] = { type: 'filesystem', props: { compression: 'lz4', atime: 'off' }, used: 1024 ** 2, created: now };
  }
  rt.storage.local = { type: 'dir', path: '/var/lib/vz', content: ['backup', 'iso', 'vztmpl'], total: 100 * 1024 ** 3, volumes: {} };
  rt.storage['local-lvm'] = { type: 'lvmthin', vgname: 'pve', thinpool: 'data', content: ['images', 'rootdir'], total: 350 * 1024 ** 3, volumes: {} };
  for (const ds of options.datasets ?? DEFAULT_DATASETS) {
    const name = `${ds.pool}/${ds.name}`;
    if (!rt.zfs.pools[ds.pool]) throw new Error(`dataset ${name}: no pool '${ds.pool}' in the seed`);
    rt.zfs.datasets[name] = { type: 'filesystem', props: parseProps(ds.properties), used: 192 * 1024, created: now };
    if (!ds.proxmox_storage_type) continue;
    const id = `${ds.pool}-${ds.name}`;
    const quota = parseProps(ds.properties).quota;
    const total = quota ? toBytes(quota) : rt.zfs.pools[ds.pool]!.size;
    const content = (ds.proxmox_content_type ?? 'images').split(',').map((c) => c.trim()).filter(Boolean);
    rt.storage[id] =
      ds.proxmox_storage_type === 'zfspool'
        ? { type: 'zfspool', pool: name, content, total, volumes: {} }
        : { type: 'dir', path: `/${name}`, content, shared: true, total, volumes: {} };
  }
  for (const [id, override] of Object.entries(options.storages ?? {})) {
    const base: StorageDef = rt.storage[id] ?? { type: override.type ?? 'dir', content: [], total: 100 * 1024 ** 3, volumes: {} };
    rt.storage[id] = { ...base, ...override, volumes: { ...base.volumes, ...(override.volumes ?? {}) } } as StorageDef;
  }
  const hasStorage = (id: string) => rt.storage[id] !== undefined;
  const templates = options.templates ?? [
    { storage: 'fastData-shared-iso', file: DEFAULT_TEMPLATE, size: 141_574_580 },
    { storage: 'local', file: DEFAULT_TEMPLATE, size: 141_574_580 },
  ];
  for (const t of templates) {
    if (!hasStorage(t.storage)) continue;
    rt.storage[t.storage]!.volumes[`vztmpl/${t.file}`] = { size: t.size ?? 134_217_728, format: formatOfFile(t.file) };
  }
  const isos = options.isos ?? [
    { storage: 'fastData-shared-iso', file: DEFAULT_CLOUD_IMAGE, size: 3_758_096_384 },
    { storage: 'local', file: DEFAULT_CLOUD_IMAGE, size: 3_758_096_384 },
  ];
  for (const i of isos) {
    if (!hasStorage(i.storage)) continue;
    rt.storage[i.storage]!.volumes[`iso/${i.file}`] = { size: i.size ?? 629_145_600, format: 'iso' };
  }
  rt.appliances = options.appliances ?? DEFAULT_APPLIANCES;
  rt.firewall.running = options.firewallRunning ?? true;
  return rt;
}

function looksLikeState(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'state.json'));
}

/** What a Proxmox VE install delegates to root for unprivileged containers. */
export const PVE_SUBORDINATE_IDS = 'root:100000:65536\n';

/**
 * Give a host root the /etc/subuid and /etc/subgid of a PVE install, unless
 * it has them. The default host root (<state>/hostfs) gets them at seed
 * time; a test pointing PHOENIX_HOST_ROOT elsewhere calls this for it, or
 * its unprivileged containers do not start (as on a node without them).
 */
export function seedSubordinateIds(hostRoot: string): void {
  for (const name of ['subuid', 'subgid']) {
    const file = path.join(hostRoot, 'etc', name);
    if (fs.existsSync(file)) continue;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, PVE_SUBORDINATE_IDS);
  }
}

/**
 * Create a simulated host in `dir`. Returns false when a state was already
 * there and left alone. `reset` wipes a previous simulator state first (and
 * refuses to wipe a non-empty directory that is not one).
 */
export function seedState(dir: string, options: SeedOptions = {}, { reset = false }: { reset?: boolean } = {}): boolean {
  const root = path.resolve(dir);
  if (looksLikeState(root) && !reset) return false;
  if (fs.existsSync(root)) {
    const entries = fs.readdirSync(root);
    if (entries.length > 0 && !looksLikeState(root)) {
      throw new Error(`refusing to seed ${root}: it is not empty and holds no simulator state`);
    }
    for (const entry of entries) fs.rmSync(path.join(root, entry), { recursive: true, force: true });
  }
  const p = paths(root);
  const node = options.node ?? 'pve';
  for (const d of [p.lxcDir, p.qemuDir, p.firewallDir, p.guests, p.guestLockDir, path.join(p.pve, 'nodes', node)]) fs.mkdirSync(d, { recursive: true });
  // /etc/pve/lxc and /etc/pve/qemu-server are the local node's directories on PVE.
  fs.symlinkSync('../../lxc', path.join(p.pve, 'nodes', node, 'lxc'));
  fs.symlinkSync('../../qemu-server', path.join(p.pve, 'nodes', node, 'qemu-server'));
  const rt = buildRuntime(options);
  atomicWrite(p.hostFile, `${JSON.stringify(options.ip === undefined ? { node } : { node, ip: options.ip }, null, 2)}\n`);
  atomicWrite(p.injectFile, '{}\n');
  fs.writeFileSync(p.callsFile, '');
  writeStorageCfg(root, rt);
  seedDisks(root, rt, options.disks);
  seedSubordinateIds(path.join(root, 'hostfs'));
  if (options.bareHost) seedBareHostFiles(root, path.join(root, 'hostfs'));
  // state.json last: its presence is what marks a complete seed.
  atomicWrite(p.stateFile, `${JSON.stringify(rt, null, 2)}\n`);
  return true;
}

function main(argv: string[]): number {
  const args = [...argv];
  let reset = false;
  let node: string | undefined;
  let bare = false;
  let disksFrom: string | undefined;
  const positional: string[] = [];
  while (args.length > 0) {
    const a = args.shift()!;
    if (a === '--reset') reset = true;
    else if (a === '--node') node = args.shift();
    else if (a === '--bare') bare = true;
    else if (a === '--disks-from') disksFrom = args.shift();
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node test/simhost/seed.mjs <state-dir> [--reset] [--node <name>] [--bare [--disks-from <hypervisor config>]]\n');
      return 0;
    } else positional.push(a);
  }
  const dir = positional[0];
  if (!dir || positional.length > 1) {
    process.stderr.write('usage: node test/simhost/seed.mjs <state-dir> [--reset] [--node <name>]\n');
    return 2;
  }
  try {
    const options: SeedOptions = bare
      ? { ...bareSeedOptions(disksFrom ? poolDisksOf(disksFrom) : [], node ?? 'pve'), bareHost: true }
      : node ? { node } : {};
    const created = seedState(dir, options, { reset });
    process.stdout.write(created ? `seeded simulated Proxmox host in ${path.resolve(dir)}\n` : `kept existing simulated host in ${path.resolve(dir)} (use --reset to start over)\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`seed: ${(error as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && /[\\/]seed\.m[jt]s$/.test(process.argv[1])) {
  process.exitCode = main(process.argv.slice(2));
}
