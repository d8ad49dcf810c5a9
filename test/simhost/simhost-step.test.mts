// The simulated Smallstep `step`: inside guests (test/simhost/programs/step.mts)
// and on the host (test/simhost/bin/step). The CA it makes is real: every
// certificate is checked with node:crypto's X509Certificate and `openssl
// verify`, keys are matched to certificates, and a wrong password is
// refused because the provisioner key cannot be decrypted with it.

import { spawnSync } from 'node:child_process';
import crypto, { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { test } from 'uvu';
import * as assert from 'uvu/assert';

import { BIN_DIR, createSimHost, DEFAULT_TEMPLATE } from './index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { openWithPassword, parseDuration, sanKind, sealWithPassword } from './stepca.mts';

const TEMPLATE = `fastData-shared-iso:vztmpl/${DEFAULT_TEMPLATE}`;
const CA_PASSWORD = 'Ca-Password-Only-In-103';
const PROVISIONER_PASSWORD = 'Provisioner-Password-On-The-Host';
const CA_URL = 'https://ca.internal.example.org:9000';
const STEPPATH = '/root/.step';

const host = createSimHost();
const work = tmpDir('phoenix-step-');
const hostRoot = path.join(host.stateDir, 'hostfs');
const caHostDir = path.join(hostRoot, 'quickOS', 'lxc-persistent-data', '103', 'step');

function ok(tool: string, args: string[], env: Record<string, string> = {}): string {
  const r = host.run(tool, args, { env });
  assert.is(r.code, 0, `${tool} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

function inGuest(ctid: string, argv: string[]): { code: number; stdout: string; stderr: string } {
  return host.run('pct', ['exec', ctid, '--', ...argv]);
}

function makeCt(ctid: string, mount?: [string, string]): void {
  const args = ['create', ctid, TEMPLATE, '--hostname', `ct${ctid}`, '--rootfs', 'quickOS-lxc-disks:8', '--unprivileged', '1'];
  if (mount) {
    fs.mkdirSync(path.join(hostRoot, mount[0]), { recursive: true });
    // The unprivileged CT's root is host uid 100000: the directory must be its own to be written from inside.
    if (process.getuid?.() === 0) fs.chownSync(path.join(hostRoot, mount[0]), 100000, 100000);
    args.push('--mp0', `${mount[0]},mp=${mount[1]}`);
  }
  ok('pct', args);
  ok('pct', ['start', ctid]);
}

function hostFile(name: string, content: string, mode = 0o600): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  return file;
}

function openssl(args: string[]): { code: number; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

const pems = (text: string) => [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)].map((m) => m[0]);
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();

// ---------------------------------------------------------------- the CA in CT 103

makeCt('103', ['/quickOS/lxc-persistent-data/103/step', STEPPATH]);
makeCt('102');
fs.writeFileSync(path.join(work, 'ca-pw'), `${CA_PASSWORD}\n`, { mode: 0o600 });
fs.writeFileSync(path.join(work, 'prov-pw'), `${PROVISIONER_PASSWORD}\n`, { mode: 0o600 });
ok('pct', ['push', '103', path.join(work, 'ca-pw'), `${STEPPATH}/ca_password.txt`, '--perms', '0600']);
ok('pct', ['push', '103', path.join(work, 'prov-pw'), '/root/prov-pw', '--perms', '0600']);

const INIT = [
  'step', 'ca', 'init', '--name', 'Example Internal', '--dns', 'ca.internal.example.org', '--dns', '172.16.100.11', '--dns', '127.0.0.1',
  '--address', ':9000', '--provisioner', 'phoenix-admin', '--deployment-type', 'standalone',
  '--password-file', `${STEPPATH}/ca_password.txt`, '--provisioner-password-file', '/root/prov-pw', '--with-ca-url', CA_URL,
];
const init = inGuest('103', INIT);
const rootPem = fs.readFileSync(path.join(caHostDir, 'certs', 'root_ca.crt'), 'utf8');
const intermediatePem = fs.readFileSync(path.join(caHostDir, 'certs', 'intermediate_ca.crt'), 'utf8');
const rootOnHost = hostFile('root_ca.crt', rootPem, 0o644);
const provisionerFile = path.join(work, 'prov-pw');

test('step ca init in a guest: the layout of step, real root and intermediate, encrypted keys, the record', () => {
  assert.is(init.code, 0, init.stderr);
  assert.match(init.stdout, `✔ Root fingerprint: ${fingerprint(rootPem)}`);
  for (const rel of ['certs/root_ca.crt', 'certs/intermediate_ca.crt', 'secrets/root_ca_key', 'secrets/intermediate_ca_key', 'config/ca.json', 'config/defaults.json']) {
    assert.ok(fs.existsSync(path.join(caHostDir, rel)), `${rel} written through the bind mount`);
  }
  for (const rel of ['secrets/root_ca_key', 'secrets/intermediate_ca_key']) assert.is(fs.statSync(path.join(caHostDir, rel)).mode & 0o777, 0o600, rel);
  assert.is(fs.statSync(path.join(caHostDir, 'secrets')).mode & 0o777, 0o700);

  const root = new X509Certificate(rootPem);
  const intermediate = new X509Certificate(intermediatePem);
  assert.ok(root.ca && intermediate.ca);
  assert.is(root.subject, 'O=Example Internal\nCN=Example Internal Root CA');
  assert.is(intermediate.subject, 'O=Example Internal\nCN=Example Internal Intermediate CA');
  assert.ok(root.verify(root.publicKey), 'the root is self-signed');
  assert.ok(intermediate.checkIssued(root) && intermediate.verify(root.publicKey), 'the intermediate is signed by the root');
  assert.match(openssl(['x509', '-in', path.join(caHostDir, 'certs', 'intermediate_ca.crt'), '-noout', '-ext', 'basicConstraints']).out, /CA:TRUE, pathlen:0/);
  assert.is(openssl(['verify', '-CAfile', rootOnHost, path.join(caHostDir, 'certs', 'intermediate_ca.crt')]).code, 0);

  const key = fs.readFileSync(path.join(caHostDir, 'secrets', 'intermediate_ca_key'), 'utf8');
  assert.match(key, /Proc-Type: 4,ENCRYPTED/);
  assert.throws(() => crypto.createPrivateKey({ key, passphrase: 'wrong' }));
  const unlocked = crypto.createPrivateKey({ key, passphrase: CA_PASSWORD });
  assert.is(crypto.createPublicKey(unlocked).export({ format: 'jwk' }).x, intermediate.publicKey.export({ format: 'jwk' }).x, 'the key belongs to the intermediate');

  const caJson = JSON.parse(fs.readFileSync(path.join(caHostDir, 'config', 'ca.json'), 'utf8'));
  assert.equal(caJson.dnsNames, ['ca.internal.example.org', '172.16.100.11', '127.0.0.1']);
  assert.is(caJson.address, ':9000');
  assert.is(caJson.authority.provisioners.length, 1);
  assert.is(caJson.authority.provisioners[0].type, 'JWK');
  assert.is(caJson.authority.provisioners[0].name, 'phoenix-admin');
  assert.not.ok(JSON.stringify(caJson).includes(PROVISIONER_PASSWORD));
  assert.ok(openWithPassword(caJson.authority.provisioners[0].encryptedKey, PROVISIONER_PASSWORD), 'the provisioner key opens with its password');
  const defaults = JSON.parse(fs.readFileSync(path.join(caHostDir, 'config', 'defaults.json'), 'utf8'));
  assert.is(defaults['ca-url'], CA_URL);
  assert.is(defaults.fingerprint, fingerprint(rootPem));

  const record = JSON.parse(fs.readFileSync(path.join(host.stateDir, 'stepca.json'), 'utf8'));
  assert.equal(record, {
    guest: '103',
    steppath: STEPPATH,
    ca_dir: caHostDir,
    provisioners: [{ name: 'phoenix-admin', type: 'JWK', password_sha256: crypto.createHash('sha256').update(PROVISIONER_PASSWORD).digest('hex') }],
    dns: ['ca.internal.example.org', '172.16.100.11', '127.0.0.1'],
    root_fingerprint: fingerprint(rootPem),
  });
});

test('step ca init refuses an initialised STEPPATH and leaves it alone', () => {
  const before = fs.readFileSync(path.join(caHostDir, 'config', 'ca.json'), 'utf8');
  const again = inGuest('103', INIT);
  assert.is(again.code, 1);
  assert.match(again.stderr, '/root/.step/config/ca.json: file already exists');
  assert.is(fs.readFileSync(path.join(caHostDir, 'config', 'ca.json'), 'utf8'), before);
  assert.is(fs.readFileSync(path.join(caHostDir, 'certs', 'root_ca.crt'), 'utf8'), rootPem);
});

test('step certificate fingerprint: SHA-256 of the DER, in the guest and on the host', () => {
  const expected = `${fingerprint(rootPem)}\n`;
  assert.is(inGuest('103', ['step', 'certificate', 'fingerprint', `${STEPPATH}/certs/root_ca.crt`]).stdout, expected);
  assert.is(ok('step', ['certificate', 'fingerprint', rootOnHost]), expected);
  const missing = host.run('step', ['certificate', 'fingerprint', path.join(work, 'nope.crt')]);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, 'no such file or directory');
});

test('step ca health: ok while the CA guest runs, connection refused when it is stopped or the root is foreign', () => {
  assert.is(inGuest('103', ['step', 'ca', 'health', '--ca-url', CA_URL, '--root', `${STEPPATH}/certs/root_ca.crt`]).stdout, 'ok\n');
  assert.is(ok('step', ['ca', 'health', '--ca-url', CA_URL, '--root', rootOnHost]), 'ok\n');
  const foreign = host.run('step', ['ca', 'health', '--ca-url', CA_URL, '--root', path.join(caHostDir, 'certs', 'intermediate_ca.crt')]);
  assert.is(foreign.code, 1);
  assert.match(foreign.stderr, 'certificate signed by unknown authority');
  const noUrl = host.run('step', ['ca', 'health'], { env: { STEPPATH: path.join(work, 'empty-steppath') } });
  assert.is(noUrl.code, 1);
  assert.match(noUrl.stderr, "requires the '--ca-url' flag");
  ok('pct', ['stop', '103']);
  try {
    const down = host.run('step', ['ca', 'health', '--ca-url', CA_URL, '--root', rootOnHost]);
    assert.is(down.code, 1);
    assert.match(down.stderr, 'connection refused');
  } finally {
    ok('pct', ['start', '103']);
  }
});

test('step ca provisioner list/add: JSON from ca.json, ACME added once, the record follows', () => {
  const listArgs = ['step', 'ca', 'provisioner', 'list', '--ca-url', CA_URL, '--root', `${STEPPATH}/certs/root_ca.crt`];
  const before = JSON.parse(inGuest('103', listArgs).stdout);
  assert.equal(before.map((p: { type: string; name: string }) => `${p.type}:${p.name}`), ['JWK:phoenix-admin']);
  const add = ['env', `STEPPATH=${STEPPATH}`, 'step', 'ca', 'provisioner', 'add', 'acme', '--type', 'ACME', '--challenge', 'http-01', '--challenge', 'tls-alpn-01', '--ca-config', `${STEPPATH}/config/ca.json`];
  const added = inGuest('103', add);
  assert.is(added.code, 0, added.stderr);
  const after = JSON.parse(inGuest('103', listArgs).stdout);
  assert.equal(after.map((p: { type: string; name: string }) => `${p.type}:${p.name}`), ['JWK:phoenix-admin', 'ACME:acme']);
  assert.equal(after[1].challenges, ['http-01', 'tls-alpn-01']);
  const twice = inGuest('103', add);
  assert.is(twice.code, 1);
  assert.match(twice.stderr, 'provisioner with name acme already exists');
  const record = JSON.parse(fs.readFileSync(path.join(host.stateDir, 'stepca.json'), 'utf8'));
  assert.equal(record.provisioners.map((p: { name: string }) => p.name), ['phoenix-admin', 'acme']);
  assert.ok(record.provisioners[0].password_sha256, 'the JWK password digest is kept');
});

test('step ca bootstrap in another guest: fingerprint checked, files written, --force to overwrite, env STEPPATH honoured', () => {
  const bad = inGuest('102', ['step', 'ca', 'bootstrap', '--ca-url', 'https://172.16.100.11:9000', '--fingerprint', '00'.repeat(32)]);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, 'does not match');
  assert.not.ok(fs.existsSync(host.guestPath('102', '/root/.step/certs/root_ca.crt')));
  const args = ['step', 'ca', 'bootstrap', '--ca-url', 'https://172.16.100.11:9000', '--fingerprint', fingerprint(rootPem)];
  assert.is(inGuest('102', args).code, 0);
  assert.is(fs.readFileSync(host.guestPath('102', '/root/.step/certs/root_ca.crt'), 'utf8'), rootPem);
  assert.equal(JSON.parse(fs.readFileSync(host.guestPath('102', '/root/.step/config/defaults.json'), 'utf8')), {
    'ca-url': 'https://172.16.100.11:9000',
    fingerprint: fingerprint(rootPem),
    root: '/root/.step/certs/root_ca.crt',
  });
  const again = inGuest('102', args);
  assert.is(again.code, 1, 'an existing bootstrap is not overwritten without --force');
  assert.is(inGuest('102', [...args, '--force']).code, 0);
  // The bootstrapped defaults are enough for a later health check.
  assert.is(inGuest('102', ['step', 'ca', 'health']).stdout, 'ok\n');
  assert.is(inGuest('102', ['env', 'STEPPATH=/etc/step', 'step', 'ca', 'bootstrap', '--ca-url', CA_URL, '--fingerprint', fingerprint(rootPem), '--install']).code, 0);
  assert.ok(fs.existsSync(host.guestPath('102', '/etc/step/config/defaults.json')));
  assert.ok(fs.existsSync(host.guestPath('102', '/usr/local/share/ca-certificates/Example_Internal_Root_CA.crt')), '--install puts the root where update-ca-certificates reads');
});

function issue(name: string, extra: string[] = [], password = provisionerFile): { code: number; stderr: string; crt: string; key: string } {
  const crt = path.join(work, `${name}.crt`);
  const key = path.join(work, `${name}.key`);
  const r = host.run('step', ['ca', 'certificate', name, crt, key, '--provisioner', 'phoenix-admin', '--provisioner-password-file', password, '--ca-url', CA_URL, '--root', rootOnHost, ...extra]);
  return { code: r.code, stderr: r.stderr, crt, key };
}

test('step ca certificate on the host: a real leaf with DNS and IP SANs, the intermediate after it, key 0600', () => {
  const started = Date.now();
  const r = issue('svc.internal.example.org', ['--san', 'svc.internal.example.org', '--san', '10.0.0.5', '--not-after', '90m']);
  assert.is(r.code, 0, r.stderr);
  assert.is(fs.statSync(r.key).mode & 0o777, 0o600);
  const bundle = fs.readFileSync(r.crt, 'utf8');
  const [leafPem, chainPem, ...more] = pems(bundle);
  assert.equal(more, []);
  assert.is(chainPem, intermediatePem, 'the intermediate follows the leaf');
  const leaf = new X509Certificate(leafPem!);
  assert.is(leaf.subject, 'CN=svc.internal.example.org');
  assert.is(leaf.subjectAltName, 'DNS:svc.internal.example.org, IP Address:10.0.0.5');
  assert.not.ok(leaf.ca);
  assert.equal(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth and clientAuth, as step-ca leaves have');
  assert.ok(leaf.checkIssued(new X509Certificate(intermediatePem)));
  assert.ok(leaf.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(r.key))), 'the key matches the certificate');
  const notAfter = Date.parse(leaf.validTo);
  assert.ok(Math.abs(notAfter - (started + 90 * 60_000)) < 120_000, `--not-after 90m honoured (${leaf.validTo})`);
  assert.ok(Date.parse(leaf.validFrom) <= started, 'valid from now (backdated)');
  const verify = openssl(['verify', '-CAfile', rootOnHost, '-untrusted', r.crt, r.crt]);
  assert.is(verify.code, 0, verify.out);
});

test('step ca certificate: the subject is the only SAN by default, RFC 3339 --not-after, IPv6 as IP', () => {
  const until = new Date(Date.now() + 6 * 3600_000);
  until.setUTCMilliseconds(0);
  const r = issue('plain.internal.example.org', ['--not-after', until.toISOString().replace('.000Z', 'Z')]);
  assert.is(r.code, 0, r.stderr);
  const leaf = new X509Certificate(pems(fs.readFileSync(r.crt, 'utf8'))[0]!);
  assert.is(leaf.subjectAltName, 'DNS:plain.internal.example.org');
  assert.is(Date.parse(leaf.validTo), until.getTime());
  const ip = issue('10.0.0.9', ['--san', '10.0.0.9', '--san', 'fd00::9']);
  assert.is(ip.code, 0, ip.stderr);
  assert.is(new X509Certificate(pems(fs.readFileSync(ip.crt, 'utf8'))[0]!).subjectAltName, 'IP Address:10.0.0.9, IP Address:FD00:0:0:0:0:0:0:9');
});

test('step ca certificate refuses: a wrong password, an unknown provisioner, existing files without --force, more than 24h', () => {
  const wrong = issue('wrong.example.org', [], hostFile('wrong-pw', 'not-the-password\n'));
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, 'invalid password');
  assert.not.ok(fs.existsSync(wrong.crt) || fs.existsSync(wrong.key), 'nothing written');
  assert.not.ok(wrong.stderr.includes('not-the-password'));

  const crt = path.join(work, 'x.crt');
  const key = path.join(work, 'x.key');
  const unknown = host.run('step', ['ca', 'certificate', 'x', crt, key, '--provisioner', 'nobody', '--provisioner-password-file', provisionerFile, '--ca-url', CA_URL, '--root', rootOnHost]);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, 'provisioner not found');

  const first = issue('dup.example.org');
  assert.is(first.code, 0, first.stderr);
  const before = fs.readFileSync(first.crt, 'utf8');
  const dup = issue('dup.example.org');
  assert.is(dup.code, 1);
  assert.match(dup.stderr, '--force');
  assert.is(fs.readFileSync(first.crt, 'utf8'), before);
  const forced = issue('dup.example.org', ['--force']);
  assert.is(forced.code, 0, forced.stderr);
  assert.is.not(fs.readFileSync(first.crt, 'utf8'), before);

  const long = issue('long.example.org', ['--not-after', '48h']);
  assert.is(long.code, 1);
  assert.match(long.stderr, 'authorized maximum certificate duration of 24h0m0s');
  const bad = issue('bad.example.org', ['--not-after', 'tomorrow']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, 'not a valid time or duration');
});

test('step in a guest can issue too, with guest paths; a stopped CA refuses', () => {
  ok('pct', ['push', '102', provisionerFile, '/root/prov-pw', '--perms', '0600']);
  const r = inGuest('102', ['step', 'ca', 'certificate', 'traefik.internal.example.org', '/root/t.crt', '/root/t.key', '--provisioner', 'phoenix-admin', '--provisioner-password-file', '/root/prov-pw', '--force']);
  assert.is(r.code, 0, r.stderr);
  assert.is(fs.statSync(host.guestPath('102', '/root/t.key')).mode & 0o777, 0o600);
  assert.is(new X509Certificate(pems(fs.readFileSync(host.guestPath('102', '/root/t.crt'), 'utf8'))[0]!).subject, 'CN=traefik.internal.example.org');
  ok('pct', ['stop', '103']);
  try {
    const down = inGuest('102', ['step', 'ca', 'certificate', 'x', '/root/x.crt', '/root/x.key', '--provisioner-password-file', '/root/prov-pw']);
    assert.is(down.code, 1);
    assert.match(down.stderr, 'connection refused');
  } finally {
    ok('pct', ['start', '103']);
  }
});

test('host step: every call is in calls.jsonl without a password; inject.json failures apply by argv prefix', () => {
  host.clearCalls();
  issue('rec.example.org', ['--force']);
  host.injectFailure({ tool: 'step', argv: ['ca', 'health'], times: 1, exit: 1, stderr: 'injected: the CA is down' });
  const failed = host.run('step', ['ca', 'health', '--ca-url', CA_URL, '--root', rootOnHost]);
  assert.is(failed.code, 1);
  assert.is(failed.stderr, 'injected: the CA is down\n');
  assert.is(host.run('step', ['ca', 'health', '--ca-url', CA_URL, '--root', rootOnHost]).stdout, 'ok\n', 'times: 1 is spent');
  const calls = host.calls('step');
  assert.equal(calls.map((c) => `${c.argv.slice(0, 2).join(' ')} ${c.exit}`), ['ca certificate 0', 'ca health 1', 'ca health 0']);
  const log = fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8');
  for (const secret of [PROVISIONER_PASSWORD, CA_PASSWORD]) assert.not.ok(log.includes(secret), 'no password in calls.jsonl');
});

test('host step without the simulator: PHOENIX_STEP_CA_DIR names the CA; STEPPATH holds the host bootstrap', () => {
  const caDir = path.join(work, 'standalone-ca');
  const env: Record<string, string> = { ...process.env as Record<string, string>, PATH: `${BIN_DIR}:${process.env.PATH}`, STEPPATH: caDir };
  delete env.PHOENIX_SIM_STATE;
  const step = (args: string[], extra: Record<string, string> = {}) => spawnSync(path.join(BIN_DIR, 'step'), args, { env: { ...env, ...extra }, encoding: 'utf8' });
  const pw = hostFile('standalone-pw', 'standalone\n');
  const made = step(['ca', 'init', '--name', 'Unit', '--dns', 'localhost', '--address', ':9000', '--provisioner', 'unit', '--password-file', pw]);
  assert.is(made.status, 0, made.stderr);
  fs.copyFileSync(pw, path.join(caDir, 'ca_password.txt'));
  const client = path.join(work, 'client-steppath');
  const fp = step(['certificate', 'fingerprint', path.join(caDir, 'certs', 'root_ca.crt')]).stdout.trim();
  const boot = step(['ca', 'bootstrap', '--ca-url', 'https://localhost:9000', '--fingerprint', fp], { STEPPATH: client, PHOENIX_STEP_CA_DIR: caDir });
  assert.is(boot.status, 0, boot.stderr);
  const crt = path.join(work, 'unit.crt');
  // The provisioner password defaults to the CA password when init is given none, as with step.
  const r = step(['ca', 'certificate', 'unit.local', crt, path.join(work, 'unit.key'), '--provisioner-password-file', pw], { STEPPATH: client, PHOENIX_STEP_CA_DIR: caDir });
  assert.is(r.status, 0, r.stderr);
  assert.is(openssl(['verify', '-CAfile', path.join(client, 'certs', 'root_ca.crt'), '-untrusted', crt, crt]).code, 0);
  assert.not.ok(fs.existsSync(path.join(host.stateDir, 'standalone')), 'nothing recorded anywhere');
});

test('unknown step commands fail loudly instead of pretending', () => {
  const r = host.run('step', ['ca', 'renew', 'a.crt', 'a.key']);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'not emulated');
  assert.is(ok('step', ['version']).startsWith('Smallstep CLI/'), true);
});

test('pieces: Go durations, SAN kinds, the PBES2 JWE', () => {
  assert.is(parseDuration('24h'), 86_400_000);
  assert.is(parseDuration('1h30m'), 5_400_000);
  assert.is(parseDuration('-5m'), -300_000);
  assert.is(parseDuration('tomorrow'), undefined);
  assert.equal(['a.example.org', '10.0.0.1', 'fd00::1', 'ops@example.org', 'spiffe://x/y'].map(sanKind), ['DNS', 'IP', 'IP', 'email', 'URI']);
  const sealed = sealWithPassword('{"k":1}', 'pw');
  assert.is(sealed.split('.').length, 5);
  assert.is(openWithPassword(sealed, 'pw'), '{"k":1}');
  assert.is(openWithPassword(sealed, 'pW'), undefined);
});

test.after(() => host.dispose());
test.run();
