// hypervisor_feature_create_heads_user and hypervisor_feature_create_admin_user
// on the simulated host (useradd, usermod, groupadd, chpasswd, pveum and
// apt-get from test/simhost/bin; the real visudo): accounts created once,
// passwords only on stdin, never in a recorded argv or a log line, a refused
// password file changes nothing, no terminal and no password gives a locked
// account, and sudo rights only through a fragment the real visudo accepted.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { setupWorkspace } from '../helpers/setup-workspace.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { resolveOptions } from '../../lib/core/env.mts';
import { ensureSudoersFragment } from '../../lib/hypervisor/sudoers.mts';
import { validateAccounts } from '../../lib/hypervisor/accounts.mts';

const HEADS = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', 'hypervisor_feature_create_heads_user.mjs');
const ADMIN = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', 'hypervisor_feature_create_admin_user.mjs');
const PASSWORD = 'Heads-Secret-Pw-4711';
const ADMIN_HASH = '$y$j9T$K9ahmQ0Cl1cS0i1VaZm5f.$Ad7yv0Q5QJ2W8ZeJ1oO6FQ0nQmE4k9y3eQb1vXo7Ry6';
const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx0simulatedkeysimulatedkeysimulatedkey0 admin@phoenix';

const host = createSimHost();
const { etc, logFile, env, onHost, baseConfig: exampleConfig } = setupWorkspace(host, 'phoenix-accounts-');
const baseConfig = exampleConfig();
const PASSWORD_FILE = '/etc/phoenix/heads.pass';

