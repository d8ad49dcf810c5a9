// Guests a killed run left half-made. Proxmox marks a guest it is creating
// or cloning with a `lock:` property in its config and removes the mark when
// the task ends; a task killed in the middle (its CLI got SIGKILL, the node
// rebooted) leaves the mark behind, and every later `set`, `start` or
// `snapshot` of that guest is refused with "is locked (create)". Phoenix
// creates a guest only under the host lock and the guest's own lock, so when
// it finds such a mark on a guest it is about to create, the task that set it
// is dead: the half-made guest is removed and made again, and a clone source
// left marked `lock: disk` is released.

import { run } from './runner.mts';
import { warn } from './log.mts';

export type GuestTool = 'pct' | 'qm';

/** The `lock:` values a create or clone task sets on the guest it is making. */
const CREATION_LOCKS: Readonly<Record<GuestTool, readonly string[]>> = {
  pct: ['create'],
  qm: ['create', 'clone'],
};

/** Whether a guest's `lock:` value says a create or clone task never finished it. */
export function isHalfMade(tool: GuestTool, lock: string | undefined): boolean {
  return lock !== undefined && CREATION_LOCKS[tool].includes(lock);
}

/**
 * Remove a guest whose creation never finished: its lock is lifted, then the
 * guest is destroyed with any disk the task had allocated for it. Only for
 * guests `isHalfMade` says so of, and only while holding the host lock.
 */
export async function removeHalfMadeGuest(tool: GuestTool, id: string, lock: string): Promise<void> {
  const kind = tool === 'pct' ? 'CT' : 'VM';
  warn(`${kind} ${id} is marked 'lock: ${lock}' by a create or clone that did not finish (an interrupted run); removing the half-made ${kind} and making it again`);
  await run({ cmd: tool, args: ['unlock', id] });
  await run({ cmd: tool, args: ['destroy', id, '--destroy-unreferenced-disks', '1'] });
}

/** A container clone that was killed leaves its source marked `lock: disk`; lift the mark. */
export async function releaseCloneSource(id: string): Promise<void> {
  warn(`CT ${id} is still marked 'lock: disk' by a clone that did not finish (an interrupted run); unlocking it`);
  await run({ cmd: 'pct', args: ['unlock', id] });
}
