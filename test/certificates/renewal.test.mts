// certificate-renewal-manager end to end on the simulated host: a real CA
// (the simulator's Step-CA in CT 103, reached through the `step` stand-in),
// real certificates on the host, pushes into a container and a VM, the
// post-renewal commands and the nginx reload, every run as the script itself.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { initCa, writeRecord } from '../simhost/stepca.mts';
import { tmpDir, writeExecutable } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

const SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'managers', 'certificate-renewal-manager.mjs');
const TEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst';
const PASSWORD = 'prov-Secret-9d1e77';

const host = createSimHost();
const work = tmpDir('phoenix-renewal-');
const hostfs = path.join(work, 'hostfs');
const etc = path.join(work, 'etc');
const logFile = path.join(work, 'phoenix.log');
const marker = path.join(work, 'post-runs.txt');
fs.mkdirSync(etc, { recursive: true });

const onHost = (p: string) => path.join(hostfs, p);
const SSL_101 = '/quickOS/lxc-persistent-data/101/ssl';
const ROOT_FILE = '/etc/phoenix/ca/root_ca.crt';
const PASSWORD_FILE = '/etc/phoenix/secrets/step_provisioner_password';

function sim(tool: string, args: string[]): void {
  const r = host.run(tool, args);
  if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')}: ${r.stderr}`);
}

// ---------------------------------------------------------------- the scene

// CT 103 holds the CA; CT 101 (the gateway) mounts its ssl directory; CT 104 has no mount; VM 1001 runs an agent.
const caDir = onHost('/quickOS/lxc-persistent-data/103/step');
fs.mkdirSync(path.join(hostfs, SSL_101), { recursive: true });
fs.mkdirSync(caDir, { recursive: true });
sim('pct', ['create', '103', TEMPLATE, '--hostname', 'step-ca', '--storage', 'quickOS-lxc-disks', '--unprivileged', '1', '--mp0', `/quickOS/lxc-persistent-data/103/step,mp=/root/.step`]);
sim('pct', ['create', '101', TEMPLATE, '--hostname', 'nginx', '--storage', 'quickOS-lxc-disks', '--unprivileged', '1', '--mp0', `${SSL_101},mp=/etc/nginx/ssl`]);
sim('pct', ['create', '104', TEMPLATE, '--hostname', 'app', '--storage', 'quickOS-lxc-disks', '--unprivileged', '1']);
for (const id of ['103', '101', '104']) sim('pct', ['start', id]);
const image = host.run('pvesm', ['path', 'local:iso/noble-server-cloudimg-amd64.img']).stdout.trim();
sim('qm', ['create', '1001', '--name', 'portainer', '--agent', 'enabled=1', '--scsi0', `quickOS-vm-disks:0,import-from=${image}`]);
sim('qm', ['start', '1001']);

const CA_PASSWORD = 'ca-Password-31c0';
const init = initCa(caDir, {
  name: 'Phoenix Test',
  dns: ['ca.internal.example.org'],
  address: ':9000',
  provisioner: 'phoenix-admin',
  password: CA_PASSWORD,
  provisionerPassword: PASSWORD,
  steppath: '/root/.step',
});
fs.writeFileSync(path.join(caDir, 'ca_password.txt'), CA_PASSWORD, { mode: 0o600 });
// As `step ca init` inside the unprivileged CT 103 leaves them: owned by its root.
for (const entry of [caDir, ...fs.readdirSync(caDir, { recursive: true }).map((p) => path.join(caDir, String(p)))]) fs.chownSync(entry, 100000, 100000);
writeRecord(host.stateDir, { guest: '103', steppath: '/root/.step', ca_dir: caDir, provisioners: [{ name: 'phoenix-admin', type: 'JWK' }], dns: ['ca.internal.example.org'], root_fingerprint: init.fingerprint });
fs.mkdirSync(path.dirname(onHost(ROOT_FILE)), { recursive: true });
fs.writeFileSync(onHost(ROOT_FILE), init.rootPem, { mode: 0o644 });
fs.mkdirSync(path.dirname(onHost(PASSWORD_FILE)), { recursive: true, mode: 0o700 });
fs.writeFileSync(onHost(PASSWORD_FILE), `${PASSWORD}\n`, { mode: 0o600 });

