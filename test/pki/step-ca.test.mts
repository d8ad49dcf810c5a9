// The Step-CA container's application script (scripts/phoenix_hypervisor_lxc_103.mts,
// lib/pki/step-ca.mts) end to end on the simulated host, against a CT 103
// seeded as lxc-manager and the step_ca feature leave it (STEPPATH a bind
// mount of the host's persistent directory, the unit and wrapper installed).
// The simulated `step` makes a real CA, so what lands on the host is checked
// as X.509. Also: run-step-ca.mts against its shell twin.

import { spawnSync } from 'node:child_process';
import crypto, { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { test } from 'uvu';
import * as assert from 'uvu/assert';

import { createSimHost, DEFAULT_TEMPLATE, type CallRecord } from '../simhost/index.mts';
import { tmpDir, writeExecutable } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { loadConfig } from '../../lib/config/load.mts';
import { resolveOptions } from '../../lib/core/env.mts';
import { ConfigError } from '../../lib/core/errors.mts';
import { unitFile, wrapperScript, UNIT_PATH, WRAPPER_PATH } from '../../lib/features/lxc/step-ca.mts';
import { ACME_PROVISIONER, hostsHasName, initArgv, READY_MARKER, readyMarkerText, stepCaSettings } from '../../lib/pki/step-ca.mts';

const TEMPLATE = `fastData-shared-iso:vztmpl/${DEFAULT_TEMPLATE}`;
const SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'phoenix_hypervisor_lxc_103.mjs');
const RUN_STEP_CA = path.join(PROJECT_ROOT, 'scripts', 'run-step-ca.mjs');
const CA_URL = 'https://ca.internal.example.org:9000';

const host = createSimHost();
const work = tmpDir('phoenix-ca-test-');
const hostRoot = path.join(host.stateDir, 'hostfs');
const stepDir = path.join(hostRoot, 'quickOS', 'lxc-persistent-data', '103', 'step');
const rootCaFile = path.join(hostRoot, 'etc', 'phoenix', 'ca', 'root_ca.crt');
const passwordFile = path.join(hostRoot, 'etc', 'phoenix', 'secrets', 'step_provisioner_password');
const logFile = path.join(work, 'phoenix.log');
const recordFile = path.join(work, 'record.jsonl');

function manifests(dir: string, edit: (hv: any, lxc: any, vm: any) => void = () => {}): Record<string, string> {
  fs.mkdirSync(dir, { recursive: true });
  const read = (name: string) => JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', name), 'utf8'));
  const hv = read('phoenix_hypervisor_config.json');
  const lxc = read('phoenix_lxc_configs.json');
  const vm = read('phoenix_vm_configs.json');
  edit(hv, lxc, vm);
  const docs: Record<string, unknown> = {
    'phoenix_hypervisor_config.json': hv,
    'phoenix_lxc_configs.json': lxc,
    'phoenix_vm_configs.json': vm,
    'phoenix_stacks_config.json': read('phoenix_stacks_config.json'),
    'certificate-manifest.json': read('certificate-manifest.json'),
  };
  for (const [name, doc] of Object.entries(docs)) fs.writeFileSync(path.join(dir, name), `${JSON.stringify(doc, null, 2)}\n`);
  return {
    HYPERVISOR_CONFIG_FILE: path.join(dir, 'phoenix_hypervisor_config.json'),
    LXC_CONFIG_FILE: path.join(dir, 'phoenix_lxc_configs.json'),
    VM_CONFIG_FILE: path.join(dir, 'phoenix_vm_configs.json'),
    STACKS_CONFIG_FILE: path.join(dir, 'phoenix_stacks_config.json'),
    CERTIFICATE_MANIFEST_FILE: path.join(dir, 'certificate-manifest.json'),
  };
}

const env: Record<string, string> = {
  ...host.env,
  ...manifests(path.join(work, 'etc')),
  PHOENIX_BASE_DIR: PROJECT_ROOT,
  MAIN_LOG_FILE: logFile,
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
  PHOENIX_RECORD: recordFile,
  PHOENIX_POLL_INTERVAL_MS: '50',
  // Long enough for a health check on a loaded machine; the failing-health case sets 1 s itself.
  PHOENIX_GUEST_TIMEOUT: '20',
  PHOENIX_PVE_LOCK_DELAY_MS: '10',
};
for (const key of ['PHOENIX_DRY_RUN', 'PHOENIX_DEBUG', 'PHOENIX_HOST_ROOT', 'PHOENIX_LOCK_TOKEN', 'STEPPATH']) delete env[key];

