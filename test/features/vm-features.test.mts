// The eight VM feature ports on the simulated host. The simulated guests run
// nothing, so what a command inside the VM answers is scripted with exec
// rules; a rule matched on a piece of a script (stdin_contains) and limited
// to one use is how a test proves that this script reached the guest.
// The state answer of the read-only check is written here from the protocol
// (`phoenix-state step <id> ok|missing`, `phoenix-state file <path> <sha256>
// <mode>:<user>:<group>`), not with the library's own helpers.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { transcript } from '../helpers/calls.mts';
import { assertGolden } from '../helpers/golden.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { clearConfigCache, loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { resolveOptions } from '../../lib/core/env.mts';
import { configureLog } from '../../lib/core/log.mts';
import { recordedCommands } from '../../lib/core/runner.mts';
import { setProcessContext, withRunContext } from '../../lib/core/context.mts';
import { ConfigError, PhoenixError, UsageError } from '../../lib/core/errors.mts';
import {
  actionScript,
  applyPlan,
  checkScript,
  dockerDaemonCertificate,
  type FeatureContext,
  type FeaturePlan,
  type FeatureResult,
} from '../../lib/guest/vm-plan.mts';
import { parseVmFeatureArgs as parseFeatureArgs } from '../../lib/features/vm/script.mts';
import * as baseSetup from '../../lib/features/vm/base-setup.mts';
import * as docker from '../../lib/features/vm/docker.mts';
import * as dockerProxy from '../../lib/features/vm/docker-proxy.mts';
import * as stepCli from '../../lib/features/vm/step-cli.mts';
import * as trustedCa from '../../lib/features/vm/trusted-ca.mts';
import * as syncCerts from '../../lib/features/vm/sync-docker-certs.mts';
import * as syncProxy from '../../lib/features/vm/sync-docker-proxy.mts';
import * as template from '../../lib/features/vm/template.mts';
import { VM_FEATURES } from '../../lib/features/index.mts';

// ---------------------------------------------------------------- fixtures

const host = createSimHost();
const work = tmpDir('phoenix-vmfeat-');
const etc = path.join(work, 'etc');
const hostfs = path.join(work, 'hostfs');
const pki = path.join(work, 'pki');
const logFile = path.join(work, 'phoenix.log');
fs.mkdirSync(etc, { recursive: true });
fs.mkdirSync(pki, { recursive: true });

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: pki, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}
// A real root CA and a daemon certificate signed by it: the ports parse both.
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'root_ca.crt', '-days', '2', '-subj', '/CN=Phoenix Test Root CA',
  '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
