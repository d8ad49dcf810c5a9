// Per-guest locks. The host lock keeps two Phoenix runs apart; within one run
// the CLI works on independent guests in parallel, and these locks keep two
// processes off the same guest: one file per guest id next to the host lock
// (`<dir of PHOENIX_LOCK_FILE>/phoenix.guest-<id>.lock`). Guest ids are unique
// across containers and VMs, so a VM manager can share the scheme.

import path from 'node:path';
import { acquireHostLock, type HeldLock } from '../core/lock.mts';

export function guestLockPath(hostLockFile: string, id: string): string {
  return path.join(path.dirname(hostLockFile), `phoenix.guest-${id}.lock`);
}

/** Host-wide steps (firewall regeneration, certificate run) take turns across parallel guests. */
export function hostStepsLockPath(hostLockFile: string): string {
  return path.join(path.dirname(hostLockFile), 'phoenix.host-steps.lock');
}

export async function withLock<T>(lockPath: string, options: { waitSeconds: number; script: string; enabled: boolean }, fn: () => Promise<T>): Promise<T> {
  if (!options.enabled) return fn();
  const lock: HeldLock = await acquireHostLock(lockPath, { waitSeconds: options.waitSeconds, script: options.script });
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
