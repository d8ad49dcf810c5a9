// `pvesm add`, `pvesm set` and `pvesm remove` (Proxmox VE 8): storage.cfg
// entries of the types setup makes (dir, zfspool, nfs). As the API does, a
// new storage is activated before it is kept, so adding fails when it could
// not work: a zfspool storage needs its dataset, a dir storage with
// is_mountpoint needs a ZFS file system mounted there, an NFS storage needs
// the server to export the path (hostsvc/nfs.mts). Options fixed at creation
// (type, pool, path, server, export) cannot be changed with `set`.

import { parseCommand, type CommandSpec, type OptSpec } from './args.mts';
import type { Ctx } from './cli.mts';
import { die, ToolExit, updateRuntime, type StorageDef } from './state.mts';
import { writeStorageCfg } from './storage.mts';
import { mountedFilesystem } from './zfs.mts';
import { servedExports } from './hostsvc/nfs.mts';
import { hostRootOf } from './hostsvc/context.mts';

/** The options a storage of setup's types keeps beyond StorageDef. */
export type ConfiguredStorage = StorageDef & { server?: string; export?: string; options?: string; is_mountpoint?: string };

const TYPES = ['btrfs', 'cephfs', 'cifs', 'dir', 'esxi', 'glusterfs', 'iscsi', 'iscsidirect', 'lvm', 'lvmthin', 'nfs', 'pbs', 'rbd', 'zfs', 'zfspool'];
const SIMULATED_TYPES = ['dir', 'zfspool', 'nfs'];
const CONTENT: Record<string, string[]> = {
  zfspool: ['images', 'rootdir'],
  dir: ['images', 'rootdir', 'vztmpl', 'iso', 'backup', 'snippets', 'import'],
  nfs: ['images', 'rootdir', 'vztmpl', 'iso', 'backup', 'snippets', 'import'],
};
const FIXED = ['pool', 'path', 'server', 'export'];

const storageId: OptSpec = { type: 'string', format: (v) => (/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? undefined : `storage ID '${v}' contains illegal characters`) };
const OPTIONS: Record<string, OptSpec> = {
  storage: storageId,
  type: { type: 'string', enum: TYPES },
  pool: { type: 'string' },
  path: { type: 'string', format: (v) => (v.startsWith('/') ? undefined : `value does not look like a valid absolute path`) },
  content: { type: 'string', format: (v) => (/^[a-z]+(,[a-z]+)*$/.test(v) ? undefined : `invalid content list '${v}'`) },
  shared: { type: 'boolean' },
  disable: { type: 'boolean' },
  sparse: { type: 'boolean' },
  mkdir: { type: 'boolean' },
  is_mountpoint: { type: 'string' },
  server: { type: 'string' },
  export: { type: 'string', format: (v) => (v.startsWith('/') ? undefined : 'value does not look like a valid absolute path') },
  options: { type: 'string' },
  nodes: { type: 'string' },
  delete: { type: 'string' },
};

const SPECS: Record<string, CommandSpec> = {
  add: { name: 'pvesm add', args: ['type', 'storage'], param: (n) => (n === 'delete' ? undefined : OPTIONS[n]) },
  set: { name: 'pvesm set', args: ['storage'], param: (n) => (n === 'type' ? undefined : OPTIONS[n]) },
  remove: { name: 'pvesm remove', args: ['storage'], param: (n) => (n === 'storage' ? storageId : undefined) },
};

function paramError(lines: string[], spec: CommandSpec): never {
  throw new ToolExit(255, `400 Parameter verification failed.\n${lines.join('\n')}\n${spec.name} <${spec.args.join('> <')}> [OPTIONS]\n`);
}

function checkContent(type: string, content: string, spec: CommandSpec): string[] {
  const list = content.split(',');
  if (list.includes('none')) return [];
  for (const c of list) if (!CONTENT[type]!.includes(c)) paramError([`content: storage does not support content type '${c}'`], spec);
  return list;
}

