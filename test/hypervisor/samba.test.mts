// hypervisor_feature_setup_samba on the simulated host (apt-get, smbpasswd,
// pdbedit, systemctl from test/simhost/bin; the real testparm): the password
// only from the manifest's file (root-only) and only on stdin, a clear
// failure without one, the operator's smb.conf kept byte for byte with
// Phoenix's block appended, the result accepted by the real `testparm -s`,
// share options honoured and unknown ones refused, share directories made
// once, smbd and nmbd restarted only on a change, and a second run that
// changes nothing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { setupWorkspace } from '../helpers/setup-workspace.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { parseShareOptions, shareSection, validateSamba } from '../../lib/hypervisor/samba.mts';

const SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', 'hypervisor_feature_setup_samba.mjs');
const PASSWORD = 'Samba-Secret-Pw-0815';
const PASSWORD_FILE = '/etc/phoenix/samba.pass';
const TESTPARM = ['/usr/bin/testparm', '/usr/sbin/testparm'].find((f) => fs.existsSync(f));

const host = createSimHost();
const { etc, logFile, env, onHost, baseConfig: exampleConfig } = setupWorkspace(host, 'phoenix-samba-');
const baseConfig = exampleConfig();
const SMB_CONF = onHost('/etc/samba/smb.conf');

const SHARES = [
  { name: 'shared-prod-data', path: 'quickOS/shared-prod-data', valid_users: ['heads'], options: 'create_mask=0700 comment=PhoenixData' },
  { name: 'iso', path: 'fastData/iso', read_only: true, browsable: false },
];

function writeConfig(name: string, samba: Record<string, unknown>, workgroup = 'PHOENIXNET'): string {
  const config = structuredClone(baseConfig);
  config.samba = samba;
  config.network = { ...config.network, workgroup };
  const file = path.join(etc, name);
  fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}
const goodConfig = writeConfig('samba.json', { user: 'heads', password_file: PASSWORD_FILE, shares: SHARES });

// The operator's own smb.conf (Debian's [global], an extra share, a comment with trailing blanks, no final newline).
const OPERATOR_CONF = '[global]\n   workgroup = WORKGROUP\n   server role = standalone server\n   map to guest = bad user\n\n; operator share   \n[media]\n   path = /srv/media\n   read only = no';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  calls: CallRecord[];
}

function setup(args: string[]): Run {
  host.clearCalls();
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { env, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, calls: host.calls() };
}

function changingCalls(calls: CallRecord[]): string[] {
  return calls
    .filter((c) => c.tool === 'smbpasswd' || (c.tool === 'apt-get' && c.argv[0] === 'install') || (c.tool === 'systemctl' && !/^(is-active|is-enabled|show)$/.test(c.argv[0] ?? '')))
    .map((c) => [c.tool, ...c.argv].join(' '));
}

function writePasswordFile(mode: number): void {
  fs.mkdirSync(path.dirname(onHost(PASSWORD_FILE)), { recursive: true });
  fs.writeFileSync(onHost(PASSWORD_FILE), `${PASSWORD}\n`, { mode });
  fs.chmodSync(onHost(PASSWORD_FILE), mode);
}

const sambaDb = () => JSON.parse(fs.readFileSync(path.join(host.stateDir, 'host-samba.json'), 'utf8')) as { users: Record<string, { password: string }> };
const services = () => JSON.parse(fs.readFileSync(path.join(host.stateDir, 'host-services.json'), 'utf8')) as { units: Record<string, { active: string }> };

