// The Proxmox storages `phoenix setup` keeps: one per ZFS dataset that names
// a proxmox_storage_type (zfspool or dir) and one per NFS export, all from
// ONE desired list (desiredStorages), so the ZFS step and the NFS step can
// never disagree about which storages exist. The bash ZFS step removed every
// storage it did not know, the NFS storages of step 5 included, on every run.
//
// The rule here: a storage the manifest does not name is never touched, and
// nothing is ever removed. A storage the manifest names is added when it is
// missing; when it exists, what Proxmox lets change (content, shared, NFS
// mount options) is brought to the manifest with `pvesm set`, and what it
// fixes at creation (type, pool, path, server, export) is refused with the
// manifest's JSON pointer rather than replaced: a storage of that name made by
// hand is the operator's. A storage dropped from the manifest stays; removing
// it is left to the operator (Phoenix keeps no record of what it created, and
// a storage id alone does not prove it made it).
//
// What exists is read from /etc/pve/storage.cfg (PHOENIX_PVE_DIR), the file
// pvesm itself writes, read-only and in dry-run too.

import fs from 'node:fs';
import path from 'node:path';
import { PhoenixError } from '../core/errors.mts';
import { run } from '../core/runner.mts';
import type { ConfigIssue, HypervisorConfig } from '../config/types.mts';
import type { PhoenixOptions } from '../core/env.mts';

export type StorageOwner = 'zfs' | 'nfs';

export interface DesiredStorage {
  id: string;
  type: 'zfspool' | 'dir' | 'nfs';
  owner: StorageOwner;
  /** The manifest entry it comes from. */
  pointer: string;
  content: string[];
  /** zfspool: the dataset. */
  pool?: string;
  /** dir: the directory; nfs: the local mount point. */
  path?: string;
  shared?: boolean;
  server?: string;
  export?: string;
  options?: string;
}

/** What an NFS storage holds and how it is mounted, as the bash added them. */
export const NFS_CONTENT = ['images', 'iso', 'vztmpl', 'backup', 'snippets'];
export const NFS_MOUNT_OPTIONS = 'vers=4,soft,timeo=30,retrans=3';
export const NFS_MOUNT_BASE = '/mnt/nfs';

/** The storage id of a dataset: proxmox_storage_ids["<pool>_<name with - → _>"], else "<pool>-<name>" (the bash's rule). */
export function datasetStorageId(config: HypervisorConfig, pool: string, name: string): string {
  const mapped = config.proxmox_storage_ids?.[`${pool}_${name.replace(/-/g, '_')}`];
  return mapped !== undefined && mapped !== '' ? mapped : `${pool}-${name}`;
}

/** The storage id of an NFS export: "nfs-<basename of its path>". */
export function nfsStorageId(exportPath: string): string {
  return `nfs-${path.posix.basename(exportPath.replace(/\/+$/, '')) || 'root'}`;
}

/** The address the host's NFS server is reached at: network.nfs_server, else the host address, else 127.0.0.1. */
export function nfsServerAddress(config: HypervisorConfig): string {
  return config.network?.nfs_server ?? config.network?.interfaces?.address?.split('/')[0] ?? '127.0.0.1';
}

function splitContent(text: string | undefined): string[] {
  return [...new Set((text ?? '').split(',').map((c) => c.trim()).filter(Boolean))].sort();
}

/** Every storage the manifest asks for, datasets first, then NFS exports. */
export function desiredStorages(config: HypervisorConfig): DesiredStorage[] {
  const out: DesiredStorage[] = [];
  (config.zfs?.datasets ?? []).forEach((ds, i) => {
    const pointer = `/zfs/datasets/${i}`;
    const id = datasetStorageId(config, ds.pool, ds.name);
    // The bash passed "none" when no content type was given.
    const content = splitContent(ds.proxmox_content_type ?? 'none');
    if (ds.proxmox_storage_type === 'zfspool') out.push({ id, type: 'zfspool', owner: 'zfs', pointer, content, pool: `${ds.pool}/${ds.name}` });
    else if (ds.proxmox_storage_type === 'dir') out.push({ id, type: 'dir', owner: 'zfs', pointer, content, path: `/${ds.pool}/${ds.name}`, shared: true });
  });
  const server = nfsServerAddress(config);
  (config.nfs?.exports ?? []).forEach((ex, i) => {
    const id = nfsStorageId(ex.path);
    out.push({ id, type: 'nfs', owner: 'nfs', pointer: `/nfs/exports/${i}`, content: [...NFS_CONTENT].sort(), path: `${NFS_MOUNT_BASE}/${id}`, server, export: ex.path, options: NFS_MOUNT_OPTIONS });
  });
  return out;
}

