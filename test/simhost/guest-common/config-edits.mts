// How pct and qm change a guest's config: under the guest's config lock and
// the state lock, with a `lock: <name>` placeholder holding a new id while
// it is made, and the parts of `set` both tools handle alike.

import fs from 'node:fs';

import type { Ctx } from '../cli.mts';
import { loadGuest } from '../guests.mts';
import { configPath, emptySection, readConfigFile, writeConfigFile, type GuestConfig } from '../pveconf.mts';
import { die, ToolExit, updateRuntime, type GuestKind, type Runtime } from '../state.mts';

/** Load, change and write a guest's config under its lock and the state lock. */
export function mutateGuest(ctx: Ctx, kind: GuestKind, vmid: string, inWorker: boolean, fn: (rt: Runtime, config: GuestConfig) => void): void {
  ctx.begin([{ kind, vmid }]);
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, kind, vmid, { inWorker });
    fn(rt, config);
    writeConfigFile(ctx.root, kind, vmid, config);
  });
}

/** A config holding only `lock: <name>`: how PVE reserves an id while the guest is made. */
export function placeholderConfig(lockName: string): GuestConfig {
  return { main: { ...emptySection(), props: { lock: lockName } }, pending: undefined, snapshots: {} };
}

/** Remove a config that is still only a `lock: <name>` placeholder. */
export function removeStub(root: string, kind: GuestKind, vmid: string, lockName: string): void {
  try {
    updateRuntime(root, (rt) => {
      const config = readConfigFile(root, kind, vmid);
      if (config?.main.props.lock !== lockName) return;
      fs.rmSync(configPath(root, kind, vmid), { force: true });
      delete rt.guests[vmid];
    });
  } catch {
    // best effort
  }
}

/**
 * `pct create` / `qm create`: checked and registered (as a config holding
 * only `lock: create`) before the task starts; the creation itself holds
 * the config lock, as the workers do, and a failed create leaves nothing
 * behind (both destroy the config on error).
 */
export function createTask<T>(ctx: Ctx, kind: GuestKind, vmid: string, reserve: (rt: Runtime) => T, build: (rt: Runtime, reserved: T) => void): void {
  const release = ctx.lockGuest({ kind, vmid });
  let reserved: T;
  try {
    reserved = updateRuntime(ctx.root, (rt) => {
      const result = reserve(rt);
      writeConfigFile(ctx.root, kind, vmid, placeholderConfig('create'));
      return result;
    });
  } finally {
    release();
  }
  ctx.begin([{ kind, vmid }]);
  try {
    updateRuntime(ctx.root, (rt) => build(rt, reserved));
  } catch (error) {
    removeStub(ctx.root, kind, vmid, 'create');
    throw error;
  }
}

/** pve-common's parameter check failure: one line for the parameter, then the short usage. */
export function parameterError(usageText: string, name: string, reason: string): never {
  throw new ToolExit(255, `400 Parameter verification failed.\n${name}: ${reason}\n${usageText}\n`);
}

export interface SetRequest {
  /** Options to set, in the order given. */
  changes: string[];
  deletes: string[];
  reverts: string[];
}

/** Split `set`'s options; `controls` are the options that steer the command rather than name a config key. */
export function setRequest(opts: Record<string, string>, order: string[], controls: readonly string[]): SetRequest {
  const changes = order.filter((k) => !controls.includes(k));
  const deletes = (opts.delete ?? '').split(/[,;\s]+/).filter(Boolean);
  const reverts = (opts.revert ?? '').split(/[,;\s]+/).filter(Boolean);
  if (changes.length === 0 && deletes.length === 0 && reverts.length === 0) die('no options specified');
  return { changes, deletes, reverts };
}

/** `--revert`: drop the pending values. */
export function revertPending(config: GuestConfig, reverts: readonly string[]): void {
  for (const opt of reverts) if (config.pending) delete config.pending.props[opt];
}

/** Set an option live, or (what a running guest cannot take live) in [pve:pending]. */
export function storeOption(config: GuestConfig, opt: string, value: string, pending: boolean): void {
  if (pending) {
    config.pending ??= emptySection();
    config.pending.props[opt] = value;
    return;
  }
  config.main.props[opt] = value;
}

/** A property string's keys in sorted order, as PVE prints them. */
export function sortedByKey(obj: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => a.localeCompare(b)));
}
