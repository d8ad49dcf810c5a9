// The simulated host's own tools (test/simhost/hostsvc.mts): systemctl,
// apt-get, dpkg-query, update-ca-certificates and dnsmasq answer with the
// real tools' exit codes and wording, keep their state, refuse to run
// without a simulator state, record every call and honour injected failures.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost } from './index.mts';
import { ROOT_CA as CERT } from '../helpers/fixture-ca.mts';

const host = createSimHost();
const hostfs = path.join(host.stateDir, 'hostfs');
const onHost = (p: string) => path.join(hostfs, p);


function run(tool: string, args: string[], env: Record<string, string> = {}) {
  return host.run(tool, args, { env });
}

test.before.each(() => {
  host.reset();
  host.clearCalls();
});

test('without PHOENIX_SIM_STATE every host tool refuses with exit 2 and touches nothing', () => {
  const env = { ...host.env };
  delete (env as Record<string, string | undefined>).PHOENIX_SIM_STATE;
  for (const tool of ['systemctl', 'apt-get', 'dpkg-query', 'update-ca-certificates', 'dnsmasq']) {
    const r = spawnSync(path.join(host.binDir, tool), ['--version'], { env, encoding: 'utf8' });
    assert.is(r.status, 2, tool);
    assert.match(r.stderr, /PHOENIX_SIM_STATE is not set/);
  }
  assert.equal(host.calls(), []);
});

test('systemctl: systemd exit codes for is-active, is-enabled, status, start of a missing unit', () => {
  let r = run('systemctl', ['is-active', 'pve-firewall']);
  assert.equal([r.code, r.stdout], [0, 'active\n']);
  r = run('systemctl', ['is-active', 'dnsmasq']);
  assert.equal([r.code, r.stdout], [3, 'inactive\n']);
  r = run('systemctl', ['is-active', '--quiet', 'dnsmasq']);
  assert.equal([r.code, r.stdout], [3, '']);
  r = run('systemctl', ['is-enabled', 'dnsmasq']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /Failed to get unit file state for dnsmasq\.service: No such file or directory/);
  r = run('systemctl', ['status', 'dnsmasq']);
  assert.is(r.code, 4);
  assert.match(r.stderr, /Unit dnsmasq\.service could not be found\./);
  r = run('systemctl', ['restart', 'dnsmasq']);
  assert.is(r.code, 5);
  assert.match(r.stderr, /Failed to restart dnsmasq\.service: Unit dnsmasq\.service not found\./);
  r = run('systemctl', ['frobnicate', 'x']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /Unknown command verb 'frobnicate'/);
  r = run('systemctl', ['stop', 'pve-firewall']);
  assert.is(r.code, 0);
  r = run('systemctl', ['status', 'pve-firewall']);
  assert.is(r.code, 3);
  assert.match(r.stdout, /Active: inactive/);
  assert.equal(host.calls('systemctl').map((c) => [c.argv[0], c.exit]), [
    ['is-active', 0], ['is-active', 3], ['is-active', 3], ['is-enabled', 1], ['status', 4], ['restart', 5], ['frobnicate', 1], ['stop', 0], ['status', 3],
  ]);
});