// A post-renewal command on the host: a program that notes each run.
const onRenew = writeExecutable(path.join(work, 'bin'), 'on-renew', `#!/bin/sh\necho "$@" >> ${marker}\n`);

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
const hv = readJson(path.join(PROJECT_ROOT, 'etc', 'phoenix_hypervisor_config.json'));
hv.step_ca = { ...hv.step_ca, ctid: '103', ca_url: 'https://ca.internal.example.org:9000', root_ca_file: ROOT_FILE, provisioner_password_file: PASSWORD_FILE, provisioner_name: 'phoenix-admin' };
fs.writeFileSync(path.join(etc, 'phoenix_hypervisor_config.json'), JSON.stringify(hv, null, 2));
for (const file of ['phoenix_lxc_configs.json', 'phoenix_vm_configs.json', 'phoenix_stacks_config.json']) fs.copyFileSync(path.join(PROJECT_ROOT, 'etc', file), path.join(etc, file));

type Entry = Record<string, unknown>;
const NGINX: Entry = { common_name: 'nginx.internal.example.org', sans: ['nginx.internal.example.org', '10.0.0.10'], guest_id: 101, guest_type: 'lxc', cert_path: `${SSL_101}/nginx.crt`, key_path: `${SSL_101}/nginx.key` };
const CLIENT: Entry = { common_name: 'nginx-gateway-client', guest_id: 101, guest_type: 'lxc', cert_type: 'client', cert_path: `${SSL_101}/nginx-gateway-client.crt`, key_path: `${SSL_101}/nginx-gateway-client.key` };
const APP: Entry = { common_name: 'app.internal.example.org', guest_id: 104, guest_type: 'lxc', cert_path: '/quickOS/lxc-persistent-data/104/tls/app.crt', key_path: '/quickOS/lxc-persistent-data/104/tls/app.key', guest_cert_path: '/etc/app/tls/app.crt', guest_key_path: '/etc/app/tls/app.key', include_ca: true };
const PORTAINER: Entry = {
  common_name: 'portainer.internal.example.org', sans: ['portainer.internal.example.org', 'localhost', '127.0.0.1', '10.0.0.21'], guest_id: 1001, guest_type: 'vm',
  cert_path: '/quickOS/vm-persistent-data/1001/portainer/certs/portainer.crt', key_path: '/quickOS/vm-persistent-data/1001/portainer/certs/portainer.key', include_ca: true, owner: 'nobody:nogroup',
  // What a real command would do with the files (docker secret create …) needs files the simulated
  // guest agent does not write (it does not emulate `install`), so this one only names them.
  post_renewal_command: "qm guest exec 1001 -- sh -c 'logger -t phoenix renewed /tmp/cert.pem /tmp/key.pem'",
};
const HOSTONLY: Entry = { common_name: 'backup.internal.example.org', cert_path: '/etc/phoenix/tls/backup.crt', key_path: '/etc/phoenix/tls/backup.key', post_renewal_command: `${onRenew} backup` };
const ALL = [NGINX, CLIENT, APP, PORTAINER, HOSTONLY];

function writeManifest(entries: Entry[], name = 'certificate-manifest.json', mode = 0o600): string {
  const file = path.join(etc, name);
  fs.writeFileSync(file, JSON.stringify(entries, null, 2));
  fs.chmodSync(file, mode);
  return file;
}
writeManifest(ALL);

const baseEnv: Record<string, string> = { ...host.env, PHOENIX_BASE_DIR: work, PHOENIX_HOST_ROOT: hostfs, MAIN_LOG_FILE: logFile, PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'), HOME: work };
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_RECORD', 'PHOENIX_DEBUG', 'STEPPATH']) delete baseEnv[key];
// The guest agent answers at once; the poll of a running command is short.
baseEnv.PHOENIX_POLL_INTERVAL_MS = '50';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  calls: CallRecord[];
}

