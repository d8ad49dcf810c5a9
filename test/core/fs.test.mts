import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, ensureDir } from '../../lib/core/fs.mts';
import { setProcessContext, withRunContext } from '../../lib/core/context.mts';
import { configureLog } from '../../lib/core/log.mts';
import { tmpDir } from '../helpers/tmp.mts';

configureLog({ file: undefined, write: () => {} });
const dir = tmpDir();
const mode = (file: string) => fs.statSync(file).mode & 0o7777;

test.before.each(() => setProcessContext({ dryRun: false }));

test('creates a file with its mode, then reports unchanged on the same content', () => {
  const key = path.join(dir, 'ssl', 'key.pem');
  assert.is(writeFileAtomic(key, 'KEY', { mode: 0o600, dirMode: 0o700 }), 'created');
  assert.is(mode(key), 0o600);
  assert.is(mode(path.dirname(key)), 0o700);
  assert.is(writeFileAtomic(key, 'KEY', { mode: 0o600 }), 'unchanged');
  assert.is(writeFileAtomic(key, 'KEY2', { mode: 0o600 }), 'changed');
  assert.is(fs.readFileSync(key, 'utf8'), 'KEY2');
});

test('a mode change alone counts as a change', () => {
  const file = path.join(dir, 'perm.txt');
  writeFileAtomic(file, 'x', { mode: 0o644 });
  assert.is(writeFileAtomic(file, 'x', { mode: 0o600 }), 'changed');
  assert.is(mode(file), 0o600);
});

test('no temporary file is left behind', () => {
  const sub = path.join(dir, 'clean');
  writeFileAtomic(path.join(sub, 'a.conf'), 'a');
  writeFileAtomic(path.join(sub, 'a.conf'), 'b');
  assert.equal(fs.readdirSync(sub), ['a.conf']);
});

test('a failed write leaves the old file intact', () => {
  const file = path.join(dir, 'keep.conf');
  writeFileAtomic(file, 'old');
  // A directory where the rename target's sibling temp would go cannot be
  // created when the parent is read-only; simulate with a read-only dir.
  if (process.getuid?.() === 0) {
    // root ignores directory modes; check the rename path instead: renaming onto a directory fails.
    const target = path.join(dir, 'is-a-dir');
    fs.mkdirSync(path.join(target, 'child'), { recursive: true });
    assert.throws(() => writeFileAtomic(target, 'new'));
    assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  }
  assert.is(fs.readFileSync(file, 'utf8'), 'old');
});

test('dry-run writes nothing but says what would change', () => {
  setProcessContext({ dryRun: true });
  const file = path.join(dir, 'dry', 'x.conf');
  assert.is(writeFileAtomic(file, 'content'), 'created');
  assert.not.ok(fs.existsSync(file));
  assert.is(ensureDir(path.join(dir, 'drydir'), 0o700), 'created');
  assert.not.ok(fs.existsSync(path.join(dir, 'drydir')));
});

test('each piece of work writes by its own run context: a dry run beside a real one changes nothing of its own', async () => {
  const real = path.join(dir, 'ctx', 'real.conf');
  const planned = path.join(dir, 'ctx', 'planned.conf');
  const write = (file: string) => new Promise<string>((resolve) => setImmediate(() => resolve(writeFileAtomic(file, 'x'))));
  const [a, b] = await Promise.all([withRunContext({ dryRun: true }, () => write(planned)), withRunContext({ dryRun: false }, () => write(real))]);
  assert.equal([a, b], ['created', 'created']);
  assert.ok(fs.existsSync(real));
  assert.not.ok(fs.existsSync(planned));
});

test('ensureDir creates and fixes modes', () => {
  const d = path.join(dir, 'private');
  assert.is(ensureDir(d, 0o700), 'created');
  assert.is(mode(d), 0o700);
  assert.is(ensureDir(d, 0o700), 'unchanged');
  fs.chmodSync(d, 0o777);
  assert.is(ensureDir(d, 0o700), 'changed');
  assert.is(mode(d), 0o700);
});

test.run();
