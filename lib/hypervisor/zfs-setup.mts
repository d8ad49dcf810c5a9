// Setup step 3 (hypervisor_feature_setup_zfs): the manifest's ZFS pools, the
// ARC limit, the datasets and their Proxmox storages.
//
// - Pools: an imported pool is left alone. New pools are planned by
//   disks.mts planPools (refusals and JSON paths there): the plan names each
//   disk by its /dev/disk/by-id path with size and model and is logged before
//   anything is touched; a disk is wiped only with --wipe-disks (or a "y" at
//   the interactive prompt), and a mounted disk or one of an imported pool
//   never. The bash ran `wipefs -a` on every disk without a ZFS signature,
//   in every mode.
// - ARC: zfs_arc_max in Phoenix's block of /etc/modprobe.d/zfs.conf, so it
//   survives a reboot (the bash only wrote /sys), and in /sys when it differs.
// - Datasets: created with their properties; on an existing one only the
//   properties that differ are set (read with `zfs get -H -p`).
// - Storages: this step's share of storages.mts desiredStorages; nothing
//   is removed, so the NFS storages of step 5 stay.

import fs from 'node:fs';
import os from 'node:os';
import readline from 'node:readline';
import { ConfigError } from '../core/errors.mts';
import { isDryRun } from '../core/context.mts';
import { info, warn } from '../core/log.mts';
import { ensureOwnedBlock, locateOwnedBlock } from '../core/owned-block.mts';
import { query, run } from '../core/runner.mts';
import { onHost } from '../guest/hostdirs.mts';
import { zfsDatasets, zpoolNames } from '../pve/storage.mts';
import type { ConfigIssue, HypervisorConfig } from '../config/types.mts';
import { BY_ID_DIR, describePlannedDisk, inspectDisks, planPools, refusalError, zpoolCreateArgs, type PoolPlan, type RefusalRule } from './disks.mts';
import { desiredStorages, duplicateStorageIds, reconcileStorages } from './storages.mts';
import { fileChange, type SetupContext, type StepResult } from './setup-step.mts';

const RAID_LEVELS = ['single', 'stripe', 'mirror', 'raidz1', 'RAIDZ1', 'raidz2', 'RAIDZ2', 'raidz3', 'RAIDZ3'];
export const MODPROBE_ZFS = '/etc/modprobe.d/zfs.conf';
export const ARC_MAX_PARAMETER = '/sys/module/zfs/parameters/zfs_arc_max';
const ARC_BLOCK = { begin: '# BEGIN phoenix: zfs.arc_max_gb', end: '# END phoenix: zfs.arc_max_gb' };

// ---------------------------------------------------------------- the manifest alone

/** "k=v,k=v" → [[k, v], …] in order; a part without "=" is skipped (the schema refuses it). */
export function parseProperties(text: string | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const part of (text ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.push([part.slice(0, eq).trim(), part.slice(eq + 1).trim()]);
  }
  return out;
}

