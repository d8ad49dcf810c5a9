import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { acquireHostLock } from '../lib/lock.mts';
import { LockBusyError } from '../lib/errors.mts';
import { configureLog } from '../lib/log.mts';
import { tmpDir } from './helpers/tmp.mts';

configureLog({ file: undefined, write: () => {} });
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