test('systemctl: unit files are loaded on first use, enable links them, a changed file wants daemon-reload', () => {
  const unitDir = onHost('/etc/systemd/system');
  fs.mkdirSync(unitDir, { recursive: true });
  fs.writeFileSync(path.join(unitDir, 'phoenix-renew.service'), '[Unit]\nDescription=renew\n[Service]\nType=oneshot\nExecStart=/bin/true\n');
  fs.writeFileSync(path.join(unitDir, 'phoenix-renew.timer'), '[Unit]\nDescription=renew\n[Timer]\nOnCalendar=hourly\n[Install]\nWantedBy=timers.target\n');
  assert.is(run('systemctl', ['daemon-reload']).code, 0);
  let r = run('systemctl', ['is-enabled', 'phoenix-renew.timer']);
  assert.equal([r.code, r.stdout], [1, 'disabled\n']);
  r = run('systemctl', ['enable', '--now', 'phoenix-renew.timer']);
  assert.is(r.code, 0);
  assert.match(r.stderr, /Created symlink \/etc\/systemd\/system\/timers\.target\.wants\/phoenix-renew\.timer → \/etc\/systemd\/system\/phoenix-renew\.timer\./);
  assert.is(fs.readlinkSync(onHost('/etc/systemd/system/timers.target.wants/phoenix-renew.timer')), '/etc/systemd/system/phoenix-renew.timer');
  assert.is(run('systemctl', ['is-active', 'phoenix-renew.timer']).code, 0);
  assert.is(run('systemctl', ['is-enabled', 'phoenix-renew.timer']).stdout, 'enabled\n');
  // Enabling again says nothing; a unit without [Install] is static.
  assert.is(run('systemctl', ['enable', 'phoenix-renew.timer']).stderr, '');
  assert.is(run('systemctl', ['is-enabled', 'phoenix-renew.service']).stdout, 'static\n');
  fs.appendFileSync(path.join(unitDir, 'phoenix-renew.timer'), '# changed\n');
  r = run('systemctl', ['restart', 'phoenix-renew.timer']);
  assert.is(r.code, 0);
  assert.match(r.stderr, /changed on disk\. Run 'systemctl daemon-reload' to reload units\./);
  run('systemctl', ['daemon-reload']);
  assert.is(run('systemctl', ['restart', 'phoenix-renew.timer']).stderr, '');
  r = run('systemctl', ['disable', '--now', 'phoenix-renew.timer']);
  assert.is(r.code, 0);
  assert.not.ok(fs.existsSync(onHost('/etc/systemd/system/timers.target.wants/phoenix-renew.timer')));
  assert.is(run('systemctl', ['is-active', 'phoenix-renew.timer']).code, 3);
  // A removed unit file is gone after daemon-reload.
  fs.rmSync(path.join(unitDir, 'phoenix-renew.timer'));
  run('systemctl', ['daemon-reload']);
  assert.is(run('systemctl', ['start', 'phoenix-renew.timer']).code, 5);
});

test('systemctl: reload needs an active unit with ExecReload; reload-or-restart starts a stopped one', () => {
  run('systemctl', ['stop', 'pveproxy']);
  let r = run('systemctl', ['reload', 'pveproxy']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /not active, cannot reload/);
  assert.is(run('systemctl', ['reload-or-restart', 'pveproxy']).code, 0);
  assert.is(run('systemctl', ['is-active', 'pveproxy']).stdout, 'active\n');
  r = run('systemctl', ['reload', 'cron']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /Job type reload is not applicable/);
  assert.is(run('systemctl', ['show', '-p', 'ActiveState', '--value', 'pveproxy']).stdout, 'active\n');
});

test('apt-get and dpkg-query: install only with -y, unknown packages exit 100, dnsmasq brings its running service', () => {
  let r = run('dpkg-query', ['-W', '--showformat=${Status}', 'dnsmasq']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /no packages found matching dnsmasq/);
  r = run('apt-get', ['install', 'dnsmasq']);
  assert.is(r.code, 1);
  assert.match(r.stdout, /Do you want to continue\? \[Y\/n\] Abort\./);
  r = run('apt-get', ['install', '-y', 'no-such-package']);
  assert.is(r.code, 100);
  assert.match(r.stderr, /E: Unable to locate package no-such-package/);
  assert.is(run('apt-get', ['install', '-y', 'dnsmasq']).code, 0);
  r = run('dpkg-query', ['-W', '--showformat=${Status}', 'dnsmasq']);
  assert.equal([r.code, r.stdout], [0, 'install ok installed']);
  assert.is(run('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Abbrev}\\n', 'dnsmasq-base']).stdout, 'dnsmasq-base ii \n');
  assert.is(run('systemctl', ['is-active', 'dnsmasq']).stdout, 'active\n');
  assert.is(run('systemctl', ['is-enabled', 'dnsmasq']).stdout, 'enabled\n');
  assert.match(fs.readFileSync(onHost('/etc/dnsmasq.conf'), 'utf8'), /^# Configuration file for dnsmasq\./);
  r = run('apt-get', ['install', '-y', 'dnsmasq']);
  assert.match(r.stdout, /dnsmasq is already the newest version/);
});

test('update-ca-certificates links local certificates, counts added and removed, rebuilds the bundle', () => {
  const dir = onHost('/usr/local/share/ca-certificates');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'phoenix_root_ca.crt'), CERT);
  let r = run('update-ca-certificates', []);
  assert.is(r.code, 0);
  assert.is(r.stdout, 'Updating certificates in /etc/ssl/certs...\n1 added, 0 removed; done.\nRunning hooks in /etc/ca-certificates/update.d...\ndone.\n');
  assert.is(fs.readlinkSync(onHost('/etc/ssl/certs/phoenix_root_ca.pem')), '/usr/local/share/ca-certificates/phoenix_root_ca.crt');
  assert.is(fs.readFileSync(onHost('/etc/ssl/certs/ca-certificates.crt'), 'utf8'), CERT);
  assert.match(run('update-ca-certificates', []).stdout, /0 added, 0 removed; done\./);
  fs.writeFileSync(path.join(dir, 'broken.crt'), 'not a certificate\n');
  r = run('update-ca-certificates', []);
  assert.match(r.stderr, /WARNING: \/usr\/local\/share\/ca-certificates\/broken\.crt does not contain exactly one certificate or CRL: skipping/);
  fs.rmSync(path.join(dir, 'phoenix_root_ca.crt'));
  assert.match(run('update-ca-certificates', []).stdout, /0 added, 1 removed; done\./);
  assert.not.ok(fs.existsSync(onHost('/etc/ssl/certs/phoenix_root_ca.pem')));
  assert.is(fs.readFileSync(onHost('/etc/ssl/certs/ca-certificates.crt'), 'utf8'), '');
});