/** The manifest's zfs section checked without the host. */
export function validateZfs(config: HypervisorConfig, file: string): ConfigIssue[] {
  const zfs = config.zfs;
  if (zfs === undefined) return [];
  const issues: ConfigIssue[] = [];
  const issue = (pointer: string, message: string) => issues.push({ file, pointer, message });
  const pools = zfs.pools ?? [];
  const disks = new Map<string, string>();
  const poolNames = new Map<string, string>();
  pools.forEach((pool, i) => {
    const at = `/zfs/pools/${i}`;
    if (typeof pool.name !== 'string' || pool.name === '') issue(`${at}/name`, 'a pool needs a name');
    else if (poolNames.has(pool.name)) issue(`${at}/name`, `pool '${pool.name}' is already defined at ${poolNames.get(pool.name)}`);
    else poolNames.set(pool.name, at);
    if (pool.raid_level === undefined) issue(`${at}/raid_level`, 'a pool needs a raid_level');
    else if (!RAID_LEVELS.includes(String(pool.raid_level))) issue(`${at}/raid_level`, `unknown raid level '${String(pool.raid_level)}' (one of ${RAID_LEVELS.join(', ')})`);
    if (!Array.isArray(pool.disks) || pool.disks.length === 0) {
      issue(`${at}/disks`, 'a pool needs at least one disk');
      return;
    }
    pool.disks.forEach((disk, j) => {
      const pointer = `${at}/disks/${j}`;
      const first = disks.get(disk);
      if (first !== undefined) issue(pointer, `${disk} is listed twice (first at ${first})`);
      else disks.set(disk, pointer);
      if (typeof disk === 'string' && !disk.startsWith(BY_ID_DIR)) issue(pointer, `${disk}: name the disk by its ${BY_ID_DIR} path; kernel names change between boots`);
    });
  });
  const datasets = new Map<string, string>();
  (zfs.datasets ?? []).forEach((ds, i) => {
    const at = `/zfs/datasets/${i}`;
    if (typeof ds.name !== 'string' || ds.name === '') issue(`${at}/name`, 'a dataset needs a name');
    if (typeof ds.pool !== 'string' || ds.pool === '') issue(`${at}/pool`, 'a dataset needs a pool');
    else if (!poolNames.has(ds.pool)) issue(`${at}/pool`, `dataset '${ds.name}' is on the pool '${ds.pool}', which zfs.pools does not define`);
    const full = `${ds.pool}/${ds.name}`;
    if (datasets.has(full)) issue(`${at}/name`, `dataset ${full} is already defined at ${datasets.get(full)}`);
    else datasets.set(full, at);
    const seen = new Set<string>();
    for (const [key] of parseProperties(ds.properties)) {
      if (seen.has(key)) issue(`${at}/properties`, `property '${key}' is given twice`);
      seen.add(key);
      if (key === 'mountpoint') issue(`${at}/properties`, `the mountpoint is always /${full}; Proxmox's storages rely on it`);
    }
  });
  issues.push(...duplicateStorageIds(config, file, 'zfs'));
  return issues;
}

function firstIssueError(issues: readonly ConfigIssue[]): ConfigError {
  const [first, ...rest] = issues;
  return new ConfigError(first!.file, first!.pointer, `${first!.message}${rest.map((r) => `\n  ${r.pointer}: ${r.message}`).join('')}`, 'nothing was changed');
}

// ---------------------------------------------------------------- properties

/** Properties whose `zfs get -p` value is a byte count. */
const SIZE_PROPERTIES = new Set(['quota', 'refquota', 'reservation', 'refreservation', 'recordsize', 'volsize', 'volblocksize', 'special_small_blocks']);

/** A value as `zfs get -p` prints it: sizes in bytes ("none" is 0), the rest as given. */
export function exactValue(property: string, value: string): string {
  if (!SIZE_PROPERTIES.has(property)) return value;
  if (value === 'none') return '0';
  const m = /^(\d+(?:\.\d+)?)([KMGTPE])?B?$/i.exec(value);
  if (!m) return value;
  return String(Math.floor(Number(m[1]) * 1024 ** 'BKMGTPE'.indexOf((m[2] ?? 'B').toUpperCase())));
}

/** The desired properties of a dataset: the manifest's, and its mountpoint /<pool>/<name> as the bash set it. */
function wantedProperties(pool: string, name: string, properties: string | undefined): Array<[string, string]> {
  return [['mountpoint', `/${pool}/${name}`], ...parseProperties(properties).filter(([k]) => k !== 'mountpoint')];
}

async function differingProperties(dataset: string, wanted: ReadonlyArray<[string, string]>): Promise<Array<[string, string]>> {
  const got = await query({ cmd: 'zfs', args: ['get', '-H', '-p', '-o', 'property,value', wanted.map(([k]) => k).join(','), dataset], quiet: true });
  const have = new Map(got.stdout.split('\n').filter(Boolean).map((line) => line.split('\t') as [string, string]));
  return wanted.filter(([k, v]) => exactValue(k, have.get(k) ?? '') !== exactValue(k, v));
}

