// lxc-manager's other verbs: start, stop, restart, delete, sync, status.

import fs from 'node:fs';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { type LxcSession, TRAEFIK_SYNC_SCRIPT, inspect, lockOptions, manifestEntry, requireScript, runChild, step } from './session.mts';
import { PhoenixError } from '../core/errors.mts';
import { exclusiveHostDirs } from '../guest/hostdirs.mts';
import { formatStatusTable } from '../pve/guest-status.mts';
import { guestGraph } from '../config/guests.mts';
import { guestLockPath, withLock } from '../guest/locks.mts';
import { info, success, warn } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { removeRecord } from './record.mts';
import { startWithRetries } from './create.mts';

// ---------------------------------------------------------------- lifecycle verbs

export async function startContainer(session: LxcSession, ctid: string): Promise<void> {
  manifestEntry(session, ctid);
  await withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
    const view = await inspect(session, ctid);
    if (!view.exists) throw new PhoenixError(`Container ${ctid} does not exist; create it first.`);
    if (view.template) {
      warn(`Container ${ctid} is a template; templates cannot be started.`);
      return;
    }
    if (view.running) {
      info(`Container ${ctid} is already running.`);
      return;
    }
    info(`Starting container ${ctid}...`);
    await startWithRetries(session, ctid);
    success(`Container ${ctid} started.`);
  });
}

export async function stopContainer(session: LxcSession, ctid: string): Promise<void> {
  manifestEntry(session, ctid);
  await withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
    const view = await inspect(session, ctid);
    if (!view.exists) {
      warn(`Container ${ctid} does not exist; nothing to stop.`);
      return;
    }
    if (view.template) {
      info(`Container ${ctid} is a template; templates never run.`);
      return;
    }
    if (!view.running) {
      info(`Container ${ctid} is already stopped.`);
      return;
    }
    await step(`Failed to stop container ${ctid}`, () => pct.stop(ctid));
    success(`Container ${ctid} stopped.`);
  });
}

export async function restartContainer(session: LxcSession, ctid: string): Promise<void> {
  manifestEntry(session, ctid);
  await withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
    const view = await inspect(session, ctid);
    if (!view.exists) throw new PhoenixError(`Container ${ctid} does not exist; create it first.`);
    if (view.template) {
      warn(`Container ${ctid} is a template; templates cannot be restarted.`);
      return;
    }
    if (view.running) await step(`Failed to stop container ${ctid}`, () => pct.stop(ctid));
    await startWithRetries(session, ctid);
    success(`Container ${ctid} restarted.`);
  });
}

/**
 * Stop and destroy the container, then remove what create made for it on
 * the host: its firewall file (when Proxmox left one) and its lifecycle
 * record. Host data directories only with `purgeData`, and only those no
 * other container mounts.
 */
export async function deleteContainer(session: LxcSession, ctid: string, options: { purgeData: boolean }): Promise<string[]> {
  manifestEntry(session, ctid);
  return withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
    const changes: string[] = [];
    const view = await inspect(session, ctid);
    if (!view.exists) info(`Container ${ctid} does not exist.`);
    else {
      if (view.running) {
        await step(`Failed to stop container ${ctid}`, () => pct.stop(ctid));
        changes.push('stopped');
      }
      await step(`Failed to destroy container ${ctid}`, () => pct.destroy(ctid));
      changes.push('destroyed (with its snapshots)');
    }
    const firewallFile = path.join(session.options.pveDir, 'firewall', `${ctid}.fw`);
    if (fs.existsSync(firewallFile)) {
      if (isDryRun()) info(`DRY-RUN: would remove ${firewallFile}`);
      else fs.rmSync(firewallFile, { force: true });
      changes.push(`removed ${firewallFile}`);
    }
    if (removeRecord(session.options.hostRoot, ctid)) changes.push('removed its lifecycle record');
    const dirs = exclusiveHostDirs(ctid, session.config.lxc, session.options.hostRoot);
    if (options.purgeData) {
      for (const dir of dirs.remove.filter((d) => fs.existsSync(d))) {
        if (isDryRun()) info(`DRY-RUN: would remove ${dir}`);
        else fs.rmSync(dir, { recursive: true, force: true });
        changes.push(`purged ${dir}`);
      }
      for (const dir of dirs.shared) warn(`kept ${dir}: another container mounts it too`);
    } else {
      const kept = dirs.remove.filter((d) => fs.existsSync(d));
      if (kept.length > 0) info(`Kept host data of CT ${ctid} (${kept.join(', ')}); pass --purge-data to remove it.`);
    }
    if (changes.length === 0) success(`'delete' workflow completed for CTID ${ctid}: nothing to delete.`);
    else success(`'delete' workflow completed for CTID ${ctid}: ${changes.join('; ')}.`);
    return changes;
  });
}

/**
 * `sync`: the upstream ran the Traefik certificate sync for CTID 102 only;
 * here it runs for every container with the `traefik` feature.
 */
export async function syncContainer(session: LxcSession, ctid: string): Promise<void> {
  const ct = manifestEntry(session, ctid);
  info(`Starting 'sync' workflow for CTID ${ctid}...`);
  if ((ct.features ?? []).includes('traefik')) {
    requireScript(session, TRAEFIK_SYNC_SCRIPT, 'The Traefik certificate sync script');
    await withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
      const code = await runChild(session, TRAEFIK_SYNC_SCRIPT, [ctid]);
      if (code !== 0) throw new PhoenixError(`Traefik certificate sync failed for CTID ${ctid} (exit ${code}).`);
    });
  } else {
    info(`Nothing to sync for CTID ${ctid}.`);
  }
  info(`'sync' workflow completed for CTID ${ctid}.`);
}

/** `status`: the same table `phoenix status` prints, on stdout. */
export async function statusTable(session: LxcSession, ids: readonly string[]): Promise<string> {
  for (const id of ids) manifestEntry(session, id);
  const graph = guestGraph(session.config);
  const states = new Map(await Promise.all(ids.map(async (id) => [id, await pct.status(id)] as const)));
  return formatStatusTable(graph, session.config, ids, states);
}