interface ScriptRun {
  code: number;
  stdout: string;
  stderr: string;
  calls: CallRecord[];
}

function run103(args: string[] = ['103'], extra: Record<string, string> = {}): ScriptRun {
  host.clearCalls();
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { env: { ...env, ...extra }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, calls: host.calls() };
}

const line = (c: CallRecord) => [c.tool, ...c.argv].join(' ');
const READ_ONLY_EXEC = new Set(['test', 'cat', 'stat', 'journalctl']);

/** Calls that change something: pushes, pulls and execs other than probes. */
function mutating(calls: readonly CallRecord[]): string[] {
  return calls
    .filter((c) => c.tool !== 'pct' || !['status', 'config', 'list'].includes(c.argv[0] ?? ''))
    .filter((c) => {
      if (c.tool !== 'pct' || c.argv[0] !== 'exec') return true;
      const argv = c.argv.slice(3);
      if (READ_ONLY_EXEC.has(argv[0] ?? '')) return false;
      if (argv[0] === 'systemctl') return !['is-active', 'is-enabled', 'status', 'show'].includes(argv[1] ?? '');
      const stepArgs = argv[0] === 'env' ? argv.slice(argv.indexOf('step') + 1) : argv[0] === 'step' ? argv.slice(1) : undefined;
      if (stepArgs) return !['ca health', 'ca provisioner list', 'certificate fingerprint'].includes(stepArgs.slice(0, stepArgs[1] === 'provisioner' ? 3 : 2).join(' '));
      return true;
    })
    .map(line);
}

/** A file of CT 103 as the container sees it (STEPPATH is the host's bind-mounted directory). */
function guestRead(file: string): string | undefined {
  const onHost = file.startsWith('/root/.step/') ? path.join(stepDir, file.slice('/root/.step/'.length)) : host.guestPath('103', file);
  try {
    return fs.readFileSync(onHost, 'utf8');
  } catch {
    return undefined;
  }
}

/** Every file under dir (recursively) whose content includes `secret`, except the allowed paths. */
function filesHolding(dir: string, secret: string, allowed: readonly string[]): string[] {
  const found: string[] = [];
  const walk = (p: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const child of fs.readdirSync(p)) walk(path.join(p, child));
    } else if (st.isFile() && !allowed.includes(p) && fs.readFileSync(p).includes(secret)) {
      found.push(p);
    }
  };
  walk(dir);
  return found;
}

function tempDirsNow(): Set<string> {
  // Only the script's own prefix: other suites running alongside make phoenix-feature-* directories of their own.
  return new Set(fs.readdirSync(path.dirname(work)).filter((n) => n.startsWith('phoenix-stepca-')));
}

// ---------------------------------------------------------------- CT 103 as lxc-manager and the step_ca feature leave it

fs.mkdirSync(stepDir, { recursive: true, mode: 0o755 });
fs.chmodSync(stepDir, 0o755);
// lxc-manager gives the mount to the container's root (owner_uid/owner_gid 0 of an unprivileged CT: host 100000).
fs.chownSync(stepDir, 100000, 100000);
for (const argv of [
  ['create', '103', TEMPLATE, '--hostname', 'step-ca', '--rootfs', 'quickOS-lxc-disks:8', '--unprivileged', '1', '--mp0', '/quickOS/lxc-persistent-data/103/step,mp=/root/.step'],
  ['start', '103'],
]) {
  const r = host.run('pct', argv);
  if (r.code !== 0) throw new Error(`pct ${argv.join(' ')}: ${r.stderr}`);
}
function installFeatureFiles(): void {
  for (const [file, content, mode] of [[UNIT_PATH, unitFile(), 0o644], [WRAPPER_PATH, wrapperScript(), 0o755]] as const) {
    const target = host.guestPath('103', file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content, { mode });
  }
}

// ---------------------------------------------------------------- before the CA exists

