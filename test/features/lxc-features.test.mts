// The LXC feature ports on the simulated Proxmox host. For every feature: a
// fresh container gets the install (the commands sent, the guest scripts
// identified by their exact size, key lines of each checked by the
// simulator's stdin matching), an equipped container gets no mutating call,
// dry-run sends nothing mutating, and a failing step fails with the step and
// the command named. The scripts themselves are run end to end for their
// argument contract, exit codes, dry-run and the secrets that must not leak.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { assertGolden } from '../helpers/golden.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { configureLog } from '../../lib/core/log.mts';
import { recordedCommands, type RecordedCommand } from '../../lib/core/runner.mts';
import { setProcessContext, withRunContext } from '../../lib/core/context.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { resolveOptions } from '../../lib/core/env.mts';
import { CommandError, PhoenixError } from '../../lib/core/errors.mts';
import { guestFile, guestScript, scriptName, type FeatureContext, type FeatureResult } from '../../lib/guest/container.mts';
import { applyPlan, type FeaturePlan } from '../../lib/guest/feature-plan.mts';
import * as pythonApi from '../../lib/features/lxc/python-api-service.mts';
import { parseLxcFeatureArgs } from '../../lib/features/lxc/script.mts';
import { LXC_FEATURES as PORTED_FEATURES, loadFeature as loadPort } from '../../lib/features/index.mts';

const loadFeature = (name: string) => loadPort('lxc', name);
import * as nvidia from '../../lib/features/lxc/nvidia.mts';
import * as traefik from '../../lib/features/lxc/traefik.mts';
import * as stepCa from '../../lib/features/lxc/step-ca.mts';
import * as ollama from '../../lib/features/lxc/ollama.mts';
import { BASE_PACKAGES } from '../../lib/features/lxc/base-setup.mts';
import { desiredDaemonConfig } from '../../lib/features/lxc/docker.mts';
import { dockerRunArgs } from '../../lib/features/lxc/portainer.mts';
import { caUrl, parseRootCa, STEP_CA_ROOT_CERT } from '../../lib/guest/root-ca.mts';
import { ROOT_CA, ROOT_CA_FINGERPRINT } from '../helpers/fixture-ca.mts';

// ---------------------------------------------------------------- fixtures

/** A second root: the CA container's certificate after a re-initialisation. */
const OTHER_ROOT_CA = `-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUB21W9arB0bKIMwVeLETODamv0IEwCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNT3RoZXIgUm9vdCBDQTAgFw0yNjExMjkxNDQ4NDZaGA8yMTI2
MTEwNTE0NDg0NlowGDEWMBQGA1UEAwwNT3RoZXIgUm9vdCBDQTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABFcb832rqc5kVj846wr/854nNpk5VWcIhE3mOHmJr6/K
CrfBHjkPVBmPpXUUB14dwNXS2G8kAUdYZp5swuW2nVCjUzBRMB0GA1UdDgQWBBRi
JvitNA35/3PmrerLPDxk3tRchTAfBgNVHSMEGDAWgBRiJvitNA35/3PmrerLPDxk
3tRchTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIEH0ppS6mJSU
JagpZ9hZ45DIyKwhp3/AZbAmwdkEFDgnAiEAvnMCryRvawRxtvdbLr9q/n65XwHF
j9y3Sde4F/yBs3o=
-----END CERTIFICATE-----
`;
/** Secrets that exist on the host and must never show in a call, a record or a log line. */
const PROVISIONER_PASSWORD = 'Provisioner-Pa55-never-leaves';
const KEY_MATERIAL = 'PHOENIXTESTKEYMATERIALxyz';
const fakeKey = (tag: string) => `-----BEGIN EC PRIVATE KEY-----\n${KEY_MATERIAL}${tag}\n-----END EC PRIVATE KEY-----\n`;
const fakeCert = (tag: string) => `-----BEGIN CERTIFICATE-----\nTESTCERT${tag}\n-----END CERTIFICATE-----\n`;

const NV_REPO = 'https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64/';
const NV_VERSION = '580.76.05';
const NV_RUNFILE = `https://us.download.nvidia.com/XFree86/Linux-x86_64/${NV_VERSION}/NVIDIA-Linux-x86_64-${NV_VERSION}.run`;
// Traefik's published JSON schema for the static configuration (copied from
// its project): the YAML Phoenix generates must validate against it.
const TRAEFIK_SCHEMA = path.join(PROJECT_ROOT, 'test', 'fixtures', 'traefik', 'traefik-v3.json');
const TEMPLATE = 'fastData-shared-iso:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst';

const host = createSimHost();
const work = tmpDir('phoenix-features-');
const base = path.join(work, 'base');
const etcDir = path.join(work, 'etc');
const rootCaFile = path.join(work, 'ca', 'root_ca.crt');
const passwordFile = path.join(work, 'secrets', 'step_provisioner_password');
const certsDir = path.join(work, 'lxc-data', '102', 'certs');
const issuedDir = path.join(work, 'issued');
const logFile = path.join(work, 'phoenix.log');
const recordFile = path.join(work, 'record.jsonl');

function readExample(file: string): any {
  return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', file), 'utf8'));
}

function writeManifests(): Record<string, string> {
  fs.mkdirSync(etcDir, { recursive: true });
  const hv = readExample('phoenix_hypervisor_config.json');
  hv.step_ca = { ...hv.step_ca, root_ca_file: rootCaFile, provisioner_password_file: passwordFile };
  const lxc = readExample('phoenix_lxc_configs.json');
  Object.assign(lxc, { nvidia_driver_version: NV_VERSION, nvidia_repo_url: NV_REPO, nvidia_runfile_url: NV_RUNFILE });
  lxc.lxc_configs['102'].mount_points = [{ host_path: certsDir, container_path: '/etc/traefik/certs', owner_uid: 0, owner_gid: 0 }];
  let n = 30;
  const guest = (name: string, more: Record<string, unknown>) => ({
    name,
    memory_mb: 2048,
    cores: 2,
    storage_pool: 'quickOS-lxc-disks',
    storage_size_gb: 16,
    network_config: { name: 'eth0', bridge: 'vmbr100', ip: `172.16.100.${n++}/24`, gw: '172.16.100.1' },
    ...more,
  });
  Object.assign(lxc.lxc_configs, {
    '911': guest('cuda-template', { is_template: true, clone_from_ctid: '900', features: ['nvidia'], gpu_assignment: '0' }),
    '912': guest('gpu-one', { clone_from_ctid: '900', features: ['nvidia'], gpu_assignment: '1' }),
    '801': guest('vllm-model', { clone_from_ctid: '911', features: ['vllm'], gpu_assignment: '0' }),
    '914': guest('ollama', { clone_from_ctid: '900', features: ['ollama'] }),
    '920': guest('docker-host', { clone_from_ctid: '900', features: ['docker'] }),
    '921': guest('docker-gpu', { clone_from_ctid: '911', features: ['docker'], gpu_assignment: '0' }),
    '950': guest('portainer-server', { clone_from_ctid: '920', features: ['portainer'], portainer_role: 'server' }),
    '951': guest('portainer-agent', { clone_from_ctid: '920', features: ['portainer'], portainer_role: 'agent' }),
    '960': guest('python-api', { clone_from_ctid: '900', features: ['python_api_service'] }),
  });
  const certificates = readExample('certificate-manifest.json').filter((e: { guest_id?: number }) => e.guest_id !== 102);
  certificates.push(
    { common_name: 'traefik.internal.example.org', guest_id: 102, guest_type: 'lxc', cert_type: 'server', cert_path: `${certsDir}/traefik.crt`, key_path: `${certsDir}/traefik.key` },
    { common_name: 'traefik-swarm-client', guest_id: 102, guest_type: 'lxc', cert_type: 'client', cert_path: `${issuedDir}/client-cert.pem`, key_path: `${issuedDir}/client-key.pem` },
  );
  const files: Record<string, unknown> = {
    'phoenix_hypervisor_config.json': hv,
    'phoenix_lxc_configs.json': lxc,
    'phoenix_vm_configs.json': readExample('phoenix_vm_configs.json'),
    'phoenix_stacks_config.json': readExample('phoenix_stacks_config.json'),
    'certificate-manifest.json': certificates,
  };
  for (const [name, doc] of Object.entries(files)) fs.writeFileSync(path.join(etcDir, name), `${JSON.stringify(doc, null, 2)}\n`);
  return {
    HYPERVISOR_CONFIG_FILE: path.join(etcDir, 'phoenix_hypervisor_config.json'),
    LXC_CONFIG_FILE: path.join(etcDir, 'phoenix_lxc_configs.json'),
    VM_CONFIG_FILE: path.join(etcDir, 'phoenix_vm_configs.json'),
    STACKS_CONFIG_FILE: path.join(etcDir, 'phoenix_stacks_config.json'),
    CERTIFICATE_MANIFEST_FILE: path.join(etcDir, 'certificate-manifest.json'),
  };
}

