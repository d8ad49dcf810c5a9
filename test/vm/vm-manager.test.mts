// vm-manager end to end on the simulated Proxmox host: the example
// manifests' template 9000 and its clones 1001 and 1002, re-runs, slow and
// failing guest commands, an agent that never answers, bad manifests,
// secrets, the lifecycle verbs. The VM features are our bash doubles
// (test/fixtures/legacy/bin/vm_features), pinned with PHOENIX_USE_LEGACY, so
// they run "inside the guest" as a legacy copy does.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { isMutating, transcript } from '../helpers/calls.mts';
import { assertGolden } from '../helpers/golden.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { acquireHostLock } from '../../lib/core/lock.mts';

const script = path.join(PROJECT_ROOT, 'scripts', 'managers', 'vm-manager.mjs');
const FEATURES = ['base_setup', 'trusted_ca', 'step_cli', 'docker', 'docker_proxy'].map((f) => `vm_features/feature_install_${f}.sh`);
const PINNED = [...FEATURES, 'vm_features/feature_sync_docker_certs.sh', 'vm_features/feature_sync_docker_proxy.sh', 'managers/certificate-renewal-manager.sh'];

// A snippets-capable `local`, as on a host where cloud-init files are enabled.
const host = createSimHost(undefined, { storages: { local: { content: ['backup', 'iso', 'vztmpl', 'snippets'] } } });
const work = tmpDir();
const hostfs = path.join(host.stateDir, 'hostfs');

// The legacy tree: our feature doubles plus what a bash tree also holds.
const legacy = path.join(work, 'legacy');
fs.cpSync(path.join(PROJECT_ROOT, 'test', 'fixtures', 'legacy'), legacy, { recursive: true });
fs.writeFileSync(path.join(legacy, 'bin', 'phoenix_hypervisor_common_utils.sh'), '# stand-in for the bash common utilities\nlog_info() { echo "$*"; }\n');
fs.writeFileSync(
  path.join(legacy, 'bin', 'managers', 'certificate-renewal-manager.sh'),
  '#!/usr/bin/env bash\n# stand-in: records how it was called\nprintf \'%s\\n\' "$*" >> "${PHOENIX_SIM_STATE:?}/certificate-renewal-manager.args"\n',
  { mode: 0o755 },
);

const baseEnv: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: PROJECT_ROOT,
  MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  PHOENIX_LOCK_FILE: path.join(work, 'run', 'phoenix.lock'),
  PHOENIX_LEGACY_DIR: legacy,
  PHOENIX_USE_LEGACY: PINNED.join(' '),
  PHOENIX_POLL_INTERVAL_MS: '50',
  PHOENIX_AGENT_TIMEOUT: '20',
};
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_RECORD', 'PHOENIX_DEBUG', 'PHOENIX_LOCK_TOKEN', 'PHOENIX_HOST_ROOT']) delete baseEnv[key];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function vmManager(args: string[], env: Record<string, string> = {}): Run {
  const started = Date.now();
  const r = spawnSync(process.execPath, [script, ...args], { env: { ...baseEnv, ...env }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

function vmManagerAsync(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { env: { ...baseEnv, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, ms: Date.now() - started }));
  });
}

const isLogFollow = (c: CallRecord) => c.tool === 'qm' && c.argv[0] === 'guest' && c.argv.includes('tail');

/**
 * The mutating calls, as a golden transcript. Following a feature's log is
 * read-only and its count depends on timing, so it is left out; MAC
 * addresses are random per clone.
 */
function goldenTranscript(calls: readonly CallRecord[]): string {
  return transcript(calls.filter((c) => isMutating(c) && !isLogFollow(c))).replace(/([0-9A-F]{2}:){5}[0-9A-F]{2}/g, 'XX:XX:XX:XX:XX:XX');
}

// Creating the template takes a while; tests that need it start from a copy.
const withTemplate = path.join(work, 'state-with-9000');

function restore(from: string): void {
  for (const entry of fs.readdirSync(host.stateDir)) fs.rmSync(path.join(host.stateDir, entry), { recursive: true, force: true });
  fs.cpSync(from, host.stateDir, { recursive: true, verbatimSymlinks: true });
  host.clearCalls();
}

