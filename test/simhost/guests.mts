// What pct and qm share: loading a guest's config (and failing the way
// PVE's AbstractConfig does), the vmid checks, config locks recorded in
// the file, snapshots as [sections], and the run-state bookkeeping.

import fs from 'node:fs';
import path from 'node:path';

import { parseSize } from './args.mts';
import type { Ctx } from './cli.mts';
import { deleteGuestSnapshotTree, rollbackGuestTree, snapshotGuestTree } from './guestfs.mts';
import { cfsPath, configPath, guestKindOf, readConfigFile, writeConfigFile, type GuestConfig, type Section } from './pveconf.mts';
import { parseVolid, storageOf } from './storage.mts';
import { die, paths, updateRuntime, type GuestKind, type GuestRuntime, type Runtime } from './state.mts';

export const typeWord = (kind: GuestKind): 'CT' | 'VM' => (kind === 'lxc' ? 'CT' : 'VM');

/**
 * Load a guest's config or fail like PVE: "Configuration file '…' does not
 * exist". That die() happens with errno ENOENT still set (pmxcfs answered
 * "no such file"), and Perl exits with errno, so the status is 2, not 255.
 */
export function loadGuest(ctx: Ctx, kind: GuestKind, vmid: string, options: { inWorker?: boolean } = {}): GuestConfig {
  const config = readConfigFile(ctx.root, kind, vmid, (line) => ctx.err(`${line}\n`));
  if (!config) die(`Configuration file '${cfsPath(ctx.host.node, kind, vmid)}' does not exist`, options.inWorker ? 255 : 2);
  return config;
}

/** PVE::Cluster::check_vmid_unused: the id must be free for both kinds. */
export function checkVmidUnused(ctx: Ctx, vmid: string): void {
  const existing = guestKindOf(ctx.root, vmid);
  if (existing) die(`${typeWord(existing)} ${vmid} already exists on node '${ctx.host.node}'`);
}

export function isTemplate(config: GuestConfig): boolean {
  return config.main.props.template === '1';
}

export function checkLock(kind: GuestKind, config: GuestConfig): void {
  const lock = config.main.props.lock;
  if (lock) die(`${typeWord(kind)} is locked (${lock})`);
}

export function checkProtection(config: GuestConfig, message: string): void {
  if (config.main.props.protection === '1') die(`${message} - protection mode enabled`);
}

export function runtimeOf(rt: Runtime, vmid: string): GuestRuntime {
  return (rt.guests[vmid] ??= { status: 'stopped' });
}

export function isRunning(rt: Runtime, vmid: string, root: string, kind: GuestKind): boolean {
  // A runtime entry without a config file is a leftover, not a guest.
  return rt.guests[vmid]?.status === 'running' && fs.existsSync(configPath(root, kind, vmid));
}

export function markStopped(rt: Runtime, vmid: string): void {
  const g = runtimeOf(rt, vmid);
  g.status = 'stopped';
  delete g.startedAt;
  delete g.agentReadyAt;
  delete g.pid;
}

export function markRunning(rt: Runtime, vmid: string, now: number, agentDelayMs = 0): void {
  const g = runtimeOf(rt, vmid);
  g.status = 'running';
  g.startedAt = now;
  g.agentReadyAt = now + agentDelayMs;
  g.pid = rt.nextPid++;
}

/** Fold a [pve:pending] section into the live config (what a (re)start does). */
export function applyPending(config: GuestConfig): boolean {
  const pending = config.pending;
  if (!pending) return false;
  for (const key of (pending.props.delete ?? '').split(/[,;\s]+/).filter(Boolean)) delete config.main.props[key];
  for (const [key, value] of Object.entries(pending.props)) if (key !== 'delete') config.main.props[key] = value;
  config.pending = undefined;
  return true;
}

// ---------------------------------------------------------------------------
// Disks referenced by a config

export const CT_DISK_KEY = /^(rootfs|mp\d+|unused\d+)$/;
export const VM_DISK_KEY = /^(ide\d+|sata\d+|scsi\d+|virtio\d+|efidisk0|tpmstate0|unused\d+)$/;

/** The storage volume a disk entry points at, or undefined for bind mounts, cdroms and "none". */
export function diskVolume(kind: GuestKind, key: string, value: string): string | undefined {
  const first = key.startsWith('unused') ? value : value.split(',')[0]!;
  if (kind === 'lxc' && key.startsWith('mp') && first.startsWith('/')) return undefined;
  if (first === 'none' || first === 'cdrom' || first.startsWith('/')) return undefined;
  if (kind === 'qemu' && /media=cdrom/.test(value) && !/cloudinit/.test(first)) return undefined;
  return first.includes(':') ? first : undefined;
}

