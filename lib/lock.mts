// The host-wide lock: one Phoenix run at a time changes the host, so a
// `create`, a `sync all` and the renewal timer never interleave.
//
// The lock is a file created with O_EXCL holding the owner's pid and a token.
// A lock whose process is gone is stale and taken over. Child scripts of the
// run that holds the lock inherit its token (PHOENIX_LOCK_TOKEN) and go on
// without waiting for themselves.

import fs from 'node:fs';
import path from 'node:path';
import { uniqueSuffix } from './fs.mts';
import { LockBusyError } from './errors.mts';
import { debug, info } from './log.mts';
import { sleep } from './runner.mts';

export interface HeldLock {
  path: string;
  token: string;
  /** False when this process runs under a parent's lock. */
  owned: boolean;
  release(): void;
}

interface LockContent {
  pid: number;
  token: string;
  script: string;
  since: string;
}

export interface AcquireOptions {
  waitSeconds?: number;
  script?: string;
  /** Token inherited from a parent run (PHOENIX_LOCK_TOKEN). */
  inheritedToken?: string | undefined;
}

export async function acquireHostLock(lockPath: string, options: AcquireOptions = {}): Promise<HeldLock> {
  const inherited = options.inheritedToken;
  if (inherited) {
    const current = readLock(lockPath);
    if (current?.token === inherited && isAlive(current.pid)) {
      debug(`running under the lock ${lockPath} held by pid ${current.pid}`);
      return { path: lockPath, token: inherited, owned: false, release: () => {} };
    }
  }

  const token = `${Date.now().toString(36)}.${uniqueSuffix()}`;
  const content: LockContent = { pid: process.pid, token, script: options.script ?? '', since: new Date().toISOString() };
  const deadline = Date.now() + (options.waitSeconds ?? 0) * 1000;
  let announced = false;
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });

  for (;;) {
    if (tryCreate(lockPath, content)) break;
    const holder = readLock(lockPath);
    if (holder && !isAlive(holder.pid)) {
      info(`removing stale lock ${lockPath} left by pid ${holder.pid} (${holder.script || 'unknown script'})`);
      removeIfSame(lockPath, holder.token);
      continue;
    }
    if (!holder) {
      // Created but not yet written by its owner, or garbage: give it a moment.
      await sleep(50);
      if (readLock(lockPath) === undefined && fileAgeMs(lockPath) > 5_000) fs.rmSync(lockPath, { force: true });
      continue;
    }
    const describe = `pid ${holder.pid}${holder.script ? `, ${holder.script}` : ''}, since ${holder.since}`;
    if (Date.now() >= deadline) throw new LockBusyError(lockPath, describe);
    if (!announced) {
      info(`waiting for the host lock ${lockPath} (${describe})`);
      announced = true;
    }
    await sleep(200);
  }

  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    removeIfSame(lockPath, token);
  };
  // A run killed by a signal still frees the lock; a SIGKILL leaves a stale
  // lock that the next run detects by the dead pid.
  process.once('exit', release);
  return { path: lockPath, token, owned: true, release };
}

function tryCreate(lockPath: string, content: LockContent): boolean {
  let fd: number;
  try {
    fd = fs.openSync(lockPath, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  fs.writeSync(fd, JSON.stringify(content));
  fs.closeSync(fd);
  return true;
}

function readLock(lockPath: string): LockContent | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(lockPath, 'utf8')) as Partial<LockContent>;
    if (typeof parsed.pid === 'number' && typeof parsed.token === 'string') {
      return { pid: parsed.pid, token: parsed.token, script: parsed.script ?? '', since: parsed.since ?? '' };
    }
  } catch {
    // Missing, or being written right now.
  }
  return undefined;
}

/** Remove the lock only if it still carries our view of its token. */
function removeIfSame(lockPath: string, token: string): void {
  if (readLock(lockPath)?.token === token) fs.rmSync(lockPath, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function fileAgeMs(file: string): number {
  try {
    return Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