function writeConfig(name: string, change: (config: any) => void): string {
  const config = structuredClone(baseConfig);
  change(config);
  const file = path.join(etc, name);
  fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

const headsConfig = writeConfig('heads.json', (c) => {
  c.operator_user = { username: 'heads', password_file: PASSWORD_FILE };
});
const adminConfig = writeConfig('admin.json', (c) => {
  c.users = { username: 'phoenix_admin', password_hash: ADMIN_HASH, sudo_access: true, ssh_public_key: SSH_KEY };
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  calls: CallRecord[];
}

function runScript(script: string, args: string[]): Run {
  host.clearCalls();
  const r = spawnSync(process.execPath, [script, ...args], { env, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, calls: host.calls() };
}

const MUTATING = /^(useradd|usermod|groupadd|chpasswd|smbpasswd)$/;
function changingCalls(calls: CallRecord[]): string[] {
  return calls
    .filter((c) => MUTATING.test(c.tool) || (c.tool === 'pveum' && !c.argv.includes('list')) || (c.tool === 'apt-get' && c.argv[0] === 'install'))
    .map((c) => [c.tool, ...c.argv].join(' '));
}

function passwdLine(user: string): string | undefined {
  const text = fs.existsSync(onHost('/etc/passwd')) ? fs.readFileSync(onHost('/etc/passwd'), 'utf8') : '';
  return text.split('\n').find((line) => line.startsWith(`${user}:`));
}
function shadowField(user: string): string | undefined {
  return fs.readFileSync(onHost('/etc/shadow'), 'utf8').split('\n').find((line) => line.startsWith(`${user}:`))?.split(':')[1];
}
function groupMembers(group: string): string[] {
  const line = fs.readFileSync(onHost('/etc/group'), 'utf8').split('\n').find((l) => l.startsWith(`${group}:`));
  return (line?.split(':')[3] ?? '').split(',').filter(Boolean);
}
const userCfg = () => fs.readFileSync(path.join(host.stateDir, 'pve', 'user.cfg'), 'utf8');

function writePasswordFile(mode: number): void {
  fs.mkdirSync(path.dirname(onHost(PASSWORD_FILE)), { recursive: true });
  fs.writeFileSync(onHost(PASSWORD_FILE), `${PASSWORD}\n`, { mode });
  fs.chmodSync(onHost(PASSWORD_FILE), mode);
}

/** The password must be in no argv recorded by the simulator, no output and no log line. */
function assertPasswordHidden(run: Run, secret: string): void {
  const calls = fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8');
  assert.not.ok(calls.includes(secret), 'password in calls.jsonl');
  for (const call of run.calls) assert.not.ok(call.argv.some((a) => a.includes(secret)), `password in the argv of ${call.tool}`);
  assert.not.ok(run.stdout.includes(secret), 'password on stdout');
  assert.not.ok(run.stderr.includes(secret), 'password on stderr');
  if (fs.existsSync(logFile)) assert.not.ok(fs.readFileSync(logFile, 'utf8').includes(secret), 'password in the log file');
}

test('--help prints the usage and runs nothing', () => {
  const run = runScript(HEADS, ['--help']);
  assert.is(run.code, 0);
  assert.match(run.stdout, /Usage: hypervisor_feature_create_heads_user\.sh \[HYPERVISOR_CONFIG_FILE\] \[--dry-run\]/);
  assert.equal(run.calls, []);
});

test('a password file readable by others is refused with its JSON path, and nothing changes', () => {
  writePasswordFile(0o644);
  const run = runScript(HEADS, [headsConfig]);
  assert.is.not(run.code, 0);
  assert.match(run.stderr, /heads\.json at \/operator_user\/password_file: \/etc\/phoenix\/heads\.pass must be owned by root with mode 0600 or stricter/);
  assert.equal(changingCalls(run.calls), []);
  assert.is(passwdLine('heads'), undefined);
  assertPasswordHidden(run, PASSWORD);
});

test('--dry-run plans the user and changes nothing', () => {
  writePasswordFile(0o600);
  const run = runScript(HEADS, [headsConfig, '--dry-run']);
  assert.is(run.code, 0, run.stderr);
  assert.equal(changingCalls(run.calls), []);
  assert.match(run.stderr, /DRY-RUN: would run: useradd -m -s \/bin\/bash heads/);
  assert.match(run.stderr, /DRY-RUN: would run: chpasswd \(with \d+ bytes on stdin\)/);
  assert.not.ok(fs.existsSync(onHost('/etc/sudoers.d/phoenix-heads')));
  assertPasswordHidden(run, PASSWORD);
});

test('the operator user: Linux user, password on stdin only, sudo through a checked fragment, Proxmox Administrator', () => {
  const run = runScript(HEADS, [headsConfig]);
  assert.is(run.code, 0, run.stderr);
  assertPasswordHidden(run, PASSWORD);
  assert.equal(changingCalls(run.calls), [
    'useradd -m -s /bin/bash heads',
    'chpasswd',
    'usermod -aG sudo heads',
    'apt-get install -y -q sudo',
    'pveum user add heads@pam',
    'pveum acl modify / --users heads@pam --roles Administrator',
  ]);
  assert.match(passwdLine('heads')!, /^heads:x:1000:1000::\/home\/heads:\/bin\/bash$/);
  assert.is(shadowField('heads'), `$sim-sha256$${crypto.createHash('sha256').update(PASSWORD).digest('hex')}`);
  assert.ok(groupMembers('sudo').includes('heads'));
  const fragment = onHost('/etc/sudoers.d/phoenix-heads');
  assert.is(fs.statSync(fragment).mode & 0o7777, 0o440);
  assert.match(fs.readFileSync(fragment, 'utf8'), /^heads ALL=\(ALL:ALL\) ALL$/m);
  assert.ok(spawnSync('visudo', ['-c', '-f', fragment]).status === 0, 'the installed fragment parses');
  assert.not.match(fs.readFileSync(onHost('/etc/sudoers'), 'utf8'), /heads/, '/etc/sudoers untouched');
  assert.match(userCfg(), /^user:heads@pam:1:0:/m);
  assert.match(userCfg(), /^acl:1:\/:heads@pam:Administrator:$/m);
  assertPasswordHidden(run, PASSWORD);
});

test('a second run of the operator user changes nothing', () => {
  const before = fs.readFileSync(onHost('/etc/shadow'), 'utf8');
  const run = runScript(HEADS, [headsConfig]);
  assert.is(run.code, 0, run.stderr);
  assert.equal(changingCalls(run.calls), []);
  assert.match(run.stderr, /already in place; nothing changed/);
  assert.is(fs.readFileSync(onHost('/etc/shadow'), 'utf8'), before);
});

test('no terminal and no password: the user is created locked, and the run says so', () => {
  const config = writeConfig('nopass.json', (c) => {
    c.operator_user = { username: 'ops' };
  });
  const run = runScript(HEADS, [config]);
  assert.is(run.code, 0, run.stderr);
  assert.is(shadowField('ops'), '!');
  assert.match(run.stderr, /created Linux user ops with its password locked: no password configured/);
  assert.not.ok(changingCalls(run.calls).includes('chpasswd'));
  const again = runScript(HEADS, [config]);
  assert.equal(changingCalls(again.calls), []);
});

test('the admin user: hash with chpasswd -e on stdin, sudo fragment, SSH key; once', () => {
  const run = runScript(ADMIN, [adminConfig]);
  assert.is(run.code, 0, run.stderr);
  assertPasswordHidden(run, ADMIN_HASH);
  assert.equal(changingCalls(run.calls), [
    'useradd -m -s /bin/bash phoenix_admin',
    'chpasswd -e',
    'usermod -aG sudo phoenix_admin',
    'pveum user add phoenix_admin@pam',
    'pveum acl modify / --users phoenix_admin@pam --roles Administrator',
  ]);
  assert.is(shadowField('phoenix_admin'), ADMIN_HASH);
  assert.is(fs.statSync(onHost('/etc/sudoers.d/phoenix-phoenix_admin')).mode & 0o7777, 0o440);
  const keys = onHost('/home/phoenix_admin/.ssh/authorized_keys');
  assert.is(fs.readFileSync(keys, 'utf8'), `${SSH_KEY}\n`);
  assert.is(fs.statSync(keys).mode & 0o777, 0o600);
  assert.is(fs.statSync(path.dirname(keys)).mode & 0o777, 0o700);
  assertPasswordHidden(run, ADMIN_HASH);
  const again = runScript(ADMIN, [adminConfig]);
  assert.is(again.code, 0, again.stderr);
  assert.equal(changingCalls(again.calls), []);
  assert.is(fs.readFileSync(keys, 'utf8'), `${SSH_KEY}\n`);
});

test('a sudoers fragment visudo rejects is never installed; /etc/sudoers without @includedir is refused', async () => {
  const root = tmpDir('phoenix-sudoers-');
  fs.mkdirSync(path.join(root, 'etc/sudoers.d'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/sudoers'), 'root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n');
  fs.writeFileSync(path.join(root, 'etc/sudoers.d/README'), 'keep\n');
  const options = { ...resolveOptions({ ...process.env, PHOENIX_HOST_ROOT: root }) };
  const listing = () => fs.readdirSync(path.join(root, 'etc/sudoers.d')).sort();
  let error: unknown;
  try {
    await ensureSudoersFragment(options, 'broken', ['heads ALL=(ALL:ALL ALL']);
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof Error, 'a fragment with a syntax error must be refused');
  assert.match((error as Error).message, /visudo rejects the sudoers fragment \/etc\/sudoers\.d\/phoenix-broken; nothing was installed/);
  assert.equal(listing(), ['README']);
  assert.is(await ensureSudoersFragment(options, 'good', ['heads ALL=(ALL:ALL) ALL']), 'created');
  assert.equal(listing(), ['README', 'phoenix-good']);

  fs.writeFileSync(path.join(root, 'etc/sudoers'), 'root ALL=(ALL:ALL) ALL\n');
  const sudoers = fs.readFileSync(path.join(root, 'etc/sudoers'));
  await ensureSudoersFragment(options, 'other', ['heads ALL=(ALL:ALL) ALL']).then(
    () => assert.unreachable('refused without @includedir'),
    (err: Error) => assert.match(err.message, /has no '@includedir \/etc\/sudoers\.d' line/),
  );
  assert.ok(fs.readFileSync(path.join(root, 'etc/sudoers')).equals(sudoers), '/etc/sudoers is never edited');
  assert.equal(listing(), ['README', 'phoenix-good']);
});

test('validateAccounts: clear text where a hash belongs, two password sources, one name for both users', () => {
  const issues = validateAccounts(
    { domain_name: 'x.lan', operator_user: { username: 'heads', password_hash: 'hunter22', password_file: '/etc/p' }, users: { username: 'heads', password_hash: 'NOT_SET' } },
    'hv.json',
  );
  assert.equal(issues.map((i) => i.pointer).sort(), ['/operator_user/password_file', '/operator_user/password_hash', '/users/username']);
  assert.equal(validateAccounts({ domain_name: 'x.lan', users: { username: 'phoenix_admin', password_hash: ADMIN_HASH } }, 'hv.json'), []);
});

test.after(() => host.dispose());
test.run();