function fresh(): void {
  host.reset();
  fs.rmSync(path.join(work, 'run'), { recursive: true, force: true });
}

function templateReady(): void {
  fresh();
  if (fs.existsSync(withTemplate)) return restore(withTemplate);
  const r = vmManager(['create', '9000']);
  assert.is(r.code, 0, r.stderr);
  fs.cpSync(host.stateDir, withTemplate, { recursive: true, verbatimSymlinks: true });
  host.clearCalls();
}

// The same for the clones, saved by the test that creates them.
const withClones = path.join(work, 'state-with-clones');

function clonesReady(): void {
  if (fs.existsSync(withClones)) {
    fresh();
    return restore(withClones);
  }
  templateReady();
  for (const vmid of ['1001', '1002']) assert.is(vmManager(['create', vmid]).code, 0);
  fs.cpSync(host.stateDir, withClones, { recursive: true, verbatimSymlinks: true });
  host.clearCalls();
}

function record(vmid: string): { features: string[]; mounts?: string } {
  return JSON.parse(fs.readFileSync(path.join(hostfs, 'var', 'lib', 'phoenix', 'vm', `${vmid}.json`), 'utf8'));
}

// ---------------------------------------------------------------- create

test('create 9000: cloud image imported, cloud-init snippets, provisioned, converted (golden)', () => {
  fresh();
  const r = vmManager(['create', '9000']);
  assert.is(r.code, 0, r.stderr);
  assertGolden('vm/create-9000.txt', goldenTranscript(host.calls()));
  const config = host.readConfig('qemu', 9000)!.main.props;
  assert.is(config.template, '1');
  assert.match(config.scsi0 ?? '', /^quickOS-vm-disks:base-9000-disk-0,.*size=16G/);
  assert.is(config.cicustom, 'user=local:snippets/phoenix-9000-user.yaml,network=local:snippets/phoenix-9000-network.yaml,meta=local:snippets/phoenix-9000-meta.yaml');
  const snippet = fs.readFileSync(path.join(hostfs, 'var', 'lib', 'vz', 'snippets', 'phoenix-9000-user.yaml'), 'utf8');
  assert.match(snippet, /^#cloud-config\n/);
  assert.match(snippet, /hostname: ubuntu-noble-template/);
  assert.equal(host.calls('qm').filter((c) => c.argv[0] === 'start').length, 1, 'started once, to provision it, before it became a template');
  assert.ok(host.calls('qm').some((c) => c.argv[0] === 'shutdown' && c.argv.includes('--forceStop')), 'a clean shutdown, not a hard stop, before qm template');
  const qmCalls = host.calls('qm').filter((c) => !isLogFollow(c));
  process.stderr.write(`    create 9000: ${r.ms} ms, ${host.calls().filter((c) => !isLogFollow(c)).length} calls (${qmCalls.filter(isMutating).length} mutating qm)\n`);
  assert.ok(qmCalls.length <= 18, `qm calls for 9000: ${qmCalls.length}`);
  fs.cpSync(host.stateDir, withTemplate, { recursive: true, verbatimSymlinks: true });
});

test('create 1001 and 1002: full clones configured from the manifests (golden)', () => {
  templateReady();
  const args = path.join(host.stateDir, 'certificate-renewal-manager.args');
  const r1 = vmManager(['create', '1001']);
  assert.is(r1.code, 0, r1.stderr);
  assertGolden('vm/create-1001.txt', goldenTranscript(host.calls()));
  assert.is(fs.readFileSync(args, 'utf8'), '--generate-only\n', '1001 has certificates in the manifest');
  const c1 = host.readConfig('qemu', 1001)!.main.props;
  assert.is(c1.cores, '4');
  assert.is(c1.memory, '8192');
  assert.is(c1.onboot, '1');
  assert.is(c1.startup, 'order=4,up=10');
  assert.match(c1.net0 ?? '', /^virtio=[0-9A-F:]{17},bridge=vmbr0,firewall=1$/);
  assert.is(c1.ipconfig0, 'ip=10.0.0.21/24,gw=10.0.0.1');
  assert.is(c1.nameserver, '10.0.0.5');
  assert.is(c1.searchdomain, 'internal.example.org');
  assert.match(c1.scsi0 ?? '', /size=64G/);
  assert.ok(host.readConfig('qemu', 1001)!.snapshots['cloud-base'], "the template's template_snapshot_name, kept in the clone");
  assert.equal(record('1001').features, ['base_setup', 'trusted_ca', 'step_cli', 'docker']);
  assert.ok(fs.existsSync(path.join(hostfs, 'quickOS', 'vm-persistent-data', '1001')), 'NFS host directory created');
  assert.is(fs.statSync(path.join(hostfs, 'quickOS', 'vm-persistent-data', '1001')).mode & 0o777, 0o755, 'and not made world-writable');
  assert.ok(fs.existsSync(path.join(hostfs, 'quickOS', 'vm-persistent-data', '1001', '.phoenix_scripts', 'feature_install_docker.sh')));

  host.clearCalls();
  const r2 = vmManager(['create', '1002']);
  assert.is(r2.code, 0, r2.stderr);
  assertGolden('vm/create-1002.txt', goldenTranscript(host.calls()));
  assert.is(host.readConfig('qemu', 1002)!.main.props.startup, 'order=5,up=10');
  const calls = host.calls().filter((c) => !isLogFollow(c));
  process.stderr.write(`    create 1002: ${r2.ms} ms, ${calls.length} calls (${calls.filter(isMutating).length} mutating); create 1001: ${r1.ms} ms\n`);
  fs.cpSync(host.stateDir, withClones, { recursive: true, verbatimSymlinks: true });
});

test('a second create changes nothing and says so; templates are never started', () => {
  clonesReady();
  for (const vmid of ['9000', '1001']) {
    const r = vmManager(['create', vmid]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`VM ${vmid} \\(\\S+\\) is unchanged`));
  }
  const converge = vmManager(['converge', '9000']);
  assert.is(converge.code, 0, converge.stderr);
  assert.match(converge.stderr, /already a template; left as it is/);
  const start = vmManager(['start', '9000']);
  assert.is(start.code, 0);
  assert.match(start.stderr, /templates are never started/);
  assert.equal(host.calls().filter(isMutating), [], 'no mutating call at all');
  const perGuest = host.calls().filter((c) => c.argv.includes('1001')).length;
  assert.ok(perGuest <= 3, `an unchanged VM costs ${perGuest} calls`);
});

