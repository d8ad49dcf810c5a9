import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { acquireHostLock } from '../../lib/core/lock.mts';
import { LockBusyError } from '../../lib/core/errors.mts';
import { configureLog } from '../../lib/core/log.mts';
import { tmpDir } from '../helpers/tmp.mts';

const logged: string[] = [];
configureLog({ file: undefined, write: (line: string) => void logged.push(line) });
const dir = tmpDir();

test('acquire, refuse a second holder, release', async () => {
  const lockPath = path.join(dir, 'a.lock');
  const lock = await acquireHostLock(lockPath, { script: 'test' });
  assert.ok(lock.owned);
  assert.ok(fs.existsSync(lockPath));
  try {
    await acquireHostLock(lockPath, { waitSeconds: 0 });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, LockBusyError);
    assert.match((err as Error).message, new RegExp(`pid ${process.pid}`));
  }
  lock.release();
  assert.not.ok(fs.existsSync(lockPath));
  (await acquireHostLock(lockPath)).release();
});

test('a lock left by a dead process is taken over', async () => {
  const lockPath = path.join(dir, 'stale.lock');
  const dead = spawn('true');
  await new Promise((r) => dead.on('close', r));
  fs.writeFileSync(lockPath, JSON.stringify({ pid: dead.pid, token: 'old', script: 'killed', since: '' }));
  const lock = await acquireHostLock(lockPath);
  assert.ok(lock.owned);
  lock.release();
});

test('taking over a dead holder\'s lock says so in the log', async () => {
  const lockPath = path.join(dir, 'stale-logged.lock');
  const dead = spawn('true');
  await new Promise((r) => dead.on('close', r));
  fs.writeFileSync(lockPath, JSON.stringify({ pid: dead.pid, token: 'old', script: 'phoenix-cli create 103', since: '2026-01-01T00:00:00Z' }));
  logged.length = 0;
  const lock = await acquireHostLock(lockPath, { waitSeconds: 0 });
  assert.ok(lock.owned);
  assert.match(logged.join('\n'), new RegExp(`taking over the stale lock .*stale-logged\\.lock left by pid ${dead.pid} \\(phoenix-cli create 103`));
  lock.release();
});

test('a lock whose pid now belongs to another process (the holder was killed, the pid reused) is taken over', async () => {
  const lockPath = path.join(dir, 'reused.lock');
  // This very process is alive, but it is not the process that took the lock: its start time differs.
  fs.writeFileSync(lockPath, JSON.stringify({ pid: process.pid, start: '1', token: 'old', script: 'killed run', since: '' }));
  logged.length = 0;
  const lock = await acquireHostLock(lockPath, { waitSeconds: 0 });
  assert.ok(lock.owned);
  assert.match(logged.join('\n'), /its pid now belongs to another process/);
  lock.release();
  // The same pid with its real start time is a live holder.
  const held = await acquireHostLock(lockPath);
  try {
    await acquireHostLock(lockPath, { waitSeconds: 0 });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, LockBusyError);
  }
  held.release();
});

test('a lock file its owner never wrote (killed right after creating it) is taken over once old', async () => {
  const lockPath = path.join(dir, 'empty.lock');
  fs.writeFileSync(lockPath, '');
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(lockPath, old, old);
  logged.length = 0;
  const lock = await acquireHostLock(lockPath, { waitSeconds: 2 });
  assert.ok(lock.owned);
  assert.match(logged.join('\n'), /taking over the unreadable lock/);
  lock.release();
});

test('a per-guest lock left by a killed run is taken over the same way', async () => {
  const { guestLockPath, withLock } = await import('../../lib/guest/locks.mts');
  const lockPath = guestLockPath(path.join(dir, 'phoenix.lock'), '103');
  const dead = spawn('true');
  await new Promise((r) => dead.on('close', r));
  fs.writeFileSync(lockPath, JSON.stringify({ pid: dead.pid, token: 'old', script: 'lxc-manager.sh', since: '' }));
  logged.length = 0;
  assert.is(await withLock(lockPath, { waitSeconds: 0, script: 'test', enabled: true }, async () => 'ran'), 'ran');
  assert.match(logged.join('\n'), /taking over the stale lock .*phoenix\.guest-103\.lock/);
  assert.not.ok(fs.existsSync(lockPath));
});

test('a child of the holder runs under the inherited token', async () => {
  const lockPath = path.join(dir, 'inherit.lock');
  const parent = await acquireHostLock(lockPath);
  const child = await acquireHostLock(lockPath, { inheritedToken: parent.token });
  assert.not.ok(child.owned);
  child.release();
  assert.ok(fs.existsSync(lockPath), 'the child does not free the parent lock');
  await assert.not.throws(async () => undefined);
  try {
    await acquireHostLock(lockPath, { inheritedToken: 'forged' });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, LockBusyError);
  }
  parent.release();
});

test('a waiter gets the lock once the holder releases it', async () => {
  const lockPath = path.join(dir, 'wait.lock');
  const first = await acquireHostLock(lockPath);
  setTimeout(() => first.release(), 300);
  const started = Date.now();
  const second = await acquireHostLock(lockPath, { waitSeconds: 5 });
  assert.ok(Date.now() - started >= 250);
  second.release();
});

test.run();