const env: Record<string, string> = {
  ...host.env,
  ...writeManifests(),
  PHOENIX_BASE_DIR: base,
  MAIN_LOG_FILE: logFile,
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
  PHOENIX_RECORD: recordFile,
  PHOENIX_PVE_LOCK_DELAY_MS: '10',
  // The fixture's host files (root CA copy, bind-mount sources) are absolute
  // paths in the test's own temp directory, not under the simulated hostfs.
  PHOENIX_HOST_ROOT: '/',
};
delete env.PHOENIX_DRY_RUN;
delete env.PHOENIX_DEBUG;
Object.assign(process.env, env);
delete process.env.PHOENIX_DRY_RUN;
fs.mkdirSync(path.dirname(passwordFile), { recursive: true, mode: 0o700 });
fs.writeFileSync(passwordFile, `${PROVISIONER_PASSWORD}\n`, { mode: 0o600 });
fs.mkdirSync(path.join(base, 'cache'), { recursive: true });
fs.writeFileSync(path.join(base, 'cache', `NVIDIA-Linux-x86_64-${NV_VERSION}.run`), '#!/bin/sh\n# stand-in runfile\n');

const logLines: string[] = [];
configureLog({ file: logFile, write: (line) => void logLines.push(line), debug: false, color: false });
setProcessContext({ dryRun: false, recordFile });
nvidia.deviceWait.timeoutMs = 400;
nvidia.deviceWait.pollMs = 100;
const config = loadConfig(resolveConfigPaths());
const context = (extra: Partial<FeatureContext> = {}): FeatureContext => ({ config, options: resolveOptions(), ...extra });

// ---------------------------------------------------------------- helpers

function makeCt(ctid: string, options: { mount?: [string, string] } = {}): void {
  const args = ['create', ctid, TEMPLATE, '--hostname', `ct${ctid}`, '--storage', 'quickOS-lxc-disks', '--unprivileged', '1'];
  if (options.mount) {
    fs.mkdirSync(options.mount[0], { recursive: true });
    // As lxc-manager leaves it for a mount owned by the container's root
    // (owner_uid/owner_gid 0): an unprivileged CT writes there only as host 100000.
    fs.chownSync(options.mount[0], 100000, 100000);
    args.push('--mp0', `${options.mount[0]},mp=${options.mount[1]}`);
  }
  for (const argv of [args, ['start', ctid]]) {
    const r = host.run('pct', argv);
    assert.is(r.code, 0, `pct ${argv.join(' ')}: ${r.stderr}`);
  }
}

function guestWrite(ctid: string, file: string, content = '', mode = 0o644): void {
  const target = host.guestPath(ctid, file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, content);
  fs.chmodSync(target, mode);
}

const dpkgInstalled = (...names: string[]) => names.map((n) => `${n}\tinstall ok installed\n`).join('');
const serviceUp = 'ActiveState=active\nUnitFileState=enabled\n';

/** Guest scripts by their exact size on stdin (prelude + body), so transcripts name what was sent. */
const SCRIPT_SIZES = new Map<number, string>();
for (const name of fs.readdirSync(new URL('../../lib/features/lxc/guest/', import.meta.url)).filter((f) => f.endsWith('.sh') && f !== 'prelude.sh' && f !== 'run-step-ca.sh')) {
  SCRIPT_SIZES.set(Buffer.byteLength(guestScript(name)), name);
}