openssl(['req', ...EC, '-keyout', 'daemon.key', '-out', 'daemon.csr', '-subj', '/CN=docker-daemon.internal.example.org']);
fs.writeFileSync(path.join(pki, 'ext.cnf'), 'subjectAltName=DNS:docker-daemon.internal.example.org,IP:10.0.0.21\nextendedKeyUsage=serverAuth,clientAuth\n');
openssl(['x509', '-req', '-in', 'daemon.csr', '-CA', 'root_ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'daemon.crt', '-days', '1', '-extfile', 'ext.cnf']);
const ROOT_CA = fs.readFileSync(path.join(pki, 'root_ca.crt'), 'utf8');
const DAEMON_CERT = fs.readFileSync(path.join(pki, 'daemon.crt'), 'utf8');
const DAEMON_KEY = fs.readFileSync(path.join(pki, 'daemon.key'), 'utf8');
/** A line of the key's base64 body: it must never show up outside the key file. */
const KEY_BODY = DAEMON_KEY.split('\n')[1]!;
const PASSWORD = 'provisioner-Pa55-7f3c9e';
fs.writeFileSync(path.join(pki, 'provisioner_password'), PASSWORD, { mode: 0o600 });

const CERT_DIR = '/quickOS/vm-persistent-data/1001/docker/certs';
const DAEMON_ENTRY = {
  common_name: 'docker-daemon.internal.example.org',
  sans: ['docker-daemon.internal.example.org', '10.0.0.21'],
  guest_id: 1001,
  guest_type: 'vm',
  cert_type: 'server',
  cert_path: `${CERT_DIR}/server-cert.pem`,
  key_path: `${CERT_DIR}/server-key.pem`,
};
fs.mkdirSync(path.join(hostfs, CERT_DIR), { recursive: true });
fs.writeFileSync(path.join(hostfs, DAEMON_ENTRY.cert_path), DAEMON_CERT);
fs.writeFileSync(path.join(hostfs, DAEMON_ENTRY.key_path), DAEMON_KEY, { mode: 0o600 });

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
const hv = readJson(path.join(PROJECT_ROOT, 'etc', 'phoenix_hypervisor_config.json'));
// The root CA copy is a host path, so it lives under the simulated host's root.
hv.step_ca.root_ca_file = '/etc/phoenix/ca/root_ca.crt';
fs.mkdirSync(path.join(hostfs, 'etc/phoenix/ca'), { recursive: true });
fs.copyFileSync(path.join(pki, 'root_ca.crt'), path.join(hostfs, hv.step_ca.root_ca_file));
hv.step_ca.provisioner_password_file = path.join(pki, 'provisioner_password');
fs.writeFileSync(path.join(etc, 'phoenix_hypervisor_config.json'), JSON.stringify(hv, null, 2));
const vms = readJson(path.join(PROJECT_ROOT, 'etc', 'phoenix_vm_configs.json'));
vms.vms.find((v: { vmid: number }) => v.vmid === 1001).features.push('docker_proxy');
fs.writeFileSync(path.join(etc, 'phoenix_vm_configs.json'), JSON.stringify(vms, null, 2));
for (const file of ['phoenix_lxc_configs.json', 'phoenix_stacks_config.json']) fs.copyFileSync(path.join(PROJECT_ROOT, 'etc', file), path.join(etc, file));
const certs = readJson(path.join(PROJECT_ROOT, 'etc', 'certificate-manifest.json')) as unknown as object[];
fs.writeFileSync(path.join(etc, 'certificate-manifest.json'), JSON.stringify([...certs, DAEMON_ENTRY], null, 2));
const NO_DAEMON_CERTS = path.join(work, 'certificate-manifest-without-docker.json');
fs.writeFileSync(NO_DAEMON_CERTS, JSON.stringify(certs, null, 2));

const baseEnv: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: work,
  PHOENIX_HOST_ROOT: hostfs,
  MAIN_LOG_FILE: logFile,
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
};
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_RECORD', 'PHOENIX_DEBUG']) delete baseEnv[key];

// In-process runs see the same environment as the spawned scripts.
for (const key of Object.keys(process.env)) if (!(key in baseEnv)) delete process.env[key];
Object.assign(process.env, baseEnv);
const logged: string[] = [];
configureLog({ file: logFile, write: (line) => void logged.push(line), debug: false });

function context(env: Record<string, string> = {}): FeatureContext {
  clearConfigCache();
  const merged = { ...process.env, ...env };
  return { config: loadConfig(resolveConfigPaths({}, merged)), options: resolveOptions(merged), pollMs: 50 };
}

// The VMs exist once for the whole file; each test starts from a clean
// injection and call log.
const image = host.run('pvesm', ['path', 'local:iso/noble-server-cloudimg-amd64.img']).stdout.trim();
for (const [vmid, name] of [['1001', 'portainer'], ['1002', 'worker-1']] as const) {
  for (const args of [['create', vmid, '--name', name, '--agent', 'enabled=1', '--scsi0', `quickOS-vm-disks:0,import-from=${image}`], ['start', vmid]]) {
    const r = host.run('qm', args);
    if (r.code !== 0) throw new Error(`qm ${args.join(' ')}: ${r.stderr}`);
  }
}

test.before.each(() => {
  host.setInjection({});
  host.clearCalls();
  setProcessContext({ dryRun: false });
  logged.length = 0;
});

// ---------------------------------------------------------------- the guest's answers

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** The check's answer: everything in place except the steps named in `missing`. */
function answer(plan: FeaturePlan, missing: readonly string[] = []): string {
  const lines: string[] = [];
  for (const step of plan.steps) {
    const gone = missing.includes(step.id);
    if (step.kind === 'file') {
      lines.push(gone ? `phoenix-state file ${step.path} absent` : `phoenix-state file ${step.path} ${sha(step.content)} ${step.mode.toString(8)}:root:root`);
    } else if (step.kind === 'require' || (step.kind === 'command' && step.probe !== undefined)) {
      lines.push(`phoenix-state step ${step.id} ${gone ? 'missing' : 'ok'}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const checkMarker = (plan: FeaturePlan) => `# phoenix ${plan.feature}: check`;
const changeable = (plan: FeaturePlan) => plan.steps.filter((s) => s.kind !== 'require').map((s) => s.id);

/** A VM that has none of it yet: the first check says so, the verifying one finds it all. */
function sceneFresh(plan: FeaturePlan, stillMissing: readonly string[] = []): void {
  host.injectExec({ tool: 'qm', guest: plan.guest, stdin_contains: checkMarker(plan), times: 1, stdout: answer(plan, changeable(plan)) });
  host.injectExec({ tool: 'qm', guest: plan.guest, stdin_contains: checkMarker(plan), stdout: answer(plan, stillMissing) });
}

function sceneEquipped(plan: FeaturePlan): void {
  host.injectExec({ tool: 'qm', guest: plan.guest, stdin_contains: checkMarker(plan), stdout: answer(plan) });
}

/** How many more uses the exec rule matching `marker` has left (0: the script reached the guest). */
function usesLeft(marker: string): number | undefined {
  const injection = readJson(path.join(host.stateDir, 'inject.json'));
  return (injection.exec as { stdin_contains?: string; times?: number }[]).find((r) => r.stdin_contains === marker)?.times;
}

const guestExecs = (calls: CallRecord[] = host.calls('qm')) => calls.filter((c) => c.argv[0] === 'guest' && c.argv[1] === 'exec');

function script(name: string, args: string[], env: Record<string, string> = {}) {
  const file = path.join(PROJECT_ROOT, 'scripts', 'vm_features', `${name}.mjs`);
  const r = spawnSync(process.execPath, [file, ...args], { env: { ...baseEnv, ...env }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface FeatureCase {
  feature: string;
  script: string;
  vmid: string;
  plan: (ctx: FeatureContext) => FeaturePlan | Promise<FeaturePlan | undefined>;
  install: (vmid: string, ctx: FeatureContext) => Promise<FeatureResult>;
  /** A piece of the script that does the feature's main work. */
  marker: string;
}

const CASES: FeatureCase[] = [
  { feature: 'base_setup', script: 'feature_install_base_setup', vmid: '1002', plan: (c) => baseSetup.plan('1002', c), install: baseSetup.install, marker: 'sysctl -p /etc/sysctl.d/99-disable-ipv6.conf' },
  { feature: 'trusted_ca', script: 'feature_install_trusted_ca', vmid: '1002', plan: (c) => trustedCa.plan('1002', c), install: trustedCa.install, marker: '\nupdate-ca-certificates' },
  { feature: 'step_cli', script: 'feature_install_step_cli', vmid: '1002', plan: (c) => stepCli.plan('1002', c), install: stepCli.install, marker: 'apt_get install --no-install-recommends step-cli' },
  { feature: 'docker', script: 'feature_install_docker', vmid: '1001', plan: (c) => docker.plan('1001', c), install: docker.install, marker: 'apt_get install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin' },
  { feature: 'docker_proxy', script: 'feature_install_docker_proxy', vmid: '1001', plan: (c) => dockerProxy.plan('1001', c), install: dockerProxy.install, marker: 'docker context create phoenix --docker' },
  { feature: 'sync_docker_certs', script: 'feature_sync_docker_certs', vmid: '1001', plan: (c) => syncCerts.plan('1001', c), install: syncCerts.install, marker: 'then systemctl restart docker.service; fi' },
  { feature: 'sync_docker_proxy', script: 'feature_sync_docker_proxy', vmid: '1001', plan: (c) => syncProxy.plan('1001', c), install: syncProxy.install, marker: 'systemctl daemon-reload\nsystemctl restart docker.service' },
  { feature: 'template', script: 'feature_template', vmid: '1002', plan: (c) => template.plan('1002', c), install: template.install, marker: 'logger -t phoenix' },
];

async function planOf(c: FeatureCase, ctx = context()): Promise<FeaturePlan> {
  const plan = await c.plan(ctx);
  if (!plan) throw new Error(`${c.feature}: no plan`);
  return plan;
}

// ---------------------------------------------------------------- plans (pure)

test('docker plan: mutual TLS from the manifests, key 0600, nothing hard-coded', async () => {
  const plan = await docker.plan('1001', context());
  const file = (id: string) => plan.steps.find((s) => s.id === id && s.kind === 'file') as { content: string; mode: number; path: string } | undefined;
  const daemon = JSON.parse(file('daemon-json')!.content);
  assert.is(daemon.tls, true);
  assert.is(daemon.tlsverify, true, 'clients must present a certificate (the bash daemon set tls without tlsverify)');
  assert.is(daemon.tlscacert, '/etc/docker/tls/ca.pem');
  assert.ok(daemon.hosts.includes('tcp://0.0.0.0:2376'));
  assert.equal(daemon.dns, ['10.0.0.5'], 'the VM nameserver of the manifest, not 10.0.0.13');
  assert.is(file('tls-key')!.mode, 0o600);
  assert.is(file('tls-key')!.content, DAEMON_KEY);
  assert.is(file('tls-cert')!.content, DAEMON_CERT);
  assert.is(file('tls-ca')!.content, ROOT_CA);
  assert.match(file('systemd-drop-in')!.content, /^ExecStart=$/m);
  const text = JSON.stringify(plan);
  assert.not.match(text, /DOCKER_HOST|10\.0\.0\.111|10\.0\.0\.13|chmod 644/);
  assert.equal(plan.params, [['username', 'phoenix_user']]);
  for (const step of plan.steps) {
    if (step.kind === 'command') assert.not.ok(actionScript(plan, step).includes('phoenix_user'), `${step.id}: manifest values travel as arguments`);
  }
  assert.not.ok(checkScript(plan).includes('phoenix_user'));
  const restart = plan.steps.find((s) => s.id === 'docker-restart');
  assert.equal(restart?.kind === 'command' ? restart.after : [], ['tls-ca', 'tls-cert', 'tls-key', 'daemon-json', 'systemd-drop-in']);
});

test('docker plan without a daemon certificate: the daemon keeps to its socket', async () => {
  const plan = await docker.plan('1002', context());
  assert.not.ok(plan.steps.some((s) => s.id.startsWith('tls-')));
  const daemon = JSON.parse((plan.steps.find((s) => s.id === 'daemon-json') as { content: string }).content);
  assert.equal(daemon.hosts, ['unix:///var/run/docker.sock']);
  assert.is(daemon.tls, undefined);
});

test('the daemon certificate is chosen from the manifest by guest and name, never a neighbour', () => {
  const ctx = context();
  assert.is(dockerDaemonCertificate(ctx, '1001')?.common_name, 'docker-daemon.internal.example.org');
  assert.is(dockerDaemonCertificate(ctx, '1002'), undefined, "1002 never gets 1001's identity (the bash staged 1001's daemon certificate for 1002 too)");
  assert.is(dockerProxy.endpointFor(dockerDaemonCertificate(ctx, '1001')!), 'tcp://10.0.0.21:2376');
  const twice = { ...ctx, config: { ...ctx.config, certificates: [...ctx.config.certificates, { ...DAEMON_ENTRY, guest_type: 'vm' as const, cert_type: 'server' as const, common_name: 'docker.internal.example.org' }] } };
  assert.throws(() => dockerDaemonCertificate(twice, '1001'), (e: unknown) => e instanceof ConfigError);
});

test('every generated script is valid bash', async () => {
  const ctx = context();
  for (const c of CASES) {
    const plan = await planOf(c, ctx);
    const scripts = [checkScript(plan), ...plan.steps.flatMap((s) => (s.kind === 'command' ? [actionScript(plan, s)] : []))];
    for (const text of scripts) {
      const r = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
      assert.is(r.status, 0, `${c.feature}: ${r.stderr}\n${text}`);
    }
  }
});

test('the read-only checks run under real bash and answer for every step and file', async () => {
  // Run here, on the test machine: the probes only read. HOME is a scratch
  // directory so the docker CLI, where installed, reads an empty config.
  const ctx = context();
  const home = tmpDir('phoenix-vmfeat-home-');
  for (const c of CASES) {
    const plan = await planOf(c, ctx);
    const args = ['-s', '--', 'check', ...(plan.params ?? []).map(([, v]) => v)];
    const r = spawnSync('bash', args, { input: checkScript(plan), encoding: 'utf8', env: { HOME: home }, timeout: 20_000 });
    assert.is(r.status, 0, `${c.feature}: ${r.stderr}`);
    const expected = plan.steps.flatMap((s) =>
      s.kind === 'file' ? [new RegExp(`^phoenix-state file ${s.path} (absent|[0-9a-f]{64} \\d+:\\S+:\\S+)$`, 'm')] : s.kind !== 'host' && s.probe !== undefined ? [new RegExp(`^phoenix-state step ${s.id} (ok|missing)$`, 'm')] : [],
    );
    for (const re of expected) assert.match(r.stdout, re, `${c.feature}: ${re}`);
    assert.is(r.stdout.trim().split('\n').length, expected.length, `${c.feature}: one line each\n${r.stdout}`);
  }
});

test('arguments: <vmid> as the bash, usage errors exit 1', () => {
  assert.equal(parseFeatureArgs(['1001'], 'x.sh'), { vmid: '1001', dryRun: false });
  assert.equal(parseFeatureArgs(['--dry-run', '1001'], 'x.sh'), { vmid: '1001', dryRun: true });
  for (const bad of [[], ['abc'], ['12']]) {
    assert.throws(() => parseFeatureArgs(bad, 'x.sh'), (e: unknown) => e instanceof UsageError && e.exitCode === 1);
  }
  const r = script('feature_install_trusted_ca', []);
  assert.is(r.code, 1);
  assert.match(r.stderr, /missing VMID; usage: feature_install_trusted_ca\.sh <VMID>/);
  assert.equal(host.calls(), []);
  const unknown = script('feature_install_base_setup', ['4242']);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /no VM with vmid 4242/);
});

test('vm-manager can call every listed feature in-process', () => {
  assert.equal([...VM_FEATURES].sort(), ['base_setup', 'docker', 'docker_proxy', 'step_cli', 'trusted_ca']);
});

// ---------------------------------------------------------------- each feature: fresh, equipped, dry-run

for (const c of CASES) {
  test(`${c.feature}: a fresh VM gets the install (script, exit 0, golden transcript)`, async () => {
    const plan = await planOf(c);
    sceneFresh(plan);
    host.injectExec({ tool: 'qm', guest: c.vmid, stdin_contains: c.marker, times: 1 });
    const r = script(c.script, [c.vmid]);
    assert.is(r.code, 0, r.stderr);
    assert.is(usesLeft(c.marker), 0, 'the main script reached the guest');
    assert.is(usesLeft(checkMarker(plan)), 0, 'checked, then verified');
    assert.match(r.stderr, new RegExp(`${c.feature}: done on VM ${c.vmid}`));
    assertGolden(`vm-features/${c.feature}-fresh.txt`, transcript(host.calls()));
  });

  test(`${c.feature}: an equipped VM gets the check and nothing else`, async () => {
    const ctx = context();
    const plan = await planOf(c, ctx);
    sceneEquipped(plan);
    const mark = recordedCommands().length;
    const result = await c.install(c.vmid, ctx);
    assert.is(result.outcome, 'unchanged');
    assert.equal(recordedCommands().slice(mark).filter((r) => r.mutating), []);
    const calls = host.calls();
    assert.is(calls.length, 1);
    assert.equal(calls[0]!.argv.slice(0, 3), ['guest', 'exec', c.vmid]);
    assert.ok(calls[0]!.argv.includes('check'));
  });

  test(`${c.feature}: dry-run probes and sends nothing mutating`, async () => {
    const ctx = context();
    const plan = await planOf(c, ctx);
    sceneFresh(plan);
    const mark = recordedCommands().length;
    const result = await withRunContext({ dryRun: true }, () => c.install(c.vmid, ctx));
    assert.is(result.outcome, 'installed');
    assert.ok(result.changes.length > 0);
    const recorded = recordedCommands().slice(mark);
    assert.ok(recorded.some((r) => r.mutating));
    assert.ok(recorded.every((r) => !r.mutating || r.skipped), 'every change is only printed');
    assert.is(host.calls().length, 1, 'only the read-only check reached the host');
    assert.ok(logged.some((l) => l.includes('DRY-RUN: would run: qm guest exec')));
  });
}

// ---------------------------------------------------------------- failures and slow guests

test('a failing step stops the feature, names the step and passes its exit code through', async () => {
  sceneFresh(await docker.plan('1001', context()));
  host.injectExec({ tool: 'qm', guest: '1001', stdin_contains: CASES[3]!.marker, exit: 100, stderr: 'E: Unable to locate package docker-ce\n' });
  const r = script('feature_install_docker', ['1001']);
  assert.is(r.code, 100);
  assert.match(r.stderr, /docker: step 'docker-packages' \(install docker-ce .*\) failed in VM 1001 with exit code 100: E: Unable to locate package docker-ce/);
  assert.not.ok(guestExecs().some((c) => c.argv.includes(docker.TLS_KEY)), 'nothing after the failed step ran');
});

test('base_setup: ufw that will not stop only warns, as in the bash', async () => {
  const ctx = context();
  const plan = baseSetup.plan('1002', ctx);
  host.injectExec({ tool: 'qm', guest: '1002', stdin_contains: checkMarker(plan), stdout: answer(plan, ['ufw-disabled']) });
  host.injectExec({ tool: 'qm', guest: '1002', stdin_contains: 'ufw disable', exit: 1, stderr: 'ERROR: problem running ufw-init\n' });
  const result = await baseSetup.install('1002', ctx);
  assert.is(result.outcome, 'unchanged');
  assert.equal(result.warnings, ['disable ufw']);
  assert.ok(logged.some((l) => /\[WARN\].*step 'ufw-disabled' \(disable ufw\) failed in VM 1002 with exit code 1: ERROR: problem running ufw-init/.test(l)));
});

test('--dry-run on the command line: the plan is printed, no lock, only the check ran', async () => {
  sceneFresh(await docker.plan('1001', context()));
  const r = script('feature_install_docker', ['--dry-run', '1001']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /DRY-RUN: would run: qm guest exec 1001 --timeout 30 --pass-stdin 1 -- install -D -m 0600 -o root -g root \/dev\/stdin \/etc\/docker\/tls\/key\.pem \(with \d+ bytes on stdin\)/);
  assert.match(r.stderr, /docker: DRY-RUN: 11 change\(s\) planned on VM 1001/);
  assert.is(guestExecs().length, 1);
  assert.not.ok(fs.existsSync(baseEnv.PHOENIX_LOCK_FILE!));
});

test('a step that leaves the VM short of the state is an error, not a success', async () => {
  const ctx = context();
  const plan = await stepCli.plan('1002', ctx);
  sceneFresh(plan, ['step-cli']);
  try {
    await stepCli.install('1002', ctx);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PhoenixError);
    assert.match((err as Error).message, /step_cli: VM 1002 still lacks 'step-cli' after the changes/);
  }
});

test('a guest command slower than the agent wait is polled to its real end', async () => {
  const ctx = context();
  const plan = await stepCli.plan('1002', ctx);
  host.updateInjection((inj) => void (inj.time_scale = 0.01));
  sceneFresh(plan);
  host.injectExec({ tool: 'qm', guest: '1002', stdin_contains: CASES[2]!.marker, times: 1, duration_ms: 45_000, exit: 0 });
  const result = await stepCli.install('1002', ctx);
  assert.is(result.outcome, 'installed');
  assert.ok(host.calls('qm').some((c) => c.argv[1] === 'exec-status'), 'exec-status was polled');

  host.setInjection({ time_scale: 0.01 });
  host.clearCalls();
  sceneFresh(plan);
  host.injectExec({ tool: 'qm', guest: '1002', stdin_contains: CASES[2]!.marker, duration_ms: 45_000, exit: 100, stderr: 'E: Sub-process /usr/bin/dpkg returned an error code (1)\n' });
  try {
    await stepCli.install('1002', ctx);
    assert.unreachable('a command still running must not count as a success');
  } catch (err) {
    assert.instance(err, PhoenixError);
    assert.is((err as PhoenixError).exitCode, 100);
    assert.match((err as Error).message, /step 'step-cli'/);
  }
  assert.ok(host.calls('qm').some((c) => c.argv[1] === 'exec-status'));
});

test('a VM whose agent does not answer: a clear error and nothing attempted', async () => {
  host.injectFailure({ tool: 'qm', argv: ['guest', 'exec', '1002'], exit: 255, stderr: 'QEMU guest agent is not running\n' });
  const r = script('feature_install_base_setup', ['1002']);
  assert.is(r.code, 255);
  assert.match(r.stderr, /cannot reach VM 1002 through the guest agent: .*QEMU guest agent is not running/);
  assert.match(r.stderr, /hint: the VM must be running with qemu-guest-agent/);
  assert.is(guestExecs().length, 1);
});

// ---------------------------------------------------------------- secrets and the sync helpers

test('no key material and no password in calls.jsonl, the record or the log', async () => {
  const plan = await docker.plan('1001', context());
  sceneFresh(plan);
  const record = path.join(work, 'record.jsonl');
  fs.rmSync(logFile, { force: true });
  const r = script('feature_install_docker', ['1001'], { PHOENIX_RECORD: record, PHOENIX_DEBUG: 'true' });
  assert.is(r.code, 0, r.stderr);
  const keyCall = guestExecs().find((c) => c.argv.at(-1) === docker.TLS_KEY);
  assert.ok(keyCall, 'the key was sent');
  assert.equal(keyCall!.argv.slice(-10), ['--', 'install', '-D', '-m', '0600', '-o', 'root', '-g', 'root', '/dev/stdin'].concat(docker.TLS_KEY).slice(-10));
  assert.is(keyCall!.stdin_bytes, Buffer.byteLength(DAEMON_KEY), 'on stdin, whole');
  const places = {
    'calls.jsonl': fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8'),
    record: fs.readFileSync(record, 'utf8'),
    log: fs.readFileSync(logFile, 'utf8'),
    output: r.stdout + r.stderr,
  };
  for (const [where, text] of Object.entries(places)) {
    assert.ok(text.length > 0, `${where} is not empty`);
    for (const secret of [KEY_BODY, 'PRIVATE KEY', PASSWORD]) assert.not.ok(text.includes(secret), `${secret.slice(0, 12)}… in ${where}`);
  }
});

test('sync_docker_certs: re-issues nothing, pushes the files, restarts only after a change', async () => {
  const ctx = context();
  const plan = (await syncCerts.plan('1001', ctx))!;
  assert.equal(plan.steps.map((s) => s.id), ['tls-ca', 'tls-cert', 'tls-key', 'docker-restart']);
  // Only the key differs in the VM: it alone is pushed, then docker restarts.
  host.injectExec({ tool: 'qm', guest: '1001', stdin_contains: checkMarker(plan), times: 1, stdout: answer(plan, ['tls-key']) });
  host.injectExec({ tool: 'qm', guest: '1001', stdin_contains: checkMarker(plan), stdout: answer(plan) });
  host.injectExec({ tool: 'qm', guest: '1001', stdin_contains: CASES[5]!.marker, times: 1 });
  const result = await syncCerts.install('1001', ctx);
  assert.equal(result.changes.length, 2);
  assert.is(usesLeft(CASES[5]!.marker), 0, 'restarted (not reloaded) after the change');
  const sent = guestExecs().filter((c) => c.argv.includes('/dev/stdin')).map((c) => c.argv.at(-1));
  assert.equal(sent, [docker.TLS_KEY]);
  assert.not.ok(host.calls().some((c) => c.argv.join(' ').includes('certificate-renewal-manager')));

  host.clearCalls();
  const none = script('feature_sync_docker_certs', ['1002']);
  assert.is(none.code, 0, none.stderr);
  assert.match(none.stderr, /nothing to do on VM 1002: certificate-manifest\.json has no Docker daemon certificate/);
  assert.equal(host.calls(), []);
});

test('sync_docker_proxy acts on the VM, refreshes the docker context, refuses without the TLS files', async () => {
  const ctx = context();
  const plan = syncProxy.plan('1001', ctx);
  assert.ok(plan.steps.some((s) => s.id === 'docker-context'), '1001 lists docker_proxy');
  // TLS files missing in the VM: enabling the endpoint would stop dockerd.
  host.injectExec({ tool: 'qm', guest: '1001', stdin_contains: checkMarker(plan), stdout: answer(plan, ['tls-files-present', 'daemon-json']) });
  const mark = recordedCommands().length;
  try {
    await syncProxy.install('1001', ctx);
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /sync_docker_proxy: VM 1001: Docker's TLS files are not in \/etc\/docker\/tls/);
  }
  assert.equal(recordedCommands().slice(mark).filter((r) => r.mutating), []);
  // Without a daemon certificate the endpoint stays closed.
  const plain = syncProxy.plan('1001', context({ CERTIFICATE_MANIFEST_FILE: NO_DAEMON_CERTS }));
  const daemon = JSON.parse((plain.steps.find((s) => s.id === 'daemon-json') as { content: string }).content);
  assert.equal(daemon.hosts, ['unix:///var/run/docker.sock']);
  assert.not.ok(plain.steps.some((s) => s.id === 'docker-context'));
});

test('docker_proxy without a daemon certificate is a configuration error', () => {
  const r = script('feature_install_docker_proxy', ['1001'], { CERTIFICATE_MANIFEST_FILE: NO_DAEMON_CERTS });
  assert.is(r.code, 1);
  assert.match(r.stderr, /needs a Docker daemon certificate/);
  assert.equal(host.calls(), []);
});

test('plans with unsafe constants are refused before anything runs', async () => {
  const ctx = context();
  const bad: FeaturePlan = { feature: 'x', kind: 'vm', guest: '1002', steps: [{ kind: 'file', id: 'f', title: 'f', path: '/etc/$(reboot)', content: '', mode: 0o644 }] };
  try {
    await applyPlan(bad, ctx);
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /internal: file path/);
  }
  assert.equal(host.calls(), []);
});

test.run();