function assertPasswordHidden(run: Run): void {
  assert.not.ok(fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8').includes(PASSWORD), 'password in calls.jsonl');
  for (const call of run.calls) assert.not.ok(call.argv.some((a) => a.includes(PASSWORD)), `password in the argv of ${call.tool}`);
  assert.not.ok(`${run.stdout}${run.stderr}`.includes(PASSWORD), 'password in the output');
  if (fs.existsSync(logFile)) assert.not.ok(fs.readFileSync(logFile, 'utf8').includes(PASSWORD), 'password in the log file');
  if (fs.existsSync(path.join(host.stateDir, 'host-samba.json'))) assert.not.ok(fs.readFileSync(path.join(host.stateDir, 'host-samba.json'), 'utf8').includes(PASSWORD));
}

test.before(() => {
  assert.is(host.run('useradd', ['-m', '-s', '/bin/bash', 'heads']).code, 0);
  fs.mkdirSync(path.dirname(SMB_CONF), { recursive: true });
  fs.writeFileSync(SMB_CONF, OPERATOR_CONF);
});

test('no terminal and no password: a clear failure naming where to configure it, nothing changed', () => {
  const config = writeConfig('nopass.json', { user: 'heads', shares: SHARES });
  const run = setup([config]);
  assert.is.not(run.code, 0);
  assert.match(run.stderr, /nopass\.json at \/samba\/password_file: Samba does not know heads yet and no password is configured \(and there is no terminal to ask on\); nothing was changed/);
  assert.equal(changingCalls(run.calls), []);
  assert.is(fs.readFileSync(SMB_CONF, 'utf8'), OPERATOR_CONF);
});

test('a password file of mode 0644 is refused with its JSON path, nothing changed', () => {
  writePasswordFile(0o644);
  const run = setup([goodConfig]);
  assert.is.not(run.code, 0);
  assert.match(run.stderr, /samba\.json at \/samba\/password_file: \/etc\/phoenix\/samba\.pass must be owned by root with mode 0600 or stricter \(it has owner uid 0, mode 0644\)/);
  assert.equal(changingCalls(run.calls), []);
  assert.is(fs.readFileSync(SMB_CONF, 'utf8'), OPERATOR_CONF);
  assert.not.ok(fs.existsSync(onHost('/quickOS/shared-prod-data')));
  assertPasswordHidden(run);
});

test('--dry-run plans and changes nothing', () => {
  writePasswordFile(0o600);
  const run = setup([goodConfig, '--dry-run']);
  assert.is(run.code, 0, run.stderr);
  assert.equal(changingCalls(run.calls), []);
  assert.match(run.stderr, /DRY-RUN: would run: smbpasswd -s -a heads \(with \d+ bytes on stdin\)/);
  assert.is(fs.readFileSync(SMB_CONF, 'utf8'), OPERATOR_CONF);
  assert.not.ok(fs.existsSync(onHost('/quickOS/shared-prod-data')));
  assertPasswordHidden(run);
});

test('an unknown smb.conf parameter in a share\'s options is refused by testparm, smb.conf unchanged', () => {
  if (!TESTPARM) {
    console.log('  skipped: testparm is not installed (Debian package samba-common-bin)');
    return;
  }
  const config = writeConfig('badopt.json', { user: 'heads', password_file: PASSWORD_FILE, shares: [{ ...SHARES[0], options: 'frobnicate=yes' }] });
  const run = setup([config]);
  assert.is.not(run.code, 0);
  assert.match(run.stderr, /badopt\.json at \/samba\/shares\/0\/options: testparm does not know the smb\.conf parameter 'frobnicate'; nothing was changed/);
  assert.is(fs.readFileSync(SMB_CONF, 'utf8'), OPERATOR_CONF);
  assert.not.ok(changingCalls(run.calls).some((c) => c.startsWith('smbpasswd') || c.startsWith('systemctl')));
});

test('the first run: password on stdin only, share dirs, the block at the end, restart, both daemons active', () => {
  const run = setup([goodConfig]);
  assert.is(run.code, 0, run.stderr);
  const calls = changingCalls(run.calls);
  assert.ok(calls.includes('smbpasswd -s -a heads'), calls.join('\n'));
  assert.ok(calls.includes('systemctl restart smbd nmbd'), calls.join('\n'));
  assert.is(sambaDb().users.heads!.password, `$sim-sha256$${crypto.createHash('sha256').update(PASSWORD).digest('hex')}`);
  assertPasswordHidden(run);

  const text = fs.readFileSync(SMB_CONF, 'utf8');
  assert.ok(text.startsWith(`${OPERATOR_CONF}\n# BEGIN phoenix: samba shares\n`), 'the operator\'s bytes first, untouched');
  assert.ok(text.endsWith('# END phoenix: samba shares\n'));
  assert.match(text, /\[shared-prod-data\]\n   path = \/quickOS\/shared-prod-data\n/);
  assert.match(text, /^   create mask = 0700$/m, 'the share option replaces the generated create mask');
  assert.not.match(text.slice(text.indexOf('[shared-prod-data]'), text.indexOf('[iso]')), /create mask = 0770/);
  assert.match(text, /^   comment = PhoenixData$/m);
  assert.match(text, /\[iso\]\n   path = \/fastData\/iso\n   writable = no\n   browsable = no\n/);

  const dir = fs.statSync(onHost('/quickOS/shared-prod-data'));
  assert.is(dir.mode & 0o7777, 0o770);
  assert.is(dir.uid, 1000);
  assert.is(services().units['smbd.service']!.active, 'active');
  assert.is(services().units['nmbd.service']!.active, 'active');
});

test('the installed smb.conf passes the real testparm -s: workgroup from the manifest, options honoured, the operator\'s share kept', () => {
  if (!TESTPARM) {
    console.log('  skipped: testparm is not installed (Debian package samba-common-bin)');
    return;
  }
  const r = spawnSync(TESTPARM, ['-s', SMB_CONF], { encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, 0, r.stderr);
  assert.not.match(r.stderr, /Unknown parameter/);
  assert.match(r.stdout, /^\tworkgroup = PHOENIXNET$/m);
  const share = r.stdout.slice(r.stdout.indexOf('[shared-prod-data]'));
  assert.match(share, /\tcomment = PhoenixData/);
  assert.match(share, /\tcreate mask = 0700/);
  assert.match(share, /\tvalid users = heads/);
  assert.match(r.stdout, /\[media\]\n\tpath = \/srv\/media\n\tread only = No/);
});

test('a second run changes nothing: no smbpasswd, no restart, an existing share dir is not chmodded', () => {
  fs.chmodSync(onHost('/fastData/iso'), 0o755);
  const before = fs.readFileSync(SMB_CONF);
  const run = setup([goodConfig]);
  assert.is(run.code, 0, run.stderr);
  assert.equal(changingCalls(run.calls), []);
  assert.match(run.stderr, /Samba already matches the manifest; nothing changed/);
  assert.match(run.stderr, /\/fastData\/iso exists \(owner uid 1000, mode 755\); its owner and mode are left as they are/);
  assert.is(fs.statSync(onHost('/fastData/iso')).mode & 0o7777, 0o755);
  assert.ok(fs.readFileSync(SMB_CONF).equals(before));
});

test('a stopped smbd is started even when nothing else changed', () => {
  host.run('systemctl', ['stop', 'smbd']);
  const run = setup([goodConfig]);
  assert.is(run.code, 0, run.stderr);
  assert.equal(changingCalls(run.calls), ['systemctl start smbd']);
  assert.is(services().units['smbd.service']!.active, 'active');
});

test('an inline samba.password works but is warned about, and stays out of every output', () => {
  const inline = 'Inline-Samba-Pw-9911';
  const config = writeConfig('inline.json', { user: 'heads', password: inline, shares: SHARES });
  const run = setup([config]);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stderr, /inline\.json at \/samba\/password: the Samba password is in the manifest in clear text; put it in a root-only file \(mode 0600\) named by samba\.password_file/);
  assert.not.ok(`${run.stdout}${run.stderr}`.includes(inline));
  assert.equal(changingCalls(run.calls), [], 'heads is known to Samba already: its password is not set again');
});

test('share options and validateSamba', () => {
  assert.equal(parseShareOptions('browseable=yes writable=yes').options, [{ key: 'browseable', value: 'yes' }, { key: 'writable', value: 'yes' }]);
  const section = shareSection({ name: 's', path: 'p/q', options: 'browseable=no read_only=yes' });
  assert.ok(section.includes('   browseable = no') && !section.includes('   browsable = yes'));
  assert.ok(section.includes('   read only = yes') && !section.some((l) => l.startsWith('   writable')));
  const issues = validateSamba(
    { domain_name: 'x.lan', samba: { password: 'abcd1234', password_file: '/etc/p', shares: [{ name: 'Data', path: 'a/../b', options: 'oops path=/x' }, { name: 'data', path: 'c' }, { name: 'homes', path: 'd' }] } },
    'hv.json',
  );
  assert.equal(issues.map((i) => i.pointer), ['/samba/password', '/samba/shares/0/path', '/samba/shares/0/options', '/samba/shares/0/options', '/samba/shares/1/name', '/samba/shares/2/name']);
  assert.equal(validateSamba({ domain_name: 'x.lan', samba: { password_file: '/etc/p', shares: SHARES } }, 'hv.json'), []);
});

test.after(() => host.dispose());
test.run();
