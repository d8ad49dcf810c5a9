// The renewal decision on real X.509 files made with openssl (a root, an
// intermediate, leaves with DNS and IP SANs), the post-command word
// splitter, durations, and the manifest model's checks.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { tmpDir } from '../helpers/tmp.mts';
import { expectConfigError } from '../helpers/errors.mts';
import { configureLog } from '../../lib/core/log.mts';
import { canonicalIp, certificateSans, inspect, sanDifference, sanKey, type Expectation } from '../../lib/certificates/x509.mts';
import { splitShellWords, ShellWordsError } from '../../lib/certificates/shell-words.mts';
import { buildModel, HANDOVER, manifestTrustProblem, parseDuration } from '../../lib/certificates/manifest.mts';
import { clearConfigCache, loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { resolveOptions } from '../../lib/core/env.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

configureLog({ file: '/dev/null', script: 'renewal-x509.test' });

// ---------------------------------------------------------------- an openssl CA

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

interface Ca {
  dir: string;
  rootFile: string;
  rootPem: string;
  interPem: string;
  interKey: string;
  interCrt: string;
}

function makeCa(name: string): Ca {
  const dir = tmpDir('phoenix-x509-');
  const f = (n: string) => path.join(dir, n);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('root.key')]);
  openssl(['req', '-x509', '-new', '-key', f('root.key'), '-subj', `/CN=${name} Root CA`, '-days', '3650', '-out', f('root.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('inter.key')]);
  openssl(['req', '-new', '-key', f('inter.key'), '-subj', `/CN=${name} Intermediate CA`, '-out', f('inter.csr')]);
  fs.writeFileSync(f('inter.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
  openssl(['x509', '-req', '-in', f('inter.csr'), '-CA', f('root.crt'), '-CAkey', f('root.key'), '-set_serial', '0x1001', '-days', '3650', '-extfile', f('inter.ext'), '-out', f('inter.crt')]);
  return { dir, rootFile: f('root.crt'), rootPem: fs.readFileSync(f('root.crt'), 'utf8'), interPem: fs.readFileSync(f('inter.crt'), 'utf8'), interKey: f('inter.key'), interCrt: f('inter.crt') };
}

let serial = 0x2000;
function makeLeaf(ca: Ca, cn: string, sans: string[], options: { days?: number; eku?: string; chain?: boolean } = {}): { certPem: string; keyPem: string } {
  const dir = tmpDir('phoenix-leaf-');
  const f = (n: string) => path.join(dir, n);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('leaf.key')]);
  openssl(['req', '-new', '-key', f('leaf.key'), '-subj', `/CN=${cn}`, '-out', f('leaf.csr')]);
  const san = sans.map((s) => (/^[\d.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(',');
  fs.writeFileSync(f('leaf.ext'), `basicConstraints=CA:FALSE\nextendedKeyUsage=${options.eku ?? 'serverAuth,clientAuth'}\n${san ? `subjectAltName=${san}\n` : ''}`);
  openssl(['x509', '-req', '-in', f('leaf.csr'), '-CA', ca.interCrt, '-CAkey', ca.interKey, '-set_serial', `0x${(serial++).toString(16)}`, '-days', String(options.days ?? 1), '-extfile', f('leaf.ext'), '-out', f('leaf.crt')]);
  const leaf = fs.readFileSync(f('leaf.crt'), 'utf8');
  return { certPem: options.chain === false ? leaf : leaf + ca.interPem, keyPem: fs.readFileSync(f('leaf.key'), 'utf8') };
}

const ca = makeCa('Phoenix Test');
const root = new X509Certificate(ca.rootPem);
const HOUR = 3_600_000;
const expect = (sans: string[], extra: Partial<Expectation> = {}): Expectation => ({ commonName: 'portainer.internal.example.org', sans, certType: 'server', renewBeforeMs: 12 * HOUR, ...extra });
const SANS = ['portainer.internal.example.org', 'localhost', '127.0.0.1', '10.0.0.21'];
const good = makeLeaf(ca, 'portainer.internal.example.org', SANS, { days: 2 });

// ---------------------------------------------------------------- the decision

test('a fresh certificate with the same DNS and IP SANs needs nothing', () => {
  const result = inspect(good.certPem, good.keyPem, root, expect(SANS));
  assert.equal(result.reasons, []);
  assert.ok(result.notAfter instanceof Date);
  assert.match(result.fingerprint ?? '', /^[0-9a-f]{64}$/);
});

test('SANs compare as sets: order and case do not matter, IPs compare canonically', () => {
  const reordered = ['10.0.0.21', 'LOCALHOST', '127.0.0.1', 'Portainer.Internal.Example.Org'];
  assert.equal(inspect(good.certPem, good.keyPem, root, expect(reordered)).reasons, []);
  const v6 = makeLeaf(ca, 'portainer.internal.example.org', ['portainer.internal.example.org', '2001:db8::1'], { days: 2 });
  assert.equal(inspect(v6.certPem, v6.keyPem, root, expect(['2001:DB8:0:0:0:0:0:1', 'portainer.internal.example.org'])).reasons, []);
});

test('an IP SAN added, removed or changed is a reason to renew', () => {
  const added = inspect(good.certPem, good.keyPem, root, expect([...SANS, '10.0.0.99'])).reasons;
  assert.is(added.length, 1);
  assert.match(added[0] as string, /missing IP:10\.0\.0\.99/);
  const removed = inspect(good.certPem, good.keyPem, root, expect(SANS.filter((s) => s !== '10.0.0.21'))).reasons;
  assert.match(removed[0] as string, /not wanted IP:10\.0\.0\.21/);
  const dnsOnly = inspect(good.certPem, good.keyPem, root, expect(['portainer.internal.example.org', 'localhost', '127.0.0.1', 'other.example.org'])).reasons;
  assert.match(dnsOnly[0] as string, /missing DNS:other\.example\.org; not wanted IP:10\.0\.0\.21/);
});

test('expiry inside the renewal window, or past, is a reason to renew', () => {
  const inWindow = inspect(good.certPem, good.keyPem, root, expect(SANS, { renewBeforeMs: 72 * HOUR })).reasons;
  assert.is(inWindow.length, 1);
  assert.match(inWindow[0] as string, /expires in .* within the renewal window of 3d/);
  const later = new Date(Date.now() + 5 * 24 * HOUR);
  assert.match(inspect(good.certPem, good.keyPem, root, expect(SANS), later).reasons[0] as string, /expired .* ago/);
});

test('missing, unreadable, leaf-only, foreign-root and wrong-key files are reasons to renew', () => {
  assert.equal(inspect(undefined, undefined, root, expect(SANS)).reasons, ['the certificate file does not exist']);
  assert.match(inspect('garbage', good.keyPem, root, expect(SANS)).reasons[0] as string, /no PEM certificate/);
  assert.match(inspect('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', good.keyPem, root, expect(SANS)).reasons[0] as string, /does not parse/);
  const leafOnly = makeLeaf(ca, 'portainer.internal.example.org', SANS, { days: 2, chain: false });
  assert.match(inspect(leafOnly.certPem, leafOnly.keyPem, root, expect(SANS)).reasons.join('|'), /leaf only; the intermediate/);
  const other = new X509Certificate(makeCa('Other').rootPem);
  assert.match(inspect(good.certPem, good.keyPem, other, expect(SANS)).reasons.join('|'), /does not chain to the current root CA/);
  const stranger = makeLeaf(ca, 'portainer.internal.example.org', SANS, { days: 2 });
  assert.match(inspect(good.certPem, stranger.keyPem, root, expect(SANS)).reasons.join('|'), /does not hold the key of this certificate/);
  assert.match(inspect(good.certPem, undefined, root, expect(SANS)).reasons.join('|'), /key file does not exist/);
});

test('a changed subject and a missing extended key usage are reasons to renew', () => {
  assert.match(inspect(good.certPem, good.keyPem, root, expect(SANS, { commonName: 'other' })).reasons.join('|'), /subject is CN=portainer/);
  const serverOnly = makeLeaf(ca, 'nginx-gateway-client', [], { days: 2, eku: 'serverAuth' });
  const client: Expectation = { commonName: 'nginx-gateway-client', sans: [], certType: 'client', renewBeforeMs: HOUR };
  assert.match(inspect(serverOnly.certPem, serverOnly.keyPem, root, client).reasons.join('|'), /lacks the clientAuth/);
});

test('SAN keys and canonical IPs', () => {
  assert.is(sanKey('Host.Example'), 'DNS:host.example');
  assert.is(sanKey('10.0.0.1'), 'IP:10.0.0.1');
  assert.is(canonicalIp('::1'), '0000:0000:0000:0000:0000:0000:0000:0001');
  assert.is(canonicalIp('::ffff:10.0.0.1'), canonicalIp('0:0:0:0:0:ffff:a00:1'));
  assert.is(canonicalIp('name'), undefined);
  assert.equal(certificateSans(new X509Certificate(good.certPem)).sort(), ['DNS:localhost', 'DNS:portainer.internal.example.org', 'IP:10.0.0.21', 'IP:127.0.0.1']);
  assert.is(sanDifference(['a'], ['DNS:a']), undefined);
});

// ---------------------------------------------------------------- post commands

test('post commands split like a shell user expects', () => {
  assert.equal(splitShellWords('pct exec 101 -- systemctl reload nginx'), ['pct', 'exec', '101', '--', 'systemctl', 'reload', 'nginx']);
  assert.equal(splitShellWords(`pct exec 101 -- /bin/bash -c 'mv /tmp/cert.pem /x && chmod 640 /x/*.key; echo $HOME'`), ['pct', 'exec', '101', '--', '/bin/bash', '-c', 'mv /tmp/cert.pem /x && chmod 640 /x/*.key; echo $HOME']);
  assert.equal(splitShellWords('a "b c" d\\ e "q\\"x" \'\' x=1'), ['a', 'b c', 'd e', 'q"x', '', 'x=1']);
});

test('post commands that need a shell are refused with the construct named', () => {
  const cases: Array<[string, RegExp]> = [
    ['systemctl reload nginx && echo ok', /background or list operator \(&\) outside quotes.*column 24/],
    ['docker ps | grep x', /a pipe/],
    ['echo a; echo b', /command separator/],
    ['echo a > /etc/passwd', /redirection/],
    ['echo $(id)', /expansion/],
    ['echo "$HOME"', /inside double quotes/],
    ['rm /tmp/*.pem', /glob/],
    ["echo 'open", /unterminated single quote/],
    ['echo a\nrm -rf /', /line break/],
    ['ls ~', /home-directory/],
  ];
  for (const [line, message] of cases) {
    assert.throws(() => splitShellWords(line), (err: unknown) => err instanceof ShellWordsError && message.test(err.message), line);
  }
});

test('durations', () => {
  assert.is(parseDuration('24h'), 24 * HOUR);
  assert.is(parseDuration('1h30m'), 90 * 60_000);
  assert.is(parseDuration('45s'), 45_000);
  assert.is(parseDuration('1d'), undefined);
  assert.is(parseDuration(''), undefined);
});

// ---------------------------------------------------------------- the manifest model

function manifestDir(entries: unknown[], mode = 0o644): string {
  const dir = tmpDir('phoenix-certmodel-');
  for (const name of ['phoenix_hypervisor_config.json', 'phoenix_lxc_configs.json', 'phoenix_vm_configs.json']) {
    fs.copyFileSync(path.join(PROJECT_ROOT, 'etc', name), path.join(dir, name));
  }
  const file = path.join(dir, 'certificate-manifest.json');
  fs.writeFileSync(file, JSON.stringify(entries, null, 2));
  fs.chmodSync(file, mode);
  return dir;
}

function model(dir: string) {
  clearConfigCache();
  const env = { ...process.env, PHOENIX_BASE_DIR: path.dirname(dir), HYPERVISOR_CONFIG_FILE: path.join(dir, 'phoenix_hypervisor_config.json'), LXC_CONFIG_FILE: path.join(dir, 'phoenix_lxc_configs.json'), VM_CONFIG_FILE: path.join(dir, 'phoenix_vm_configs.json'), CERTIFICATE_MANIFEST_FILE: path.join(dir, 'certificate-manifest.json'), PHOENIX_HOST_ROOT: '/srv/host' };
  return buildModel(loadConfig(resolveConfigPaths({}, env)), resolveOptions(env));
}

test('the example manifest builds: host paths under the host root, mount owners, no world-readable keys', () => {
  const dir = manifestDir(JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'certificate-manifest.json'), 'utf8')) as unknown[]);
  const m = model(dir);
  assert.ok(m.plans.length >= 4);
  const client = m.plans.find((p) => p.name === 'nginx-gateway-client');
  assert.ok(client, 'the gateway client certificate is in the example');
  assert.is(client.certType, 'client');
  assert.ok(client.certFile.startsWith('/srv/host/quickOS/'));
  // CT 101 is unprivileged and mounts its ssl directory as 0:33: the key belongs to the container's root.
  // The mount's owner_uid/owner_gid, as the container sees them; the host ids come through its id maps.
  assert.equal({ ...client.owner, container: undefined }, { text: '0:33', user: '0', group: '33', source: 'mount', container: undefined });
  assert.is(client.owner?.container?.id, '101');
  assert.is(client.owner?.container?.guestKeyPath, '/etc/nginx/ssl/nginx-gateway-client.key');
  for (const plan of m.plans) assert.is(plan.keyMode & 0o007, 0, `${plan.name} key mode`);
  assert.is(m.ca.rootFile, '/srv/host/etc/phoenix/ca/root_ca.crt');
  assert.is(m.ca.provisioner, 'phoenix-admin');
});

test('entries with a post command get the /tmp hand-over; permissions never make a key world-readable', () => {
  const dir = manifestDir([
    { common_name: 'a.example.org', guest_id: 1001, guest_type: 'vm', cert_path: '/etc/phoenix/tls/a.crt', key_path: '/etc/phoenix/tls/a.key', include_ca: true, permissions: '644', post_renewal_command: "qm guest exec 1001 -- sh -c 'docker secret create x /tmp/cert.pem'" },
    { common_name: 'b.example.org', guest_id: 1001, guest_type: 'vm', cert_path: '/etc/phoenix/tls/b.crt', key_path: '/etc/phoenix/tls/b.key', guest_cert_path: '/etc/b/b.crt', guest_key_path: '/etc/b/b.key', include_ca: true },
    { common_name: 'c.example.org', guest_id: 1001, guest_type: 'vm', cert_path: '/etc/phoenix/tls/c.crt', key_path: '/etc/phoenix/tls/c.key', include_ca: true, post_renewal_command: 'qm guest exec 1001 -- docker service update --force x' },
  ], 0o600);
  const m = model(dir);
  const [a, b] = m.plans;
  // The command reads /tmp/cert.pem only: no copy of the key is handed over.
  assert.equal(a?.push, { handover: true, cert: HANDOVER.cert, ca: HANDOVER.ca });
  assert.is(a?.keyMode, 0o640);
  assert.ok(m.warnings.some((w) => /permissions 644 is not a private-key mode; the key gets 640/.test(w)));
  assert.equal(a?.post?.argv, ['qm', 'guest', 'exec', '1001', '--', 'sh', '-c', 'docker secret create x /tmp/cert.pem']);
  assert.equal(b?.push, { handover: false, cert: '/etc/b/b.crt', key: '/etc/b/b.key', ca: '/etc/b/ca.crt' });
  // A command that reads the files through the VM's mount gets no copies at all.
  assert.equal(m.plans[2]?.push, { handover: false });
  assert.ok(m.warnings.some((w) => /c\.example\.org: include_ca has no effect/.test(w)));
});

test('bad post commands, shared files and a group-writable manifest fail before anything runs', () => {
  const bad = manifestDir([
    { common_name: 'a', cert_path: '/etc/phoenix/tls/a.crt', key_path: '/etc/phoenix/tls/a.key', post_renewal_command: 'systemctl reload nginx; rm -rf /' },
    { common_name: 'b', cert_path: '/etc/phoenix/tls/a.crt', key_path: '/etc/phoenix/tls/b.key' },
  ], 0o600);
  const err = expectConfigError(() => model(bad));
  assert.is(err.pointer, '/0/post_renewal_command');
  assert.match(err.message, /command separator/);
  assert.match(err.message, /\/1\/cert_path: \/etc\/phoenix\/tls\/a\.crt is also written by \/0\/cert_path/);

  const writable = manifestDir([{ common_name: 'a', cert_path: '/etc/phoenix/tls/a.crt', key_path: '/etc/phoenix/tls/a.key', post_renewal_command: 'true' }], 0o664);
  assert.match(expectConfigError(() => model(writable)).message, /writable by its group .*refuses to run them/);
  assert.match(manifestTrustProblem(path.join(writable, 'certificate-manifest.json')) ?? '', /chmod go-w/);
  // Without commands a group-writable manifest is only data.
  const data = manifestDir([{ common_name: 'a', cert_path: '/etc/phoenix/tls/a.crt', key_path: '/etc/phoenix/tls/a.key' }], 0o664);
  assert.is(model(data).plans.length, 1);
});

test.run();
