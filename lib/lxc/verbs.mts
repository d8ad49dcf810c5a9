// lxc-manager's other verbs: start, stop, restart, delete, sync, status.
// start, stop, restart, delete and status are the guest verbs of
// lib/guest/lifecycle.mts; this module says what is a container's own: it is
// started with retries and stopped at once, and deleting one also removes
// its firewall file, its lifecycle record and (with --purge-data) the host
// data only it mounts.

import fs from 'node:fs';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { type LxcSession, TRAEFIK_SYNC_SCRIPT, inspect, manifestEntry, requireScript, runChild, step } from './session.mts';
import { PhoenixError } from '../core/errors.mts';
import { exclusiveHostDirs } from '../guest/hostdirs.mts';
import { type LifecycleKind, type Removal, deleteGuest, guestStatusTable, restartGuest, startGuest, stopGuest } from '../guest/lifecycle.mts';
import { withGuestLock } from '../guest/manager.mts';
import { info, warn } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { removeRecord } from './record.mts';
import { startWithRetries } from './create.mts';

// ---------------------------------------------------------------- lifecycle verbs

async function stopContainerNow(ctid: string): Promise<void> {
  await step(`Failed to stop container ${ctid}`, () => pct.stop(ctid));
}

const CONTAINERS: LifecycleKind<LxcSession> = {
  subject: (ctid) => `Container ${ctid}`,
  starting: (ctid) => `Starting container ${ctid}...`,
  requireEntry: (session, ctid) => void manifestEntry(session, ctid),
  inspect,
  missing: (ctid) => `Container ${ctid} does not exist; create it first.`,
  stopAbsent: (ctid) => ['warn', `Container ${ctid} does not exist; nothing to stop.`],
  templateNote: {
    start: (ctid) => ['warn', `Container ${ctid} is a template; templates cannot be started.`],
    stop: (ctid) => ['info', `Container ${ctid} is a template; templates never run.`],
    restart: (ctid) => ['warn', `Container ${ctid} is a template; templates cannot be restarted.`],
  },
  announceRestart: false,
  start: startWithRetries,
  stop: (_session, ctid) => stopContainerNow(ctid),
};

export const startContainer = (session: LxcSession, ctid: string): Promise<void> => startGuest(session, CONTAINERS, ctid);
export const stopContainer = (session: LxcSession, ctid: string): Promise<void> => stopGuest(session, CONTAINERS, ctid);
export const restartContainer = (session: LxcSession, ctid: string): Promise<void> => restartGuest(session, CONTAINERS, ctid);

/** Remove a path from the host (or say so in a dry run). */
function removeFromHost(target: string, options: fs.RmOptions): void {
  if (isDryRun()) info(`DRY-RUN: would remove ${target}`);
  else fs.rmSync(target, options);
}

function containerRemoval(options: { purgeData: boolean }): Removal<LxcSession> {
  return {
    absent: (ctid) => `Container ${ctid} does not exist.`,
    // A failed run may have left the firewall file or the record of a container that is gone.
    cleanUpAbsent: true,
    async stop(_session, ctid, changes) {
      await stopContainerNow(ctid);
      changes.push('stopped');
    },
    async destroy(_session, ctid, changes) {
      await step(`Failed to destroy container ${ctid}`, () => pct.destroy(ctid));
      changes.push('destroyed (with its snapshots)');
    },
    async cleanUp(session, ctid, changes) {
      const firewallFile = path.join(session.options.pveDir, 'firewall', `${ctid}.fw`);
      if (fs.existsSync(firewallFile)) {
        removeFromHost(firewallFile, { force: true });
        changes.push(`removed ${firewallFile}`);
      }
      if (removeRecord(session.options.hostRoot, ctid)) changes.push('removed its lifecycle record');
      const dirs = exclusiveHostDirs(ctid, session.config.lxc, session.options.hostRoot);
      if (options.purgeData) {
        for (const dir of dirs.remove.filter((d) => fs.existsSync(d))) {
          removeFromHost(dir, { recursive: true, force: true });
          changes.push(`purged ${dir}`);
        }
        for (const dir of dirs.shared) warn(`kept ${dir}: another container mounts it too`);
      } else {
        const kept = dirs.remove.filter((d) => fs.existsSync(d));
        if (kept.length > 0) info(`Kept host data of CT ${ctid} (${kept.join(', ')}); pass --purge-data to remove it.`);
      }
    },
    done: (ctid, changes) => `'delete' workflow completed for CTID ${ctid}: ${changes.length === 0 ? 'nothing to delete' : changes.join('; ')}.`,
  };
}

/**
 * Stop and destroy the container, then remove what create made for it on
 * the host: its firewall file (when Proxmox left one) and its lifecycle
 * record. Host data directories only with `purgeData`, and only those no
 * other container mounts.
 */
export function deleteContainer(session: LxcSession, ctid: string, options: { purgeData: boolean }): Promise<string[]> {
  return deleteGuest(session, CONTAINERS, ctid, containerRemoval(options));
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
    await withGuestLock(session, ctid, async () => {
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
  return guestStatusTable(session.config, 'lxc', ids);
}
