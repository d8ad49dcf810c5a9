// pct's and qm's snapshot commands: PVE::AbstractConfig's two-step tasks
// (guests.mts has the steps), the same for containers and VMs apart from
// the reserved names and how a rolled-back guest is started.

import type { Ctx } from '../cli.mts';
import {
  checkRollback,
  checkSnapshotDelete,
  createSnapshot,
  deleteSnapshot,
  loadGuest,
  lockedTask,
  markRunning,
  markStopped,
  prepareSnapshot,
  rollbackSnapshot,
  snapshotTree,
} from '../guests.mts';
import { die, type GuestKind } from '../state.mts';

/** `snapshot`: `reserved` are the names the tool refuses (pct: current, vzdump; qm: current, pending). */
export function snapshotCommand(ctx: Ctx, kind: GuestKind, vmid: string, name: string, description: string | undefined, reserved: readonly string[]): void {
  if (reserved.includes(name)) die(`unable to use snapshot name '${name}' (reserved name)`);
  lockedTask(
    ctx,
    kind,
    vmid,
    'snapshot',
    (rt, config) => prepareSnapshot(rt, kind, config, name),
    (rt, config) => createSnapshot(ctx, rt, kind, vmid, config, name, description),
  );
}

export function delsnapshotCommand(ctx: Ctx, kind: GuestKind, vmid: string, name: string, force: boolean): void {
  lockedTask(
    ctx,
    kind,
    vmid,
    'snapshot-delete',
    (_rt, config) => checkSnapshotDelete(kind, config, name, force),
    (rt, config) => deleteSnapshot(ctx, rt, kind, vmid, config, name),
  );
}

/** `rollback`: PVE stops a running guest first; `--start` starts it again (a VM's agent answers after `agentDelayMs`). */
export function rollbackCommand(ctx: Ctx, kind: GuestKind, vmid: string, name: string, startAfter: boolean, agentDelayMs = 0): void {
  lockedTask(
    ctx,
    kind,
    vmid,
    'rollback',
    (rt, config) => {
      checkRollback(rt, kind, config, name);
      markStopped(rt, vmid);
    },
    (rt, config) => {
      const restored = rollbackSnapshot(ctx, rt, kind, vmid, config, name);
      if (startAfter) markRunning(rt, vmid, Date.now(), agentDelayMs);
      return restored;
    },
  );
}

export function listsnapshotCommand(ctx: Ctx, kind: GuestKind, vmid: string): void {
  ctx.begin();
  ctx.out(snapshotTree(loadGuest(ctx, kind, vmid)));
}