// ---------------------------------------------------------------- pools

/** Rules the operator may lift by allowing the wipe. */
const WIPEABLE: ReadonlySet<RefusalRule> = new Set(['disk-partition-table', 'disk-signature', 'disk-pool-label']);

async function askYes(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function logPlan(plan: PoolPlan): void {
  for (const pool of plan.create) {
    info(`Pool '${pool.name}' (${pool.vdev}) will be created on:`);
    for (const disk of pool.disks) info(`  ${describePlannedDisk(disk)}`);
  }
}

async function ensurePools(context: SetupContext, file: string, changes: string[]): Promise<void> {
  const zfs = context.config.hypervisor.zfs!;
  const existing = await zpoolNames();
  const fresh = (zfs.pools ?? []).filter((p) => !existing.includes(p.name));
  for (const name of (zfs.pools ?? []).filter((p) => existing.includes(p.name)).map((p) => p.name)) info(`Pool '${name}' is imported already; left as it is.`);
  if (fresh.length === 0) return;
  const inspected = await inspectDisks(fresh.flatMap((p) => p.disks));
  let wipeDisks = context.wipeDisks;
  let plan = planPools(zfs, inspected, existing, { wipeDisks });
  if (plan.refusals.length > 0 && !wipeDisks && context.interactive && process.stdin.isTTY && plan.refusals.every((r) => WIPEABLE.has(r.rule))) {
    const wiping = planPools(zfs, inspected, existing, { wipeDisks: true });
    if (wiping.refusals.length === 0) {
      logPlan(wiping);
      if (await askYes('Erase what is listed above and create the pools? [y/N] ')) {
        wipeDisks = true;
        plan = wiping;
      }
    }
  }
  if (plan.refusals.length > 0) throw refusalError(file, plan.refusals);
  // The plan is shown whole before the first disk is touched.
  logPlan(plan);
  for (const pool of plan.create) {
    for (const disk of pool.disks) {
      if (disk.wipe.length === 0) continue;
      // planPools refuses such a disk without the permission; checked again here because a wipe cannot be undone.
      if (!wipeDisks) throw refusalError(file, [{ rule: 'disk-signature', pointer: pool.pointer, message: `${disk.byId} holds ${disk.wipe.join(', ')}: give --wipe-disks to erase it` }]);
      await run({ cmd: 'wipefs', args: ['--all', disk.byId] });
      changes.push(`wiped ${disk.byId} (${disk.wipe.join(', ')})`);
    }
    await run({ cmd: 'zpool', args: zpoolCreateArgs(pool, { force: false }), timeoutMs: 10 * 60_000 });
    changes.push(`created pool ${pool.name} (${pool.vdev}) on ${pool.disks.map((d) => d.byId).join(', ')}`);
  }
}

// ---------------------------------------------------------------- ARC

function rootIsZfs(hostRoot: string): boolean {
  try {
    const mounts = fs.readFileSync(onHost(hostRoot, '/proc/self/mounts'), 'utf8');
    return mounts.split('\n').some((line) => {
      const [, mountpoint, fstype] = line.split(' ');
      return mountpoint === '/' && fstype === 'zfs';
    });
  } catch {
    return false;
  }
}

function ensureArc(context: SetupContext, gb: number, changes: string[], notes: string[]): void {
  const bytes = gb * 1024 ** 3;
  if (os.totalmem() < 2 * bytes) warn(`zfs.arc_max_gb is ${gb} GiB, more than half of this host's ${Math.floor(os.totalmem() / 1024 ** 3)} GiB of memory`);
  const hostRoot = context.options.hostRoot;
  const modprobe = onHost(hostRoot, MODPROBE_ZFS);
  const outcome = ensureOwnedBlock(modprobe, { ...ARC_BLOCK, lines: [`options zfs zfs_arc_max=${bytes}`], createMode: 0o644 });
  // The Proxmox installer writes its own line on ZFS-root hosts; modprobe applies the options in order, so the block (last) wins.
  const text = fs.existsSync(modprobe) ? fs.readFileSync(modprobe, 'latin1') : '';
  const located = locateOwnedBlock(text, ARC_BLOCK, modprobe);
  if (located !== undefined && /zfs_arc_max=/.test(located.before + located.after)) notes.push(`${MODPROBE_ZFS} sets zfs_arc_max outside Phoenix's block too; the block comes last and wins`);
  fileChange(changes, outcome, MODPROBE_ZFS, `zfs_arc_max=${bytes}`);
  if (outcome !== 'unchanged' && rootIsZfs(hostRoot)) notes.push(`the host boots from ZFS: run 'update-initramfs -u -k all' so the new zfs_arc_max applies from the next boot`);
  const parameter = onHost(hostRoot, ARC_MAX_PARAMETER);
  let current: string;
  try {
    current = fs.readFileSync(parameter, 'utf8').trim();
  } catch {
    notes.push(`${ARC_MAX_PARAMETER} is missing (zfs module not loaded): the limit applies when it loads`);
    return;
  }
  if (current === String(bytes)) return;
  // A sysfs parameter is written in place; it cannot be replaced by a rename.
  if (!isDryRun()) fs.writeFileSync(parameter, `${bytes}\n`);
  changes.push(`set ${ARC_MAX_PARAMETER} to ${bytes} (was ${current})`);
}

// ---------------------------------------------------------------- the step

async function ensureDatasets(config: HypervisorConfig, changes: string[]): Promise<void> {
  const existing = new Set(await zfsDatasets());
  for (const ds of config.zfs?.datasets ?? []) {
    const full = `${ds.pool}/${ds.name}`;
    const wanted = wantedProperties(ds.pool, ds.name, ds.properties);
    if (!existing.has(full)) {
      await run({ cmd: 'zfs', args: ['create', ...wanted.flatMap(([k, v]) => ['-o', `${k}=${v}`]), full] });
      changes.push(`created dataset ${full} (${wanted.map(([k, v]) => `${k}=${v}`).join(', ')})`);
      continue;
    }
    const differing = await differingProperties(full, wanted);
    if (differing.length === 0) continue;
    await run({ cmd: 'zfs', args: ['set', ...differing.map(([k, v]) => `${k}=${v}`), full] });
    changes.push(`set ${differing.map(([k, v]) => `${k}=${v}`).join(', ')} on ${full}`);
  }
}

export async function setupZfs(context: SetupContext): Promise<StepResult> {
  const config = context.config.hypervisor;
  const file = context.config.paths.hypervisor;
  const zfs = config.zfs;
  if (zfs === undefined || ((zfs.pools ?? []).length === 0 && (zfs.datasets ?? []).length === 0)) return { changes: [], skipped: 'the manifest has no zfs pools or datasets' };
  const issues = validateZfs(config, file);
  if (issues.length > 0) throw firstIssueError(issues);
  const destructive = zfs.settings?.allow_destructive_operations;
  if (destructive === true || destructive === 'true') warn('zfs.settings.allow_destructive_operations is ignored: disks are wiped only with --wipe-disks (--mode force-destructive)');
  const changes: string[] = [];
  const notes: string[] = [];
  await ensurePools(context, file, changes);
  if (zfs.arc_max_gb !== undefined) ensureArc(context, zfs.arc_max_gb, changes, notes);
  await ensureDatasets(config, changes);
  changes.push(...(await reconcileStorages(desiredStorages(config).filter((s) => s.owner === 'zfs'), context.options, file)));
  for (const note of notes) warn(note);
  return { changes };
}
