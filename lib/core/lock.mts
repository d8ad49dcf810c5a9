// The host-wide lock: one Phoenix run at a time changes the host, so a
// `create`, a `sync all` and the renewal timer never interleave.
//
// The lock is a file created with O_EXCL holding the owner's pid, the start
// time the kernel gives that process, and a token. A lock whose process is
// gone, or whose pid now belongs to another process (same pid, other start
// time: the holder was killed and the pid reused), is stale and taken over,
// with a log line saying so: a killed run never leaves work for a human. Child scripts of the
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
  /** Start time of `pid` (field 22 of /proc/<pid>/stat), when the system has /proc. */
  start?: string;
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
    if (current?.token === inherited && holderAlive(current)) {
      debug(`running under the lock ${lockPath} held by pid ${current.pid}`);
      return { path: lockPath, token: inherited, owned: false, release: () => {} };
    }
  }

  const token = `${Date.now().toString(36)}.${uniqueSuffix()}`;
  const start = processStart(process.pid);
  const content: LockContent = { pid: process.pid, ...(start === undefined ? {} : { start }), token, script: options.script ?? '', since: new Date().toISOString() };
  const deadline = Date.now() + (options.waitSeconds ?? 0) * 1000;
  let announced = false;
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });

  for (;;) {
    if (tryCreate(lockPath, content)) break;
    const holder = readLock(lockPath);
    if (holder && !holderAlive(holder)) {
      const state = isAlive(holder.pid) ? procStat(holder.pid) : undefined;
      const reused = state === undefined ? '' : state.state === 'Z' || state.state === 'X' ? ', it is a zombie' : ', its pid now belongs to another process';
      info(`taking over the stale lock ${lockPath} left by pid ${holder.pid} (${holder.script || 'unknown script'}, since ${holder.since || '?'}${reused}): that run ended without releasing it`);
      removeIfSame(lockPath, holder.token);
      continue;
    }
    if (!holder) {
      // Created but not yet written by its owner, or garbage: give it a moment.
      await sleep(50);
      if (readLock(lockPath) === undefined && fileAgeMs(lockPath) > 5_000) {
        info(`taking over the unreadable lock ${lockPath}: its owner died before writing it`);
        fs.rmSync(lockPath, { force: true });
      }
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
      return { pid: parsed.pid, ...(typeof parsed.start === 'string' ? { start: parsed.start } : {}), token: parsed.token, script: parsed.script ?? '', since: parsed.since ?? '' };
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

/** The holder still runs: its pid is alive and, where the start time is known, still the same process. */
function holderAlive(holder: LockContent): boolean {
  if (!isAlive(holder.pid)) return false;
  const stat = procStat(holder.pid);
  if (stat === undefined) return true;
  // A killed holder whose parent died too may stay a zombie until something reaps it: it runs no more.
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return holder.start === undefined || stat.start === holder.start;
}

/** A process's start time in clock ticks since boot (Linux), or undefined where /proc cannot tell. */
export function processStart(pid: number): string | undefined {
  return procStat(pid)?.start;
}

function procStat(pid: number): { state: string; start: string | undefined } | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[19];
  return { state: fields[0] ?? '', start: start !== undefined && /^\d+$/.test(start) ? start : undefined };
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
