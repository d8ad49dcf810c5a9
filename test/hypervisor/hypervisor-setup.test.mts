// The hypervisor_setup ports that act on the host itself, run end to end on
// the simulated host (host files under its PHOENIX_HOST_ROOT, systemctl,
// apt-get, dpkg-query, update-ca-certificates, dnsmasq and step from
// test/simhost/bin): the files they write and their modes, a second run that
// changes nothing, dry-runs that write nothing, bad manifests that fail
// before any change, and failures of the tools they drive. The DNS records
// are also checked as data, and, when the dnsmasq package is installed,
// against the real dnsmasq (syntax check, then real queries on loopback).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import dgram from 'node:dgram';
import { X509Certificate } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { createSimHost, DEFAULT_TEMPLATE, type CallRecord } from '../simhost/index.mts';
import { initCa, rootPemOf, writeRecord } from '../simhost/stepca.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { expectConfigError } from '../helpers/errors.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { clearConfigCache, loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { dnsPlan, renderCheckedConf, renderDnsmasqConf, renderRecordsConf, renderResolvConf, ruleHosts, type DnsPlan } from '../../lib/hypervisor/dns.mts';
import { ROOT_CA, ROOT_CA_FINGERPRINT } from '../helpers/fixture-ca.mts';

// ---------------------------------------------------------------- fixtures

const TEMPLATE = `fastData-shared-iso:vztmpl/${DEFAULT_TEMPLATE}`;
const REAL_DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'].find((f) => fs.existsSync(f));

const host = createSimHost();
const work = tmpDir('phoenix-hvsetup-');
const etcDir = path.join(work, 'etc');
const hostfs = path.join(host.stateDir, 'hostfs');
const onHost = (p: string) => path.join(hostfs, p);
const HOST_ROOT_CA = '/etc/phoenix/ca/root_ca.crt';

function readExample(file: string): any {
  return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', file), 'utf8'));
}

/** Write the example manifests (the hypervisor config changed by `edit`) and return their paths. */
function writeManifests(edit: (hv: any, lxc: any) => void = () => {}): Record<string, string> {
  fs.mkdirSync(etcDir, { recursive: true });
  const hv = readExample('phoenix_hypervisor_config.json');
  const lxc = readExample('phoenix_lxc_configs.json');
  edit(hv, lxc);
  const files: Record<string, unknown> = {
    'phoenix_hypervisor_config.json': hv,
    'phoenix_lxc_configs.json': lxc,
    'phoenix_vm_configs.json': readExample('phoenix_vm_configs.json'),
    'phoenix_stacks_config.json': readExample('phoenix_stacks_config.json'),
    'certificate-manifest.json': readExample('certificate-manifest.json'),
  };
  for (const [name, doc] of Object.entries(files)) fs.writeFileSync(path.join(etcDir, name), `${JSON.stringify(doc, null, 2)}\n`);
  clearConfigCache();
  return {
    HYPERVISOR_CONFIG_FILE: path.join(etcDir, 'phoenix_hypervisor_config.json'),
    LXC_CONFIG_FILE: path.join(etcDir, 'phoenix_lxc_configs.json'),
    VM_CONFIG_FILE: path.join(etcDir, 'phoenix_vm_configs.json'),
    STACKS_CONFIG_FILE: path.join(etcDir, 'phoenix_stacks_config.json'),
    CERTIFICATE_MANIFEST_FILE: path.join(etcDir, 'certificate-manifest.json'),
  };
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { ...host.env, ...writeManifests(), PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'), MAIN_LOG_FILE: path.join(work, 'phoenix.log') };
  delete env.STEPPATH;
  delete env.PHOENIX_DRY_RUN;
  delete env.PHOENIX_HOST_ROOT;
  return env;
}

let env = baseEnv();

interface ScriptRun {
  code: number;
  stdout: string;
  stderr: string;
}

function script(name: string, args: string[] = []): ScriptRun {
  const file = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', `${name}.mjs`);
  const r = spawnSync(process.execPath, [file, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

const DNS = 'hypervisor_feature_setup_dns_server';
const TRUST = 'hypervisor_feature_install_trusted_ca';
const BOOTSTRAP = 'hypervisor_feature_bootstrap_step_cli';

const MUTATING_SYSTEMCTL = new Set(['start', 'stop', 'restart', 'reload', 'reload-or-restart', 'enable', 'disable', 'daemon-reload']);
const mutating = (calls: CallRecord[]) =>
  calls.filter((c) => c.tool === 'apt-get' || c.tool === 'update-ca-certificates' || (c.tool === 'systemctl' && MUTATING_SYSTEMCTL.has(c.argv[0] ?? '')) || (c.tool === 'step' && c.argv[1] === 'bootstrap') || (c.tool === 'pct' && c.argv[0] === 'pull'));
const shown = (calls: CallRecord[]) => calls.map((c) => `${c.tool} ${c.argv.join(' ')}`);

function mtimes(files: string[]): number[] {
  return files.map((f) => fs.statSync(f).mtimeMs);
}

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

function fresh(): void {
  host.reset();
  host.clearCalls();
  env = baseEnv();
}

function planFor(edit?: (hv: any, lxc: any) => void): DnsPlan {
  const paths = writeManifests(edit);
  return dnsPlan(loadConfig(resolveConfigPaths({ hypervisor: paths.HYPERVISOR_CONFIG_FILE, lxc: paths.LXC_CONFIG_FILE, vm: paths.VM_CONFIG_FILE, stacks: paths.STACKS_CONFIG_FILE, certificates: paths.CERTIFICATE_MANIFEST_FILE })));
}

function recordsOf(plan: DnsPlan): Record<string, string[]> {
  return Object.fromEntries(plan.records.map((r) => [r.name, r.addresses]));
}

// ---------------------------------------------------------------- the DNS records, as data

test('dns: ca.<domain> is the CA, the mesh name Traefik, public names the gateway, guests themselves', () => {
  const plan = planFor();
  const records = recordsOf(plan);
  const gateway = ['10.0.0.10', '172.16.100.10'];
  assert.equal(records['ca.internal.example.org'], ['172.16.100.11']);
  assert.equal(records['traefik.internal.example.org'], ['172.16.100.12']);
  for (const name of ['nginx', 'portainer', 'whoami', 'whoami-testing', 'worker-1-agent']) assert.equal(records[`${name}.internal.example.org`], gateway, name);
  assert.equal(records['step-ca.internal.example.org'], ['172.16.100.11']);
  assert.equal(records['traefik-mesh.internal.example.org'], ['172.16.100.12']);
  assert.equal(records['nginx-gateway.internal.example.org'], gateway);
  assert.equal(records['worker-1.internal.example.org'], ['10.0.0.22']);
  assert.equal(records['phoenix.internal.example.org'], ['10.0.0.5', '172.16.100.1']);
  // The template and the dhcp VM get no record; VM 1001's own name loses to the public Portainer name.
  assert.not.ok(Object.keys(records).some((n) => n.startsWith('base-template') || n.startsWith('ubuntu-noble-template')));
  assert.ok(plan.notes.some((n) => /^portainer\.internal\.example\.org: the gateway \(CT 101\) takes precedence over VM 1001/.test(n)), plan.notes.join('\n'));
  assert.ok(plan.notes.some((n) => /^ca\.internal\.example\.org: the CA \(CT 103, step_ca\) takes precedence over the gateway/.test(n)));
  assert.equal(plan.listenAddresses, ['127.0.0.1', '10.0.0.5', '172.16.100.1']);
  assert.equal(plan.upstreams, ['9.9.9.9', '1.1.1.1']);
  assert.equal(plan.localZones, ['internal.example.org']);
  assert.equal(Object.keys(records), [...Object.keys(records)].sort());
});

test('dns: explicit records win; the CA name follows step_ca; addresses follow the manifests, never literals', () => {
  const plan = planFor((hv, lxc) => {
    hv.dns_server.records = [{ hostname: 'nas', ip: '10.0.0.50' }, { hostname: 'whoami.internal.example.org', ip: '10.0.0.99' }];
    hv.step_ca.dns_name = 'pki.internal.example.org';
    hv.step_ca.ca_url = 'https://pki.internal.example.org:9000';
    lxc.lxc_configs['103'].network_config.ip = '172.16.100.41/24';
    hv.network.internal_bridge = { name: 'vmbr100', subnet: '172.16.100.0/24' };
    hv.dns_server.authoritative_zones = ['internal.example.org', 'lab.example.org'];
  });
  const records = recordsOf(plan);
  assert.equal(records['nas.internal.example.org'], ['10.0.0.50']);
  assert.equal(records['whoami.internal.example.org'], ['10.0.0.99']);
  assert.equal(records['pki.internal.example.org'], ['172.16.100.41']);
  assert.equal(records['step-ca.internal.example.org'], ['172.16.100.41']);
  // ca.<domain> is now only Traefik's route for CT 103's traefik_service: a public name.
  assert.equal(records['ca.internal.example.org'], ['10.0.0.10', '172.16.100.10']);
  // Without internal_bridge.gateway the bridge's first address is the gateway.
  assert.equal(plan.listenAddresses, ['127.0.0.1', '10.0.0.5', '172.16.100.1']);
  assert.equal(plan.localZones, ['internal.example.org', 'lab.example.org']);
  assert.ok(planFor((hv) => (hv.gateway.passthrough_snis = ['*.apps.example.org'])).notes.some((n) => /^\*\.apps\.example\.org .*wildcard/.test(n)));
  assert.equal(ruleHosts('Host(`a.example.org`) || Host(`b.example.org`, `c.example.org`)'), ['a.example.org', 'b.example.org', 'c.example.org']);
});

test('dns: a manifest without upstream servers or host address is refused with file and pointer', () => {
  let err = expectConfigError(() => planFor((hv) => (hv.dns_server.upstream_servers = [])));
  assert.is(err.pointer, '/dns_server/upstream_servers');
  assert.match(err.message, /phoenix_hypervisor_config\.json at \/dns_server\/upstream_servers: at least one upstream server/);
  err = expectConfigError(() => planFor((hv) => delete hv.network.interfaces.address));
  assert.is(err.pointer, '/network/interfaces/address');
  // With listen_addresses the host address is not needed.
  const plan = planFor((hv) => {
    delete hv.network.interfaces.address;
    hv.dns_server.listen_addresses = ['127.0.0.1', '10.0.0.6'];
  });
  assert.equal(plan.listenAddresses, ['127.0.0.1', '10.0.0.6']);
  // Disabled: nothing is computed (and nothing checked).
  assert.equal(planFor((hv) => (hv.dns_server = { enabled: false })).records, []);
});

test('dns: the files say what the plan says', () => {
  const plan = planFor();
  const main = renderDnsmasqConf(plan);
  for (const line of ['port=53', 'no-resolv', 'bind-dynamic', 'localise-queries', 'local=/internal.example.org/', 'listen-address=172.16.100.1', 'server=9.9.9.9', 'conf-dir=/etc/dnsmasq.d,*.conf']) {
    assert.ok(main.split('\n').includes(line), line);
  }
  assert.not.match(renderCheckedConf(plan), /conf-dir/);
  const records = renderRecordsConf(plan);
  assert.ok(records.split('\n').includes('host-record=ca.internal.example.org,172.16.100.11'));
  assert.ok(records.split('\n').includes('host-record=nginx.internal.example.org,10.0.0.10'));
  assert.ok(records.split('\n').includes('host-record=nginx.internal.example.org,172.16.100.10'));
  assert.is(renderResolvConf(plan), '# Phoenix: the host resolves through its own dnsmasq (hypervisor_feature_setup_dns_server.sh).\nsearch internal.example.org\nnameserver 127.0.0.1\nnameserver 9.9.9.9\nnameserver 1.1.1.1\n');
  // Deterministic: no dates, same text twice.
  assert.is(renderRecordsConf(planFor()), records);
});

// ---------------------------------------------------------------- the DNS script on the simulated host

const DNS_FILES = ['/etc/dnsmasq.conf', '/etc/dnsmasq.d/00-phoenix-internal.conf', '/etc/resolv.conf'];

test('dns script: installs dnsmasq, checks, writes 0644 files, enables and restarts once; a second run changes nothing', () => {
  fresh();
  fs.mkdirSync(onHost('/etc'), { recursive: true });
  fs.writeFileSync(onHost('/etc/resolv.conf'), 'nameserver 10.0.0.1\n');
  fs.mkdirSync(onHost('/etc/dnsmasq.d'), { recursive: true });
  fs.writeFileSync(onHost('/etc/dnsmasq.d/other-package.conf'), 'cache-size=500\n');
  let r = script(DNS);
  assert.is(r.code, 0, r.stderr);
  assert.equal(shown(host.calls()), [
    'dpkg-query -W --showformat=${Status} dnsmasq',
    'apt-get update -q',
    'apt-get install -y -q dnsmasq',
    `dnsmasq --test -C ${host.calls('dnsmasq')[0]?.argv[2]}`,
    'systemctl is-enabled dnsmasq',
    'systemctl is-active dnsmasq',
    'systemctl restart dnsmasq',
    'systemctl is-active dnsmasq',
  ]);
  assert.ok(host.calls().every((c) => c.exit === 0 || (c.tool === 'dpkg-query' && c.exit === 1)));
  for (const file of DNS_FILES) assert.is(mode(onHost(file)), 0o644, file);
  assert.match(fs.readFileSync(onHost('/etc/dnsmasq.d/00-phoenix-internal.conf'), 'utf8'), /^host-record=ca\.internal\.example\.org,172\.16\.100\.11$/m);
  assert.match(fs.readFileSync(onHost('/etc/dnsmasq.conf'), 'utf8'), /^# Phoenix: dnsmasq for internal\.example\.org/);
  // Debian's own dnsmasq.conf and the old resolv.conf are kept once; other packages' files are left alone.
  assert.match(fs.readFileSync(onHost('/etc/dnsmasq.conf.phoenix.bak'), 'utf8'), /^# Configuration file for dnsmasq\./);
  assert.is(fs.readFileSync(onHost('/etc/resolv.conf.phoenix.bak'), 'utf8'), 'nameserver 10.0.0.1\n');
  assert.is(fs.readFileSync(onHost('/etc/dnsmasq.d/other-package.conf'), 'utf8'), 'cache-size=500\n');
  assert.match(fs.readFileSync(onHost('/etc/resolv.conf'), 'utf8'), /^nameserver 127\.0\.0\.1$/m);
  assert.is(host.run('systemctl', ['is-active', 'dnsmasq']).stdout, 'active\n');
  assert.is(host.run('systemctl', ['is-enabled', 'dnsmasq']).stdout, 'enabled\n');

  const before = mtimes([...DNS_FILES, '/etc/dnsmasq.conf.phoenix.bak'].map(onHost));
  host.clearCalls();
  r = script(DNS);
  assert.is(r.code, 0, r.stderr);
  assert.equal(mutating(host.calls()), [], shown(host.calls()).join('\n'));
  assert.equal(shown(host.calls()).filter((c) => !c.startsWith('dnsmasq --test')), ['dpkg-query -W --showformat=${Status} dnsmasq', 'systemctl is-enabled dnsmasq', 'systemctl is-active dnsmasq']);
  assert.equal(mtimes([...DNS_FILES, '/etc/dnsmasq.conf.phoenix.bak'].map(onHost)), before);
  assert.match(r.stderr, /nothing changed/);
});

test('dns script: a manifest change restarts dnsmasq once; a stopped dnsmasq is started without rewriting', () => {
  env = { ...env, ...writeManifests((hv) => (hv.dns_server.records = [{ hostname: 'nas', ip: '10.0.0.50' }])) };
  host.clearCalls();
  let r = script(DNS);
  assert.is(r.code, 0, r.stderr);
  assert.equal(shown(mutating(host.calls())), ['systemctl restart dnsmasq']);
  assert.match(fs.readFileSync(onHost('/etc/dnsmasq.d/00-phoenix-internal.conf'), 'utf8'), /^host-record=nas\.internal\.example\.org,10\.0\.0\.50$/m);
  host.run('systemctl', ['stop', 'dnsmasq']);
  host.clearCalls();
  r = script(DNS);
  assert.is(r.code, 0, r.stderr);
  assert.equal(shown(mutating(host.calls())), ['systemctl start dnsmasq']);
});

test('dns script: --dry-run on a fresh host writes nothing and runs nothing that changes the host', () => {
  fresh();
  const r = script(DNS, ['--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /DRY-RUN: would run: apt-get install -y -q dnsmasq/);
  assert.match(r.stderr, /DRY-RUN: would write .*00-phoenix-internal\.conf/);
  assert.equal(mutating(host.calls()), []);
  for (const file of [...DNS_FILES, '/etc/dnsmasq.conf.phoenix.bak']) assert.not.ok(fs.existsSync(onHost(file)), file);
  assert.is(host.run('dpkg-query', ['-W', 'dnsmasq']).code, 1);
});

test('dns script: a bad manifest fails before any command or file', () => {
  fresh();
  env = { ...env, ...writeManifests((hv) => (hv.dns_server.upstream_servers = [])) };
  let r = script(DNS);
  assert.is(r.code, 1);
  assert.match(r.stderr, /phoenix_hypervisor_config\.json at \/dns_server\/upstream_servers/);
  env = { ...env, ...writeManifests((hv) => (hv.dns_server.listen_addresses = ['localhost'])) };
  r = script(DNS);
  assert.is(r.code, 1);
  assert.match(r.stderr, /\/dns_server\/listen_addresses\/0/);
  assert.equal(host.calls(), []);
  assert.not.ok(fs.existsSync(onHost('/etc/dnsmasq.conf')));
});

test('dns script: dnsmasq --test refusing the files stops before they are installed or dnsmasq restarted', () => {
  fresh();
  assert.is(script(DNS).code, 0);
  const before = fs.readFileSync(onHost('/etc/dnsmasq.d/00-phoenix-internal.conf'), 'utf8');
  const withNas = (hv: any) => (hv.dns_server.records = [{ hostname: 'nas', ip: '10.0.0.50' }]);
  const line = renderCheckedConf(planFor(withNas)).split('\n').indexOf('host-record=nas.internal.example.org,10.0.0.50') + 1;
  assert.ok(line > 0);
  env = { ...env, ...writeManifests(withNas) };
  host.injectFailure({ tool: 'dnsmasq', argv: ['--test'], times: 1, exit: 1, stderr: `dnsmasq: bad option at line ${line} of /tmp/x/phoenix-check.conf\n` });
  host.clearCalls();
  const r = script(DNS);
  assert.is(r.code, 1);
  assert.ok(r.stderr.includes(`dnsmasq rejects the generated configuration: dnsmasq: bad option at line ${line} of /tmp/x/phoenix-check.conf (line ${line}: host-record=nas.internal.example.org,10.0.0.50)`), r.stderr);
  assert.is(fs.readFileSync(onHost('/etc/dnsmasq.d/00-phoenix-internal.conf'), 'utf8'), before);
  assert.equal(host.calls('systemctl'), []);
});

test('dns script: a dnsmasq that does not come up is an error naming the unit', () => {
  fresh();
  env = { ...env, ...writeManifests() };
  host.injectFailure({ tool: 'systemctl', argv: ['is-active', 'dnsmasq'], exit: 3, stdout: 'failed\n' });
  const r = script(DNS);
  assert.is(r.code, 1);
  assert.match(r.stderr, /dnsmasq is failed after the restart/);
  assert.match(r.stderr, /journalctl -u dnsmasq/);
});

test('dns script: disabled in the config, it does nothing at all; --help and unknown options', () => {
  fresh();
  env = { ...env, ...writeManifests((hv) => (hv.dns_server.enabled = false)) };
  let r = script(DNS);
  assert.is(r.code, 0);
  assert.match(r.stderr, /dns_server\.enabled is not true/);
  assert.equal(host.calls(), []);
  // The optional argument (what hypervisor-manager passes) names the hypervisor config and wins over the environment.
  env = { ...env, ...writeManifests() };
  const disabled = path.join(work, 'disabled-hv.json');
  fs.writeFileSync(disabled, JSON.stringify({ ...readExample('phoenix_hypervisor_config.json'), dns_server: { enabled: false } }));
  r = script(DNS, [disabled]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /dns_server\.enabled is not true/);
  assert.equal(host.calls(), []);
  r = script(DNS, ['--help']);
  assert.equal([r.code, r.stdout.split('\n')[0]], [0, 'Usage: hypervisor_feature_setup_dns_server.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]']);
  r = script(DNS, ['--bogus']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /unknown option '--bogus'/);
});

// ---------------------------------------------------------------- the real dnsmasq

/** One A query to 127.0.0.1:port; resolves with the rcode and the addresses, bounded in time. */
function queryA(name: string, port: number): Promise<{ rcode: number; addresses: string[] }> {
  const question = Buffer.concat([
    Buffer.from([0x50, 0x48, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...name.split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])),
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no answer for ${name} within 2 s`));
    }, 2000);
    socket.on('message', (reply) => {
      clearTimeout(timer);
      socket.close();
      const addresses: string[] = [];
      let offset = question.length;
      for (let i = 0; i < reply.readUInt16BE(6); i++) {
        offset += reply[offset]! >= 0xc0 ? 2 : reply.indexOf(0, offset) + 1 - offset;
        const type = reply.readUInt16BE(offset);
        const length = reply.readUInt16BE(offset + 8);
        if (type === 1) addresses.push([...reply.subarray(offset + 10, offset + 14)].join('.'));
        offset += 10 + length;
      }
      resolve({ rcode: reply[3]! & 15, addresses: addresses.sort() });
    });
    socket.send(question, port, '127.0.0.1');
  });
}

test('real dnsmasq: accepts the generated files and answers the split-horizon names on loopback', async () => {
  // make install puts dnsmasq-base in place; its absence is a failure, not a skip.
  if (!REAL_DNSMASQ) throw new Error('dnsmasq is not installed: apt-get install dnsmasq-base (make install does it as root)');
  const plan = planFor();
  const dir = tmpDir('phoenix-dnsmasq-');
  const checked = path.join(dir, 'checked.conf');
  fs.writeFileSync(checked, renderCheckedConf(plan));
  const check = spawnSync(REAL_DNSMASQ, ['--test', '-C', checked], { encoding: 'utf8' });
  assert.is(check.status, 0, check.stderr);
  assert.match(check.stderr, /syntax check OK/);

  // Serve Phoenix's own settings and records on a loopback port (10.0.0.5 and
  // 172.16.100.1 do not exist here: bind-dynamic waits for them).
  const port = 20000 + Math.floor(Math.random() * 20000);
  const served = path.join(dir, 'served.conf');
  fs.writeFileSync(served, `${renderDnsmasqConf(plan, false).replace(/^port=53$/m, `port=${port}`)}no-hosts\nconf-file=${path.join(dir, 'records.conf')}\n`);
  fs.writeFileSync(path.join(dir, 'records.conf'), renderRecordsConf(plan));
  const child = spawn(REAL_DNSMASQ, ['-k', '-C', served, `--pid-file=${path.join(dir, 'pid')}`, '--user=root', '--group=root'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    let answer: { rcode: number; addresses: string[] } | undefined;
    for (let attempt = 0; attempt < 20 && !answer; attempt++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await queryA('ca.internal.example.org', port).catch(() => undefined);
    }
    assert.ok(answer, `dnsmasq did not answer: ${stderr}`);
    assert.equal(answer, { rcode: 0, addresses: ['172.16.100.11'] });
    assert.equal(await queryA('traefik.internal.example.org', port), { rcode: 0, addresses: ['172.16.100.12'] });
    // Asked over loopback, which is on neither network, a gateway name answers with both addresses.
    assert.equal(await queryA('whoami.internal.example.org', port), { rcode: 0, addresses: ['10.0.0.10', '172.16.100.10'] });
    // Unknown names in the local domain are answered here (NXDOMAIN), never forwarded.
    assert.is((await queryA('nothing-here.internal.example.org', port)).rcode, 3);
  } finally {
    child.kill('SIGTERM');
  }
});

// ---------------------------------------------------------------- trusted CA

const TRUST_FILE = '/usr/local/share/ca-certificates/phoenix_root_ca.crt';

test('trusted_ca: installs the host copy 0644, runs update-ca-certificates once; a second run does nothing', () => {
  fresh();
  fs.mkdirSync(path.dirname(onHost(HOST_ROOT_CA)), { recursive: true });
  fs.writeFileSync(onHost(HOST_ROOT_CA), ROOT_CA, { mode: 0o644 });
  fs.mkdirSync(path.dirname(onHost(TRUST_FILE)), { recursive: true });
  fs.writeFileSync(onHost('/usr/local/share/ca-certificates/phoenix_internal_root_ca.crt'), ROOT_CA);
  let r = script(TRUST);
  assert.is(r.code, 0, r.stderr);
  assert.is(fs.readFileSync(onHost(TRUST_FILE), 'utf8'), ROOT_CA);
  assert.is(mode(onHost(TRUST_FILE)), 0o644);
  assert.not.ok(fs.existsSync(onHost('/usr/local/share/ca-certificates/phoenix_internal_root_ca.crt')));
  assert.equal(shown(host.calls()), ['update-ca-certificates ']);
  assert.is(fs.readlinkSync(onHost('/etc/ssl/certs/phoenix_root_ca.pem')), TRUST_FILE);
  assert.match(r.stderr, new RegExp(ROOT_CA_FINGERPRINT));
  const before = mtimes([onHost(TRUST_FILE)]);
  host.clearCalls();
  r = script(TRUST);
  assert.is(r.code, 0, r.stderr);
  assert.equal(host.calls(), []);
  assert.equal(mtimes([onHost(TRUST_FILE)]), before);
  assert.match(r.stderr, /already trusts/);
  // A trust store that lost its link is repaired without rewriting the file.
  fs.rmSync(onHost('/etc/ssl/certs/phoenix_root_ca.pem'));
  assert.is(script(TRUST).code, 0);
  assert.equal(shown(host.calls()), ['update-ca-certificates ']);
  assert.equal(mtimes([onHost(TRUST_FILE)]), before);
});

test('trusted_ca: --dry-run writes nothing; a failing update-ca-certificates fails the script', () => {
  fresh();
  fs.mkdirSync(path.dirname(onHost(HOST_ROOT_CA)), { recursive: true });
  fs.writeFileSync(onHost(HOST_ROOT_CA), ROOT_CA);
  let r = script(TRUST, ['--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /DRY-RUN: would run: update-ca-certificates/);
  assert.not.ok(fs.existsSync(onHost(TRUST_FILE)));
  assert.equal(host.calls(), []);
  host.injectFailure({ tool: 'update-ca-certificates', times: 1, exit: 1, stderr: 'E: cannot write /etc/ssl/certs' });
  r = script(TRUST);
  assert.is(r.code, 1);
  assert.match(r.stderr, /update-ca-certificates' failed with exit code 1/);
});

test('trusted_ca: without a host copy the root is pulled from the CA container; without that it fails, writing nothing', () => {
  fresh();
  let r = script(TRUST);
  assert.is(r.code, 1);
  assert.match(r.stderr, /cannot copy the root CA from CT 103/);
  assert.not.ok(fs.existsSync(onHost(TRUST_FILE)));
  assert.not.ok(fs.existsSync(onHost(HOST_ROOT_CA)));
  assert.equal(host.calls('update-ca-certificates'), []);

  assert.is(host.run('pct', ['create', '103', TEMPLATE, '--hostname', 'step-ca', '--rootfs', 'quickOS-lxc-disks:8']).code, 0);
  assert.is(host.run('pct', ['start', '103']).code, 0);
  const inCa = host.guestPath(103, '/root/.step/certs/root_ca.crt');
  fs.mkdirSync(path.dirname(inCa), { recursive: true });
  fs.writeFileSync(inCa, ROOT_CA);
  host.clearCalls();
  r = script(TRUST);
  assert.is(r.code, 0, r.stderr);
  assert.equal(shown(mutating(host.calls())), ['pct pull 103 /root/.step/certs/root_ca.crt ' + host.calls('pct').find((c) => c.argv[0] === 'pull')?.argv[3], 'update-ca-certificates ']);
  assert.is(fs.readFileSync(onHost(HOST_ROOT_CA), 'utf8'), ROOT_CA);
  assert.is(mode(onHost(HOST_ROOT_CA)), 0o644);
  assert.is(fs.readFileSync(onHost(TRUST_FILE), 'utf8'), ROOT_CA);
});

test('trusted_ca and bootstrap: --help, unknown options, too many arguments', () => {
  fresh();
  for (const name of [TRUST, BOOTSTRAP]) {
    let r = script(name, ['--help']);
    assert.equal([r.code, r.stdout.split('\n')[0]], [0, `Usage: ${name}.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]`]);
    r = script(name, ['--nope']);
    assert.is(r.code, 1);
    assert.match(r.stderr, /unknown option '--nope'/);
    r = script(name, ['a.json', 'b.json']);
    assert.is(r.code, 1);
    assert.match(r.stderr, /too many arguments/);
  }
  assert.equal(host.calls(), []);
});

test('trusted_ca: a bad manifest fails before anything happens', () => {
  fresh();
  env = { ...env, ...writeManifests((hv) => (hv.step_ca.root_ca_file = 'relative/root_ca.crt')) };
  const r = script(TRUST);
  assert.is(r.code, 1);
  assert.match(r.stderr, /\/step_ca\/root_ca_file/);
  assert.equal(host.calls(), []);
});

// ---------------------------------------------------------------- step bootstrap

/** A real CA (openssl-made) in the simulator, held by a running CT 103, as the step_ca feature leaves it. */
function setUpCa(): { rootPem: string; fingerprint: string } {
  const caDir = path.join(hostfs, 'quickOS', 'lxc-persistent-data', '103', 'step');
  const { rootPem, fingerprint } = initCa(caDir, {
    name: 'Example Internal',
    dns: ['ca.internal.example.org', '172.16.100.11'],
    address: ':9000',
    provisioner: 'phoenix-admin',
    password: 'ca-password-for-tests',
    provisionerPassword: 'provisioner-password-for-tests',
    steppath: '/root/.step',
  });
  writeRecord(host.stateDir, { guest: '103', steppath: '/root/.step', ca_dir: caDir, provisioners: [], dns: ['ca.internal.example.org'], root_fingerprint: fingerprint });
  assert.is(host.run('pct', ['create', '103', TEMPLATE, '--hostname', 'step-ca', '--rootfs', 'quickOS-lxc-disks:8']).code, 0);
  assert.is(host.run('pct', ['start', '103']).code, 0);
  return { rootPem, fingerprint };
}

const STEP_DEFAULTS = '/root/.step/config/defaults.json';

test('bootstrap: no root CA copy on the host is a clear error, before any step call', () => {
  fresh();
  const r = script(BOOTSTRAP);
  assert.is(r.code, 1);
  assert.match(r.stderr, /no root CA copy at .*\/etc\/phoenix\/ca\/root_ca\.crt: cannot bootstrap step on the host/);
  assert.match(r.stderr, /lxc-manager\.sh create 103/);
  assert.equal(host.calls('step'), []);
});

test('bootstrap: step gets the CA URL from the config and the fingerprint of the host copy; a second run does nothing', () => {
  fresh();
  const { rootPem, fingerprint } = setUpCa();
  fs.mkdirSync(path.dirname(onHost(HOST_ROOT_CA)), { recursive: true });
  fs.writeFileSync(onHost(HOST_ROOT_CA), rootPem);
  const expected = new X509Certificate(rootPem).fingerprint256.replace(/:/g, '').toLowerCase();
  assert.is(fingerprint, expected);
  host.clearCalls();
  let r = script(BOOTSTRAP, ['--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`DRY-RUN: would run: step ca bootstrap --ca-url https://ca\\.internal\\.example\\.org:9000 --fingerprint ${expected} --force`));
  assert.equal(host.calls('step'), []);
  assert.not.ok(fs.existsSync(onHost(STEP_DEFAULTS)));

  r = script(BOOTSTRAP);
  assert.is(r.code, 0, r.stderr);
  assert.equal(host.calls('step').map((c) => [c.argv, c.exit]), [[['ca', 'bootstrap', '--ca-url', 'https://ca.internal.example.org:9000', '--fingerprint', expected, '--force'], 0]]);
  const defaults = JSON.parse(fs.readFileSync(onHost(STEP_DEFAULTS), 'utf8'));
  assert.is(defaults['ca-url'], 'https://ca.internal.example.org:9000');
  assert.is(defaults.fingerprint, expected);
  assert.is(fs.readFileSync(onHost('/root/.step/certs/root_ca.crt'), 'utf8'), rootPem);

  host.clearCalls();
  r = script(BOOTSTRAP);
  assert.is(r.code, 0, r.stderr);
  assert.equal(host.calls(), []);
  assert.match(r.stderr, /already bootstrapped/);

  // Another CA URL in the config: bootstrapped again (the bash compared nothing but a hard-coded URL).
  env = { ...env, ...writeManifests((hv) => (hv.step_ca.ca_url = 'https://172.16.100.11:9000')) };
  host.clearCalls();
  r = script(BOOTSTRAP);
  assert.is(r.code, 0, r.stderr);
  assert.equal(host.calls('step').map((c) => c.argv[3]), ['https://172.16.100.11:9000']);
  assert.is(JSON.parse(fs.readFileSync(onHost(STEP_DEFAULTS), 'utf8'))['ca-url'], 'https://172.16.100.11:9000');
});

test('bootstrap: a host copy that is not the CA\'s root, or a stopped CA, fails with step\'s reason', () => {
  fresh();
  setUpCa();
  fs.mkdirSync(path.dirname(onHost(HOST_ROOT_CA)), { recursive: true });
  fs.writeFileSync(onHost(HOST_ROOT_CA), ROOT_CA);
  let r = script(BOOTSTRAP);
  assert.is(r.code, 1);
  assert.match(r.stderr, /step ca bootstrap against https:\/\/ca\.internal\.example\.org:9000 failed: .*does not match/);
  assert.match(r.stderr, new RegExp(ROOT_CA_FINGERPRINT));
  assert.not.ok(fs.existsSync(onHost(STEP_DEFAULTS)));

  fs.writeFileSync(onHost(HOST_ROOT_CA), rootPemOf(path.join(hostfs, 'quickOS', 'lxc-persistent-data', '103', 'step')));
  host.run('pct', ['stop', '103']);
  r = script(BOOTSTRAP);
  assert.is(r.code, 1);
  assert.match(r.stderr, /connection refused/);
});

test.after(() => host.dispose());
test.run();