test('a changed manifest is applied as a difference: one qm set, a grown disk, nothing shrunk', () => {
  clonesReady();
  const dir = tmpDir();
  const vm = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_vm_configs.json'), 'utf8'));
  const w = vm.vms.find((v: { vmid: number }) => v.vmid === 1002);
  w.memory_mb = 4096;
  w.disk_size_gb = 80;
  w.firewall.enabled = false;
  fs.writeFileSync(path.join(dir, 'vm.json'), JSON.stringify(vm));
  host.clearCalls();
  const r = vmManager(['converge', '1002', '--config', path.join(dir, 'vm.json')]);
  assert.is(r.code, 0, r.stderr);
  const mutating = host.calls().filter(isMutating).map((c) => c.argv.slice(0, 2).join(' '));
  // firewall.enabled=false rewrites 1002.fw (enable: 0), so pve-firewall restarts.
  assert.equal(mutating, ['set 1002', 'resize 1002', 'restart'], 'no start, no feature: they are done');
  const c = host.readConfig('qemu', 1002)!;
  assert.is(c.pending?.props.memory ?? c.main.props.memory, '4096');
  assert.not.match(c.main.props.net0 ?? '', /firewall/);
  assert.match(r.stderr, /take effect at its next restart/);
  w.disk_size_gb = 32;
  fs.writeFileSync(path.join(dir, 'vm.json'), JSON.stringify(vm));
  const smaller = vmManager(['converge', '1002', '--config', path.join(dir, 'vm.json')]);
  assert.is(smaller.code, 0);
  assert.match(smaller.stderr, /larger than disk_size_gb 32; Proxmox cannot shrink a disk/);
});

