// Storages of the simulated host (the /etc/pve/storage.cfg side) and the
// `pvesm` and `pveam` commands. Volumes on zfspool storages are ZFS
// datasets, so `zfs list` shows the disks `pct create` allocated; other
// storages keep their contents in the runtime state.
//
// Volume names follow the plugins: zfspool subvol-<id>-disk-N (containers)
// and vm-<id>-disk-N (VM zvols), base-/basevol- once templated, and
// "<base>/<clone>" for linked clones; lvmthin vm-<id>-disk-N; directories
// <id>/vm-<id>-disk-N.<fmt> under images/, templates under template/cache.

import path from 'node:path';

import { parseCommand, parseSize, usage, vmidSpec, type CommandSpec, type OptSpec } from './args.mts';
import type { Ctx } from './cli.mts';
import { runPvesmConfig } from './storage-config.mts';
import { atomicWrite, die, loadRuntime, paths, ToolExit, updateRuntime, type Runtime, type StorageDef, type Volume } from './state.mts';

export const CONTENT_DIRS: Record<string, string> = {
  vztmpl: 'template/cache',
  iso: 'template/iso',
  backup: 'dump',
  snippets: 'snippets',
  images: 'images',
  rootdir: 'images',
};

export function storageOf(rt: Runtime, storeid: string): StorageDef {
  const s = rt.storage[storeid];
  if (!s) die(`storage '${storeid}' does not exist`);
  return s;
}

export function parseVolid(volid: string): { storeid: string; volname: string } {
  const m = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i.exec(volid);
  if (!m) die(`unable to parse volume ID '${volid}'`);
  return { storeid: m[1]!, volname: m[2]! };
}

/** The content type a volume name implies (vztmpl/x → vztmpl, vm-… → images). */
export function volumeContent(storage: StorageDef, volname: string): string {
  const m = /^(vztmpl|iso|backup|snippets)\//.exec(volname);
  if (m) return m[1]!;
  if (/(^|\/)(subvol|basevol)-\d+-disk-\d+$/.test(volname)) return 'rootdir';
  if (storage.type === 'dir' && /\.raw$/.test(volname) && storage.content.includes('rootdir') && !storage.content.includes('images')) return 'rootdir';
  return 'images';
}

// ---------------------------------------------------------------------------
// Listing volumes (zfspool from datasets, others from the state)

export interface VolumeInfo extends Volume {
  volid: string;
  volname: string;
  content: string;
}

const ZFS_VOLNAME = /^(vm|base|subvol|basevol)-(\d+)-(\S+)$/;

export function listVolumes(rt: Runtime, storeid: string): VolumeInfo[] {
  const storage = storageOf(rt, storeid);
  const out: VolumeInfo[] = [];
  if (storage.type === 'zfspool') {
    const prefix = `${storage.pool}/`;
    for (const [name, ds] of Object.entries(rt.zfs.datasets)) {
      if (!name.startsWith(prefix) || ds.type === 'snapshot') continue;
      const child = name.slice(prefix.length);
      const m = ZFS_VOLNAME.exec(child);
      if (!m) continue;
      const origin = ds.props.origin;
      const base = origin ? origin.slice(prefix.length).replace(/@.*$/, '') : undefined;
      const volname = base ? `${base}/${child}` : child;
      const size = ds.type === 'volume' ? (ds.volsize ?? 0) : Number(ds.props.refquota ? parseSize(ds.props.refquota) ?? 0 : 0);
      out.push({
        volid: `${storeid}:${volname}`,
        volname,
        content: m[1]!.startsWith('sub') || m[1] === 'basevol' ? 'rootdir' : 'images',
        size,
        format: ds.type === 'volume' ? 'raw' : 'subvol',
        vmid: Number(m[2]),
      });
    }
  } else {
    for (const [volname, vol] of Object.entries(storage.volumes)) {
      out.push({ ...vol, volid: `${storeid}:${volname}`, volname, content: volumeContent(storage, volname) });
    }
  }
  return out.sort((a, b) => a.volid.localeCompare(b.volid));
}

export function findVolume(rt: Runtime, volid: string): VolumeInfo | undefined {
  const { storeid } = parseVolid(volid);
  return listVolumes(rt, storeid).find((v) => v.volid === volid);
}

// ---------------------------------------------------------------------------
// Allocation

function zfsDatasetName(storage: StorageDef, volname: string): string {
  return `${storage.pool}/${volname.split('/').pop()}`;
}