/** Two entries with one storage id, reported at the later one when it belongs to `owner`. */
export function duplicateStorageIds(config: HypervisorConfig, file: string, owner: StorageOwner): ConfigIssue[] {
  const seen = new Map<string, string>();
  const issues: ConfigIssue[] = [];
  for (const s of desiredStorages(config)) {
    const first = seen.get(s.id);
    if (first === undefined) seen.set(s.id, s.pointer);
    else if (s.owner === owner) issues.push({ file, pointer: s.pointer, message: `storage id '${s.id}' is already used by ${first}` });
  }
  return issues;
}

// ---------------------------------------------------------------- storage.cfg

export interface ConfiguredStorage {
  type: string;
  props: Record<string, string>;
}

/** /etc/pve/storage.cfg: "<type>: <id>" then indented "key value" lines (a key alone is a flag). */
export function parseStorageCfg(text: string): Map<string, ConfiguredStorage> {
  const out = new Map<string, ConfiguredStorage>();
  let current: ConfiguredStorage | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    if (line === '' || line.trimStart().startsWith('#')) {
      if (line === '') current = undefined;
      continue;
    }
    const head = /^(\S+):\s*(\S+)$/.exec(line);
    if (head && !/^\s/.test(line)) {
      current = { type: head[1]!, props: {} };
      out.set(head[2]!, current);
      continue;
    }
    const kv = /^\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (kv && current) current.props[kv[1]!] = kv[2] ?? '1';
  }
  return out;
}

export function readStorageCfg(options: PhoenixOptions): Map<string, ConfiguredStorage> {
  const file = path.join(options.pveDir, 'storage.cfg');
  try {
    return parseStorageCfg(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new PhoenixError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------- reconcile

function addArgs(s: DesiredStorage): string[] {
  const content = ['--content', s.content.join(',')];
  switch (s.type) {
    case 'zfspool':
      return ['add', 'zfspool', s.id, '--pool', s.pool!, ...content];
    case 'dir':
      // is_mountpoint: the storage is offline while the dataset is not mounted,
      // instead of filling the empty directory on the root file system.
      return ['add', 'dir', s.id, '--path', s.path!, ...content, '--shared', '1', '--is_mountpoint', 'yes'];
    case 'nfs':
      return ['add', 'nfs', s.id, '--server', s.server!, '--export', s.export!, '--path', s.path!, ...content, '--options', s.options!];
  }
}

/** Values fixed when a storage is created: a difference there is refused, not changed. */
function fixedMismatch(s: DesiredStorage, have: ConfiguredStorage): string | undefined {
  if (have.type !== s.type) return `is a ${have.type} storage, the manifest wants ${s.type}`;
  const fixed: Array<[string, string | undefined]> = s.type === 'zfspool' ? [['pool', s.pool]] : s.type === 'dir' ? [['path', s.path]] : [['server', s.server], ['export', s.export]];
  for (const [key, want] of fixed) {
    const got = have.props[key];
    if (want !== undefined && got !== want) return `has ${key} ${got ?? '(none)'}, the manifest wants ${want}`;
  }
  return undefined;
}

/** The `pvesm set` options that bring an existing storage to the manifest (empty: it matches). */
function setOptions(s: DesiredStorage, have: ConfiguredStorage): string[] {
  const out: string[] = [];
  if (splitContent(have.props.content).join(',') !== s.content.join(',')) out.push('--content', s.content.join(','));
  if (s.shared && have.props.shared !== '1') out.push('--shared', '1');
  if (s.options !== undefined && have.props.options !== s.options) out.push('--options', s.options);
  return out;
}

/**
 * Bring the given storages (one step's share of desiredStorages) to the
 * manifest: add the missing ones, `pvesm set` what may change on ours.
 * Returns one change line per storage changed.
 */
export async function reconcileStorages(wanted: readonly DesiredStorage[], options: PhoenixOptions, file: string): Promise<string[]> {
  const current = readStorageCfg(options);
  const changes: string[] = [];
  const refused: string[] = [];
  for (const s of wanted) {
    const have = current.get(s.id);
    if (have === undefined) {
      await run({ cmd: 'pvesm', args: addArgs(s) });
      changes.push(`added ${s.type} storage ${s.id} (${s.pool ?? (s.type === 'nfs' ? `${s.server}:${s.export}` : s.path)}, content ${s.content.join(',')})`);
      continue;
    }
    const mismatch = fixedMismatch(s, have);
    if (mismatch !== undefined) {
      refused.push(`${file} at ${s.pointer}: storage '${s.id}' ${mismatch}; Phoenix does not replace a storage (rename it in the manifest or remove it by hand)`);
      continue;
    }
    const set = setOptions(s, have);
    if (set.length === 0) continue;
    await run({ cmd: 'pvesm', args: ['set', s.id, ...set] });
    changes.push(`updated storage ${s.id} (${set.filter((_, i) => i % 2 === 0).map((k, i) => `${k.slice(2)} ${set[i * 2 + 1]}`).join(', ')})`);
  }
  if (refused.length > 0) throw new PhoenixError(refused.join('\n'), { hint: `${changes.length} other storage change(s) were made` });
  return changes;
}