test('--dry-run creates nothing, and prints the whole chain it would run', () => {
  fresh();
  const r = vmManager(['create', '1001', '--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(host.calls().filter(isMutating), []);
  assert.match(r.stderr, /DRY-RUN: would run: qm create 9000 .*import-from=fastData-shared-iso:iso\/noble-server-cloudimg-amd64\.img/);
  assert.match(r.stderr, /DRY-RUN: would run: qm template 9000/);
  assert.match(r.stderr, /DRY-RUN: would run: qm clone 9000 1001 --name portainer --full 1 --storage quickOS-vm-disks/);
  assert.match(r.stderr, /DRY-RUN: would run: qm guest exec 1001 .*feature_install_docker\.sh/);
  assert.not.ok(fs.existsSync(path.join(hostfs, 'quickOS')), 'no host directory');
  assert.not.ok(fs.existsSync(path.join(hostfs, 'var', 'lib', 'vz', 'snippets')), 'no snippet');
  assert.not.ok(fs.existsSync(baseEnv.PHOENIX_LOCK_FILE!), 'a dry-run takes no lock');
  const env = vmManager(['create', '9000'], { PHOENIX_DRY_RUN: 'true' });
  assert.is(env.code, 0);
  assert.equal(host.calls().filter(isMutating), [], 'PHOENIX_DRY_RUN is the switch (the bash read DRY_RUN)');
});

// ---------------------------------------------------------------- guest commands

test('cloud-init slower than qm\'s own wait is polled to its end, and its failure is a failure', () => {
  templateReady();
  host.updateInjection((inj) => {
    inj.time_scale = 0.01;
    inj.exec = [{ tool: 'qm', guest: '1002', command: ['cloud-init', 'status'], duration_ms: 60_000, exit: 1, stdout: 'status: error\n' }];
  });
  const r = vmManager(['create', '1002']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /cloud-init failed in VM 1002 \(exit 1\): status: error/);
  assert.ok(host.calls('qm').some((c) => c.argv[0] === 'guest' && c.argv[1] === 'exec-status'), 'the pid qm handed back was polled');
  assert.not.ok(host.calls('qm').some((c) => c.argv.includes('feature_install_base_setup.sh')), 'no feature ran after it');
});

test('a feature slower than the agent wait is followed to its end, its log shown while it runs', () => {
  templateReady();
  host.updateInjection((inj) => {
    inj.time_scale = 0.01;
    inj.exec = [
      { tool: 'qm', guest: '1002', contains: 'feature_install_step_cli.sh', duration_ms: 150_000, exit: 0 },
      { tool: 'qm', guest: '1002', command: ['tail', '-n', '+1', '/var/log/phoenix_feature_step_cli.log'], stdout: 'Installing step-cli...\nhalf a line', times: 1 },
      { tool: 'qm', guest: '1002', command: ['tail', '-n', '+2', '/var/log/phoenix_feature_step_cli.log'], stdout: 'half a line done\n' },
    ];
  });
  const r = vmManager(['create', '1002']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /\[feature step_cli\] Installing step-cli\.\.\.\n/);
  assert.match(r.stderr, /\[feature step_cli\] half a line done\n/);
  assert.not.match(r.stderr, /\] half a line\n/, 'a line is shown once it is complete');
  assert.ok(host.calls('qm').filter((c) => c.argv[1] === 'exec-status').length >= 1);
  assert.equal(record('1002').features, ['base_setup', 'trusted_ca', 'step_cli', 'docker']);
});

test('a failing feature stops the run (exit 1); the next create resumes with it', () => {
  templateReady();
  host.injectExec({ tool: 'qm', guest: '1001', contains: 'feature_install_step_cli.sh', exit: 7, times: 1 });
  const r = vmManager(['create', '1001']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /feature step_cli failed in VM 1001 with exit code 7/);
  assert.match(r.stderr, /phoenix_feature_step_cli\.log/);
  assert.not.ok(host.calls('qm').some((c) => c.argv.includes('feature_install_docker.sh')), 'docker did not run');
  assert.equal(record('1001').features, ['base_setup', 'trusted_ca']);
  host.clearCalls();
  const again = vmManager(['create', '1001']);
  assert.is(again.code, 0, again.stderr);
  const launched = host.calls('qm').filter((c) => c.argv.some((a) => a.startsWith('feature_install_'))).map((c) => c.argv.find((a) => a.startsWith('feature_install_')));
  assert.equal(launched, ['feature_install_step_cli.sh', 'feature_install_docker.sh']);
  assert.not.ok(host.calls('qm').some((c) => c.argv[0] === 'clone'), 'the VM is not made again');
});

test('a feature running past PHOENIX_GUEST_TIMEOUT is an error, never a success', () => {
  templateReady();
  host.updateInjection((inj) => {
    inj.time_scale = 0.01;
    inj.exec = [{ tool: 'qm', guest: '1002', contains: 'feature_install_base_setup.sh', duration_ms: 1_000_000, exit: 0 }];
  });
  const r = vmManager(['create', '1002'], { PHOENIX_GUEST_TIMEOUT: '1' });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /still running after 1 s/);
  assert.not.ok(fs.existsSync(path.join(hostfs, 'var', 'lib', 'phoenix', 'vm', '1002.json')) && record('1002').features.includes('base_setup'));
});