function renew(args: string[] = [], env: Record<string, string> = {}): Run {
  host.clearCalls();
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { env: { ...baseEnv, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, calls: host.calls() };
}

const line = (c: CallRecord) => [c.tool, ...c.argv].join(' ');
const stepIssues = (run: Run) => run.calls.filter((c) => c.tool === 'step' && c.argv[0] === 'ca' && c.argv[1] === 'certificate').map((c) => c.argv[2]);
const pushes = (run: Run) => run.calls.filter((c) => (c.tool === 'pct' && c.argv[0] === 'push') || (c.tool === 'qm' && c.argv[0] === 'guest' && c.argv[1] === 'exec'));
const reloads = (run: Run) => run.calls.filter((c) => c.tool === 'pct' && c.argv.includes('systemctl') && (c.argv.includes('reload') || c.argv.includes('restart')));
const postRuns = () => (fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').trim().split('\n').filter(Boolean) : []);
const mode = (p: string) => fs.statSync(onHost(p)).mode & 0o777;
const snapshot = (entries: Entry[]) => entries.map((e) => (fs.existsSync(onHost(e.cert_path as string)) ? fs.readFileSync(onHost(e.cert_path as string), 'utf8') : ''));

function leafOf(entry: Entry): X509Certificate {
  return new X509Certificate(fs.readFileSync(onHost(entry.cert_path as string), 'utf8'));
}

// ---------------------------------------------------------------- tests (in order: each builds on the state the last left)

test('--help prints the usage and changes nothing', () => {
  const run = renew(['--help']);
  assert.is(run.code, 0);
  assert.match(run.stdout, /Usage: certificate-renewal-manager\.sh \[--force\] \[--generate-only\] \[--dry-run\]/);
  assert.is(stepIssues(run).length, 0);
});

test('--dry-run on a host without certificates plans every issuance and writes nothing', () => {
  const run = renew(['--dry-run']);
  assert.is(run.code, 0, run.stderr);
  assert.is(stepIssues(run).length, 0, 'no step ca certificate ran');
  assert.ok(/DRY-RUN: would run: step ca certificate nginx\.internal\.example\.org/.test(run.stderr), run.stderr);
  assert.match(run.stderr, /Summary: 5 to renew, 0 valid, 0 failed/);
  for (const entry of ALL) assert.not.ok(fs.existsSync(onHost(entry.cert_path as string)), `${entry.common_name} not written`);
  assert.not.ok(fs.existsSync(onHost('/var/lib/phoenix/certificates/delivered.json')));
  assert.equal(postRuns(), []);
});

test('the first run issues every certificate, delivers them and reloads nginx once', () => {
  const run = renew();
  assert.is(run.code, 0, run.stderr);
  assert.equal(stepIssues(run).sort(), ALL.map((e) => e.common_name as string).sort());
  // Key 0600, certificate 0644; the gateway's files belong to CT 101's root (unprivileged: 100000) and its mount's group 33.
  for (const entry of ALL) {
    assert.is(mode(entry.key_path as string), 0o600, `${entry.common_name} key`);
    assert.is(mode(entry.cert_path as string), 0o644, `${entry.common_name} cert`);
  }
  const st = fs.statSync(onHost(NGINX.key_path as string));
  assert.equal([st.uid, st.gid], [100000, 100033]);
  // The manifest's owner wins (names looked up on the host: NFS with root_squash reads as nobody).
  for (const file of [PORTAINER.key_path, PORTAINER.cert_path]) {
    const owned = fs.statSync(onHost(file as string));
    assert.equal([owned.uid, owned.gid], [65534, 65534]);
  }
  // The bind-mounted certificate is visible in the container without a push.
  assert.is(host.run('pct', ['exec', '101', '--', 'test', '-f', '/etc/nginx/ssl/nginx.crt'], { env: { PHOENIX_HOST_ROOT: hostfs } }).code, 0);
  const ctPushes = run.calls.filter((c) => c.tool === 'pct' && c.argv[0] === 'push').map(line);
  assert.equal(ctPushes, [
    `pct push 104 ${onHost(APP.key_path as string)} /etc/app/tls/app.key --perms 0600`,
    `pct push 104 ${onHost(APP.cert_path as string)} /etc/app/tls/app.crt --perms 0644`,
    `pct push 104 ${onHost(ROOT_FILE)} /etc/app/tls/ca.crt --perms 0644`,
  ]);
  assert.is(fs.statSync(host.guestPath('104', '/etc/app/tls/app.key')).mode & 0o777, 0o600);
  assert.is(fs.readFileSync(host.guestPath('104', '/etc/app/tls/ca.crt'), 'utf8'), init.rootPem);
  // Into the VM the files travel on stdin, into the /tmp hand-over the command names, removed afterwards.
  const vmExec = run.calls.filter((c) => c.tool === 'qm' && c.argv[1] === 'exec').map(line);
  assert.ok(vmExec.some((l) => /--pass-stdin 1 -- install -D -m 0600 -o root -g root \/dev\/stdin \/tmp\/key\.pem$/.test(l)), vmExec.join('\n'));
  assert.ok(vmExec.some((l) => /-- install -D -m 0644 -o root -g root \/dev\/stdin \/tmp\/cert\.pem$/.test(l)));
  assert.ok(vmExec.some((l) => /-- install -D -m 0644 -o root -g root \/dev\/stdin \/tmp\/ca\.pem$/.test(l)));
  assert.ok(vmExec.some((l) => /^qm guest exec 1001 -- sh -c logger -t phoenix renewed/.test(l)), 'the post command ran as an argument vector');
  assert.ok(vmExec.some((l) => / -- rm -f -- \/tmp\/key\.pem \/tmp\/cert\.pem \/tmp\/ca\.pem$/.test(l)));
  // One reload for the two gateway certificates, after nginx accepted its configuration.
  assert.equal(reloads(run).map(line), ['pct exec 101 -- systemctl reload nginx']);
  assert.ok(run.calls.some((c) => line(c) === 'pct exec 101 -- nginx -t -q'));
  assert.equal(postRuns(), ['backup']);
  assert.match(run.stderr, /Summary: 5 renewed, 0 valid, 0 failed \(of 5\)/);
});

test('the certificates are real: chain present, verified by openssl, the SANs and usages asked for', () => {
  const dir = tmpDir('phoenix-verify-');
  for (const entry of [NGINX, CLIENT, PORTAINER]) {
    const bundle = fs.readFileSync(onHost(entry.cert_path as string), 'utf8');
    const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
    assert.is(blocks.length, 2, `${entry.common_name}: leaf and intermediate`);
    fs.writeFileSync(path.join(dir, 'leaf.pem'), blocks[0] as string);
    fs.writeFileSync(path.join(dir, 'chain.pem'), blocks.slice(1).join(''));
    const purpose = entry.cert_type === 'client' ? 'sslclient' : 'sslserver';
    const v = spawnSync('openssl', ['verify', '-purpose', purpose, '-CAfile', onHost(ROOT_FILE), '-untrusted', path.join(dir, 'chain.pem'), path.join(dir, 'leaf.pem')], { encoding: 'utf8' });
    assert.is(v.status, 0, `${entry.common_name}: ${v.stdout}${v.stderr}`);
  }
  assert.is(leafOf(PORTAINER).subjectAltName, 'DNS:portainer.internal.example.org, DNS:localhost, IP Address:127.0.0.1, IP Address:10.0.0.21');
  assert.is(leafOf(CLIENT).subjectAltName, 'DNS:nginx-gateway-client');
  assert.ok(leafOf(CLIENT).keyUsage?.includes('1.3.6.1.5.5.7.3.2'), 'clientAuth');
});

test('the provisioner password never appears in an argument or a log line', () => {
  const calls = fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8');
  const log = fs.readFileSync(logFile, 'utf8');
  assert.not.ok(log.includes(PASSWORD), 'log');
  const everything = readJsonLines(path.join(host.stateDir, 'calls.jsonl'));
  assert.ok(calls.length > 0 && everything.length > 0);
  for (const c of host.calls()) assert.not.ok(c.argv.join(' ').includes(PASSWORD));
  // Nor does any key: a VM gets it on stdin.
  const key = fs.readFileSync(onHost(PORTAINER.key_path as string), 'utf8').split('\n')[1] as string;
  assert.not.ok(log.includes(key));
});

function readJsonLines(file: string): unknown[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
}

test('a second run finds everything valid and in place: no step, no push, no post command, no reload', () => {
  const before = snapshot(ALL);
  const run = renew();
  assert.is(run.code, 0, run.stderr);
  assert.equal(stepIssues(run), []);
  assert.equal(pushes(run).map(line), []);
  assert.equal(reloads(run), []);
  assert.equal(postRuns(), ['backup']);
  assert.equal(snapshot(ALL), before);
  assert.match(run.stderr, /Summary: 0 renewed, 5 valid, 0 failed/);
  assert.match(run.stderr, /Nothing to do: every certificate is valid and in place/);
  // The only calls are reads: the CA container's status.
  assert.ok(run.calls.every((c) => (c.tool === 'pct' && c.argv[0] === 'status')), run.calls.map(line).join('\n'));
});

test('a changed IP SAN renews that certificate only; equal DNS and IP SANs do not', () => {
  writeManifest([{ ...NGINX, sans: ['nginx.internal.example.org', '10.0.0.10', '172.16.100.10'] }, CLIENT, APP, PORTAINER, HOSTONLY]);
  const run = renew();
  assert.is(run.code, 0, run.stderr);
  assert.equal(stepIssues(run), ['nginx.internal.example.org']);
  assert.match(run.stderr, /missing IP:172\.16\.100\.10/);
  assert.equal(reloads(run).map(line), ['pct exec 101 -- systemctl reload nginx']);
  assert.is(leafOf(NGINX).subjectAltName, 'DNS:nginx.internal.example.org, IP Address:10.0.0.10, IP Address:172.16.100.10');
  writeManifest(ALL);
  const back = renew();
  assert.equal(stepIssues(back), ['nginx.internal.example.org']);
  assert.equal(stepIssues(renew()), []);
});

test('a certificate close to its end is renewed; its post command runs because it changed', () => {
  const shortLived = { ...HOSTONLY, not_after: '1m', renew_before: '2m' };
  writeManifest([NGINX, CLIENT, APP, PORTAINER, shortLived]);
  // A new lifetime alone is no reason to renew: the certificate decides. Start it afresh.
  assert.equal(stepIssues(renew()), []);
  fs.rmSync(onHost(HOSTONLY.cert_path as string));
  const first = renew();
  assert.is(first.code, 0, first.stderr);
  assert.equal(stepIssues(first), ['backup.internal.example.org']);
  assert.ok(first.calls.some((c) => c.tool === 'step' && c.argv.join(' ').includes('--not-after 1m')));
  const left = new Date(leafOf(HOSTONLY).validTo).getTime() - Date.now();
  assert.ok(left > 0 && left <= 61_000, `lives about a minute (${left} ms)`);
  const second = renew();
  assert.equal(stepIssues(second), ['backup.internal.example.org']);
  assert.match(second.stderr, /expires in \d+s, within the renewal window of 2m/);
  assert.equal(postRuns(), ['backup', 'backup', 'backup']);
  writeManifest(ALL);
  renew();
});

test('one failing entry fails the run, and every other entry is still processed', () => {
  host.injectFailure({ tool: 'step', argv: ['ca', 'certificate', 'app.internal.example.org'], times: 1, exit: 1, stderr: 'error creating certificate: the CA is unhappy\n' });
  const run = renew(['--force']);
  assert.is(run.code, 1);
  assert.equal(stepIssues(run).sort(), ALL.map((e) => e.common_name as string).sort());
  assert.match(run.stderr, /failed +app\.internal\.example\.org +step ca certificate failed \(exit 1\): error creating certificate: the CA is unhappy/);
  assert.match(run.stderr, /Summary: 4 renewed, 0 valid, 1 failed \(of 5\)/);
  assert.is(pushes(run).filter((c) => c.tool === 'pct').length, 0, 'the failed entry is not pushed');
  assert.ok(pushes(run).some((c) => c.tool === 'qm'), 'the VM entry is delivered');
  // The old files of the failed entry are kept; the next run has nothing to renew there.
  assert.is(mode(APP.key_path as string), 0o600);
  const next = renew();
  assert.is(next.code, 0, next.stderr);
});

test('a failing post-renewal command fails its entry and is retried by the next run', () => {
  const failing = { ...HOSTONLY, post_renewal_command: '/bin/false' };
  writeManifest([NGINX, CLIENT, APP, PORTAINER, failing]);
  const run = renew();
  assert.is(run.code, 1);
  assert.match(run.stderr, /backup\.internal\.example\.org +delivery to the host failed: post-renewal command failed \(exit 1\)/);
  assert.equal(stepIssues(run), [], 'the certificate itself was valid');
  writeManifest(ALL);
  const retry = renew();
  assert.is(retry.code, 0, retry.stderr);
  assert.equal(postRuns().at(-1), 'backup');
});

test('--generate-only issues and delivers nothing; the next plain run delivers without issuing', () => {
  const posts = postRuns().length;
  const run = renew(['--force', '--generate-only']);
  assert.is(run.code, 0, run.stderr);
  assert.is(stepIssues(run).length, 5);
  assert.equal(pushes(run), []);
  assert.equal(reloads(run), []);
  assert.is(postRuns().length, posts);
  const later = renew();
  assert.is(later.code, 0, later.stderr);
  assert.equal(stepIssues(later), []);
  assert.is(later.calls.filter((c) => c.tool === 'pct' && c.argv[0] === 'push').length, 3);
  assert.equal(reloads(later).map(line), ['pct exec 101 -- systemctl reload nginx']);
  assert.is(postRuns().length, posts + 1);
});

test('--force --dry-run prints the plan and changes nothing', () => {
  const before = snapshot(ALL);
  const state = fs.readFileSync(onHost('/var/lib/phoenix/certificates/delivered.json'), 'utf8');
  const run = renew(['--force', '--dry-run']);
  assert.is(run.code, 0, run.stderr);
  assert.equal(stepIssues(run), []);
  assert.equal(pushes(run).filter((c) => c.tool === 'pct'), []);
  assert.equal(snapshot(ALL), before);
  assert.is(fs.readFileSync(onHost('/var/lib/phoenix/certificates/delivered.json'), 'utf8'), state);
  assert.match(run.stderr, /DRY-RUN: would run: pct push 104/);
});

test('a stopped or missing CA container skips the run with a warning and exit 0', () => {
  sim('pct', ['stop', '103']);
  const stopped = renew(['--force']);
  assert.is(stopped.code, 0);
  assert.match(stopped.stderr, /Step CA container \(103\) is not running\. Skipping certificate renewal\./);
  assert.equal(stepIssues(stopped), []);
  sim('pct', ['start', '103']);
  const hv2 = { ...hv, step_ca: { ...hv.step_ca, ctid: '199' } };
  const other = path.join(work, 'hv-199.json');
  fs.writeFileSync(other, JSON.stringify(hv2));
  const absent = renew([], { HYPERVISOR_CONFIG_FILE: other });
  assert.is(absent.code, 0);
  assert.match(absent.stderr, /Step CA container \(199\) does not exist/);
});

test('a stopped guest leaves its delivery pending without failing; it is delivered once it runs', () => {
  sim('pct', ['stop', '104']);
  const run = renew(['--force']);
  assert.is(run.code, 0, run.stderr);
  assert.ok(/app\.internal\.example\.org.*pending: CT 104 is not running/.test(run.stderr), run.stderr);
  sim('pct', ['start', '104']);
  const later = renew();
  assert.equal(stepIssues(later), []);
  assert.is(later.calls.filter((c) => c.tool === 'pct' && c.argv[0] === 'push' && c.argv[1] === '104').length, 3, later.stderr);
});

test('a post command that needs a shell, or a manifest others can write, stops the run before anything changes', () => {
  writeManifest([{ ...HOSTONLY, post_renewal_command: 'systemctl reload nginx && echo done' }]);
  const bad = renew(['--force']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /at \/0\/post_renewal_command: .*outside quotes; post_renewal_command runs without a shell/);
  assert.equal(stepIssues(bad), []);
  writeManifest(ALL, 'certificate-manifest.json', 0o666);
  const open = renew(['--force']);
  assert.is(open.code, 1);
  assert.match(open.stderr, /writable by its group/);
  assert.equal(stepIssues(open), []);
  writeManifest(ALL);
});

test('no root CA copy on the host: it is fetched from the CA container first', () => {
  fs.rmSync(onHost(ROOT_FILE));
  const run = renew();
  assert.is(run.code, 0, run.stderr);
  assert.ok(run.calls.some((c) => line(c).startsWith('pct pull 103 /root/.step/certs/root_ca.crt ')), run.calls.map(line).join('\n'));
  assert.is(fs.readFileSync(onHost(ROOT_FILE), 'utf8'), init.rootPem);
  assert.equal(stepIssues(run), []);
});

test('after the CA is rebuilt every certificate is renewed: none chains to the new root', () => {
  const newDir = onHost('/quickOS/lxc-persistent-data/103/step-new');
  const rebuilt = initCa(newDir, { name: 'Phoenix Rebuilt', dns: ['ca.internal.example.org'], address: ':9000', provisioner: 'phoenix-admin', password: CA_PASSWORD, provisionerPassword: PASSWORD, steppath: '/root/.step' });
  fs.writeFileSync(path.join(newDir, 'ca_password.txt'), CA_PASSWORD, { mode: 0o600 });
  writeRecord(host.stateDir, { guest: '103', steppath: '/root/.step', ca_dir: newDir, provisioners: [{ name: 'phoenix-admin', type: 'JWK' }], dns: ['ca.internal.example.org'], root_fingerprint: rebuilt.fingerprint });
  fs.writeFileSync(onHost(ROOT_FILE), rebuilt.rootPem, { mode: 0o644 });
  const run = renew();
  assert.is(run.code, 0, run.stderr);
  assert.equal(stepIssues(run).sort(), ALL.map((e) => e.common_name as string).sort());
  assert.match(run.stderr, /does not chain to the current root CA/);
  // The copies of the root in the guests follow too (include_ca).
  assert.is(fs.readFileSync(host.guestPath('104', '/etc/app/tls/ca.crt'), 'utf8'), rebuilt.rootPem);
  assert.equal(stepIssues(renew()), []);
});

test('a CA that does not answer fails every due entry at once, without a step call per entry', () => {
  host.injectFailure({ tool: 'step', argv: ['ca', 'health'], times: 1, exit: 1, stderr: 'client GET https://ca.internal.example.org:9000/health failed: connect: connection refused\n' });
  const run = renew(['--force']);
  assert.is(run.code, 1);
  assert.equal(stepIssues(run), []);
  assert.match(run.stderr, /Summary: 0 renewed, 0 valid, 5 failed/);
  assert.match(run.stderr, /the CA at https:\/\/ca\.internal\.example\.org:9000 does not answer: .*connection refused \(renewal was due: --force\)/);
});

test('another run holding the host lock makes this one wait, then give up with 75', () => {
  const lock = path.join(work, 'phoenix.lock');
  fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, token: 'other', script: 'lxc-manager.sh', since: new Date().toISOString() }));
  try {
    const run = renew();
    assert.is(run.code, 75);
    assert.match(run.stderr, /another Phoenix run holds/);
  } finally {
    fs.rmSync(lock, { force: true });
  }
});

test('unknown arguments are ignored with a warning, as the bash did', () => {
  const run = renew(['--bogus']);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stderr, /ignoring unknown argument '--bogus'/);
});

test.run();