test('arguments: --help, an unknown option, a CTID that is not step_ca.ctid', () => {
  const help = run103(['--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /^Usage: phoenix_hypervisor_lxc_103\.sh \[--dry-run\] \[CTID\]/);
  assert.equal(help.calls, []);
  const unknown = run103(['--frobnicate']);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, "unknown option '--frobnicate'");
  const other = run103(['101']);
  assert.is(other.code, 1);
  assert.match(other.stderr, 'CT 101 is not the CA container: step_ca.ctid is 103');
  assert.equal(mutating(other.calls), []);
});

test('without the step_ca feature (no unit) the script stops before changing anything, and says why', () => {
  const r = run103();
  assert.is(r.code, 1);
  assert.match(r.stderr, `${UNIT_PATH} is missing in CT 103`);
  assert.match(r.stderr, 'list "step_ca" in the features of CT 103');
  assert.equal(mutating(r.calls), []);
  assert.not.ok(fs.existsSync(passwordFile));
});

test('dry-run on a fresh CT 103 prints the plan and changes nothing', () => {
  installFeatureFiles();
  const r = run103(['103', '--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(mutating(r.calls), [], 'only probes reached the simulated host');
  assert.match(r.stderr, /DRY-RUN: would run: pct exec 103 -- env STEPPATH=\/root\/\.step step ca init --name 'Example Internal'/);
  assert.match(r.stderr, /DRY-RUN: would write .*step_provisioner_password/);
  assert.match(r.stderr, /DRY-RUN: .*planned/);
  assert.not.ok(fs.existsSync(passwordFile), 'no provisioner password on the host');
  assert.not.ok(fs.existsSync(rootCaFile));
  assert.not.ok(fs.existsSync(path.join(host.stateDir, 'stepca.json')), 'no CA made');
  assert.is(fs.statSync(stepDir).mode & 0o777, 0o755, 'STEPPATH mode untouched');
  assert.not.ok(hostsHasName(guestRead('/etc/hosts') ?? '', 'ca.internal.example.org'));
});

test('a failing step ca init fails the script, and the provisioner password still leaves 103', () => {
  host.injectExec({ tool: 'pct', guest: '103', command: ['env', 'STEPPATH=/root/.step', 'step', 'ca', 'init'], exit: 1, stderr: 'error: the simulated init failed\n', times: 1 });
  const r = run103();
  assert.is(r.code, 1);
  assert.match(r.stderr, /step-ca: step ca init failed in CT 103: .*the simulated init failed/);
  const changes = mutating(r.calls);
  const init = changes.findIndex((c) => c.includes(' step ca init '));
  const removal = changes.findIndex((c) => /^pct exec 103 -- rm -f \/root\/\.phoenix-provisioner-password\.[0-9a-f]+$/.test(c));
  assert.ok(init >= 0 && removal > init, 'removed after the failed init');
  assert.equal(fs.readdirSync(host.guestPath('103', '/root')).filter((n) => n.startsWith('.phoenix-provisioner-password')), []);
  assert.not.ok(changes.some((c) => c.includes('systemctl')), 'nothing started');
  assert.is(fs.statSync(passwordFile).mode & 0o777, 0o600, 'the host keeps its provisioner password for the next attempt');
});

// ---------------------------------------------------------------- the first run

const tempsBefore = tempDirsNow();
let first: ScriptRun;

test('first run: the CA is initialised, started, healthy, with its ACME provisioner, root on the host, marker written', () => {
  first = run103();
  assert.is(first.code, 0, first.stderr);
  const changes = mutating(first.calls);
  const initCall = changes.find((c) => c.includes(' step ca init '));
  assert.ok(initCall, 'step ca init ran');
  assert.match(initCall!, /^pct exec 103 -- env STEPPATH=\/root\/\.step step ca init --name Example Internal --dns ca\.internal\.example\.org --dns internal\.example\.org --dns \*\.internal\.example\.org --dns 127\.0\.0\.1 --dns 172\.16\.100\.11 --address :9000 --provisioner phoenix-admin --deployment-type standalone --password-file \/root\/\.step\/ca_password\.txt --provisioner-password-file \/root\/\.phoenix-provisioner-password\.[0-9a-f]+ --with-ca-url https:\/\/ca\.internal\.example\.org:9000$/);
  const tempPath = /--provisioner-password-file (\S+)/.exec(initCall!)![1]!;
  assert.ok(changes.some((c) => /^pct push 103 \S+\/ca_password\.txt \/root\/\.step\/ca_password\.txt --perms 0600$/.test(c)), 'CA password pushed 0600');
  assert.ok(changes.some((c) => c.startsWith('pct push 103 ') && c.endsWith(`${tempPath} --perms 0600`)), 'provisioner password pushed 0600');
  const order = (needle: string) => changes.findIndex((c) => c.includes(needle));
  assert.ok(order(`rm -f ${tempPath}`) > order(' step ca init '), 'the provisioner password is removed from 103 after init');
  assert.equal(changes.filter((c) => c.includes('systemctl')), [
    'pct exec 103 -- systemctl restart step-ca',
    'pct exec 103 -- systemctl restart step-ca',
  ], 'started on the new CA, restarted once for the ACME provisioner');
  assert.ok(changes.some((c) => c.includes('step ca provisioner add acme --type ACME --challenge http-01 --challenge tls-alpn-01 --ca-config /root/.step/config/ca.json')));
  assert.not.ok(changes.some((c) => c.includes(WRAPPER_PATH) || c.includes(UNIT_PATH)), 'wrapper and unit belong to the step_ca feature');
  assert.match(first.stderr, /Step-CA in CT 103 is ready \(root fingerprint [0-9a-f]{64}\)/);
});

test('first run: files and modes on the host and in 103', () => {
  assert.is(fs.statSync(stepDir).mode & 0o777, 0o700, 'STEPPATH private');
  const caPasswordFile = path.join(stepDir, 'ca_password.txt');
  assert.is(fs.statSync(caPasswordFile).mode & 0o777, 0o600);
  const caPassword = fs.readFileSync(caPasswordFile, 'utf8').trim();
  assert.ok(caPassword.length >= 40, 'a generated password');

  assert.is(fs.statSync(passwordFile).mode & 0o777, 0o600);
  assert.is(fs.statSync(path.dirname(passwordFile)).mode & 0o777, 0o700);
  const provisionerPassword = fs.readFileSync(passwordFile, 'utf8').trim();
  const record = JSON.parse(fs.readFileSync(path.join(host.stateDir, 'stepca.json'), 'utf8'));
  assert.is(record.provisioners[0].password_sha256, crypto.createHash('sha256').update(provisionerPassword).digest('hex'), 'the CA was made with the host password');
  assert.equal(record.provisioners.map((p: { name: string; type: string }) => `${p.type}:${p.name}`), ['JWK:phoenix-admin', `ACME:${ACME_PROVISIONER}`]);
  assert.equal(fs.readdirSync(host.guestPath('103', '/root')).filter((n) => n.startsWith('.phoenix-provisioner-password')), [], 'gone from 103');

  assert.is(fs.statSync(rootCaFile).mode & 0o777, 0o644);
  const rootPem = fs.readFileSync(rootCaFile, 'utf8');
  assert.is(rootPem, fs.readFileSync(path.join(stepDir, 'certs', 'root_ca.crt'), 'utf8'));
  const root = new X509Certificate(rootPem);
  assert.ok(root.ca);
  assert.is(root.subject, 'O=Example Internal\nCN=Example Internal Root CA');
  const fingerprint = root.fingerprint256.replace(/:/g, '').toLowerCase();
  assert.is(record.root_fingerprint, fingerprint);
  assert.is(guestRead(READY_MARKER), readyMarkerText(CA_URL, fingerprint));
  assert.ok(hostsHasName(guestRead('/etc/hosts') ?? '', 'ca.internal.example.org'), 'the CA name resolves in 103');
  assert.match(guestRead('/etc/hosts') ?? '', /^127\.0\.0\.1 ca\.internal\.example\.org$/m);
  assert.not.ok(JSON.stringify(JSON.parse(fs.readFileSync(path.join(stepDir, 'config', 'ca.json'), 'utf8'))).includes('x5cChain'), 'no invented claim');

  // The host can issue with what it kept: the provisioner password and the root copy.
  const crt = path.join(work, 'issued.crt');
  const issued = host.run('step', ['ca', 'certificate', 'nginx.internal.example.org', crt, path.join(work, 'issued.key'), '--provisioner', 'phoenix-admin', '--provisioner-password-file', passwordFile, '--ca-url', CA_URL, '--root', rootCaFile]);
  assert.is(issued.code, 0, issued.stderr);
  assert.ok(new X509Certificate(fs.readFileSync(crt, 'utf8')).checkIssued(new X509Certificate(fs.readFileSync(path.join(stepDir, 'certs', 'intermediate_ca.crt'), 'utf8'))));
});

test('first run: no secret in the call log, the run record, the log file, the output or a leftover temp file', () => {
  const caPassword = fs.readFileSync(path.join(stepDir, 'ca_password.txt'), 'utf8').trim();
  const provisionerPassword = fs.readFileSync(passwordFile, 'utf8').trim();
  const places = [path.join(host.stateDir, 'calls.jsonl'), recordFile, logFile];
  for (const secret of [caPassword, provisionerPassword]) {
    for (const file of places) assert.not.ok(fs.readFileSync(file, 'utf8').includes(secret), `no password in ${path.basename(file)}`);
    assert.not.ok(first.stdout.includes(secret) || first.stderr.includes(secret), 'no password in the output');
  }
  assert.equal(filesHolding(host.stateDir, caPassword, [path.join(stepDir, 'ca_password.txt')]), [], 'the CA password lives in 103 STEPPATH only');
  assert.equal(filesHolding(host.stateDir, provisionerPassword, [passwordFile]), [], 'the provisioner password lives on the host only');
  const leftovers = [...tempDirsNow()].filter((n) => !tempsBefore.has(n));
  assert.equal(leftovers, [], 'private temp directories removed');
  assert.not.ok(fs.readFileSync(logFile, 'utf8').includes('"provisioners"'), 'ca.json never logged');
});

// ---------------------------------------------------------------- later runs

test('second run changes nothing: no push, no restart, no step ca init/add, and says so', () => {
  const r = run103();
  assert.is(r.code, 0, r.stderr);
  assert.equal(mutating(r.calls), []);
  assert.match(r.stderr, /Step-CA in CT 103 is initialised and healthy; nothing to change/);
  const dry = run103(['--dry-run']);
  assert.is(dry.code, 0, dry.stderr);
  assert.equal(mutating(dry.calls), []);
  assert.not.match(dry.stderr, /DRY-RUN: would/);
});

test('a stopped step-ca is started (not restarted); nothing else happens', () => {
  host.injectExec({ tool: 'pct', guest: '103', command: ['systemctl', 'is-active'], contains: 'step-ca', exit: 3, times: 1 });
  const r = run103();
  assert.is(r.code, 0, r.stderr);
  assert.equal(mutating(r.calls), ['pct exec 103 -- systemctl start step-ca']);
});

test('a missing ACME provisioner is added once, and only that restarts step-ca', () => {
  const caJson = path.join(stepDir, 'config', 'ca.json');
  const doc = JSON.parse(fs.readFileSync(caJson, 'utf8'));
  doc.authority.provisioners = doc.authority.provisioners.filter((p: { type: string }) => p.type !== 'ACME');
  fs.writeFileSync(caJson, JSON.stringify(doc, null, '\t'));
  const r = run103();
  assert.is(r.code, 0, r.stderr);
  assert.equal(mutating(r.calls), [
    'pct exec 103 -- env STEPPATH=/root/.step step ca provisioner add acme --type ACME --challenge http-01 --challenge tls-alpn-01 --ca-config /root/.step/config/ca.json',
    'pct exec 103 -- systemctl restart step-ca',
  ]);
  assert.equal(mutating(run103().calls), []);
});

test('a failing health check fails the script with a clear error and removes the ready marker; recovery writes it back', () => {
  host.injectExec({ tool: 'pct', guest: '103', command: ['env', 'STEPPATH=/root/.step', 'step', 'ca', 'health'], exit: 1, stderr: 'client GET https://ca.internal.example.org:9000/health failed: dial tcp 127.0.0.1:9000: connect: connection refused\n' });
  const started = Date.now();
  let r: ScriptRun;
  try {
    r = run103(['103'], { PHOENIX_GUEST_TIMEOUT: '1' });
  } finally {
    host.updateInjection((inj) => void (inj.exec = []));
  }
  assert.is(r.code, 1);
  assert.ok(Date.now() - started < 20_000, 'bounded by PHOENIX_GUEST_TIMEOUT');
  assert.match(r.stderr, /step-ca in CT 103 did not pass its health check at https:\/\/ca\.internal\.example\.org:9000 within 1 s \(\d+ checks\); last answer: .*connection refused/);
  assert.match(r.stderr, /journalctl -u step-ca/);
  assert.ok(r.calls.filter((c) => c.argv.includes('health')).length >= 2, 'polled more than once');
  assert.is(guestRead(READY_MARKER), undefined, 'the marker is gone while the CA does not answer');
  assert.not.ok(mutating(r.calls).some((c) => c.includes('systemctl restart') || c.includes('push')));

  const back = run103();
  assert.is(back.code, 0, back.stderr);
  assert.equal(mutating(back.calls).map((c) => c.replace(/\/tmp\/\S+\//, '<tmp>/')), ['pct push 103 <tmp>/ca.ready /root/.step/ca.ready --perms 0644']);
  assert.ok(guestRead(READY_MARKER));
});

test('a CA whose password file is gone is reported, not re-initialised', () => {
  const file = path.join(stepDir, 'ca_password.txt');
  const aside = `${file}.aside`;
  fs.renameSync(file, aside);
  try {
    const r = run103();
    assert.is(r.code, 1);
    assert.match(r.stderr, 'has a CA (/root/.step/config/ca.json) but no /root/.step/ca_password.txt, so step-ca cannot start');
    assert.not.ok(r.calls.some((c) => line(c).includes('step ca init')));
  } finally {
    fs.renameSync(aside, file);
  }
});

test('a provisioner password file readable by others is made 0600 again', () => {
  fs.chmodSync(passwordFile, 0o644);
  const r = run103();
  assert.is(r.code, 0, r.stderr);
  assert.is(fs.statSync(passwordFile).mode & 0o777, 0o600);
  assert.match(r.stderr, /made .*step_provisioner_password private \(0600, was 644\)/);
});

// ---------------------------------------------------------------- settings from the manifests

test('settings come from the manifests: CA name, DNS names and addresses, provisioner, host paths', () => {
  const paths = manifests(path.join(work, 'etc-variant'), (hv, lxc) => {
    hv.domain_name = 'lab.test';
    hv.step_ca = { ctid: '103', root_ca_name: 'Acme Lab Root CA', dns_name: 'pki.lab.test', provisioner_name: 'ops', provisioner_password_file: '/srv/secrets/prov' };
    lxc.lxc_configs['103'].network_config.ip = '192.168.7.3/24';
    lxc.lxc_configs['103'].mount_points = [];
  });
  const config = loadConfig({ hypervisor: paths.HYPERVISOR_CONFIG_FILE!, lxc: paths.LXC_CONFIG_FILE!, vm: paths.VM_CONFIG_FILE!, stacks: paths.STACKS_CONFIG_FILE!, certificates: paths.CERTIFICATE_MANIFEST_FILE! });
  const options = { ...resolveOptions({}), hostRoot: '/' };
  const settings = stepCaSettings(config, options);
  assert.is(settings.name, 'Acme Lab');
  // CT 101 and 102 still send to 172.16.100.11:9000 (their firewall rules, CT 102's bootstrap_ca_url): an address the CA keeps answering by.
  assert.equal(settings.dnsNames, ['pki.lab.test', 'lab.test', '*.lab.test', '127.0.0.1', '192.168.7.3', '172.16.100.11']);
  assert.is(settings.caUrl, 'https://pki.lab.test:9000');
  assert.is(settings.provisioner, 'ops');
  assert.is(settings.provisionerPasswordFile, '/srv/secrets/prov');
  assert.is(settings.rootCaFile, '/etc/phoenix/ca/root_ca.crt');
  assert.is(settings.hostStepDir, undefined);
  assert.is(settings.sharedDir, undefined, 'no shared directory mounted');
  const argv = initArgv(settings, '/root/tmp-pw');
  assert.equal(argv.slice(0, 7), ['env', 'STEPPATH=/root/.step', 'step', 'ca', 'init', '--name', 'Acme Lab']);
  assert.ok(argv.join(' ').includes('--dns pki.lab.test --dns lab.test --dns *.lab.test --dns 127.0.0.1 --dns 192.168.7.3 --dns 172.16.100.11'));
  assert.not.ok(argv.join(' ').includes('example.org'), 'nothing of the example manifest is a literal');

  const mapped = stepCaSettings(loadConfig({ hypervisor: env.HYPERVISOR_CONFIG_FILE!, lxc: env.LXC_CONFIG_FILE!, vm: env.VM_CONFIG_FILE!, stacks: env.STACKS_CONFIG_FILE!, certificates: env.CERTIFICATE_MANIFEST_FILE! }), { ...options, hostRoot: '/sim/hostfs' });
  assert.is(mapped.rootCaFile, '/sim/hostfs/etc/phoenix/ca/root_ca.crt', 'host paths live under PHOENIX_HOST_ROOT');
  assert.is(mapped.hostStepDir, '/sim/hostfs/quickOS/lxc-persistent-data/103/step');
  assert.equal(mapped.warnings, []);

  const noName = manifests(path.join(work, 'etc-broken'), (hv) => {
    hv.step_ca = { ctid: '103' };
  });
  try {
    stepCaSettings(loadConfig({ hypervisor: noName.HYPERVISOR_CONFIG_FILE!, lxc: noName.LXC_CONFIG_FILE!, vm: noName.VM_CONFIG_FILE!, stacks: noName.STACKS_CONFIG_FILE!, certificates: noName.CERTIFICATE_MANIFEST_FILE! }), options);
    assert.unreachable('no CA name');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as Error).message, /phoenix_hypervisor_config\.json at \/step_ca: neither dns_name nor ca_url is set/);
  }
});

// ---------------------------------------------------------------- run-step-ca: the port and its shell twin

test('run-step-ca.mts and the installed run-step-ca.sh refuse the same missing files with exit 1', () => {
  const steppath = path.join(work, 'rsc');
  fs.mkdirSync(path.join(steppath, 'config'), { recursive: true });
  const shell = writeExecutable(work, 'run-step-ca.sh', wrapperScript());
  const both = () => {
    const base = { ...env, STEPPATH: steppath, MAIN_LOG_FILE: path.join(work, 'rsc.log') };
    const port = spawnSync(process.execPath, [RUN_STEP_CA, '--dry-run'], { env: base, encoding: 'utf8' });
    const bash = spawnSync('bash', [shell], { env: base, encoding: 'utf8' });
    return { port, bash };
  };
  let r = both();
  for (const x of [r.port, r.bash]) {
    assert.is(x.status, 1);
    assert.match(x.stderr, `${steppath}/config/ca.json not found; the CA is initialised by the container's application script`);
  }
  fs.writeFileSync(path.join(steppath, 'config', 'ca.json'), '{}');
  r = both();
  for (const x of [r.port, r.bash]) {
    assert.is(x.status, 1);
    assert.match(x.stderr, `${steppath}/ca_password.txt not found`);
  }
  fs.writeFileSync(path.join(steppath, 'ca_password.txt'), 'x', { mode: 0o600 });
  r = both();
  assert.is(r.port.status, 0, r.port.stderr);
  assert.match(r.port.stderr, `DRY-RUN: would run: /usr/bin/step-ca ${steppath}/config/ca.json --password-file ${steppath}/ca_password.txt`);
  if (!fs.existsSync('/usr/bin/step-ca')) assert.is(r.bash.status, 127, 'the shell twin execs the same binary');
  const help = spawnSync(process.execPath, [RUN_STEP_CA, '--help'], { env, encoding: 'utf8' });
  assert.is(help.status, 0);
  assert.match(help.stdout, /^Usage: run-step-ca\.sh/);
});

// ---------------------------------------------------------------- the bash layout: CT 103 mounts the shared directory

// The manifests as the bash toolkit laid them out: no mount at STEPPATH, the
// CA's directory at /etc/step-ca/ssl of CT 103 and of the containers that read
// it, and a VM whose firewall still sends certificate requests to the CA at an
// address it had before.
const OLD_CA_ADDRESS = '10.0.0.11';
const SHARED_MOUNT = { host_path: '/quickOS/lxc-persistent-data/103/ssl', container_path: '/etc/step-ca/ssl' };
const BASH_NAMES = ['ca.internal.example.org', 'internal.example.org', '*.internal.example.org', '127.0.0.1', '172.16.100.11', OLD_CA_ADDRESS];

test('bash layout: create 103 leaves the public files bash scripts read in the shared directory, no password, and a CA with the six names', () => {
  const bashHost = createSimHost();
  try {
    const base = path.join(work, 'base-bash-layout');
    const paths = manifests(path.join(base, 'etc'), (_hv, lxc, vm) => {
      lxc.lxc_configs['103'].mount_points = [SHARED_MOUNT];
      for (const id of ['101', '102']) lxc.lxc_configs[id].mount_points = [...(lxc.lxc_configs[id].mount_points ?? []), SHARED_MOUNT];
      vm.vms.find((v: { vmid: number }) => v.vmid === 1002).firewall.rules.push({ type: 'out', action: 'ACCEPT', proto: 'tcp', dest: OLD_CA_ADDRESS, port: '9000', comment: 'certificates from the CA at its earlier address' });
    });
    const bashEnv: Record<string, string> = { ...env, ...bashHost.env, ...paths, PHOENIX_BASE_DIR: base, PHOENIX_START_RETRY_DELAY_MS: '10', MAIN_LOG_FILE: path.join(work, 'bash-layout.log'), PHOENIX_RECORD: path.join(work, 'bash-layout.jsonl') };
    const lxcManager = path.join(PROJECT_ROOT, 'scripts', 'managers', 'lxc-manager.mjs');
    const created = spawnSync(process.execPath, [lxcManager, 'create', '103'], { env: bashEnv, encoding: 'utf8', timeout: 240_000 });
    assert.is(created.status, 0, created.stderr.split('\n').slice(-30).join('\n'));

    const hostfs = path.join(bashHost.stateDir, 'hostfs');
    const shared = path.join(hostfs, SHARED_MOUNT.host_path);
    const mode = (file: string) => fs.statSync(file).mode & 0o777;
    const rootPem = fs.readFileSync(path.join(hostfs, 'etc', 'phoenix', 'ca', 'root_ca.crt'), 'utf8');
    const inCa = (file: string) => fs.readFileSync(bashHost.guestPath('103', file), 'utf8');
    assert.is(inCa('/root/.step/certs/root_ca.crt'), rootPem, 'the CA lives in STEPPATH inside CT 103');
    const fingerprint = new X509Certificate(rootPem).fingerprint256.replace(/:/g, '').toLowerCase();

    // What the bash scripts read, where they read it, world-readable and nothing more.
    const expected: Record<string, string> = {
      'phoenix_root_ca.crt': rootPem,
      'phoenix_ca.crt': `${inCa('/root/.step/certs/intermediate_ca.crt')}\n${rootPem}`,
      'root_ca.fingerprint': `${fingerprint}\n`,
      'certs/root_ca.crt': rootPem,
      'ca.ready': readyMarkerText(CA_URL, fingerprint),
    };
    for (const [name, text] of Object.entries(expected)) {
      assert.is(fs.readFileSync(path.join(shared, name), 'utf8'), text, name);
      assert.is(mode(path.join(shared, name)), 0o644, `${name} 0644`);
    }
    assert.is(mode(shared) & 0o022, 0, 'no container that mounts it can replace the root it trusts');
    const chain = fs.readFileSync(path.join(shared, 'phoenix_ca.crt'), 'utf8');
    assert.ok(new X509Certificate(chain).checkIssued(new X509Certificate(rootPem)), 'the bundle starts with the intermediate, issued by the root');
    for (const secret of ['provisioner_password.txt', 'ca_password.txt', 'secrets', 'config']) assert.not.ok(fs.existsSync(path.join(shared, secret)), `no ${secret} in the shared directory`);
    const provisionerPassword = fs.readFileSync(path.join(hostfs, 'etc', 'phoenix', 'secrets', 'step_provisioner_password'), 'utf8').trim();
    const caPassword = inCa('/root/.step/ca_password.txt').trim();
    for (const secret of [provisionerPassword, caPassword]) assert.equal(filesHolding(shared, secret, []), [], 'no password anywhere in the shared directory');

    // The CA answers by the six names the bash gave it, derived from the manifests.
    const init = bashHost.calls('pct').map(line).find((c) => c.includes(' step ca init '));
    assert.ok(init?.includes(BASH_NAMES.map((n) => `--dns ${n}`).join(' ')), init);
    const caJson = JSON.parse(inCa('/root/.step/config/ca.json'));
    assert.equal(caJson.dnsNames, BASH_NAMES);

    // A second run changes nothing, there or anywhere.
    bashHost.clearCalls();
    const again = spawnSync(process.execPath, [SCRIPT, '103'], { env: bashEnv, encoding: 'utf8' });
    assert.is(again.status, 0, again.stderr);
    assert.equal(mutating(bashHost.calls()), []);
    assert.match(again.stderr, /nothing to change/);

    // A CA that stops answering takes its ready marker away from the bash scripts too; recovery puts it back.
    bashHost.injectExec({ tool: 'pct', guest: '103', command: ['env', 'STEPPATH=/root/.step', 'step', 'ca', 'health'], exit: 1, stderr: 'connection refused\n' });
    const down = spawnSync(process.execPath, [SCRIPT, '103'], { env: bashEnv, encoding: 'utf8' });
    bashHost.updateInjection((inj) => void (inj.exec = []));
    assert.is(down.status, 1);
    assert.not.ok(fs.existsSync(path.join(shared, 'ca.ready')), 'no ready marker while the CA does not answer');
    assert.is(spawnSync(process.execPath, [SCRIPT, '103'], { env: bashEnv, encoding: 'utf8' }).status, 0);
    assert.is(fs.readFileSync(path.join(shared, 'ca.ready'), 'utf8'), expected['ca.ready']);

    // A directory the bash left 0777 with its own CA in it: closed to writers, the old CA reported and its root left alone.
    fs.chmodSync(shared, 0o777);
    fs.mkdirSync(path.join(shared, 'config'));
    fs.writeFileSync(path.join(shared, 'config', 'ca.json'), '{}');
    fs.writeFileSync(path.join(shared, 'certs', 'root_ca.crt'), 'the bash CA root\n');
    fs.writeFileSync(path.join(shared, 'phoenix_root_ca.crt'), 'the bash CA root\n');
    const old = spawnSync(process.execPath, [SCRIPT, '103'], { env: bashEnv, encoding: 'utf8' });
    assert.is(old.status, 0, old.stderr);
    assert.is(mode(shared), 0o755);
    assert.match(old.stderr, /still holds a CA made by the bash toolkit \(config\/ca\.json\)/);
    assert.is(fs.readFileSync(path.join(shared, 'phoenix_root_ca.crt'), 'utf8'), rootPem, 'consumers get the root of the CA that runs');
    assert.is(fs.readFileSync(path.join(shared, 'certs', 'root_ca.crt'), 'utf8'), 'the bash CA root\n', "the bash CA's own root stays");
  } finally {
    bashHost.dispose();
  }
});

test.after(() => host.dispose());
test.run();