export function guestVolumes(kind: GuestKind, section: Section): Array<[string, string]> {
  const re = kind === 'lxc' ? CT_DISK_KEY : VM_DISK_KEY;
  const out: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(section.props)) {
    if (!re.test(key)) continue;
    const volid = diskVolume(kind, key, value);
    if (volid) out.push([key, volid]);
  }
  return out;
}

export function diskSizeOption(value: string): number | undefined {
  const m = /(?:^|,)size=([^,]+)/.exec(value);
  return m ? parseSize(m[1]!) : undefined;
}

export function replaceVolume(value: string, volid: string, isUnused: boolean): string {
  if (isUnused) return volid;
  const parts = value.split(',');
  parts[0] = volid;
  return parts.join(',');
}

/** Name the next free unusedN key. */
export function nextUnused(section: Section): string {
  let n = 0;
  while (section.props[`unused${n}`] !== undefined) n++;
  return `unused${n}`;
}

/** ZFS datasets a guest's volumes live in (for snapshot bookkeeping). */
function zfsDatasets(rt: Runtime, kind: GuestKind, section: Section): string[] {
  const out: string[] = [];
  for (const [, volid] of guestVolumes(kind, section)) {
    const { storeid, volname } = parseVolid(volid);
    const storage = rt.storage[storeid];
    if (storage?.type === 'zfspool') out.push(`${storage.pool}/${volname.split('/').pop()}`);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Snapshots (PVE::AbstractConfig semantics)

const SNAPSHOT_SKIP = new Set(['snapshots', 'snapstate', 'snaptime', 'vmstate', 'lock', 'digest', 'description']);

export function snapshotFeatureCheck(rt: Runtime, kind: GuestKind, config: GuestConfig): void {
  for (const [, volid] of guestVolumes(kind, config.main)) {
    const { storeid, volname } = parseVolid(volid);
    const storage = storageOf(rt, storeid);
    const qcow = volname.endsWith('.qcow2');
    if ((storage.type === 'dir' || storage.type === 'nfs') && !qcow) die('snapshot feature is not available');
  }
}

export function checkSnapshotCreate(rt: Runtime, kind: GuestKind, config: GuestConfig, name: string): void {
  if (isTemplate(config)) die("you can't take a snapshot if it's a template");
  checkLock(kind, config);
  if (config.snapshots[name]) die(`snapshot name '${name}' already used`);
  snapshotFeatureCheck(rt, kind, config);
}

/**
 * PVE's snapshot task in two steps: the check and a `[name]` section saying
 * `snapstate: prepare` are written with the `lock: snapshot` mark; the
 * volumes are snapshotted and the section filled in when it ends. A task
 * killed in between leaves both the mark and the prepared section.
 */
export function prepareSnapshot(rt: Runtime, kind: GuestKind, config: GuestConfig, name: string): void {
  checkSnapshotCreate(rt, kind, config, name);
  config.snapshots[name] = { description: '', props: { snapstate: 'prepare' }, raw: [] };
}

export function createSnapshot(ctx: Ctx, rt: Runtime, kind: GuestKind, vmid: string, config: GuestConfig, name: string, description?: string): void {
  if (config.snapshots[name]?.props.snapstate !== 'prepare') die(`snapshot '${name}' was not prepared`);
  delete config.snapshots[name];
  for (const [snapName, snap] of Object.entries(config.snapshots)) {
    if (snap.props.parent === name) {
      ctx.err(`deleting parent '${name}' reference from '${snapName}' to avoid bogus snapshot cycle.\n`);
      delete snap.props.parent;
    }
  }
  const snap: Section = { description: description ?? '', props: {}, raw: [...config.main.raw] };
  for (const [key, value] of Object.entries(config.main.props)) {
    if (SNAPSHOT_SKIP.has(key) || /^unused\d+$/.test(key)) continue;
    snap.props[key] = value;
  }
  snap.props.snaptime = String(Math.floor(Date.now() / 1000));
  config.snapshots[name] = snap;
  config.main.props.parent = name;
  for (const ds of zfsDatasets(rt, kind, config.main)) {
    rt.zfs.datasets[`${ds}@${name}`] = { type: 'snapshot', props: {}, used: 0, created: Date.now() };
  }
  snapshotGuestTree(ctx.root, vmid, name);
}

/**
 * The first step of PVE's snapshot deletion: checked, then the section is
 * marked `snapstate: delete` with the `lock: snapshot-delete` mark. `--force`
 * goes past an existing lock mark (how PVE lets a half-made snapshot be removed).
 */
export function checkSnapshotDelete(kind: GuestKind, config: GuestConfig, name: string, force = false): void {
  if (isTemplate(config)) die("you can't delete a snapshot if vm is a template");
  if (!config.snapshots[name]) die(`snapshot '${name}' does not exist`);
  if (!force) checkLock(kind, config);
  config.snapshots[name]!.props.snapstate = 'delete';
}

export function deleteSnapshot(ctx: Ctx, rt: Runtime, kind: GuestKind, vmid: string, config: GuestConfig, name: string): void {
  if (!config.snapshots[name]) die(`snapshot '${name}' does not exist`);
  const snap = config.snapshots[name]!;
  const relink = (section: Section) => {
    if (section.props.parent !== name) return;
    if (snap.props.parent) section.props.parent = snap.props.parent;
    else delete section.props.parent;
  };
  relink(config.main);
  for (const other of Object.values(config.snapshots)) relink(other);
  delete config.snapshots[name];
  for (const dsName of Object.keys(rt.zfs.datasets)) if (dsName.endsWith(`@${name}`)) {
    const base = dsName.slice(0, -name.length - 1);
    if (zfsDatasets(rt, kind, snap).includes(base) || zfsDatasets(rt, kind, config.main).includes(base)) delete rt.zfs.datasets[dsName];
  }
  deleteGuestSnapshotTree(ctx.root, vmid, name);
}

export function checkRollback(rt: Runtime, kind: GuestKind, config: GuestConfig, name: string): void {
  if (isTemplate(config)) die("you can't rollback if vm is a template");
  const snap = config.snapshots[name];
  if (!snap) die(`snapshot '${name}' does not exist`);
  if (snap.props.snapstate) die(`unable to rollback to incomplete snapshot (snapstate = ${snap.props.snapstate})`);
  // ZFS only rolls a dataset back to its newest snapshot (the last one taken of it).
  for (const ds of zfsDatasets(rt, kind, snap)) {
    const snaps = Object.keys(rt.zfs.datasets).filter((n) => n.startsWith(`${ds}@`) && !n.endsWith('@__base__'));
    if (snaps.length > 0 && snaps[snaps.length - 1] !== `${ds}@${name}`) die(`can't rollback, '${name}' is not most recent snapshot on '${ds}'`);
  }
  checkLock(kind, config);
}

/** Roll back; the caller has stopped the guest (PVE stops it first). */
export function rollbackSnapshot(ctx: Ctx, rt: Runtime, kind: GuestKind, vmid: string, config: GuestConfig, name: string): GuestConfig {
  checkRollback(rt, kind, config, name);
  const snap = config.snapshots[name]!;
  const main: Section = { description: config.main.description, props: {}, raw: [...snap.raw] };
  for (const [key, value] of Object.entries(config.main.props)) if (/^unused\d+$/.test(key)) main.props[key] = value;
  for (const [key, value] of Object.entries(snap.props)) {
    if (key === 'snaptime' || key === 'snapstate' || key === 'vmstate') continue;
    main.props[key] = value;
  }
  main.props.parent = name;
  rollbackGuestTree(ctx.root, vmid, name);
  return { main, pending: undefined, snapshots: config.snapshots };
}

/** `pct/qm listsnapshot`: PVE's tree print, "current" (You are here!) last among its siblings. */
export function snapshotTree(config: GuestConfig): string {
  interface Node {
    name: string;
    parent?: string;
    snaptime?: number;
    description: string;
    children: string[];
  }
  const nodes: Record<string, Node> = {};
  for (const [name, snap] of Object.entries(config.snapshots)) {
    const node: Node = { name, description: snap.description, children: [] };
    if (snap.props.parent !== undefined) node.parent = snap.props.parent;
    if (snap.props.snaptime !== undefined) node.snaptime = Number(snap.props.snaptime);
    nodes[name] = node;
  }
  const current: Node = { name: 'current', description: 'You are here!', children: [] };
  if (config.main.props.parent !== undefined) current.parent = config.main.props.parent;
  nodes.current = current;
  const roots: string[] = [];
  for (const node of Object.values(nodes)) {
    if (node.parent !== undefined && nodes[node.parent]) nodes[node.parent]!.children.push(node.name);
    else roots.push(node.name);
  }
  const byTime = (a: string, b: string) => {
    const ta = nodes[a]!.snaptime;
    const tb = nodes[b]!.snaptime;
    if (ta === undefined) return 1;
    if (tb === undefined) return -1;
    return ta - tb;
  };
  let out = '';
  const print = (prefix: string, name: string) => {
    const node = nodes[name]!;
    const description = (node.description || 'no-description').split('\n')[0]!;
    const time = node.snaptime === undefined ? '' : formatLocalTime(node.snaptime);
    const width = Math.max(30 - prefix.length, 0);
    out += `${prefix} ${name.padEnd(width)} ${time.padEnd(23)} ${description}\n`;
    for (const child of [...node.children].sort(byTime)) print(` ${prefix}`, child);
  };
  for (const root of roots.sort(byTime)) print('`->', root);
  return out;
}

function formatLocalTime(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `pct/qm config` output: sorted keys (digest and raw lines apart), description escaped. */
export function printConfig(section: Section, withRaw: boolean): string {
  let out = '';
  const props: Record<string, string> = { ...section.props };
  if (section.description) props.description = section.description.replace(/%/g, '%25').replace(/\n/g, '%0A');
  for (const key of Object.keys(props).sort()) out += `${key}: ${props[key]}\n`;
  if (withRaw) for (const [k, v] of section.raw) out += `${k}: ${v}\n`;
  return out;
}

/** Merge pending values over the live config (what `config` shows without --current). */
export function withPending(config: GuestConfig): Section {
  if (!config.pending) return config.main;
  const merged: Section = { description: config.main.description, props: { ...config.main.props }, raw: [...config.main.raw] };
  for (const key of (config.pending.props.delete ?? '').split(/[,;\s]+/).filter(Boolean)) delete merged.props[key];
  for (const [key, value] of Object.entries(config.pending.props)) if (key !== 'delete') merged.props[key] = value;
  return merged;
}

/** A random MAC with Proxmox's default prefix (datacenter.cfg mac_prefix BC:24:11). */
export function randomMac(): string {
  const byte = () => Math.floor(Math.random() * 256).toString(16).toUpperCase().padStart(2, '0');
  return `BC:24:11:${byte()}:${byte()}:${byte()}`;
}

/** Remove a guest's firewall config, as destroy does (pve-firewall remove_vmfw_conf). */
export function removeFirewallConf(root: string, vmid: string): void {
  fs.rmSync(path.join(paths(root).firewallDir, `${vmid}.fw`), { force: true });
}

/** Clone copies the source's firewall config (pve-firewall clone_vmfw_conf). */
export function cloneFirewallConf(root: string, from: string, to: string): void {
  const src = path.join(paths(root).firewallDir, `${from}.fw`);
  if (fs.existsSync(src)) fs.copyFileSync(src, path.join(paths(root).firewallDir, `${to}.fw`));
}

/**
 * A PVE task that marks the guest `lock: <name>` while it works: the config
 * is checked and marked under its flock, the long part (the injected
 * latency) runs with no flock held, and the result is written under the
 * flock again. Meanwhile other callers are refused with "CT is locked
 * (<name>)", as on PVE. The mark is dropped if the task fails.
 */
export function lockedTask<T>(
  ctx: Ctx,
  kind: GuestKind,
  vmid: string,
  lockName: string,
  prepare: (rt: Runtime, config: GuestConfig) => T,
  finish: (rt: Runtime, config: GuestConfig, prepared: T) => GuestConfig | void,
): void {
  let release = ctx.lockGuest({ kind, vmid });
  let prepared: T;
  try {
    prepared = updateRuntime(ctx.root, (rt) => {
      const config = loadGuest(ctx, kind, vmid, { inWorker: true });
      const result = prepare(rt, config);
      config.main.props.lock = lockName;
      writeConfigFile(ctx.root, kind, vmid, config);
      return result;
    });
  } finally {
    release();
  }
  ctx.begin();
  release = ctx.lockGuest({ kind, vmid });
  try {
    updateRuntime(ctx.root, (rt) => {
      const config = loadGuest(ctx, kind, vmid, { inWorker: true });
      if (config.main.props.lock !== lockName) die(`missing ${lockName} lock`);
      delete config.main.props.lock;
      writeConfigFile(ctx.root, kind, vmid, finish(rt, config, prepared) ?? config);
    });
  } catch (error) {
    dropLockMark(ctx.root, kind, vmid, lockName);
    throw error;
  } finally {
    release();
  }
}

export function dropLockMark(root: string, kind: GuestKind, vmid: string, lockName: string): void {
  try {
    updateRuntime(root, () => {
      const config = readConfigFile(root, kind, vmid);
      if (config?.main.props.lock !== lockName) return;
      delete config.main.props.lock;
      writeConfigFile(root, kind, vmid, config);
    });
  } catch {
    // best effort: the original error is what the caller needs to see
  }
}

/** What `pct config` / `qm config` print: the live config with pending values, `--current`, or a snapshot. */
export function guestConfigText(ctx: Ctx, kind: GuestKind, vmid: string, snapshot: string | undefined, current: boolean): string {
  const config = loadGuest(ctx, kind, vmid);
  const withRaw = kind === 'lxc';
  if (snapshot) {
    const snap = config.snapshots[snapshot];
    if (!snap) die(`snapshot '${snapshot}' does not exist`);
    return printConfig(snap, withRaw);
  }
  return printConfig(current ? config.main : withPending(config), withRaw);
}