test('dnsmasq --test: absent until installed, then checks directives like dnsmasq and stops a bad start', () => {
  const conf = path.join(host.stateDir, 'check.conf');
  fs.writeFileSync(conf, 'port=53\nno-resolv\nlisten-address=127.0.0.1,10.0.0.5\nserver=9.9.9.9\nlocal=/example.org/\nhost-record=a.example.org,10.0.0.7\naddress=/b.example.org/10.0.0.8\n');
  let r = run('dnsmasq', ['--test', '-C', conf]);
  assert.is(r.code, 127);
  run('apt-get', ['install', '-y', 'dnsmasq']);
  r = run('dnsmasq', ['--test', '-C', conf]);
  assert.equal([r.code, r.stderr], [0, 'dnsmasq: syntax check OK.\n']);
  const bad = (text: string) => {
    fs.writeFileSync(conf, text);
    const result = run('dnsmasq', ['--test', `--conf-file=${conf}`]);
    return [result.code, result.stderr.trim()];
  };
  assert.equal(bad('port=53\nfoo-bar=1\n'), [1, `dnsmasq: bad option at line 2 of ${conf}`]);
  assert.equal(bad('domain-needed=yes\n'), [1, `dnsmasq: extraneous parameter at line 1 of ${conf}`]);
  assert.equal(bad('listen-address=1.2.3\n'), [1, `dnsmasq: error at line 1 of ${conf}`]);
  assert.equal(bad('server=abc\n'), [1, `dnsmasq: Name or service not known at line 1 of ${conf}`]);
  assert.equal(bad('port=99999\n'), [1, `dnsmasq: error at line 1 of ${conf}`]);
  r = run('dnsmasq', ['--test', '-C', '/nonexistent.conf']);
  assert.equal([r.code, r.stderr.trim()], [3, 'dnsmasq: cannot read /nonexistent.conf: No such file or directory']);
  // The service reads the host's files (conf-dir included) when it starts.
  fs.mkdirSync(onHost('/etc/dnsmasq.d'), { recursive: true });
  fs.writeFileSync(onHost('/etc/dnsmasq.conf'), 'conf-dir=/etc/dnsmasq.d,*.conf\n');
  fs.writeFileSync(onHost('/etc/dnsmasq.d/broken.conf'), 'no-such-option\n');
  r = run('systemctl', ['restart', 'dnsmasq']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /Job for dnsmasq\.service failed because the control process exited with error code\./);
  assert.is(run('systemctl', ['is-active', 'dnsmasq']).stdout, 'failed\n');
  fs.rmSync(onHost('/etc/dnsmasq.d/broken.conf'));
  assert.is(run('systemctl', ['restart', 'dnsmasq']).code, 0);
});

test('calls are recorded and inject.json failures apply to the host tools', () => {
  host.injectFailure({ tool: 'systemctl', argv: ['restart', 'dnsmasq'], times: 1, exit: 1, stderr: 'Job for dnsmasq.service failed.' });
  let r = run('systemctl', ['restart', 'dnsmasq']);
  assert.equal([r.code, r.stderr], [1, 'Job for dnsmasq.service failed.\n']);
  r = run('systemctl', ['restart', 'dnsmasq']);
  assert.is(r.code, 5); // the rule is spent; the unit does not exist yet
  host.injectFailure({ tool: 'update-ca-certificates', exit: 1, stderr: 'E: boom' });
  assert.is(run('update-ca-certificates', []).code, 1);
  assert.equal(host.calls().map((c) => [c.tool, c.argv.join(' '), c.exit]), [
    ['systemctl', 'restart dnsmasq', 1],
    ['systemctl', 'restart dnsmasq', 5],
    ['update-ca-certificates', '', 1],
  ]);
});

test.after(() => host.dispose());
test.run();