export function runPvesmConfig(ctx: Ctx, verb: 'add' | 'set' | 'remove', rest: string[]): void {
  const spec = SPECS[verb]!;
  const p = parseCommand(spec, rest);
  ctx.begin();
  const id = p.args.storage!;
  updateRuntime(ctx.root, (rt) => {
    const storages = rt.storage as Record<string, ConfiguredStorage>;
    if (verb === 'remove') {
      if (!storages[id]) die(`delete storage failed: error with cfs lock 'file-storage_cfg': storage '${id}' does not exist`);
      delete storages[id];
      writeStorageCfg(ctx.root, rt);
      return;
    }
    if (verb === 'set') {
      const s = storages[id];
      if (!s) die(`update storage failed: error with cfs lock 'file-storage_cfg': storage '${id}' does not exist`);
      const fixed = p.order.filter((o) => FIXED.includes(o));
      if (fixed.length > 0) paramError(fixed.map((o) => `${o}: can't change value of fixed parameter '${o}'`), spec);
      if (p.opts.content !== undefined) s.content = checkContent(s.type, p.opts.content, spec);
      if (p.opts.shared !== undefined) s.shared = p.opts.shared === '1';
      if (p.opts.disable !== undefined) s.disabled = p.opts.disable === '1';
      if (p.opts.options !== undefined) s.options = p.opts.options;
      writeStorageCfg(ctx.root, rt);
      return;
    }
    const type = p.args.type!;
    if (!SIMULATED_TYPES.includes(type)) throw new ToolExit(255, `simhost: 'pvesm add ${type}' is not simulated\n`);
    if (storages[id]) die(`create storage failed: storage ID '${id}' already defined`);
    const required = type === 'zfspool' ? ['pool'] : type === 'dir' ? ['path'] : ['server', 'export'];
    const missing = required.filter((r) => p.opts[r] === undefined);
    if (missing.length > 0) paramError(missing.map((m) => `${m}: property is missing and it is not optional`), spec);
    const content = checkContent(type, p.opts.content ?? (type === 'zfspool' ? 'images,rootdir' : 'images,rootdir,vztmpl,iso,backup,snippets'), spec);
    const s: ConfiguredStorage = { type: type as StorageDef['type'], content, total: 0, volumes: {} };
    if (type === 'zfspool') {
      const ds = rt.zfs.datasets[p.opts.pool!];
      if (!ds || ds.type === 'snapshot') die(`create storage failed: zfs error: cannot open '${p.opts.pool}': dataset does not exist`);
      s.pool = p.opts.pool!;
      s.total = rt.zfs.pools[p.opts.pool!.split('/')[0]!]?.size ?? 0;
    } else if (type === 'dir') {
      s.path = p.opts.path!;
      const mountpoint = p.opts.is_mountpoint;
      if (mountpoint !== undefined && !/^(no|0|off|false)$/i.test(mountpoint)) {
        const where = /^(yes|1|on|true)$/i.test(mountpoint) ? s.path : mountpoint;
        const mounted = mountedFilesystem(rt, where);
        if (!mounted) die(`create storage failed: unable to activate storage '${id}' - directory is expected to be a mount point but is not mounted: '${where}'`);
        s.is_mountpoint = mountpoint;
        s.total = rt.zfs.pools[mounted.split('/')[0]!]?.size ?? 0;
      } else {
        s.total = 100 * 1024 ** 3;
      }
      if (p.opts.shared === '1') s.shared = true;
    } else {
      const served = servedExports(ctx.root, hostRootOf(ctx.root), p.opts.server!);
      if ('error' in served) die(`create storage failed: storage '${id}' is not online`);
      if (!served.exports.some((e) => e.path === p.opts.export)) die(`create storage failed: mount error: mount.nfs: access denied by server while mounting ${p.opts.server}:${p.opts.export}`);
      s.server = p.opts.server!;
      s.export = p.opts.export!;
      s.path = p.opts.path ?? `/mnt/pve/${id}`;
      if (p.opts.options !== undefined) s.options = p.opts.options;
      s.total = 1024 ** 4;
    }
    if (p.opts.disable === '1') s.disabled = true;
    storages[id] = s;
    writeStorageCfg(ctx.root, rt);
  });
}