test('a guest agent that never answers: a bounded wait and a clear error', () => {
  templateReady();
  host.updateInjection((inj) => {
    inj.agent_delay_ms = { '1002': 10_000_000 };
  });
  const r = vmManager(['create', '1002'], { PHOENIX_AGENT_TIMEOUT: '1' });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /the guest agent of VM 1002 did not answer within 1 s/);
  assert.match(r.stderr, /hint: .*qemu-guest-agent/);
  assert.ok(r.ms < 15_000, `gave up after ${r.ms} ms`);
  assert.not.ok(host.calls('qm').some((c) => c.argv[0] === 'guest' && c.argv[1] === 'exec'), 'nothing was run in the guest');
});

test('PEM keys reach the guest on stdin only; no secret is staged, logged or passed as an argument', () => {
  templateReady();
  const dir = tmpDir();
  const pki = path.join(hostfs, 'etc', 'phoenix');
  fs.mkdirSync(path.join(pki, 'ca'), { recursive: true });
  fs.mkdirSync(path.join(hostfs, 'quickOS', 'vm-persistent-data', '1001', 'docker'), { recursive: true });
  const key = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ9sIm51bGxfZGF0YV9mb3JfYV90ZXN0X2tleV8=\n-----END PRIVATE KEY-----\n';
  fs.writeFileSync(path.join(pki, 'ca', 'root_ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIBroot\n-----END CERTIFICATE-----\n');
  fs.writeFileSync(path.join(hostfs, 'quickOS', 'vm-persistent-data', '1001', 'docker', 'server-cert.pem'), '-----BEGIN CERTIFICATE-----\nMIIBdocker\n-----END CERTIFICATE-----\n');
  fs.writeFileSync(path.join(hostfs, 'quickOS', 'vm-persistent-data', '1001', 'docker', 'server-key.pem'), key, { mode: 0o600 });
  const certs = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'certificate-manifest.json'), 'utf8'));
  certs.push({ common_name: 'docker-daemon.internal.example.org', guest_id: 1001, guest_type: 'vm', cert_path: '/quickOS/vm-persistent-data/1001/docker/server-cert.pem', key_path: '/quickOS/vm-persistent-data/1001/docker/server-key.pem' });
  fs.writeFileSync(path.join(dir, 'certs.json'), JSON.stringify(certs));
  const hv = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_hypervisor_config.json'), 'utf8'));
  hv.portainer_api.admin_password = 'Sup3r-Secret-Pass';
  delete hv.core_paths; // relative to the file; the other manifests stay in etc/
  fs.writeFileSync(path.join(dir, 'hv.json'), JSON.stringify(hv));
  fs.mkdirSync(path.join(hostfs, 'mnt', 'pve', 'quickOS', 'lxc-persistent-data', '103', 'ssl'), { recursive: true });
  fs.writeFileSync(path.join(hostfs, 'mnt', 'pve', 'quickOS', 'lxc-persistent-data', '103', 'ssl', 'provisioner_password.txt'), 'provisioner-secret\n');

  const r = vmManager(['create', '1001'], { CERTIFICATE_MANIFEST_FILE: path.join(dir, 'certs.json'), HYPERVISOR_CONFIG_FILE: path.join(dir, 'hv.json') });
  assert.is(r.code, 0, r.stderr);
  const push = host.calls('qm').find((c) => c.argv[0] === 'guest' && c.argv.includes('--pass-stdin') && c.argv.at(-1) === '--');
  assert.ok(push, 'one push of the certificate files over stdin');
  assert.ok((push!.stdin_bytes ?? 0) > key.length, 'the key travelled in stdin');
  const everything = [
    fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8'),
    fs.readFileSync(baseEnv.MAIN_LOG_FILE!, 'utf8'),
    r.stderr,
    r.stdout,
  ].join('\n');
  assert.not.match(everything, /PRIVATE KEY|MC4CAQAw/, 'no key in an argument or a log line');
  assert.not.match(everything, /Sup3r-Secret-Pass|provisioner-secret/);
  const staged = path.join(hostfs, 'quickOS', 'vm-persistent-data', '1001', '.phoenix_scripts');
  const stagedText = fs.readdirSync(staged).map((f) => fs.readFileSync(path.join(staged, f), 'utf8')).join('\n');
  assert.not.match(stagedText, /Sup3r-Secret-Pass|provisioner-secret|PRIVATE KEY/, 'the staging share holds no secret');
  assert.match(stagedText, /"admin_password_file"/, 'paths to secret files stay');
});