function show(r: RecordedCommand): string {
  const line = [r.cmd, ...r.args]
    .join(' ')
    .replaceAll(work, '<work>')
    .replace(/\/\S*\/phoenix-(feature|rootca)-[A-Za-z0-9]+\//g, '<tmp>/');
  if (r.stdinBytes === undefined) return line;
  return `${line}  <stdin: ${SCRIPT_SIZES.get(r.stdinBytes) ?? `${r.stdinBytes} bytes of an unknown script`}>`;
}

interface Applied {
  result: FeatureResult;
  recorded: RecordedCommand[];
  /** Mutating commands, normalised for transcripts. */
  mutating: string[];
  calls: CallRecord[];
}

async function apply(feature: string, ctid: string, extra: Partial<FeatureContext> = {}): Promise<Applied> {
  const install = await loadFeature(feature);
  assert.ok(install, `no port for ${feature}`);
  const start = recordedCommands().length;
  host.clearCalls();
  const result = await install(ctid, context(extra));
  const recorded = recordedCommands().slice(start);
  return { result, recorded, mutating: recorded.filter((r) => r.mutating).map(show), calls: host.calls() };
}

async function applyFails(feature: string, ctid: string): Promise<PhoenixError> {
  try {
    await apply(feature, ctid);
  } catch (err) {
    assert.instance(err, PhoenixError);
    return err as PhoenixError;
  }
  assert.unreachable(`${feature} on CT ${ctid} should have failed`);
  throw new Error('unreachable');
}

/**
 * Require that a script sent to the CT contains `text`: the simulator spends
 * the rule only then. One rule is spent per call, so give one text per
 * expected script.
 */
function expectStdin(ctid: string, ...texts: string[]): void {
  for (const text of texts) host.injectExec({ tool: 'pct', guest: ctid, stdin_contains: text, exit: 0, times: 1 });
}

function assertStdinMatched(): void {
  const injection = JSON.parse(fs.readFileSync(path.join(host.stateDir, 'inject.json'), 'utf8')) as { exec?: Array<{ stdin_contains?: string; times?: number }> };
  const unmatched = (injection.exec ?? []).filter((r) => r.stdin_contains !== undefined && (r.times ?? 1) > 0).map((r) => r.stdin_contains);
  assert.equal(unmatched, [], 'every expected line was in a script sent on stdin');
}

/** Nothing changed: no mutating command recorded, and the simulator saw only status and read-only execs. */
function assertReadOnly(run: Applied): void {
  assert.equal(run.mutating, []);
  assert.is(run.result.outcome === 'installed', false, `outcome ${run.result.outcome}: ${run.result.changes.join('; ')}`);
  for (const call of run.calls) {
    assert.ok(call.tool === 'pct' && (call.argv[0] === 'status' || call.argv[0] === 'exec'), `unexpected call ${call.argv.join(' ')}`);
    assert.not.ok(call.argv[0] === 'exec' && ['bash', 'mkdir', 'step', 'update-ca-certificates'].includes(call.argv[3] ?? ''), `unexpected ${call.argv.join(' ')}`);
    assert.not.ok(call.argv[0] === 'exec' && call.argv[3] === 'docker' && !['ps', 'inspect'].includes(call.argv[4] ?? ''), `unexpected ${call.argv.join(' ')}`);
    assert.not.ok(call.argv[0] === 'exec' && call.argv[3] === 'systemctl' && call.argv[4] !== 'show', `unexpected ${call.argv.join(' ')}`);
  }
  assert.is(run.calls.length, run.recorded.length, 'every simulator call is one the runner recorded as read-only');
}

/** Dry-run: every mutating command was planned, none was sent; the probes still ran. */
function assertDryRun(run: Applied): void {
  assert.ok(run.recorded.some((r) => r.mutating), 'something was planned');
  assert.ok(run.recorded.filter((r) => r.mutating).every((r) => r.skipped), 'planned, not run');
  assert.is(run.calls.length, run.recorded.filter((r) => !r.skipped).length, 'the simulator saw only the probes');
  for (const call of run.calls) assert.ok(call.argv[0] === 'status' || call.argv[0] === 'exec', `unexpected ${call.argv.join(' ')}`);
  for (const r of run.recorded.filter((x) => !x.skipped)) assert.is(r.mutating, false, show(r));
}

function withRootCa(pem = ROOT_CA): void {
  fs.mkdirSync(path.dirname(rootCaFile), { recursive: true });
  fs.writeFileSync(rootCaFile, pem, { mode: 0o644 });
}

test.before.each(() => {
  host.reset();
  setProcessContext({ dryRun: false });
  fs.rmSync(path.dirname(rootCaFile), { recursive: true, force: true });
  fs.rmSync(path.join(base, 'etc'), { recursive: true, force: true });
  for (const dir of [certsDir, issuedDir]) fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- arguments and registry

test('argument contract: <ctid> [bootstrap_ca_url]; missing CTID exits as the bash did', () => {
  const parseFeatureArgs = (argv: string[], feature: string) => parseLxcFeatureArgs(argv, scriptName(feature), feature);
  assert.equal(parseFeatureArgs(['101'], 'docker'), { ctid: '101' });
  assert.equal(parseFeatureArgs(['102', 'https://172.16.100.11:9000'], 'docker'), { ctid: '102', bootstrapCaUrl: 'https://172.16.100.11:9000' });
  assert.equal(parseFeatureArgs(['102', ''], 'ollama'), { ctid: '102' }, 'the empty second argument lxc-manager always passes (some bash feature scripts wanted exactly one argument and exited 2)');
  const exitOf = (argv: string[], feature: string) => {
    try {
      parseFeatureArgs(argv, feature);
    } catch (err) {
      return (err as PhoenixError).exitCode;
    }
    return 0;
  };
  for (const f of ['base_setup', 'nvidia', 'vllm', 'docker', 'ollama', 'python_api_service', 'portainer']) assert.is(exitOf([], f), 2, f);
  for (const f of ['step_cli', 'trusted_ca', 'step_ca', 'traefik', 'sync_traefik_certs']) assert.is(exitOf([], f), 1, f);
  assert.is(exitOf(['not-a-ctid'], 'base_setup'), 2);
  assert.is(scriptName('sync_traefik_certs'), 'phoenix_hypervisor_feature_sync_traefik_certs.sh');
  assert.equal([...PORTED_FEATURES].sort(), ['base_setup', 'docker', 'nvidia', 'ollama', 'portainer', 'python_api_service', 'step_ca', 'step_cli', 'sync_traefik_certs', 'traefik', 'trusted_ca', 'vllm']);
});

test('every guest script is valid bash, and placeholders are all filled', () => {
  const dir = new URL('../../lib/features/lxc/guest/', import.meta.url);
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.sh'))) {
    const text = name === 'run-step-ca.sh' ? stepCa.wrapperScript() : guestScript(name);
    const r = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
    assert.is(r.status, 0, `${name}: ${r.stderr}`);
    assert.not.match(text, /@[A-Z_]+@/, name);
  }
  assert.throws(() => guestFile('run-step-ca.sh'), /needs a value for @STEPPATH@/);
  assert.match(stepCa.unitFile(), /^ConditionPathExists=\/root\/\.step\/config\/ca\.json$/m);
  assert.not.match(guestFile('prelude.sh'), /pkill|killall|kill -9/, 'apt work waits for a busy dpkg, never kills it (the bash ran pkill -f apt)');
});

test('the prelude waits for a busy package manager, bounded, and names a failing command', () => {
  const scratch = tmpDir('phoenix-prelude-');
  // pgrep says "busy" forever; sleep returns at once; the wait must give up with 75, not kill anything.
  fs.writeFileSync(path.join(scratch, 'pgrep'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  fs.writeFileSync(path.join(scratch, 'sleep'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  fs.writeFileSync(path.join(scratch, 'apt-get'), '#!/bin/sh\necho apt-get ran >&2\nexit 0\n', { mode: 0o755 });
  const busy = spawnSync('bash', ['-s', '--', 'vim'], { input: guestScript('apt_install.sh'), encoding: 'utf8', env: { ...process.env, PATH: `${scratch}:${process.env.PATH}` } });
  assert.is(busy.status, 75, busy.stderr);
  assert.match(busy.stderr, /still busy after 300s; giving up \(nothing was killed\)/);
  assert.not.match(busy.stderr, /apt-get ran/);
  fs.writeFileSync(path.join(scratch, 'pgrep'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  fs.writeFileSync(path.join(scratch, 'apt-get'), '#!/bin/sh\necho "apt-get $*" >&2\n[ "$5" = install ] && exit 100\nexit 0\n', { mode: 0o755 });
  const failing = spawnSync('bash', ['-s', '--', 'no-such-package'], { input: guestScript('apt_install.sh'), encoding: 'utf8', env: { ...process.env, PATH: `${scratch}:${process.env.PATH}` } });
  assert.is(failing.status, 100, failing.stderr);
  assert.match(failing.stderr, /apt-get -o DPkg::Lock::Timeout=300 -y -q update/);
  assert.match(failing.stderr, /phoenix: failed \(exit 100\): apt-get -o DPkg::Lock::Timeout="\$phoenix_apt_lock_wait" -y -q "\$@"/);
});

// ---------------------------------------------------------------- base_setup

test('base_setup: a fresh CT gets the packages and the locale in one script', async () => {
  makeCt('101');
  expectStdin('101', 'update-locale LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8');
  const run = await apply('base_setup', '101');
  assert.is(run.result.outcome, 'installed');
  assert.equal(run.mutating, [`pct exec 101 -- bash -s -- yes ${BASE_PACKAGES.join(' ')}  <stdin: base_setup.sh>`]);
  assertStdinMatched();
  assert.match(guestScript('base_setup.sh'), /apt_get install "\$@"/, 'the script identified by its size installs its arguments');
});

test('base_setup: installed packages are checked with dpkg, so gnupg and locales count', async () => {
  makeCt('101');
  host.injectExec({ tool: 'pct', guest: 101, command: ['dpkg-query'], stdout: dpkgInstalled('curl', 'wget', 'vim', 'htop', 'jq', 'git', 'rsync', 'gnupg', 'locales') });
  host.injectExec({ tool: 'pct', guest: 101, command: ['locale', '-a'], stdout: 'C\nC.utf8\nen_US.utf8\nPOSIX\n' });
  guestWrite('101', '/etc/default/locale', 'LANG=en_US.UTF-8\nLC_ALL=en_US.UTF-8\n');
  const partial = await apply('base_setup', '101');
  assert.equal(partial.mutating, ['pct exec 101 -- bash -s -- no s-tui  <stdin: base_setup.sh>'], 'only what is missing; the locale is left alone');

  host.injectExec({ tool: 'pct', guest: 101, command: ['dpkg-query'], stdout: dpkgInstalled(...BASE_PACKAGES) });
  // the first rule still answers first; drop it by re-seeding the injection
  host.updateInjection((inj) => void (inj.exec = inj.exec?.slice(1)));
  const equipped = await apply('base_setup', '101');
  assert.is(equipped.result.outcome, 'unchanged');
  assertReadOnly(equipped);
  assert.is(equipped.calls.length, 4, 'status, dpkg-query, locale -a, cat /etc/default/locale');
});

// ---------------------------------------------------------------- step_cli / step_ca

test('step_cli: installs step-cli from the Smallstep repository; dpkg decides what is installed', async () => {
  makeCt('101');
  expectStdin('101', 'https://packages.smallstep.com/stable/debian debs main');
  const fresh = await apply('step_cli', '101');
  assert.equal(fresh.mutating, ['pct exec 101 -- bash -s -- step-cli  <stdin: smallstep.sh>']);
  assertStdinMatched();
  host.injectExec({ tool: 'pct', guest: 101, command: ['dpkg-query'], stdout: dpkgInstalled('step-cli') });
  const again = await apply('step_cli', '101');
  assertReadOnly(again);
});

test('step_ca: packages, wrapper and unit, enabled but not started before the CA exists', async () => {
  makeCt('103');
  expectStdin('103', 'apt_get install "$@"');
  const fresh = await apply('step_ca', '103');
  assert.equal(fresh.mutating, [
    'pct exec 103 -- bash -s -- step-cli step-ca  <stdin: smallstep.sh>',
    'pct push 103 <tmp>/run-step-ca.sh /usr/local/bin/run-step-ca.sh --perms 0755',
    'pct push 103 <tmp>/step-ca.service /etc/systemd/system/step-ca.service --perms 0644',
    'pct exec 103 -- systemctl daemon-reload',
    'pct exec 103 -- systemctl enable step-ca',
  ]);
  assertStdinMatched();
  assert.is(fs.readFileSync(host.guestPath('103', '/usr/local/bin/run-step-ca.sh'), 'utf8'), stepCa.wrapperScript());
  assert.is(fs.statSync(host.guestPath('103', '/usr/local/bin/run-step-ca.sh')).mode & 0o777, 0o755);
  assert.not.ok(fs.existsSync(rootCaFile), 'no CA yet, nothing copied to the host');

  host.injectExec({ tool: 'pct', guest: 103, command: ['dpkg-query'], stdout: dpkgInstalled('step-cli', 'step-ca') });
  host.injectExec({ tool: 'pct', guest: 103, command: ['systemctl', 'show'], stdout: 'ActiveState=inactive\nUnitFileState=enabled\n' });
  assertReadOnly(await apply('step_ca', '103'));

  // The application script initialised the CA: start it, copy the root certificate to the host.
  guestWrite('103', stepCa.CA_CONFIG, '{}\n', 0o600);
  guestWrite('103', STEP_CA_ROOT_CERT, ROOT_CA);
  const initialised = await apply('step_ca', '103');
  assert.equal(initialised.mutating, ['pct exec 103 -- systemctl start step-ca', 'pct pull 103 /root/.step/certs/root_ca.crt <tmp>/root_ca.crt']);
  assert.is(fs.readFileSync(rootCaFile, 'utf8'), ROOT_CA);
  assert.is(fs.statSync(rootCaFile).mode & 0o777, 0o644);
});

/** CT 103 with the step_ca feature's packages, wrapper and unit, an initialised CA, and its root already on the host. */
function equippedCa(): void {
  makeCt('103');
  guestWrite('103', stepCa.WRAPPER_PATH, stepCa.wrapperScript(), 0o755);
  guestWrite('103', stepCa.UNIT_PATH, stepCa.unitFile());
  guestWrite('103', stepCa.CA_CONFIG, '{}\n', 0o600);
  guestWrite('103', STEP_CA_ROOT_CERT, ROOT_CA);
  withRootCa();
  host.injectExec({ tool: 'pct', guest: 103, command: ['dpkg-query'], stdout: dpkgInstalled('step-cli', 'step-ca') });
}

test('step_ca: a running CA whose root is already on the host is left alone; a new root is pulled again', async () => {
  equippedCa();
  host.injectExec({ tool: 'pct', guest: 103, command: ['systemctl', 'show'], stdout: serviceUp });
  const equipped = await apply('step_ca', '103');
  assert.is(equipped.result.outcome, 'unchanged');
  assertReadOnly(equipped);

  guestWrite('103', STEP_CA_ROOT_CERT, OTHER_ROOT_CA);
  const renewed = await apply('step_ca', '103');
  assert.equal(renewed.mutating, ['pct pull 103 /root/.step/certs/root_ca.crt <tmp>/root_ca.crt']);
  assert.is(fs.readFileSync(rootCaFile, 'utf8'), OTHER_ROOT_CA);
});

test('step_ca: a unit file systemd has not reloaded (a run stopped before its daemon-reload) is reloaded and step-ca restarted', async () => {
  equippedCa();
  host.injectExec({ tool: 'pct', guest: 103, command: ['systemctl', 'show'], stdout: `${serviceUp}NeedDaemonReload=yes\n`, times: 1 });
  const stale = await apply('step_ca', '103');
  assert.equal(stale.mutating, ['pct exec 103 -- systemctl daemon-reload', 'pct exec 103 -- systemctl restart step-ca']);
  assert.ok(stale.result.changes.some((c) => /reloaded systemd: step-ca\.service had changed since it was loaded/.test(c)), stale.result.changes.join('; '));
});

// ---------------------------------------------------------------- trusted_ca

test('trusted_ca: the root CA comes from the host copy (pulled from CT 103 when missing), never from a shared CA mount', async () => {
  makeCt('103');
  guestWrite('103', STEP_CA_ROOT_CERT, ROOT_CA);
  makeCt('101');
  guestWrite('101', '/usr/local/share/ca-certificates/phoenix_old_root.crt', OTHER_ROOT_CA);
  expectStdin('101', 'update-ca-certificates');
  const fresh = await apply('trusted_ca', '101');
  assert.equal(fresh.mutating, [
    'pct pull 103 /root/.step/certs/root_ca.crt <tmp>/root_ca.crt',
    'pct push 101 <work>/ca/root_ca.crt /usr/local/share/ca-certificates/phoenix_root_ca.crt --perms 0644',
    'pct exec 101 -- bash -s -- phoenix_root_ca.crt  <stdin: trusted_ca.sh>',
  ]);
  assertStdinMatched();
  assert.ok(fresh.result.changes.some((c) => c.includes(ROOT_CA_FINGERPRINT)));
  assert.ok(fresh.result.changes.includes('removed phoenix_old_root.crt'));
  assert.is(fs.readFileSync(host.guestPath('101', '/usr/local/share/ca-certificates/phoenix_root_ca.crt'), 'utf8'), ROOT_CA);
  assert.is(fs.readFileSync(rootCaFile, 'utf8'), ROOT_CA);

  // update-ca-certificates is not run by the simulator: do what it would have done.
  fs.rmSync(host.guestPath('101', '/usr/local/share/ca-certificates/phoenix_old_root.crt'));
  guestWrite('101', '/etc/ssl/certs/phoenix_root_ca.pem', ROOT_CA);
  const again = await apply('trusted_ca', '101');
  assertReadOnly(again);
  assert.not.ok(again.calls.some((c) => c.argv[1] === '103'), 'with a host copy, the CA container is not asked again');
});

test('pki: the fingerprint is computed on the host; a non-CA file is refused', async () => {
  assert.is((await parseRootCa(ROOT_CA, 'test')).fingerprint, ROOT_CA_FINGERPRINT);
  try {
    await parseRootCa('not a certificate', 'junk.pem');
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /junk\.pem is not a PEM certificate/);
  }
});

// ---------------------------------------------------------------- traefik

function equipTraefik(): void {
  guestWrite('102', '/usr/local/bin/traefik', '', 0o755);
  host.injectExec({ tool: 'pct', guest: 102, command: ['/usr/local/bin/traefik', 'version'], stdout: 'Version:      3.6.2\nCodename:     ramequin\nGo version:   go1.24\n' });
  guestWrite('102', '/usr/bin/step', '', 0o755);
  guestWrite('102', '/etc/traefik/dynamic/.keep');
  guestWrite('102', '/var/log/traefik/.keep');
}

/** CT 102's `step ca bootstrap` answers as if CT 103 served the fixture root (no CA runs in these tests). */
function acceptBootstrap(): void {
  host.injectExec({ tool: 'pct', guest: 102, command: ['step', 'ca', 'bootstrap'], exit: 0, stdout: 'The root certificate has been saved in /root/.step/certs/root_ca.crt.\n' });
}

test('traefik: fresh CT 102 gets binary, directories, CA, static config, unit and a step bootstrap with the host-computed fingerprint', async () => {
  makeCt('102', { mount: [certsDir, '/etc/traefik/certs'] });
  guestWrite('102', '/usr/bin/step', '', 0o755);
  withRootCa();
  expectStdin('102', 'sha256sum -c --status -');
  acceptBootstrap();
  const fresh = await apply('traefik', '102', { bootstrapCaUrl: 'https://172.16.100.11:9000' });
  assertStdinMatched();
  assertGolden('features/traefik-fresh.txt', `${fresh.mutating.join('\n')}\n`);
  const bootstrap = fresh.mutating.find((c) => c.includes('step ca bootstrap'));
  assert.is(bootstrap, `pct exec 102 -- step ca bootstrap --ca-url https://172.16.100.11:9000 --fingerprint ${ROOT_CA_FINGERPRINT} --force`);
  assert.is(fs.readFileSync(path.join(certsDir, 'ca.pem'), 'utf8'), ROOT_CA, 'ca.pem lands in the bind-mounted host directory');
  const pushed = fs.readFileSync(host.guestPath('102', traefik.STATIC_CONFIG), 'utf8');
  assert.is(pushed, (await traefik.staticConfig(context(), '102', 'https://172.16.100.11:9000')).text);
  assert.not.match(pushed, /insecure:\s*true/);
  assert.not.ok(fresh.mutating.some((c) => /systemctl (start|restart) traefik/.test(c)), 'enabled, not started (the application script starts it)');
  for (const call of fresh.calls) assert.not.match(call.argv.join(' '), /provisioner|password|step ca certificate/, 'no certificate is minted with CA secrets (the bash traefik used the provisioner password of CT 103)');
});

test('traefik: an equipped CT is unchanged; a changed CA or version is redone and a running Traefik restarted', async () => {
  makeCt('102', { mount: [certsDir, '/etc/traefik/certs'] });
  withRootCa();
  equipTraefik();
  const url = 'https://172.16.100.11:9000';
  guestWrite('102', traefik.STATIC_CONFIG, (await traefik.staticConfig(context(), '102', url)).text);
  guestWrite('102', traefik.UNIT_PATH, traefik.unitFile());
  fs.writeFileSync(path.join(certsDir, 'ca.pem'), ROOT_CA); // /etc/traefik/certs is the bind mount
  fs.chownSync(path.join(certsDir, 'ca.pem'), 100000, 100000); // as an earlier push left it: the CT's root
  guestWrite('102', traefik.STEP_DEFAULTS, JSON.stringify({ 'ca-url': url, fingerprint: ROOT_CA_FINGERPRINT, root: '/root/.step/certs/root_ca.crt' }));
  host.injectExec({ tool: 'pct', guest: 102, command: ['systemctl', 'show'], stdout: serviceUp });
  acceptBootstrap();
  const equipped = await apply('traefik', '102');
  assert.is(equipped.result.outcome, 'unchanged', equipped.result.changes.join('; '));
  assertReadOnly(equipped);

  withRootCa(OTHER_ROOT_CA);
  const rotated = await apply('traefik', '102');
  assert.equal(rotated.mutating, [
    'pct exec 102 -- mkdir -p /etc/traefik/certs',
    'pct push 102 <work>/ca/root_ca.crt /etc/traefik/certs/ca.pem --perms 0644',
    `pct exec 102 -- step ca bootstrap --ca-url ${url} --fingerprint ${(await parseRootCa(OTHER_ROOT_CA, 'x')).fingerprint} --force`,
    'pct exec 102 -- systemctl restart traefik',
  ]);

  host.updateInjection((inj) => void (inj.exec = inj.exec?.filter((r) => r.command?.[0] !== '/usr/local/bin/traefik')));
  host.injectExec({ tool: 'pct', guest: 102, command: ['/usr/local/bin/traefik', 'version'], stdout: 'Version:      3.5.0\n' });
  guestWrite('102', traefik.STEP_DEFAULTS, JSON.stringify({ 'ca-url': url, fingerprint: (await parseRootCa(OTHER_ROOT_CA, 'x')).fingerprint }));
  const upgraded = await apply('traefik', '102');
  assert.equal(upgraded.mutating, ['pct exec 102 -- bash -s -- v3.6.2  <stdin: traefik_install.sh>', 'pct exec 102 -- systemctl restart traefik']);
  assert.ok(upgraded.result.changes.includes('replaced Traefik 3.5.0 with v3.6.2'));
});

test("traefik: the static config Phoenix writes validates against Traefik v3's schema and follows docs/pki-and-gateway.md", async () => {
  const { default: AjvModule } = await import('ajv');
  const { parse } = await import('yaml');
  const { text, source } = await traefik.staticConfig(context(), '102', 'https://172.16.100.11:9000');
  assert.match(source, /etc\/traefik\/traefik\.yml\.template$/, 'the template Phoenix ships, filled from the manifests');
  const doc = parse(text) as any;
  const validate = new AjvModule.default({ strict: false, allErrors: true }).compile(JSON.parse(fs.readFileSync(TRAEFIK_SCHEMA, 'utf8')));
  // Validate a copy: ajv's type guard would narrow `doc` itself to unknown.
  assert.is(validate(structuredClone(doc)), true, JSON.stringify(validate.errors));
  assert.equal(doc.entryPoints.mesh, { address: ':8443', http: { tls: { options: 'mesh-mtls@file' } } });
  assert.is(doc.providers.swarm.endpoint, 'tcp://10.0.0.21:2376', 'the Swarm manager of the VM manifest, not a literal');
  assert.is(doc.certificatesResolvers['step-ca'].acme.caServer, 'https://172.16.100.11:9000/acme/acme/directory');
  assert.not.ok(doc.api.insecure, 'no insecure dashboard (the bash template set api.insecure: true)');
  assertGolden('features/traefik.yml', text.replaceAll(work, '<work>'));

  fs.mkdirSync(path.join(base, 'etc', 'traefik'), { recursive: true });
  fs.writeFileSync(path.join(base, 'etc', 'traefik', 'traefik.yml.template'), `${fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'traefik', 'traefik.yml.template'), 'utf8')}\naccessLog:\n  filePath: /var/log/traefik/access.log\n`);
  const operator = await traefik.staticConfig(context(), '102', 'https://x:9000');
  assert.is((parse(operator.text) as any).accessLog.filePath, '/var/log/traefik/access.log', "the operator's own template keeps its additions");
  fs.rmSync(path.join(base, 'etc', 'traefik'), { recursive: true, force: true });
});

test('pki: the CA URL is the argument, else the CT key, else step_ca.ca_url, else the CA container address (never a DNS name that points at Traefik)', () => {
  const fake = (hv: Record<string, unknown>, ct: Record<string, unknown>) =>
    ({ config: { hypervisor: { step_ca: hv }, lxc: { lxc_configs: { '102': ct, '103': { network_config: { ip: '172.16.100.11/24' } } } } }, options: resolveOptions() }) as unknown as FeatureContext;
  assert.is(caUrl({ ...fake({ ca_url: 'https://ca.example:9000' }, { bootstrap_ca_url: 'https://ct:9000' }), bootstrapCaUrl: 'https://arg:9000' }, '102'), 'https://arg:9000');
  assert.is(caUrl(fake({ ca_url: 'https://ca.example:9000' }, { bootstrap_ca_url: 'https://ct:9000' }), '102'), 'https://ct:9000');
  assert.is(caUrl(fake({ ca_url: 'https://ca.example:9000' }, {}), '102'), 'https://ca.example:9000');
  assert.is(caUrl(fake({}, {}), '102'), 'https://172.16.100.11:9000');
  assert.throws(() => caUrl(fake({ ctid: '999' }, {}), '102'), /no CA URL for CT 102/);
});

test('traefik: without step in the CT the bootstrap fails with the way out', async () => {
  makeCt('102', { mount: [certsDir, '/etc/traefik/certs'] });
  withRootCa();
  const err = await applyFails('traefik', '102');
  assert.match(err.message, /the step CLI is missing in CT 102/);
  assert.match(err.hint ?? '', /step_cli before traefik/);
});

// ---------------------------------------------------------------- sync_traefik_certs

function issueTraefikCerts(): void {
  fs.mkdirSync(certsDir, { recursive: true });
  fs.mkdirSync(issuedDir, { recursive: true });
  fs.writeFileSync(path.join(certsDir, 'traefik.crt'), fakeCert('server'));
  fs.writeFileSync(path.join(certsDir, 'traefik.key'), fakeKey('server'), { mode: 0o644 });
  fs.chmodSync(path.join(certsDir, 'traefik.key'), 0o644);
  fs.writeFileSync(path.join(issuedDir, 'client-cert.pem'), fakeCert('client'));
  fs.writeFileSync(path.join(issuedDir, 'client-key.pem'), fakeKey('client'), { mode: 0o600 });
}

test('sync_traefik_certs: root CA and the manifest certificates, keys 0600, one restart', async () => {
  makeCt('102', { mount: [certsDir, '/etc/traefik/certs'] });
  withRootCa();
  issueTraefikCerts();
  const first = await apply('sync_traefik_certs', '102');
  assert.equal(first.mutating, [
    'pct exec 102 -- mkdir -p /etc/traefik/certs',
    'pct push 102 <work>/ca/root_ca.crt /etc/traefik/certs/ca.pem --perms 0644',
    'pct push 102 <work>/issued/client-cert.pem /etc/traefik/certs/client-cert.pem --perms 0644',
    'pct push 102 <work>/issued/client-key.pem /etc/traefik/certs/client-key.pem --perms 0600',
    'pct exec 102 -- systemctl restart traefik',
  ]);
  assert.is(fs.statSync(path.join(certsDir, 'traefik.key')).mode & 0o777, 0o600, 'the mounted key is the host file: fixed there');
  assert.is(fs.statSync(path.join(certsDir, 'client-key.pem')).mode & 0o777, 0o600);
  assert.ok(first.result.changes.some((c) => c.startsWith(`set ${certsDir}/traefik.key to mode 0600`)));

  const { createHash } = await import('node:crypto');
  const keyHash = createHash('sha256').update(fakeKey('client')).digest('hex');
  host.injectExec({ tool: 'pct', guest: 102, command: ['sha256sum'], stdout: `${keyHash}  /etc/traefik/certs/client-key.pem\n` });
  host.injectExec({ tool: 'pct', guest: 102, command: ['systemctl', 'show'], stdout: serviceUp });
  const again = await apply('sync_traefik_certs', '102');
  assertReadOnly(again);
  assert.is(again.result.outcome, 'unchanged');
});

test('sync_traefik_certs: a certificate missing on the host is fatal with the way out', async () => {
  makeCt('102', { mount: [certsDir, '/etc/traefik/certs'] });
  withRootCa();
  const err = await applyFails('sync_traefik_certs', '102');
  assert.is(err.exitCode, 1);
  assert.match(err.message, /missing on the host: .*traefik\.crt/);
  assert.match(err.hint ?? '', /phoenix sync all/);
  assert.equal(host.calls().filter((c) => c.argv[0] !== 'status' && c.argv[0] !== 'exec'), []);
});

// ---------------------------------------------------------------- docker / portainer / python

test('docker: repository, engine, fuse-overlayfs, daemon.json, enable and start; the operator keys of daemon.json survive', async () => {
  makeCt('920');
  guestWrite('920', '/etc/docker/daemon.json', '{"log-driver": "journald"}\n');
  expectStdin('920', 'https://download.docker.com/linux/%s %s stable');
  const fresh = await apply('docker', '920');
  assert.equal(fresh.mutating, [
    'pct exec 920 -- bash -s -- docker-ce docker-ce-cli containerd.io docker-compose-plugin  <stdin: docker.sh>',
    'pct exec 920 -- bash -s -- fuse-overlayfs  <stdin: apt_install.sh>',
    'pct exec 920 -- mkdir -p /etc/docker',
    'pct push 920 <tmp>/daemon.json /etc/docker/daemon.json --perms 0644',
    'pct exec 920 -- systemctl enable docker',
    'pct exec 920 -- systemctl restart docker',
  ]);
  assertStdinMatched();
  assert.equal(JSON.parse(fs.readFileSync(host.guestPath('920', '/etc/docker/daemon.json'), 'utf8')), { 'log-driver': 'journald', 'storage-driver': 'fuse-overlayfs' });

  host.injectExec({ tool: 'pct', guest: 920, command: ['dpkg-query'], stdout: dpkgInstalled('docker-ce', 'docker-ce-cli', 'containerd.io', 'docker-compose-plugin', 'fuse-overlayfs') });
  host.injectExec({ tool: 'pct', guest: 920, command: ['systemctl', 'show'], stdout: serviceUp });
  assertReadOnly(await apply('docker', '920'));
});

test('docker: a CT cloned from an nvidia template gets the CUDA repository, the container toolkit and the nvidia runtime', async () => {
  makeCt('921');
  guestWrite('921', '/usr/bin/nvidia-smi', '', 0o755);
  expectStdin('921', 'gpg --dearmor --yes -o "$keyring"');
  const run = await apply('docker', '921');
  assert.ok(run.mutating.includes(`pct exec 921 -- bash -s -- ${NV_REPO} 2404 3bf863cc.pub  <stdin: cuda_repo.sh>`), run.mutating.join('\n'));
  assert.ok(run.mutating.includes('pct exec 921 -- bash -s -- nvidia-container-toolkit  <stdin: apt_install.sh>'));
  assertStdinMatched();
  const daemon = JSON.parse(fs.readFileSync(host.guestPath('921', '/etc/docker/daemon.json'), 'utf8'));
  assert.equal(daemon, desiredDaemonConfig({}, true));
  assert.is(daemon.runtimes.nvidia.path, '/usr/bin/nvidia-container-runtime');
});

test('portainer: server and agent containers from the manifests; role none does nothing; a stopped container is started, not removed', async () => {
  const none = await apply('portainer', '101');
  assert.is(none.result.outcome, 'skipped');
  assert.equal(none.calls, [], 'portainer_role none: not even a status call');

  makeCt('950');
  guestWrite('950', '/usr/bin/docker', '', 0o755);
  host.injectExec({ tool: 'pct', guest: 950, command: ['docker', 'inspect'], stdout: 'true\n' });
  const server = await apply('portainer', '950');
  assert.equal(server.mutating, [`pct exec 950 -- ${dockerRunArgs(context(), 'server').join(' ')}`]);
  assert.match(server.mutating[0] ?? '', /portainer\/portainer-ce:2\.21\.5 --ssl --sslcert \/certs\/portainer\.internal\.example\.org\.crt/);

  host.injectExec({ tool: 'pct', guest: 950, command: ['docker', 'ps', '-a'], stdout: 'portainer\n' });
  const stopped = await apply('portainer', '950');
  assert.equal(stopped.mutating, ['pct exec 950 -- docker start portainer']);

  host.injectExec({ tool: 'pct', guest: 950, command: ['docker', 'ps', '--format'], stdout: 'portainer\n' });
  assertReadOnly(await apply('portainer', '950'));

  makeCt('951');
  guestWrite('951', '/usr/bin/docker', '', 0o755);
  host.injectExec({ tool: 'pct', guest: 951, command: ['docker', 'inspect'], stdout: 'true\n' });
  const agent = await apply('portainer', '951');
  assert.match(agent.mutating[0] ?? '', /-e AGENT_CLUSTER_ADDR=tcp:\/\/10\.0\.0\.21:9001 portainer\/agent:2\.21\.5$/);
});

test('python_api_service: python3, pip and venv by dpkg; verified afterwards', async () => {
  makeCt('960');
  guestWrite('960', '/usr/bin/python3', '', 0o755);
  guestWrite('960', '/usr/bin/pip3', '', 0o755);
  expectStdin('960', 'apt_get install "$@"');
  const fresh = await apply('python_api_service', '960');
  assert.equal(fresh.mutating, ['pct exec 960 -- bash -s -- python3 python3-pip python3-venv  <stdin: apt_install.sh>']);
  assertStdinMatched();
  host.injectExec({ tool: 'pct', guest: 960, command: ['dpkg-query'], stdout: dpkgInstalled('python3', 'python3-pip', 'python3-venv') });
  assertReadOnly(await apply('python_api_service', '960'));
});

// ---------------------------------------------------------------- nvidia / vllm / ollama

test('nvidia: waits for the device of the assigned GPU (/dev/nvidia1), installs the cached runfile, the repo and the toolkit, then verifies', async () => {
  makeCt('912');
  guestWrite('912', '/dev/nvidia1');
  // nvidia-smi: absent before the install, the manifest's version after it.
  host.injectExec({ tool: 'pct', guest: 912, command: ['nvidia-smi'], exit: 127, stderr: 'Failed to exec "nvidia-smi"\n', times: 1 });
  host.injectExec({ tool: 'pct', guest: 912, command: ['nvidia-smi'], stdout: `${NV_VERSION}\n` });
  host.injectExec({ tool: 'pct', guest: 912, command: ['/usr/local/cuda/bin/nvcc'], stdout: 'Cuda compilation tools, release 12.8\n' });
  expectStdin('912', '--no-kernel-module --no-x-check --no-nouveau-check --no-nvidia-modprobe --no-dkms');
  const run = await apply('nvidia', '912');
  assertStdinMatched();
  assertGolden('features/nvidia-fresh.txt', `${run.mutating.join('\n')}\n`);
  assert.ok(run.calls.some((c) => c.argv.join(' ') === 'exec 912 -- test -e /dev/nvidia1'));
  assert.not.ok(run.calls.some((c) => c.argv.includes('/dev/nvidia0')));
  assert.ok(run.recorded.every((r) => r.cmd !== 'wget'), 'the cached runfile is not downloaded again');
});

test('nvidia: the right version and toolkit mean unchanged; another version is replaced; a missing device fails in bounded time', async () => {
  makeCt('912');
  guestWrite('912', '/dev/nvidia1');
  host.injectExec({ tool: 'pct', guest: 912, command: ['nvidia-smi'], stdout: `${NV_VERSION}\n` });
  host.injectExec({ tool: 'pct', guest: 912, command: ['dpkg-query'], stdout: dpkgInstalled('cuda-toolkit-12-8') });
  assertReadOnly(await apply('nvidia', '912'));

  host.updateInjection((inj) => void (inj.exec = inj.exec?.filter((r) => r.command?.[0] !== 'nvidia-smi')));
  host.injectExec({ tool: 'pct', guest: 912, command: ['nvidia-smi'], stdout: '570.86.15\n', times: 1 });
  host.injectExec({ tool: 'pct', guest: 912, command: ['nvidia-smi'], stdout: `${NV_VERSION}\n` });
  host.injectExec({ tool: 'pct', guest: 912, command: ['/usr/local/cuda/bin/nvcc'], exit: 0 });
  const replaced = await apply('nvidia', '912');
  assert.ok(replaced.result.changes.includes(`replaced NVIDIA user space 570.86.15 with ${NV_VERSION}`), replaced.result.changes.join('; '));
  assert.not.ok(replaced.mutating.some((c) => c.includes('cuda_repo.sh')), 'the toolkit was there: no repository work');

  fs.rmSync(host.guestPath('912', '/dev/nvidia1'));
  const started = Date.now();
  const err = await applyFails('nvidia', '912');
  assert.match(err.message, /\/dev\/nvidia1 did not appear in CT 912/);
  assert.ok(Date.now() - started < 3000);
});

test('vllm: needs nvidia on the CT or its template; builds into /opt/vllm; the proxy CA is trusted first', async () => {
  makeCt('960');
  const refused = await applyFails('vllm', '960');
  assert.match(refused.message, /CT 960 needs the nvidia feature/);

  makeCt('801');
  fs.mkdirSync(path.join(base, 'etc', 'certs'), { recursive: true });
  fs.writeFileSync(path.join(base, 'etc', 'certs', 'proxy_ca.crt'), OTHER_ROOT_CA);
  expectStdin('801', 'ppa:deadsnakes/ppa', '--index-url "$2"', 'pip" install --no-build-isolation -e .');
  const run = await apply('vllm', '801');
  assertStdinMatched();
  assert.equal(run.mutating, [
    'pct exec 801 -- mkdir -p /usr/local/share/ca-certificates',
    'pct push 801 <work>/base/etc/certs/proxy_ca.crt /usr/local/share/ca-certificates/proxy_ca.crt --perms 0644',
    'pct exec 801 -- update-ca-certificates',
    'pct exec 801 -- bash -s -- python3.11-full python3.11-dev python3.11-venv python3-pip build-essential cmake git ninja-build  <stdin: vllm_python.sh>',
    'pct exec 801 -- bash -s -- /opt/vllm https://download.pytorch.org/whl/nightly/cu128  <stdin: vllm_venv.sh>',
    'pct exec 801 -- bash -s -- /opt/vllm /opt/vllm_repo https://github.com/vllm-project/vllm.git main 10.0 12.0 8  <stdin: vllm_build.sh>',
  ]);

  guestWrite('801', '/opt/vllm/bin/vllm', '', 0o755);
  assertReadOnly(await apply('vllm', '801'));
});

test('ollama: installer saved then run, our unit, restart with a bounded wait for the API; unchanged once running', async () => {
  makeCt('914');
  expectStdin('914', 'sh "$installer"', 'until curl -fsS -o /dev/null "$1"');
  const fresh = await apply('ollama', '914');
  assertStdinMatched();
  assert.equal(fresh.mutating, [
    'pct exec 914 -- bash -s -- https://ollama.com/install.sh  <stdin: ollama_install.sh>',
    'pct push 914 <tmp>/ollama.service /etc/systemd/system/ollama.service --perms 0644',
    'pct exec 914 -- bash -s -- http://127.0.0.1:11434/api/tags 60  <stdin: ollama_service.sh>',
  ]);
  assert.is(fs.readFileSync(host.guestPath('914', ollama.UNIT_PATH), 'utf8'), ollama.unitFile());
  assert.match(ollama.unitFile(), /^User=ollama$/m);

  guestWrite('914', '/usr/local/bin/ollama', '', 0o755);
  host.injectExec({ tool: 'pct', guest: 914, command: ['systemctl', 'show'], stdout: serviceUp });
  assertReadOnly(await apply('ollama', '914'));
});

// ---------------------------------------------------------------- every feature: dry-run and a failing step

interface Scenario {
  feature: string;
  ctid: string;
  setup(): void;
  /** Make the first mutating step fail. */
  breakIt(): void;
  /** What the error must name. */
  names: RegExp;
}

const failScript = (ctid: string, text: string, exit = 100) => () =>
  host.injectExec({ tool: 'pct', guest: ctid, stdin_contains: text, exit, stderr: `phoenix: failed (exit ${exit}): apt-get -y install\nE: Unable to locate package\n` });

const SCENARIOS: Scenario[] = [
  { feature: 'base_setup', ctid: '101', setup: () => makeCt('101'), breakIt: failScript('101', 'locale-gen'), names: /base_setup: installing curl .* failed in CT 101: 'pct exec 101 -- bash -s -- yes curl/ },
  { feature: 'step_cli', ctid: '101', setup: () => makeCt('101'), breakIt: failScript('101', 'smallstep'), names: /step_cli: installing step-cli from the Smallstep repository failed in CT 101: 'pct exec 101 -- bash -s -- step-cli'/ },
  { feature: 'step_ca', ctid: '103', setup: () => makeCt('103'), breakIt: failScript('103', 'smallstep'), names: /step_ca: installing step-cli step-ca .* 'pct exec 103 -- bash -s -- step-cli step-ca'/ },
  {
    feature: 'trusted_ca',
    ctid: '101',
    setup: () => (makeCt('101'), withRootCa()),
    breakIt: () => host.injectFailure({ tool: 'pct', argv: ['push', '101'], exit: 255, stderr: 'failed to create file: /usr/local/share/ca-certificates/phoenix_root_ca.crt: Read-only file system\n' }),
    names: /trusted_ca: copying the root CA failed in CT 101: 'pct push 101 \S+root_ca\.crt \/usr\/local\/share\/ca-certificates\/phoenix_root_ca\.crt --perms 0644' failed with exit code 255/,
  },
  {
    feature: 'traefik',
    ctid: '102',
    setup: () => (makeCt('102', { mount: [certsDir, '/etc/traefik/certs'] }), withRootCa(), guestWrite('102', '/usr/bin/step', '', 0o755)),
    breakIt: failScript('102', 'sha256sum -c', 1),
    names: /traefik: installing Traefik v3\.6\.2 failed in CT 102: 'pct exec 102 -- bash -s -- v3\.6\.2'/,
  },
  {
    feature: 'sync_traefik_certs',
    ctid: '102',
    setup: () => (makeCt('102', { mount: [certsDir, '/etc/traefik/certs'] }), withRootCa(), issueTraefikCerts()),
    breakIt: () => host.injectExec({ tool: 'pct', guest: 102, command: ['systemctl', 'restart', 'traefik'], exit: 1, stderr: 'Job for traefik.service failed.\n' }),
    names: /sync_traefik_certs: restarting traefik failed in CT 102: 'pct exec 102 -- systemctl restart traefik' failed with exit code 1/,
  },
  { feature: 'docker', ctid: '920', setup: () => makeCt('920'), breakIt: failScript('920', 'download.docker.com'), names: /docker: installing docker-ce .* 'pct exec 920 -- bash -s -- docker-ce/ },
  {
    feature: 'nvidia',
    ctid: '912',
    setup: () => (makeCt('912'), guestWrite('912', '/dev/nvidia1')),
    breakIt: failScript('912', '--no-kernel-module'),
    names: /nvidia: running the NVIDIA installer failed in CT 912: 'pct exec 912 -- bash -s -- \/tmp\/NVIDIA-Linux-x86_64-580\.76\.05\.run'/,
  },
  { feature: 'ollama', ctid: '914', setup: () => makeCt('914'), breakIt: failScript('914', 'sh "$installer"', 22), names: /ollama: running the Ollama installer failed in CT 914: 'pct exec 914 -- bash -s -- https:\/\/ollama\.com\/install\.sh' failed with exit code 22/ },
  {
    feature: 'portainer',
    ctid: '950',
    setup: () => (makeCt('950'), guestWrite('950', '/usr/bin/docker', '', 0o755)),
    breakIt: () => host.injectExec({ tool: 'pct', guest: 950, command: ['docker', 'run'], exit: 125, stderr: 'docker: Error response from daemon: Conflict.\n' }),
    names: /portainer: creating the portainer container failed in CT 950: 'pct exec 950 -- docker run -d .*' failed with exit code 125/,
  },
  { feature: 'python_api_service', ctid: '960', setup: () => makeCt('960'), breakIt: failScript('960', 'apt_get install'), names: /python_api_service: installing python3 python3-pip python3-venv failed in CT 960/ },
  { feature: 'vllm', ctid: '801', setup: () => makeCt('801'), breakIt: failScript('801', 'deadsnakes'), names: /vllm: installing Python 3\.11 and the build tools failed in CT 801: 'pct exec 801 -- bash -s -- python3\.11-full/ },
];

for (const s of SCENARIOS) {
  test(`${s.feature}: dry-run runs the probes and sends nothing mutating; a failing step names the step and the command`, async () => {
    s.setup();
    await withRunContext({ dryRun: true }, async () => {
      const run = await apply(s.feature, s.ctid);
      assert.is(run.result.outcome, 'installed', 'the plan has changes');
      assertDryRun(run);
    });

    s.breakIt();
    const err = await applyFails(s.feature, s.ctid);
    assert.match(err.message, s.names);
    assert.ok(err.exitCode !== 0);
    assert.instance(err.cause, CommandError);
    assert.is(err.exitCode, (err.cause as CommandError).exitCode, 'the exit status of the failed command is passed on');
  });
}

// ---------------------------------------------------------------- the scripts, end to end

function script(feature: string, args: string[], extraEnv: Record<string, string> = {}) {
  const file = path.join(PROJECT_ROOT, 'scripts', 'lxc_setup', `${scriptName(feature).replace(/\.sh$/, '')}.mjs`);
  const r = spawnSync(process.execPath, [file, ...args], { env: { ...env, ...extraEnv }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('scripts: usage exit codes as the bash (2 or 1), and the two-argument call every feature accepts', () => {
  for (const feature of PORTED_FEATURES) {
    const r = script(feature, []);
    assert.is(r.code, ['step_cli', 'trusted_ca', 'step_ca', 'traefik', 'sync_traefik_certs'].includes(feature) ? 1 : 2, `${feature}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`\\[ERROR\\] ${scriptName(feature).replace(/\./g, '\\.')}: missing CTID`));
    assert.is(r.stdout, '');
  }
  makeCt('914');
  guestWrite('914', '/usr/local/bin/ollama', '', 0o755);
  guestWrite('914', ollama.UNIT_PATH, ollama.unitFile());
  host.injectExec({ tool: 'pct', guest: 914, command: ['systemctl', 'show'], stdout: serviceUp });
  const r = script('ollama', ['914', '']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /ollama: already installed on CT 914 \(unchanged\)/);
});

test('scripts: a failing step exits with its status and names the command; a stopped CT is refused plainly', () => {
  makeCt('101');
  host.injectExec({ tool: 'pct', guest: 101, stdin_contains: 'locale-gen', exit: 100, stderr: 'E: Unable to locate package s-tui\n' });
  const r = script('base_setup', ['101', '']);
  assert.is(r.code, 100, r.stderr);
  assert.match(r.stderr, /\[ERROR\] phoenix_hypervisor_feature_install_base_setup\.sh: base_setup: installing curl wget .* failed in CT 101: 'pct exec 101 -- bash -s -- yes curl .*' failed with exit code 100: E: Unable to locate package s-tui/);
  assert.is(host.run('pct', ['stop', '101']).code, 0);
  const stopped = script('step_cli', ['101']);
  assert.is(stopped.code, 1);
  assert.match(stopped.stderr, /CT 101 is not running; features are applied to a running container/);
});

test('scripts: dry-run of traefik prints every change and sends none', () => {
  makeCt('102', { mount: [certsDir, '/etc/traefik/certs'] });
  makeCt('103');
  guestWrite('103', STEP_CA_ROOT_CERT, ROOT_CA);
  guestWrite('102', '/usr/bin/step', '', 0o755);
  host.clearCalls();
  const r = script('traefik', ['102', 'https://172.16.100.11:9000'], { PHOENIX_DRY_RUN: 'true' });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /DRY-RUN: would run: pct pull 103 \/root\/\.step\/certs\/root_ca\.crt /);
  assert.match(r.stderr, /DRY-RUN: would write \S+\/ca\/root_ca\.crt/);
  assert.match(r.stderr, new RegExp(`DRY-RUN: would run: pct exec 102 -- step ca bootstrap --ca-url https://172.16.100.11:9000 --fingerprint ${ROOT_CA_FINGERPRINT} --force`));
  assert.match(r.stderr, /traefik: DRY-RUN: \d+ change\(s\) planned on CT 102/);
  const calls = host.calls();
  assert.ok(calls.length > 0);
  for (const c of calls) {
    assert.ok(c.argv[0] === 'status' || c.argv[0] === 'exec', c.argv.join(' '));
    if (c.argv[0] === 'exec') assert.ok(['test', 'cat', 'ls', 'which', 'systemctl', '/usr/local/bin/traefik'].includes(c.argv[3] ?? ''), c.argv.join(' '));
    if (c.argv[3] === 'systemctl') assert.is(c.argv[4], 'show');
  }
  assert.not.ok(fs.existsSync(rootCaFile), 'dry-run wrote no host file');
  assert.not.ok(fs.existsSync(path.join(work, 'phoenix.lock')), 'dry-run takes no lock');
});

test('scripts: no secret in calls.jsonl, the command record or the log (keys, provisioner password)', () => {
  fs.rmSync(recordFile, { force: true });
  fs.rmSync(logFile, { force: true });
  makeCt('102', { mount: [certsDir, '/etc/traefik/certs'] });
  makeCt('103');
  guestWrite('103', STEP_CA_ROOT_CERT, ROOT_CA);
  guestWrite('102', '/usr/bin/step', '', 0o755);
  acceptBootstrap();
  issueTraefikCerts();
  for (const [feature, args] of [['traefik', ['102', 'https://172.16.100.11:9000']], ['sync_traefik_certs', ['102', '']], ['trusted_ca', ['102']]] as const) {
    const r = script(feature, [...args], { PHOENIX_DEBUG: 'true' });
    assert.is(r.code, 0, `${feature}: ${r.stderr}`);
    assert.not.match(r.stderr, KEY_MATERIAL);
    assert.not.match(r.stderr, PROVISIONER_PASSWORD);
  }
  const calls = fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8');
  const record = fs.readFileSync(recordFile, 'utf8');
  const log = fs.readFileSync(logFile, 'utf8');
  for (const [name, text] of [['calls.jsonl', calls], ['record', record], ['log', log]] as const) {
    assert.ok(text.length > 0, `${name} is not empty`);
    assert.not.match(text, KEY_MATERIAL, `no key material in ${name}`);
    assert.not.match(text, PROVISIONER_PASSWORD, `no provisioner password in ${name}`);
    assert.not.match(text, /provisioner_password|ca_password|step ca certificate/, `no CA secret is used in ${name}`);
  }
  assert.match(calls, /"pct","argv":\["push","102","[^"]*client-key\.pem","\/etc\/traefik\/certs\/client-key\.pem","--perms","0600"\]/);
  assert.is(fs.statSync(path.join(certsDir, 'client-key.pem')).mode & 0o777, 0o600, 'pushed through the bind mount with its mode');
});


// ---------------------------------------------------------------- the plan path (lib/guest/feature-plan.mts on a container)

test('plan: a container feature is a plan of checked steps; the second run applies nothing', async () => {
  makeCt('960');
  const plan = await pythonApi.plan('960', context());
  assert.equal(plan.kind, 'lxc');
  assert.equal(plan.steps.map((s) => [s.kind, s.id]), [['host', 'python-packages']]);
  guestWrite('960', '/usr/bin/python3', '', 0o755);
  guestWrite('960', '/usr/bin/pip3', '', 0o755);
  const fresh = await apply('python_api_service', '960');
  assert.is(fresh.result.outcome, 'installed');
  assert.is(fresh.result.kind, 'lxc');
  assert.is(fresh.result.guest, '960');
  assert.equal(fresh.mutating, ['pct exec 960 -- bash -s -- python3 python3-pip python3-venv  <stdin: apt_install.sh>']);
  assert.ok(fresh.calls.some((c) => c.argv.join(' ') === 'exec 960 -- which python3 pip3'), 'verified after the change');

  host.injectExec({ tool: 'pct', guest: 960, command: ['dpkg-query'], stdout: dpkgInstalled('python3', 'python3-pip', 'python3-venv') });
  const again = await apply('python_api_service', '960');
  assert.is(again.result.outcome, 'unchanged');
  assertReadOnly(again);
  assert.not.ok(again.calls.some((c) => c.argv.includes('which')), 'nothing changed, nothing to verify');
});

test('plan: a dry-run prints each step of the plan and the planned total, as for a VM', async () => {
  makeCt('103');
  logLines.length = 0;
  await withRunContext({ dryRun: true }, async () => {
    const run = await apply('step_ca', '103');
    assertDryRun(run);
    const { reportFeature } = await import('../../lib/guest/feature-plan.mts');
    reportFeature(run.result);
  });
  const said = logLines.join('\n');
  for (const title of ['install step-cli step-ca from the Smallstep repository', 'write /usr/local/bin/run-step-ca.sh', 'write /etc/systemd/system/step-ca.service', 'reload systemd', 'enable step-ca']) {
    assert.match(said, `step_ca: CT 103: ${title}`);
  }
  assert.not.match(said, /step_ca: CT 103: start step-ca/, 'a step whose check holds is not in the plan');
  assert.match(said, /DRY-RUN: would run: pct exec 103 -- systemctl enable step-ca/);
  assert.match(said, /step_ca: DRY-RUN: 4 change\(s\) planned on CT 103: installed step-cli step-ca; wrote \/usr\/local\/bin\/run-step-ca\.sh; wrote \/etc\/systemd\/system\/step-ca\.service; enabled step-ca/);
});

test('plan: a failed verification fails the feature after its change', async () => {
  makeCt('960');
  guestWrite('960', '/usr/bin/python3', '', 0o755);
  const err = await applyFails('python_api_service', '960');
  assert.match(err.message, /python_api_service: pip3 still missing in CT 960 after the install/);
  assert.ok(recordedCommands().some((r) => r.mutating && r.args.join(' ').startsWith('exec 960 -- bash -s -- python3')), 'the change was made before the verification failed');

  makeCt('920');
  host.injectExec({ tool: 'pct', guest: 920, command: ['docker', '--version'], exit: 127, stderr: 'docker: not found\n' });
  const docker = await applyFails('docker', '920');
  assert.match(docker.message, /docker: 'docker --version' fails in CT 920 after the install \(exit 127\)/);
});

test('plan: a precondition that fails stops the feature before any change', async () => {
  makeCt('921');
  const err = await applyFails('docker', '921');
  assert.match(err.message, /^docker: CT 921 has the nvidia feature but no nvidia-smi$/);
  assert.match(err.hint ?? '', /list nvidia before docker/);
  assert.equal(host.calls().filter((c) => c.argv[0] !== 'status' && !(c.argv[0] === 'exec' && ['dpkg-query', 'which', 'cat', 'systemctl', 'test'].includes(c.argv[3] ?? ''))), [], 'only looks, no change');
});

test('plan: shell probes and files on a container target: one read-only check script, then only the shortfalls, then verified', async () => {
  makeCt('930');
  const content = '# written by the plan test\n';
  const plan = (): FeaturePlan => ({
    feature: 'plan_probe',
    kind: 'lxc',
    guest: '930',
    params: [['who', 'operator']],
    steps: [
      { kind: 'file', id: 'marker', title: 'write /etc/phoenix/marker', path: '/etc/phoenix/marker', content, mode: 0o644 },
      { kind: 'command', id: 'greet', title: 'greet', probe: 'test -e /etc/phoenix/greeted', action: 'logger -t phoenix "hello $who"\ntouch /etc/phoenix/greeted' },
      { kind: 'command', id: 'after-marker', title: 'note the new marker', action: 'logger -t phoenix marker', after: ['marker'] },
    ],
  });
  const marker = '# phoenix plan_probe: check';
  const missing = 'phoenix-state file /etc/phoenix/marker absent\nphoenix-state step greet missing\n';
  const sha = (await import('node:crypto')).createHash('sha256').update(content).digest('hex');
  const present = `phoenix-state file /etc/phoenix/marker ${sha} 644:root:root\nphoenix-state step greet ok\n`;
  host.injectExec({ tool: 'pct', guest: 930, stdin_contains: marker, stdout: missing, times: 1 });
  host.injectExec({ tool: 'pct', guest: 930, stdin_contains: marker, stdout: present });
  host.clearCalls();
  const start = recordedCommands().length;
  const first = await applyPlan(plan(), context());
  const recorded = recordedCommands().slice(start);
  assert.is(first.outcome, 'installed');
  assert.equal(first.changes, ['write /etc/phoenix/marker', 'greet', 'note the new marker']);
  assert.equal(recorded.filter((r) => r.mutating).map((r) => [r.cmd, ...r.args].join(' ').replace(/\/\S*\/phoenix-feature-[A-Za-z0-9]+\//, '<tmp>/')), [
    'pct exec 930 -- mkdir -p /etc/phoenix',
    'pct push 930 <tmp>/marker /etc/phoenix/marker --perms 0644',
    'pct exec 930 -- bash -s -- greet operator',
    'pct exec 930 -- bash -s -- after-marker operator',
  ]);
  const checks = recorded.filter((r) => !r.mutating && r.args.join(' ') === 'exec 930 -- bash -s -- check operator');
  assert.is(checks.length, 2, 'the check, then the verification');
  assert.is(fs.readFileSync(host.guestPath('930', '/etc/phoenix/marker'), 'utf8'), content);

  const again = await applyPlan(plan(), context());
  assert.is(again.outcome, 'unchanged');
  assert.equal(recordedCommands().slice(start + recorded.length).map((r) => [r.mutating, r.args.slice(0, 6).join(' ')]), [[false, 'exec 930 -- bash -s --']], 'one read-only check and nothing else');

  host.setInjection({});
  host.injectExec({ tool: 'pct', guest: 930, stdin_contains: marker, stdout: missing });
  try {
    await applyPlan(plan(), context());
    assert.unreachable('the guest still lacks what the plan wrote');
  } catch (err) {
    assert.match((err as Error).message, /plan_probe: CT 930 still lacks 'marker', 'greet' after the changes/);
  }
});

test.after(() => host.dispose());
test.run();