function nextDiskIndex(rt: Runtime, storeid: string, vmid: string): number {
  const used = new Set<number>();
  for (const v of listVolumes(rt, storeid)) {
    const m = /(?:^|\/)(?:vm|base|subvol|basevol)-(\d+)-disk-(\d+)(?:\.\w+)?$/.exec(v.volname);
    if (m && m[1] === vmid) used.add(Number(m[2]));
  }
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

export type DiskUse = 'ct' | 'vm';

/** Allocate a new disk; returns its volid. `name` forces a volume name (pvesm alloc). */
export function allocDisk(
  rt: Runtime,
  storeid: string,
  vmid: string,
  sizeBytes: number,
  use: DiskUse,
  options: { name?: string; format?: string; origin?: string } = {},
): string {
  const storage = storageOf(rt, storeid);
  const content = use === 'ct' ? 'rootdir' : 'images';
  if (!storage.content.includes(content)) {
    die(use === 'ct' ? `storage '${storeid}' does not support container directories` : `storage '${storeid}' does not support vm images`);
  }
  const n = nextDiskIndex(rt, storeid, vmid);
  if (storage.type === 'zfspool') {
    const child = options.name ?? (use === 'ct' ? `subvol-${vmid}-disk-${n}` : `vm-${vmid}-disk-${n}`);
    const dataset = `${storage.pool}/${child}`;
    if (rt.zfs.datasets[dataset]) die(`zfs error: cannot create '${dataset}': dataset already exists`);
    const isSubvol = child.startsWith('subvol-') || child.startsWith('basevol-');
    rt.zfs.datasets[dataset] = {
      type: isSubvol ? 'filesystem' : 'volume',
      props: {
        ...(isSubvol ? { refquota: sizeLabel(sizeBytes), acltype: 'posixacl', xattr: 'sa' } : {}),
        ...(options.origin ? { origin: options.origin } : {}),
      },
      used: Math.min(sizeBytes, 512 * 1024 ** 2),
      ...(isSubvol ? {} : { volsize: sizeBytes }),
      created: Date.now(),
    };
    const base = options.origin ? `${options.origin.slice(storage.pool!.length + 1).replace(/@.*$/, '')}/` : '';
    return `${storeid}:${base}${child}`;
  }
  if (storage.type === 'lvmthin') {
    const name = options.name ?? `vm-${vmid}-disk-${n}`;
    if (storage.volumes[name]) die(`lvcreate '${storage.vgname}/${name}' error:   Logical Volume "${name}" already exists in volume group "${storage.vgname}"`);
    storage.volumes[name] = { size: sizeBytes, format: 'raw', vmid: Number(vmid) };
    return `${storeid}:${name}`;
  }
  const format = options.format ?? (use === 'ct' ? 'raw' : 'qcow2');
  const file = options.name ?? `vm-${vmid}-disk-${n}.${format}`;
  const volname = `${vmid}/${file}`;
  if (storage.volumes[volname]) die(`disk image '${storage.path}/images/${volname}' already exists`);
  storage.volumes[volname] = { size: sizeBytes, format, vmid: Number(vmid) };
  return `${storeid}:${volname}`;
}

function sizeLabel(bytes: number): string {
  const g = bytes / 1024 ** 3;
  return Number.isInteger(g) ? `${g}G` : `${Math.round(bytes / 1024 ** 2)}M`;
}

export function freeVolume(rt: Runtime, volid: string): void {
  const { storeid, volname } = parseVolid(volid);
  const storage = storageOf(rt, storeid);
  if (storage.type === 'zfspool') {
    const dataset = zfsDatasetName(storage, volname);
    for (const name of Object.keys(rt.zfs.datasets)) {
      if (name === dataset || name.startsWith(`${dataset}@`)) delete rt.zfs.datasets[name];
    }
    return;
  }
  delete storage.volumes[volname];
}

export function volumeSize(rt: Runtime, volid: string): number | undefined {
  return findVolume(rt, volid)?.size;
}

export function setVolumeSize(rt: Runtime, volid: string, size: number): void {
  const { storeid, volname } = parseVolid(volid);
  const storage = storageOf(rt, storeid);
  if (storage.type === 'zfspool') {
    const ds = rt.zfs.datasets[zfsDatasetName(storage, volname)];
    if (!ds) return;
    if (ds.type === 'volume') ds.volsize = size;
    else ds.props.refquota = sizeLabel(size);
    return;
  }
  const vol = storage.volumes[volname];
  if (vol) vol.size = size;
}

/**
 * Templating renames a guest's disks to base images (vm→base, subvol→basevol)
 * and, on ZFS, takes the @__base__ snapshot linked clones start from.
 */
export function convertToBase(rt: Runtime, volid: string): string {
  const { storeid, volname } = parseVolid(volid);
  const storage = storageOf(rt, storeid);
  const rename = (name: string) => name.replace(/^vm-/, 'base-').replace(/^subvol-/, 'basevol-');
  if (storage.type === 'zfspool') {
    if (volname.includes('/')) return volid; // a linked clone stays a clone
    const from = zfsDatasetName(storage, volname);
    const newName = rename(volname);
    const to = `${storage.pool}/${newName}`;
    const ds = rt.zfs.datasets[from];
    if (ds && from !== to) {
      delete rt.zfs.datasets[from];
      rt.zfs.datasets[to] = ds;
    }
    rt.zfs.datasets[`${to}@__base__`] = { type: 'snapshot', props: {}, used: 0, created: Date.now() };
    return `${storeid}:${newName}`;
  }
  if (volname.includes('/') && storage.type !== 'dir') return volid;
  const dirName = path.posix.dirname(volname);
  const newName = storage.type === 'dir' ? `${dirName}/${rename(path.posix.basename(volname))}` : rename(volname);
  const vol = storage.volumes[volname];
  if (vol) {
    delete storage.volumes[volname];
    storage.volumes[newName] = vol;
  }
  return `${storeid}:${newName}`;
}

/** A linked clone of a base volume (same storage). */
export function linkedClone(rt: Runtime, baseVolid: string, newVmid: string, use: DiskUse): string {
  const { storeid, volname } = parseVolid(baseVolid);
  const storage = storageOf(rt, storeid);
  const size = volumeSize(rt, baseVolid) ?? 0;
  if (storage.type === 'zfspool') {
    const origin = `${storage.pool}/${volname.split('/').pop()}@__base__`;
    return allocDisk(rt, storeid, newVmid, size, use, { origin });
  }
  const fresh = allocDisk(rt, storeid, newVmid, size, use);
  const freshName = parseVolid(fresh).volname;
  const vol = storage.volumes[freshName]!;
  delete storage.volumes[freshName];
  const linked = `${volname}/${freshName}`;
  storage.volumes[linked] = vol;
  return `${storeid}:${linked}`;
}

/** The path `pvesm path` prints (the real host's, not the simulator's). */
export function volumePath(rt: Runtime, volid: string): string {
  const { storeid, volname } = parseVolid(volid);
  const storage = storageOf(rt, storeid);
  const leaf = volname.split('/').pop()!;
  switch (storage.type) {
    case 'zfspool':
      return /^(subvol|basevol)-/.test(leaf) ? `/${storage.pool}/${leaf}` : `/dev/zvol/${storage.pool}/${leaf}`;
    case 'lvmthin':
      return `/dev/${storage.vgname}/${leaf}`;
    default: {
      const m = /^(vztmpl|iso|backup|snippets)\/(.+)$/.exec(volname);
      if (m) return `${storage.path}/${CONTENT_DIRS[m[1]!]}/${m[2]}`;
      return `${storage.path}/images/${volname.includes('/') ? `${volname.split('/')[0]}/${leaf}` : volname}`;
    }
  }
}

/**
 * Resolve a file the host would open by path (a template or image) to a
 * volume: a path under a directory storage is that storage's content.
 */
export function volumeForPath(rt: Runtime, file: string): VolumeInfo | undefined {
  for (const [storeid, storage] of Object.entries(rt.storage)) {
    if ((storage.type !== 'dir' && storage.type !== 'nfs') || !storage.path) continue;
    for (const [content, dir] of Object.entries(CONTENT_DIRS)) {
      if (content === 'images' || content === 'rootdir') continue;
      const prefix = `${storage.path}/${dir}/`;
      if (file.startsWith(prefix)) {
        const volname = `${content}/${file.slice(prefix.length)}`;
        const vol = storage.volumes[volname];
        if (vol) return { ...vol, volid: `${storeid}:${volname}`, volname, content };
      }
    }
  }
  return undefined;
}

export function formatOfFile(name: string): string {
  const m = /\.(tar\.zst|tar\.gz|tar\.xz|tgz|iso|img|qcow2|raw|vmdk)$/.exec(name);
  if (!m) return 'raw';
  return { 'tar.zst': 'tzst', 'tar.gz': 'tgz', 'tar.xz': 'txz', tgz: 'tgz', iso: 'iso', img: 'iso', qcow2: 'qcow2', raw: 'raw', vmdk: 'vmdk' }[m[1]!]!;
}

// ---------------------------------------------------------------------------
// storage.cfg, written so tools reading /etc/pve/storage.cfg see the same storages

export function writeStorageCfg(root: string, rt: Runtime): void {
  let out = '';
  for (const [id, s] of Object.entries(rt.storage)) {
    out += `${s.type}: ${id}\n`;
    const extra = s as StorageDef & { server?: string; export?: string; options?: string; is_mountpoint?: string };
    if (extra.export) out += `\texport ${extra.export}\n`;
    if (s.path) out += `\tpath ${s.path}\n`;
    if (s.pool) out += `\tpool ${s.pool}\n`;
    if (extra.server) out += `\tserver ${extra.server}\n`;
    if (extra.options) out += `\toptions ${extra.options}\n`;
    if (extra.is_mountpoint) out += `\tis_mountpoint ${extra.is_mountpoint}\n`;
    if (s.vgname) out += `\tvgname ${s.vgname}\n`;
    if (s.thinpool) out += `\tthinpool ${s.thinpool}\n`;
    out += `\tcontent ${[...s.content].sort().join(',')}\n`;
    if (s.type === 'zfspool') out += `\tsparse 1\n`;
    if (s.shared) out += `\tshared 1\n`;
    if (s.disabled) out += `\tdisable\n`;
    out += '\n';
  }
  atomicWrite(path.join(paths(root).pve, 'storage.cfg'), out);
}

function usedBytes(rt: Runtime, storeid: string): number {
  const storage = storageOf(rt, storeid);
  if (storage.type === 'zfspool') {
    return Object.entries(rt.zfs.datasets)
      .filter(([name, ds]) => name.startsWith(`${storage.pool}/`) && ds.type !== 'snapshot')
      .reduce((sum, [, ds]) => sum + ds.used, 0);
  }
  return Object.values(storage.volumes).reduce((sum, v) => sum + v.size, 0);
}

export function storageStatus(rt: Runtime, storeid: string): { total: number; used: number; avail: number } {
  const storage = storageOf(rt, storeid);
  const total = storage.total;
  const used = Math.min(usedBytes(rt, storeid), total);
  return { total, used, avail: total - used };
}

// ---------------------------------------------------------------------------
// pvesm

const storageIdSpec: OptSpec = { type: 'string', format: (v) => (/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? undefined : `storage ID '${v}' contains illegal characters`) };
const volumeIdSpec: OptSpec = { type: 'string' };

const pvesmSpecs: Record<string, CommandSpec> = {
  status: {
    name: 'pvesm status',
    args: [],
    param: (n) => ({ content: { type: 'string' }, enabled: { type: 'boolean' }, format: { type: 'boolean' }, storage: storageIdSpec, target: { type: 'string' } } as Record<string, OptSpec>)[n],
  },
  list: {
    name: 'pvesm list',
    args: ['storage'],
    param: (n) => ({ storage: storageIdSpec, content: { type: 'string' }, vmid: vmidSpec } as Record<string, OptSpec>)[n],
  },
  path: { name: 'pvesm path', args: ['volume'], param: (n) => (n === 'volume' ? volumeIdSpec : undefined) },
  alloc: {
    name: 'pvesm alloc',
    args: ['storage', 'vmid', 'filename', 'size'],
    param: (n) => ({ storage: storageIdSpec, vmid: vmidSpec, filename: { type: 'string' }, size: { type: 'string', format: (v) => (/^\d+[KMG]?$/.test(v) ? undefined : 'unable to parse size') }, format: { type: 'string', enum: ['raw', 'qcow2', 'subvol', 'vmdk'] } } as Record<string, OptSpec>)[n],
  },
  free: { name: 'pvesm free', args: ['volume'], param: (n) => ({ volume: volumeIdSpec, delay: { type: 'integer', min: 1, max: 30 }, storage: storageIdSpec } as Record<string, OptSpec>)[n] },
};

export function runPvesm(ctx: Ctx): void {
  const [verb = '', ...rest] = ctx.argv;
  if (verb === 'add' || verb === 'set' || verb === 'remove') return runPvesmConfig(ctx, verb, rest);
  const spec = pvesmSpecs[verb];
  if (!spec) return ctx.unknownCommand(verb, [...Object.keys(pvesmSpecs), 'add', 'set', 'remove'], ['scan', 'export', 'import', 'extractconfig', 'prune-backups', 'apiinfo']);
  const p = parseCommand(spec, rest);
  ctx.begin();
  switch (verb) {
    case 'status': {
      const rt = loadRuntime(ctx.root);
      let ids = Object.keys(rt.storage);
      if (p.opts.storage) {
        storageOf(rt, p.opts.storage);
        ids = [p.opts.storage];
      }
      if (p.opts.content) ids = ids.filter((id) => rt.storage[id]!.content.includes(p.opts.content!));
      if (p.opts.enabled === '1') ids = ids.filter((id) => !rt.storage[id]!.disabled);
      const width = Math.max(...ids.map((id) => id.length), 0) + 1;
      let out = `${'Name'.padEnd(width)} ${'Type'.padStart(10)} ${'Status'.padStart(10)} ${'Total (KiB)'.padStart(15)} ${'Used (KiB)'.padStart(15)} ${'Available (KiB)'.padStart(15)} ${'%'.padStart(8)}\n`;
      for (const id of ids.sort()) {
        const s = rt.storage[id]!;
        const st = storageStatus(rt, id);
        const pct = s.disabled ? 'N/A'.padStart(8) : `${((st.used * 100) / (st.total || 1)).toFixed(2).padStart(7)}%`;
        out += `${id.padEnd(width)} ${s.type.padStart(10)} ${(s.disabled ? 'disabled' : 'active').padStart(10)} ${String(Math.floor(st.total / 1024)).padStart(15)} ${String(Math.floor(st.used / 1024)).padStart(15)} ${String(Math.floor(st.avail / 1024)).padStart(15)} ${pct}\n`;
      }
      ctx.out(out);
      return;
    }
    case 'list': {
      const rt = loadRuntime(ctx.root);
      let vols = listVolumes(rt, p.args.storage!);
      if (p.opts.content) vols = vols.filter((v) => v.content === p.opts.content);
      if (p.opts.vmid) vols = vols.filter((v) => String(v.vmid) === p.opts.vmid);
      ctx.out(printContent(vols));
      return;
    }
    case 'path': {
      const rt = loadRuntime(ctx.root);
      const volid = p.args.volume!;
      if (volid.startsWith('/')) {
        ctx.out(`${volid}\n`);
        return;
      }
      ctx.out(`${volumePath(rt, volid)}\n`);
      return;
    }
    case 'alloc': {
      const size = parseSize(p.args.size!.replace(/^(\d+)$/, '$1K'))!;
      const volid = updateRuntime(ctx.root, (rt) => {
        const storage = storageOf(rt, p.args.storage!);
        const filename = p.args.filename!;
        const vmid = p.args.vmid!;
        if (filename !== '') {
          const prefix = storage.type === 'zfspool' && p.opts.format === 'subvol' ? `subvol-${vmid}-` : `vm-${vmid}-`;
          if (!filename.startsWith(prefix)) die(`illegal name '${filename}' - should be '${prefix}*'`);
        }
        const use: 'ct' | 'vm' = p.opts.format === 'subvol' ? 'ct' : 'vm';
        if (!storage.content.includes('images') && !storage.content.includes('rootdir')) die(`storage '${p.args.storage}' does not support vm images`);
        const wanted = storage.content.includes(use === 'ct' ? 'rootdir' : 'images') ? use : use === 'ct' ? 'vm' : 'ct';
        return allocDisk(rt, p.args.storage!, vmid, size, wanted, { ...(filename ? { name: filename } : {}), ...(p.opts.format ? { format: p.opts.format } : {}) });
      });
      ctx.out(`successfully created '${volid}'\n`);
      return;
    }
    case 'free': {
      updateRuntime(ctx.root, (rt) => {
        const volid = p.args.volume!;
        if (!findVolume(rt, volid)) die(`no such volume '${volid}'`);
        freeVolume(rt, volid);
      });
      return;
    }
  }
}

function printContent(vols: VolumeInfo[]): string {
  const nameWidth = Math.max(...vols.map((v) => v.volid.length), 0);
  const sizeWidth = Math.max(...vols.map((v) => String(v.size).length), 1);
  const row = (a: string, b: string, c: string, d: string) => `${a.padEnd(nameWidth)} ${b.padEnd(7)} ${c.padEnd(9)} ${d.padStart(sizeWidth)}`;
  let out = `${row('Volid', 'Format', 'Type', 'Size')} VMID\n`;
  for (const v of vols.filter((v) => v.vmid)) out += `${row(v.volid, v.format, v.content, String(v.size))} ${v.vmid}\n`;
  for (const v of vols.filter((v) => !v.vmid).sort((a, b) => a.format.localeCompare(b.format))) out += `${row(v.volid, v.format, v.content, String(v.size))}\n`;
  return out;
}

// ---------------------------------------------------------------------------
// pveam

const pveamSpecs: Record<string, CommandSpec> = {
  update: { name: 'pveam update', args: [], param: () => undefined },
  available: { name: 'pveam available', args: [], param: (n) => (n === 'section' ? { type: 'string', enum: ['system', 'mail', 'turnkeylinux'] } : undefined) },
  list: { name: 'pveam list', args: ['storage'], param: (n) => (n === 'storage' ? storageIdSpec : undefined) },
  download: { name: 'pveam download', args: ['storage', 'template'], param: (n) => ({ storage: storageIdSpec, template: { type: 'string', maxLength: 255 } } as Record<string, OptSpec>)[n] },
  remove: { name: 'pveam remove', args: ['template_path'], param: (n) => (n === 'template_path' ? { type: 'string', maxLength: 255 } : undefined) },
};

export function runPveam(ctx: Ctx): void {
  const [verb = '', ...rest] = ctx.argv;
  const spec = pveamSpecs[verb];
  if (!spec) return ctx.unknownCommand(verb, Object.keys(pveamSpecs), []);
  const p = parseCommand(spec, rest);
  ctx.begin();
  switch (verb) {
    case 'update':
      ctx.out('update successful\n');
      return;
    case 'available': {
      const rt = loadRuntime(ctx.root);
      let out = '';
      const list = [...rt.appliances].sort((a, b) => a.section.localeCompare(b.section) || a.template.localeCompare(b.template));
      for (const a of list) {
        if (p.opts.section && a.section !== p.opts.section) continue;
        out += `${a.section.padEnd(15)} ${a.template.padEnd(60)} ${a.architecture}\n`;
      }
      ctx.out(out);
      return;
    }
    case 'list': {
      const rt = loadRuntime(ctx.root);
      const storage = storageOf(rt, p.args.storage!);
      if (!storage.content.includes('vztmpl')) die('Storage does not support templates!');
      let out = `${'NAME'.padEnd(60)} ${'SIZE'.padEnd(6)}\n`;
      for (const v of listVolumes(rt, p.args.storage!).filter((v) => v.content === 'vztmpl')) {
        out += `${v.volid.padEnd(60)} ${(v.size / 1024 ** 2).toFixed(2).padEnd(4)}MB\n`;
      }
      ctx.out(out);
      return;
    }
    case 'download': {
      const template = p.args.template!;
      const storeid = p.args.storage!;
      const result = updateRuntime(ctx.root, (rt) => {
        const appliance = rt.appliances.find((a) => a.template === template);
        if (!appliance) {
          throw new ToolExit(255, `400 Parameter verification failed.\ntemplate: no such template\n${usage(spec)}\n`);
        }
        const storage = storageOf(rt, storeid);
        if (!storage.content.includes('vztmpl')) die(`storage '${storeid}' does not support templates`);
        const volname = `vztmpl/${template}`;
        const dest = `${storage.path}/template/cache/${template}`;
        const url = `http://download.proxmox.com/images/${appliance.section}/${template}`;
        if (storage.volumes[volname]) return { url, dest, existed: true };
        storage.volumes[volname] = { size: appliance.size, format: formatOfFile(template) };
        return { url, dest, existed: false };
      });
      let out = `downloading ${result.url} to ${result.dest}\n`;
      if (result.existed) out += 'calculating checksum of existing file...OK, got correct file already, no need to download\n';
      else out += `--2025-01-01 00:00:00--  ${result.url}\ncalculating checksum...OK, checksum verified\ndownload of '${result.url}' to '${result.dest}' finished\n`;
      ctx.out(out);
      return;
    }
    case 'remove': {
      updateRuntime(ctx.root, (rt) => {
        const volid = p.args.template_path!;
        const { storeid, volname } = parseVolid(volid);
        const storage = storageOf(rt, storeid);
        if (!volname.startsWith('vztmpl/')) die(`unable to use volume ${volid} - content type needs to be 'vztmpl'`);
        if (!storage.volumes[volname]) die(`can't find file '${volid}'`);
        delete storage.volumes[volname];
      });
      return;
    }
  }
}
