// Guests a killed run left half-made. Proxmox marks a guest it is creating
// or cloning with a `lock:` property in its config and removes the mark when
// the task ends; a task killed in the middle (its CLI got SIGKILL, the node
// rebooted) leaves the mark behind, and every later `set`, `start` or
// `snapshot` of that guest is refused with "is locked (create)". Phoenix
// creates a guest only under the host lock and the guest's own lock, so when
// it finds such a mark on a guest it is about to create, the task that set it
// is dead: the half-made guest is removed and made again, and a clone source
// left marked `lock: disk` is released. A snapshot task killed the same way
// leaves `lock: snapshot` (or `snapshot-delete`) and a snapshot section whose
// `snapstate` says it is unfinished: the mark is lifted and that snapshot
// removed, so the run takes it again whole.

import { warn } from '../core/log.mts';
import { guestTool, type GuestToolName } from './guest-tool.mts';


/** The `lock:` values a create or clone task sets on the guest it is making. */
const CREATION_LOCKS: Readonly<Record<GuestToolName, readonly string[]>> = {
  pct: ['create'],
  qm: ['create', 'clone'],
};

/** Whether a guest's `lock:` value says a create or clone task never finished it. */
export function isHalfMade(tool: GuestToolName, lock: string | undefined): boolean {
  return lock !== undefined && CREATION_LOCKS[tool].includes(lock);
}

/**
 * Remove a guest whose creation never finished: its lock is lifted, then the
 * guest is destroyed with any disk the task had allocated for it. Only for
 * guests `isHalfMade` says so of, and only while holding the host lock.
 */
export async function removeHalfMadeGuest(tool: GuestToolName, id: string, lock: string): Promise<void> {
  const kind = tool === 'pct' ? 'CT' : 'VM';
  warn(`${kind} ${id} is marked 'lock: ${lock}' by a create or clone that did not finish (an interrupted run); removing the half-made ${kind} and making it again`);
  const guests = guestTool(tool);
  await guests.unlock(id);
  await guests.destroy(id, { unreferencedDisks: true });
}

/** A container clone that was killed leaves its source marked `lock: disk`; lift the mark. */
export async function releaseCloneSource(id: string): Promise<void> {
  warn(`CT ${id} is still marked 'lock: disk' by a clone that did not finish (an interrupted run); unlocking it`);
  await guestTool('pct').unlock(id);
}

/** The `lock:` values of Proxmox's snapshot tasks. */
const SNAPSHOT_LOCKS: readonly string[] = ['snapshot', 'snapshot-delete'];

/** Whether a guest's `lock:` value says a snapshot task never finished. */
export function isSnapshotTaskUnfinished(lock: string | undefined): lock is string {
  return lock !== undefined && SNAPSHOT_LOCKS.includes(lock);
}

/**
 * Finish what a killed snapshot task left: its lock mark is lifted and every
 * snapshot still marked `snapstate: prepare` or `delete` is removed (with
 * `--force`, as Proxmox asks for a half-made one). A snapshot being taken is
 * taken again by the step that wanted it; one being deleted was meant to go.
 * Only under the host lock and the guest's lock. Returns the removed names.
 */
export async function finishSnapshotTask(tool: GuestToolName, id: string, lock: string): Promise<string[]> {
  const kind = tool === 'pct' ? 'CT' : 'VM';
  const guests = guestTool(tool);
  warn(`${kind} ${id} is marked 'lock: ${lock}' by a snapshot task that did not finish (an interrupted run); unlocking it`);
  await guests.unlock(id);
  const removed: string[] = [];
  for (const name of await guests.listSnapshots(id)) {
    const state = await guests.snapshotState(id, name);
    if (state === undefined) continue;
    warn(`${kind} ${id}: removing snapshot '${name}', left unfinished (snapstate ${state})`);
    await guests.deleteSnapshot(id, name, { force: true });
    removed.push(name);
  }
  return removed;
}