// ---------------------------------------------------------------- manifests and arguments

test('bad manifests and arguments: a clear error, exit 1, and no call to the host', () => {
  fresh();
  const dir = tmpDir();
  const write = (mutate: (vm: any) => void): string => {
    const vm = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_vm_configs.json'), 'utf8'));
    mutate(vm);
    const file = path.join(dir, `vm-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify(vm));
    return file;
  };
  const cases: Array<[string[], RegExp]> = [
    [['create', '1001', '--config', write((vm) => (vm.vms[1].qm_options = ['--balloon 0']))], /\/vms\/1\/qm_options: qm_options is not supported/],
    [['create', '1002', '--config', write((vm) => (vm.vms[2].count = 2))], /\/vms\/2\/count/],
    [['create', '1001', '--config', write((vm) => (vm.vms[1].network_config.ip = '10.0.0.21'))], /\/vms\/1\/network_config\/ip/],
    [['create', '1001', '--config', write((vm) => (vm.vms[1].clone_from_vmid = 4242))], /clone source 4242 is not defined/],
    [['create', '4242'], /VM 4242 not found in configuration/],
    [['frobnicate', '1001'], /Invalid action 'frobnicate'/],
    [['create'], /'create' needs a VMID/],
  ];
  for (const [args, message] of cases) {
    const r = vmManager(args);
    assert.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.equal(host.calls(), []);
});

test('a cloud image in no storage: an error naming the storages and how to get it', () => {
  const bare = createSimHost(undefined, { isos: [] });
  try {
    const r = vmManager(['create', '9000'], { ...bare.env, PHOENIX_LOCK_FILE: path.join(work, 'bare', 'lock') });
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /cloud image noble-server-cloudimg-amd64\.img is in none of the ISO storages \(fastData-shared-iso, local\)/);
    assert.match(r.stderr, /download-url .*https:\/\/cloud-images\.ubuntu\.com\/noble\/current\/noble-server-cloudimg-amd64\.img --checksum/);
    assert.equal(bare.calls().filter(isMutating), []);
  } finally {
    bare.dispose();
  }
});

test('without a snippets storage Proxmox generates cloud-init, and the operator is told', () => {
  const plain = createSimHost();
  try {
    const r = vmManager(['create', '9000'], { ...plain.env, PHOENIX_LOCK_FILE: path.join(work, 'plain', 'lock') });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /no active storage holds snippets/);
    const config = plain.readConfig('qemu', 9000)!.main.props;
    assert.is(config.cicustom, undefined);
    assert.is(config.ciuser, 'phoenix_user');
    assert.is(config.template, '1');
  } finally {
    plain.dispose();
  }
});

// ---------------------------------------------------------------- lifecycle

test('start, stop, restart, status, delete: idempotent, graceful, templates untouched', () => {
  clonesReady();
  assert.is(vmManager(['delete', '1001']).code, 0);
  host.clearCalls();
  const status = vmManager(['status', '9000', '1002', '1001']);
  assert.is(status.code, 0);
  assert.match(status.stdout, /^ID\s+KIND\s+NAME\s+STATE\n9000\s+vm\s+ubuntu-noble-template\s+template\n1002\s+vm\s+worker-1\s+running\n1001\s+vm\s+portainer\s+absent\n$/);
  assert.is(vmManager(['stop', '1002']).code, 0);
  assert.ok(host.calls('qm').some((c) => c.argv.join(' ') === 'shutdown 1002 --timeout 180 --forceStop 1'));
  const again = vmManager(['stop', '1002']);
  assert.match(again.stderr, /already stopped/);
  const restarted = vmManager(['restart', '1002']);
  assert.is(restarted.code, 0);
  assert.match(restarted.stderr, /Starting VM 1002\.\.\.[^]*VM 1002 restarted\./);
  assert.match(vmManager(['status', '1002']).stdout, /running/);
  assert.match(vmManager(['stop', '9000']).stderr, /template; it never runs/);
  const restartTemplate = vmManager(['restart', '9000']);
  assert.is(restartTemplate.code, 0);
  assert.match(restartTemplate.stderr, /VM 9000 is a template; templates are never started\./);
  assert.is(vmManager(['start', '1001']).code, 1, 'an absent VM cannot be started');
  const stopAbsent = vmManager(['stop', '1001']);
  assert.is(stopAbsent.code, 1, 'nor stopped');
  assert.match(stopAbsent.stderr, /VM 1001 does not exist \(create it first: vm-manager\.sh create 1001\)/);
  assert.equal(host.calls('qm').filter((c) => c.argv[1] === '9000' && isMutating(c)), []);

  const del = vmManager(['delete', '1002']);
  assert.is(del.code, 0, del.stderr);
  assert.ok(host.calls('qm').some((c) => c.argv.join(' ') === 'destroy 1002 --purge 1'));
  assert.not.ok(host.readConfig('qemu', 1002));
  assert.not.ok(fs.existsSync(path.join(hostfs, 'var', 'lib', 'phoenix', 'vm', '1002.json')), 'its record is gone');
  assert.not.ok(fs.existsSync(path.join(hostfs, 'var', 'lib', 'vz', 'snippets', 'phoenix-1002-user.yaml')), 'its snippets are gone');
  assert.ok(fs.existsSync(path.join(hostfs, 'quickOS', 'vm-persistent-data', '1002')), 'its data stays');
  const twice = vmManager(['delete', '1002']);
  assert.is(twice.code, 0);
  assert.match(twice.stderr, /nothing to delete/);
});

test('sync: a docker VM gets the certificate sync on the host and the proxy sync in the guest', () => {
  clonesReady();
  const r = vmManager(['sync', '1001']);
  assert.is(r.code, 0, r.stderr);
  assert.is(fs.readFileSync(path.join(host.stateDir, 'feature_sync_docker_certs.args'), 'utf8'), '1001\n');
  assert.ok(host.calls('qm').some((c) => c.argv.includes('feature_sync_docker_proxy.sh')), 'the proxy sync ran inside VM 1001');
  const none = vmManager(['sync', '9000']);
  assert.is(none.code, 0);
  assert.match(none.stderr, /no docker feature; nothing to sync/);
});

test('parallel creates of independent VMs under one parent lock; one VM is never worked on twice at once', async () => {
  templateReady();
  const lockFile = baseEnv.PHOENIX_LOCK_FILE!;
  const parent = await acquireHostLock(lockFile, { script: 'test parent' });
  try {
    const env = { PHOENIX_LOCK_TOKEN: parent.token };
    const [a, b] = await Promise.all([vmManagerAsync(['create', '1001'], env), vmManagerAsync(['create', '1002'], env)]);
    assert.is(a.code, 0, a.stderr);
    assert.is(b.code, 0, b.stderr);
    assert.ok(host.readConfig('qemu', 1001) && host.readConfig('qemu', 1002));
    const guestLock = path.join(path.dirname(lockFile), 'phoenix.guest-1001.lock');
    fs.writeFileSync(guestLock, JSON.stringify({ pid: process.pid, token: 'held-by-test', script: 'test', since: '' }));
    const busy = vmManager(['converge', '1001'], env);
    assert.is(busy.code, 75, busy.stderr);
    fs.rmSync(guestLock);
    const alone = vmManager(['create', '1001']);
    assert.is(alone.code, 75, 'without the token, the host lock keeps a second run out');
  } finally {
    parent.release();
  }
  assert.equal(fs.readdirSync(path.dirname(lockFile)).filter((f) => f.endsWith('.lock')), [], 'every lock is released');
});

test.run();
