// lxc-manager end to end on the simulated Proxmox host. Child scripts run
// from a stand-in bash tree assembled here (PHOENIX_USE_LEGACY=all): the
// feature and firewall doubles of test/fixtures/legacy, plus a certificate
// manager, the common utilities and the application scripts written below,
// so these tests are about lxc-manager whatever the other ports do.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { tmpDir, writeExecutable } from '../helpers/tmp.mts';
import { transcript, isMutating } from '../helpers/calls.mts';
import { assertGolden } from '../helpers/golden.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { acquireHostLock } from '../../lib/core/lock.mts';

const script = path.join(PROJECT_ROOT, 'scripts', 'managers', 'lxc-manager.mjs');
const fixtures = path.join(PROJECT_ROOT, 'test', 'fixtures', 'legacy', 'bin');
const exampleLxc = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_lxc_configs.json'), 'utf8'));

const host = createSimHost();
const work = tmpDir('phoenix-lxc-');
const legacy = path.join(work, 'legacy');
const hostfs = path.join(host.stateDir, 'hostfs');

function buildLegacyTree(): void {
  const bin = path.join(legacy, 'bin');
  fs.mkdirSync(path.join(bin, 'managers'), { recursive: true });
  for (const dir of ['lxc_setup', 'hypervisor_setup']) fs.symlinkSync(path.join(fixtures, dir), path.join(bin, dir));
  writeExecutable(bin, 'managers/certificate-renewal-manager.sh', '#!/usr/bin/env bash\n# test double: counts its runs\necho run >> "$PHOENIX_SIM_STATE/cert-runs"\nexit "${CERT_EXIT:-0}"\n');
  fs.writeFileSync(path.join(bin, 'phoenix_hypervisor_common_utils.sh'), '# test double of the common utilities\n');
  for (const id of ['101', '102', '103', '201']) {
    writeExecutable(bin, `phoenix_hypervisor_lxc_${id}.sh`, `#!/usr/bin/env bash\n# test double: runs inside CT ${id}\ntouch /etc/app-${id}-ran\n`);
  }
  writeExecutable(bin, 'health_checks/check_demo.sh', '#!/usr/bin/env bash\n# test double: a host-side health check\necho "$@" >> "$PHOENIX_SIM_STATE/health-runs"\n');
  fs.mkdirSync(path.join(legacy, 'etc', 'nginx'), { recursive: true });
  fs.writeFileSync(path.join(legacy, 'etc', 'nginx', 'nginx.conf'), 'events {}\n');
}
buildLegacyTree();

const baseEnv: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: PROJECT_ROOT,
  MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  PHOENIX_LOCK_FILE: path.join(work, 'run', 'phoenix.lock'),
  PHOENIX_LEGACY_DIR: legacy,
  PHOENIX_USE_LEGACY: 'all',
  PHOENIX_START_RETRY_DELAY_MS: '10',
  PHOENIX_PVE_LOCK_DELAY_MS: '10',
};
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_RECORD', 'PHOENIX_HOST_ROOT', 'PHOENIX_LOCK_TOKEN', 'PHOENIX_DEBUG']) delete baseEnv[key];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function lxc(args: string[], env: Record<string, string> = {}): Outcome {
  const r = spawnSync(process.execPath, [script, ...args], { env: { ...baseEnv, ...env }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function lxcAsync(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { env: { ...baseEnv, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Mutating calls with the temporary directories replaced, so goldens are stable. */
function golden(calls: CallRecord[] = host.calls()): string {
  return transcript(calls, { mutatingOnly: true }).split(host.stateDir).join('<sim>').split(legacy).join('<legacy>').split(PROJECT_ROOT).join('<project>');
}

/** Run and require success, showing the log when it fails. */
function ok(args: string[], env: Record<string, string> = {}): Outcome {
  const r = lxc(args, env);
  assert.is(r.code, 0, `lxc-manager ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

const mutating = () => host.calls().filter(isMutating);
const conf = (id: string) => host.readConfigText('lxc', id) ?? '';
const liveSection = (id: string) => conf(id).split('\n[')[0] ?? '';
const record = (id: string) => JSON.parse(fs.readFileSync(path.join(hostfs, 'var', 'lib', 'phoenix', 'lxc', `${id}.json`), 'utf8'));
const running = (id: string) => host.run('pct', ['status', id]).stdout.includes('running');
const snapshots = (id: string) => Object.keys(host.readConfig('lxc', id)?.snapshots ?? {}).sort();

/** A manifest like the example with changes; returns the env that selects it. */
function manifest(mutate: (configs: Record<string, any>, doc: any) => void): Record<string, string> {
  const doc = structuredClone(exampleLxc);
  mutate(doc.lxc_configs, doc);
  const file = path.join(tmpDir('phoenix-lxc-manifest-'), 'phoenix_lxc_configs.json');
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
  return { LXC_CONFIG_FILE: file };
}

/** A clone of 900 with the settings a test is about. */
function guest(patch: Record<string, unknown>): any {
  return {
    name: 'probe',
    clone_from_ctid: '900',
    memory_mb: 512,
    cores: 1,
    storage_pool: 'quickOS-lxc-disks',
    storage_size_gb: 8,
    network_config: { name: 'eth0', bridge: 'vmbr100', ip: '172.16.100.50/24', gw: '172.16.100.1' },
    mac_address: 'BC:24:11:00:02:01',
    unprivileged: true,
    features: ['base_setup'],
    enable_lifecycle_snapshots: false,
    ...patch,
  };
}

// Creating the template once and copying the state is much faster than
// creating it for every test.
const baseline = path.join(work, 'baseline-900');
function resetHost(withTemplate: boolean): void {
  host.reset();
  if (withTemplate) {
    fs.rmSync(host.stateDir, { recursive: true, force: true });
    fs.cpSync(baseline, host.stateDir, { recursive: true, verbatimSymlinks: true });
  }
  host.clearCalls();
}

test('create 900 from the OS template: golden transcript, a template with its features and no snapshots', () => {
  host.reset();
  const r = lxc(['create', '900']);
  assert.is(r.code, 0, r.stderr);
  assertGolden('lxc/create-900.txt', golden());
  assert.match(conf('900'), /^template: 1$/m);
  assert.equal(snapshots('900'), []);
  assert.equal(record('900').features, ['base_setup']);
  assert.ok(fs.existsSync(path.join(host.stateDir, 'pve', 'firewall', '900.fw')), 'the firewall generator ran');
  assert.is(fs.readFileSync(path.join(host.stateDir, 'cert-runs'), 'utf8'), 'run\n');
  fs.cpSync(host.stateDir, baseline, { recursive: true, verbatimSymlinks: true });
});

test('an OS template missing from its storage is downloaded first; a missing storage pool stops before any change', () => {
  const bare = createSimHost(undefined, { templates: [] });
  const env = { PHOENIX_SIM_STATE: bare.stateDir, PHOENIX_PVE_DIR: bare.env.PHOENIX_PVE_DIR as string };
  try {
    const r = lxc(['create', '900'], env);
    assert.is(r.code, 0, r.stderr);
    const calls = golden(bare.calls()).split(bare.stateDir).join('<sim>').split('\n');
    assert.is(calls[0], 'pveam download fastData-shared-iso ubuntu-24.04-standard_24.04-2_amd64.tar.zst');
    assert.match(calls[1] ?? '', /^pct create 900 fastData-shared-iso:vztmpl\/ubuntu-24\.04-standard_24\.04-2_amd64\.tar\.zst /);
    bare.reset();
    bare.clearCalls();
    const missing = lxc(['create', '900'], { ...env, ...manifest((c) => (c['900'].storage_pool = 'nope-lxc-disks')) });
    assert.is(missing.code, 1);
    assert.match(missing.stderr, /Storage pool 'nope-lxc-disks' does not exist/);
    assert.equal(bare.calls().filter(isMutating), []);
  } finally {
    bare.dispose();
  }
});

test('create on an existing template changes nothing and succeeds', () => {
  resetHost(true);
  const r = lxc(['create', '900']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(mutating(), []);
  assert.match(r.stderr, /CT 900 is already a template; unchanged/);
});

test('create 103: golden transcript, mount owner, snapshots, features, application script staged and cleaned up', () => {
  resetHost(true);
  const r = lxc(['create', '103']);
  assert.is(r.code, 0, r.stderr);
  assertGolden('lxc/create-103.txt', golden());
  assert.ok(running('103'));
  assert.equal(snapshots('103'), ['final-form', 'pre-configured']);
  assert.match(liveSection('103'), /^mp0: \/quickOS\/lxc-persistent-data\/103\/step,mp=\/root\/\.step$/m);
  const step = fs.statSync(path.join(hostfs, 'quickOS', 'lxc-persistent-data', '103', 'step'));
  assert.equal([step.uid, step.gid], [100000, 100000]);
  assert.ok(fs.existsSync(host.guestPath('103', '/etc/phoenix-standin/feature-step_ca')));
  assert.not.ok(fs.existsSync(host.guestPath('103', '/tmp/phoenix_run')), 'the staging directory is removed');
  assert.equal(record('103').features, ['base_setup', 'step_ca']);
  assert.is(record('103').application_script.name, 'phoenix_hypervisor_lxc_103.sh');
  assert.not.ok(fs.existsSync(path.join(hostfs, 'var', 'lib', 'phoenix', 'staging', '103.phoenix_hypervisor_config.json')), 'the host-side copy is removed');
});

test('a second create of 103 issues no mutating call and says so', () => {
  resetHost(true);
  ok(['create', '103']);
  host.clearCalls();
  const r = lxc(['create', '103']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(mutating(), []);
  assert.match(r.stderr, /'create' workflow completed for CTID 103: unchanged, nothing to do/);
  assert.equal(host.calls('pct').map((c) => c.argv.join(' ')), ['config 103', 'status 103', 'listsnapshot 103'], 'one look per phase');
  const converge = lxc(['converge', '103']);
  assert.is(converge.code, 0, converge.stderr);
  assert.equal(mutating(), []);
});

test('create 101: golden transcript; secondary network, two owned mounts, nginx files staged for its bash script', () => {
  resetHost(true);
  const r = lxc(['create', '101']);
  assert.is(r.code, 0, r.stderr);
  assertGolden('lxc/create-101.txt', golden());
  assert.match(liveSection('101'), /^net1: .*hwaddr=BC:24:11:00:01:02.*ip=172\.16\.100\.10\/24/m);
  const logs = fs.statSync(path.join(hostfs, 'quickOS', 'lxc-persistent-data', '101', 'logs'));
  const ssl = fs.statSync(path.join(hostfs, 'quickOS', 'lxc-persistent-data', '101', 'ssl'));
  assert.equal([logs.uid, logs.gid, ssl.uid, ssl.gid], [100033, 100033, 100000, 100033]);
  assert.ok(host.calls('pct').some((c) => c.argv.join(' ').endsWith('/etc/nginx/nginx.conf /tmp/phoenix_run/nginx.conf --perms 0644')));
  assert.not.ok(host.calls('pct').some((c) => c.argv[0] === 'create' && c.argv[1] === '101'), 'cloned, not created');
  host.clearCalls();
  ok(['create', '101']);
  assert.equal(mutating(), [], 'the application script does not run twice (the bash ran 101\'s a second time)');
});

test('create 102: golden transcript; the bootstrap URL reaches every feature as its second argument', () => {
  resetHost(true);
  const r = lxc(['create', '102']);
  assert.is(r.code, 0, r.stderr);
  assertGolden('lxc/create-102.txt', golden());
  for (const feature of ['base_setup', 'trusted_ca', 'step_cli', 'traefik']) {
    assert.is(fs.readFileSync(host.guestPath('102', `/etc/phoenix-standin/feature-${feature}`), 'utf8'), 'https://172.16.100.11:9000\n');
  }
});

test('--dry-run on an empty host: the whole plan is printed, nothing is called or written', () => {
  host.reset();
  host.clearCalls();
  const files = () => (fs.existsSync(hostfs) ? fs.readdirSync(hostfs, { recursive: true }).map(String).sort() : []);
  const before = files(); // what a fresh node has (root's /etc/subuid and /etc/subgid)
  const r = lxc(['create', '102', '--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(mutating(), []);
  assert.equal(files(), before, 'no host directory, record or staging file');
  for (const line of [
    /DRY-RUN: would run: pct create 900 fastData-shared-iso:vztmpl\/ubuntu-24\.04/,
    /DRY-RUN: would run: pct template 900/,
    /DRY-RUN: would run: pct clone 900 102 --hostname traefik-mesh/,
    /DRY-RUN: would run: pct set 102 .*--mp0 \/quickOS\/lxc-persistent-data\/102\/certs,mp=\/etc\/traefik\/certs/,
    /DRY-RUN: would run: pct snapshot 102 final-form/,
    /DRY-RUN: would run: bash \S+phoenix_hypervisor_feature_install_traefik\.sh 102 https:\/\/172\.16\.100\.11:9000/,
  ]) assert.match(r.stderr, line);
  const env = lxc(['create', '900'], { PHOENIX_DRY_RUN: 'true' });
  assert.is(env.code, 0, env.stderr);
  assert.equal(mutating(), []);
});

test('--dry-run on an existing CT prints only the difference', () => {
  resetHost(true);
  ok(['create', '103']);
  host.clearCalls();
  const env = manifest((c) => {
    c['103'].memory_mb = 2048;
    c['103'].lxc_options = ['lxc.apparmor.profile: unconfined'];
  });
  const before = conf('103');
  const r = lxc(['converge', '103', '--dry-run'], env);
  assert.is(r.code, 0, r.stderr);
  assert.equal(mutating(), []);
  assert.is(conf('103'), before);
  assert.match(r.stderr, /DRY-RUN: would run: pct stop 103/);
  assert.match(r.stderr, /DRY-RUN: would run: pct set 103 --memory 2048\n/);
  assert.match(r.stderr, /DRY-RUN: would write .*103\.conf/);
  assert.not.match(r.stderr, /would run: pct snapshot/);
});

test('macvlan: net0 without address or firewall, its lxc.net.0.* lines in the live section; a re-run is unchanged', () => {
  resetHost(true);
  const env = manifest((c) => {
    c['201'] = guest({ lxc_options: ['lxc.net.0.type: macvlan', 'lxc.net.0.macvlan.mode: bridge', 'lxc.net.0.link: vmbr0', 'lxc.net.0.flags: up'], firewall: { enabled: true } });
  });
  const r = lxc(['create', '201'], env);
  assert.is(r.code, 0, r.stderr);
  assertGolden('lxc/option-macvlan.txt', golden());
  const live = liveSection('201');
  assert.match(live, /^net0: bridge=vmbr100,firewall=0,hwaddr=BC:24:11:00:02:01,name=eth0,type=veth$/m);
  assert.match(live, /lxc\.net\.0\.type: macvlan\nlxc\.net\.0\.macvlan\.mode: bridge\nlxc\.net\.0\.link: vmbr0\nlxc\.net\.0\.flags: up\n?$/);
  host.clearCalls();
  ok(['create', '201'], env);
  assert.equal(mutating(), []);
});

test('lxc_options with spaces stay whole; added later, they land in the live section, not a snapshot', () => {
  resetHost(true);
  const first = manifest((c) => {
    c['201'] = guest({ enable_lifecycle_snapshots: true, lxc_options: ['lxc.apparmor.profile: unconfined', 'lxc.cgroup2.devices.allow: c 10:200 rwm'] });
  });
  ok(['create', '201'], first);
  assert.match(liveSection('201'), /lxc\.apparmor\.profile: unconfined\nlxc\.cgroup2\.devices\.allow: c 10:200 rwm/);
  assert.equal(snapshots('201'), ['final-form', 'pre-configured']);
  const second = manifest((c) => {
    c['201'] = guest({ enable_lifecycle_snapshots: true, lxc_options: ['lxc.apparmor.profile: generated', 'lxc.cgroup2.devices.allow: c 10:200 rwm', 'lxc.mount.auto: proc:rw sys:rw'] });
  });
  const snapshotsBefore = conf('201').slice(conf('201').indexOf('\n['));
  host.clearCalls();
  const r = lxc(['converge', '201'], second);
  assert.is(r.code, 0, r.stderr);
  const live = liveSection('201');
  assert.match(live, /^lxc\.apparmor\.profile: generated$/m);
  assert.not.match(live, /profile: unconfined/);
  assert.match(live, /^lxc\.mount\.auto: proc:rw sys:rw$/m);
  assert.is(conf('201').slice(conf('201').indexOf('\n[')), snapshotsBefore, 'snapshot sections untouched');
  assert.equal(golden().trim().split('\n'), ['pct stop 201', 'pct start 201'], 'raw lines are a file edit; the CT restarts to pick them up');
});

test('id_maps from the manifest, owners mapped through them; gpu_assignment; pct_options', () => {
  resetHost(true);
  const env = manifest((c) => {
    c['201'] = guest({
      id_maps: [
        { type: 'uid', container_id: 0, host_id: 100000, size: 65536 },
        { type: 'gid', container_id: 0, host_id: 100000, size: 33 },
        { type: 'gid', container_id: 33, host_id: 33, size: 1 },
        { type: 'gid', container_id: 34, host_id: 100034, size: 65502 },
      ],
      mount_points: [{ host_path: '/quickOS/lxc-persistent-data/201/www', container_path: '/var/www', owner_uid: 33, owner_gid: 33 }],
      gpu_assignment: '0',
      pct_options: ['nesting=1', 'keyctl=1'],
    });
  });
  const r = lxc(['create', '201'], env);
  assert.is(r.code, 0, r.stderr);
  assertGolden('lxc/option-idmap-gpu-features.txt', golden());
  const live = liveSection('201');
  assert.match(live, /lxc\.idmap: u 0 100000 65536\nlxc\.idmap: g 0 100000 33\nlxc\.idmap: g 33 33 1\nlxc\.idmap: g 34 100034 65502/);
  assert.match(live, /^lxc\.mount\.entry: \/dev\/nvidia0 dev\/nvidia0 none bind,optional,create=file$/m);
  assert.match(live, /^features: keyctl=1,nesting=1$|^features: nesting=1,keyctl=1$/m);
  const www = fs.statSync(path.join(hostfs, 'quickOS', 'lxc-persistent-data', '201', 'www'));
  assert.equal([www.uid, www.gid], [100033, 33]);
  host.clearCalls();
  ok(['create', '201'], env);
  assert.equal(mutating(), []);
});

test('zfs_volumes and a read-only mount get their slots once, however often create runs', () => {
  resetHost(true);
  const env = manifest((c) => {
    c['201'] = guest({
      zfs_volumes: [{ name: 'models', pool: 'fastData-shared-bulk-data', size_gb: 50, mount_point: '/vllm_models' }],
      mount_points: [{ host_path: '/quickOS/shared/ro', container_path: '/srv/ro', read_only: true }],
    });
  });
  ok(['create', '201'], env);
  assert.ok(host.calls('pct').some((c) => c.argv.join(' ') === 'set 201 --memory 512 --net0 name=eth0,bridge=vmbr100,ip=172.16.100.50/24,gw=172.16.100.1,hwaddr=BC:24:11:00:02:01,firewall=0 --mp0 fastData-shared-bulk-data:50,mp=/vllm_models --mp1 /quickOS/shared/ro,mp=/srv/ro,ro=1'));
  for (let i = 0; i < 2; i++) {
    host.clearCalls();
    ok(['converge', '201'], env);
    assert.equal(mutating(), []);
  }
  assert.equal(conf('201').match(/^mp\d+:/gm), ['mp0:', 'mp1:']);
  assert.equal(snapshots('201'), [], 'snapshots off: none taken');
});

test('a clone that is itself a template: configured, features run, then converted; snapshots skipped', () => {
  resetHost(true);
  const env = manifest((c) => {
    c['901'] = guest({ name: 'gpu-template', is_template: true, enable_lifecycle_snapshots: true, template_snapshot_name: 'base-ready', features: ['base_setup', 'nvidia'], health_checks: [{ name: 'demo', script: 'check_demo.sh', args: '901 --quick' }] });
  });
  const r = lxc(['create', '901'], { ...env });
  // check_nvidia.sh is required by the nvidia feature and missing from the stand-in tree.
  assert.is(r.code, 1);
  assert.match(r.stderr, /check_nvidia\.sh/);
  assert.equal(mutating(), [], 'refused before any change');
  writeExecutable(path.join(legacy, 'bin'), 'health_checks/check_nvidia.sh', '#!/usr/bin/env bash\necho nvidia "$@" >> "$PHOENIX_SIM_STATE/health-runs"\n');
  try {
    const ok = lxc(['create', '901'], env);
    assert.is(ok.code, 0, ok.stderr);
    assertGolden('lxc/option-template-clone.txt', golden());
    assert.match(conf('901'), /^template: 1$/m);
    assert.equal(snapshots('901'), []);
    assert.is(fs.readFileSync(path.join(host.stateDir, 'health-runs'), 'utf8'), 'nvidia 901\n901 --quick\n', 'argument vectors, no eval (the bash ran the manifest text through eval)');
  } finally {
    fs.rmSync(path.join(legacy, 'bin', 'health_checks', 'check_nvidia.sh'));
  }
});

test('snapshots from the root-level switch; the singular health_check runs inside the CT with retries', () => {
  resetHost(true);
  const env = manifest((c, doc) => {
    doc.enable_lifecycle_snapshots = true;
    c['201'] = guest({ enable_lifecycle_snapshots: undefined, health_check: { command: 'systemctl is-active step-ca', retries: 3, interval: 0 } });
  });
  host.injectExec({ tool: 'pct', guest: '201', command: ['systemctl', 'is-active', 'step-ca'], exit: 3, stdout: 'activating\n', times: 2 });
  const r = lxc(['create', '201'], env);
  assert.is(r.code, 0, r.stderr);
  assert.equal(snapshots('201'), ['final-form', 'pre-configured']);
  assert.is(host.calls('pct').filter((c) => c.argv.join(' ') === 'exec 201 -- systemctl is-active step-ca').length, 3);
  assert.match(r.stderr, /Health checks passed for CTID 201/);
  assert.is(record('201').health, 'passed');
});

test('health_check naming the toolkit\'s check_step_ca.sh by its host path runs Phoenix\'s probe of step-ca inside the CT', () => {
  resetHost(true);
  const env = manifest((c) => {
    c['201'] = guest({ health_check: { command: '/usr/local/phoenix_hypervisor/bin/health_checks/check_step_ca.sh', retries: 2, interval: 0 } });
  });
  host.injectExec({ tool: 'pct', guest: '201', command: ['env'], contains: 'health', exit: 0, stdout: 'ok\n' });
  const r = lxc(['create', '201'], env);
  assert.is(r.code, 0, r.stderr);
  const inside = host.calls('pct').filter((c) => c.argv[0] === 'exec' && c.argv[1] === '201').map((c) => c.argv.slice(3).join(' '));
  assert.ok(inside.includes('systemctl is-active step-ca'), inside.join('\n'));
  assert.ok(inside.some((line) => /step ca health --ca-url https:\/\/\S+ --root \S+root_ca\.crt$/.test(line)), inside.join('\n'));
  assert.not.ok(inside.some((line) => line.includes('/bin/health_checks/')), 'the host path is never executed inside the container');
  assert.is(record('201').health, 'passed');
});

test('health_check whose program exists neither in the CT nor as a toolkit check: reported, skipped, the create succeeds', () => {
  resetHost(true);
  const env = manifest((c) => {
    c['201'] = guest({ health_check: { command: '/opt/probes/check_app.sh --quick', retries: 5, interval: 10 } });
  });
  const r = lxc(['create', '201'], env);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /health_check\.command '\/opt\/probes\/check_app\.sh --quick' was not run: '\/opt\/probes\/check_app\.sh' does not exist in the container/);
  assert.not.ok(host.calls('pct').some((c) => c.argv[0] === 'exec' && c.argv[3] === '/opt/probes/check_app.sh'), 'not executed, not retried');
});

test('health_check naming another toolkit check by host path runs that check on the host with its arguments', () => {
  resetHost(true);
  fs.rmSync(path.join(host.stateDir, 'health-runs'), { force: true });
  const env = manifest((c) => {
    c['201'] = guest({ health_check: { command: '/usr/local/phoenix_hypervisor/bin/health_checks/check_demo.sh 201 --deep' } });
  });
  const r = lxc(['create', '201'], env);
  assert.is(r.code, 0, r.stderr);
  assert.is(fs.readFileSync(path.join(host.stateDir, 'health-runs'), 'utf8'), '201 --deep\n');
});

test('secondary network removed from the manifest: net1 is deleted on converge', () => {
  resetHost(true);
  ok(['create', '101']);
  const env = manifest((c) => delete c['101'].secondary_network_config);
  host.clearCalls();
  const r = lxc(['converge', '101'], env);
  assert.is(r.code, 0, r.stderr);
  assert.equal(golden().trim().split('\n'), ['pct stop 101', 'pct set 101 --delete net1', 'pct start 101']);
  assert.not.match(liveSection('101'), /^net1:/m);
});

test('a pct failure half-way: exit 1, and the next run converges to the full state', () => {
  resetHost(true);
  host.injectFailure({ tool: 'pct', argv: ['start', '103'], times: 3, exit: 255, stderr: 'startup for container 103 failed\n' });
  const failed = lxc(['create', '103']);
  assert.is(failed.code, 1);
  assert.match(failed.stderr, /Failed to start container 103 after 3 attempts/);
  assert.is(host.calls('pct').filter((c) => c.argv.join(' ') === 'start 103').length, 3);
  assert.not.ok(running('103'));
  host.clearCalls();
  const again = lxc(['create', '103']);
  assert.is(again.code, 0, again.stderr);
  assert.not.ok(host.calls('pct').some((c) => c.argv[0] === 'clone' || c.argv[0] === 'set'), 'defined and configured before: not again');
  assert.ok(running('103'));
  assert.equal(snapshots('103'), ['final-form', 'pre-configured']);
  assert.equal(record('103').features, ['base_setup', 'step_ca']);
});

test('a failing feature: the next run resumes at that feature, earlier ones are not repeated', () => {
  resetHost(true);
  host.injectExec({ tool: 'pct', guest: '103', command: ['sh', '-c'], contains: 'feature-step_ca', exit: 7, stderr: 'step-ca: download failed\n', times: 1 });
  const failed = lxc(['create', '103']);
  assert.is(failed.code, 1);
  assert.match(failed.stderr, /Feature script 'step_ca' failed for CTID 103/);
  assert.equal(record('103').features, ['base_setup']);
  assert.equal(snapshots('103'), ['pre-configured']);
  host.clearCalls();
  ok(['create', '103']);
  const featureRuns = host.calls('pct').filter((c) => c.argv[0] === 'exec' && c.argv.join(' ').includes('feature-'));
  assert.equal(featureRuns.map((c) => /feature-(\w+)/.exec(c.argv.join(' '))?.[1]), ['step_ca']);
  assert.equal(snapshots('103'), ['final-form', 'pre-configured']);
});

test('an unfinished template is finished before it is cloned from', () => {
  host.reset();
  host.injectFailure({ tool: 'pct', argv: ['template', '900'], times: 1, exit: 255, stderr: 'disk busy\n' });
  assert.is(lxc(['create', '900']).code, 1);
  host.clearCalls();
  const r = lxc(['create', '103']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(golden().split('\n').slice(0, 2), ['pct template 900', 'pct clone 900 103 --hostname step-ca'], 'nothing of 900 is redone but the conversion');
});

test('Proxmox lock time-outs are retried; a busy guest lock fails fast with 75 and changes nothing', async () => {
  resetHost(true);
  host.injectLockTimeout('pct', ['set', '103'], 1);
  const r = lxc(['create', '103']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(host.calls('pct').filter((c) => c.argv[0] === 'set').map((c) => c.exit), [255, 0]);
  resetHost(true);
  const lockDir = path.dirname(baseEnv.PHOENIX_LOCK_FILE as string);
  const held = await acquireHostLock(path.join(lockDir, 'phoenix.guest-103.lock'), { script: 'test' });
  try {
    const busy = lxc(['create', '103']);
    assert.is(busy.code, 75);
    assert.match(busy.stderr, /phoenix\.guest-103\.lock/);
    assert.equal(mutating(), []);
  } finally {
    held.release();
  }
});

test('two containers created in parallel under one parent lock: clones of one template take turns', async () => {
  resetHost(true);
  host.setLatency({ pct: 150 });
  const held = await acquireHostLock(baseEnv.PHOENIX_LOCK_FILE as string, { script: 'test parent' });
  try {
    const env = { PHOENIX_LOCK_TOKEN: held.token };
    const [a, b] = await Promise.all([lxcAsync(['create', '103'], env), lxcAsync(['create', '101'], env)]);
    assert.is(a.code, 0, a.stderr);
    assert.is(b.code, 0, b.stderr);
  } finally {
    held.release();
    host.setLatency({});
  }
  assert.ok(running('103') && running('101'));
  assert.equal(mutating().filter((c) => c.exit !== 0), [], 'no call was refused');
});

test('start, stop and restart are idempotent; templates are left alone', () => {
  resetHost(true);
  ok(['create', '103']);
  host.clearCalls();
  const start = lxc(['start', '103']);
  assert.is(start.code, 0);
  assert.match(start.stderr, /already running/);
  assert.equal(mutating(), []);
  ok(['stop', '103']);
  assert.equal(golden(), 'pct stop 103\n');
  host.clearCalls();
  const stop = lxc(['stop', '103']);
  assert.is(stop.code, 0);
  assert.match(stop.stderr, /already stopped/);
  assert.equal(mutating(), []);
  ok(['restart', '103']);
  assert.equal(golden(), 'pct start 103\n');
  host.clearCalls();
  ok(['restart', '103']);
  assert.equal(golden(), 'pct stop 103\npct start 103\n');
  host.clearCalls();
  const said = ['start', 'stop', 'restart'].map((verb) => ok([verb, '900']).stderr);
  assert.match(said[0]!, /\[WARN\].*Container 900 is a template; templates cannot be started\./);
  assert.match(said[1]!, /\[INFO\].*Container 900 is a template; templates never run\./);
  assert.match(said[2]!, /\[WARN\].*Container 900 is a template; templates cannot be restarted\./);
  assert.equal(mutating(), []);
  assert.is(lxc(['start', '101']).code, 1, 'starting a container that does not exist is an error');
  const stopAbsent = ok(['stop', '101']);
  assert.match(stopAbsent.stderr, /Container 101 does not exist; nothing to stop\./, 'stopping one is not');
});

test('delete: stops, destroys, removes the firewall file and the record; host data only with --purge-data', () => {
  resetHost(true);
  ok(['create', '103']);
  const data = path.join(hostfs, 'quickOS', 'lxc-persistent-data', '103', 'step');
  host.clearCalls();
  const r = lxc(['delete', '103']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(golden(), 'pct stop 103\npct destroy 103\n');
  assert.not.ok(host.readConfig('lxc', '103'));
  assert.not.ok(fs.existsSync(path.join(host.stateDir, 'pve', 'firewall', '103.fw')));
  assert.not.ok(fs.existsSync(path.join(hostfs, 'var', 'lib', 'phoenix', 'lxc', '103.json')));
  assert.ok(fs.existsSync(data), 'host data kept without --purge-data');
  assert.match(r.stderr, /pass --purge-data/);
  host.clearCalls();
  const again = lxc(['delete', '103', '--purge-data']);
  assert.is(again.code, 0, again.stderr);
  assert.equal(mutating(), []);
  assert.not.ok(fs.existsSync(data));
});

test('status prints the state table; sync runs the Traefik certificate sync only where the feature is', () => {
  resetHost(true);
  const status = lxc(['status', '900', '103']);
  assert.is(status.code, 0, status.stderr);
  assert.match(status.stdout, /^ID\s+KIND\s+NAME\s+STATE\n900\s+lxc\s+base-template\s+template\n103\s+lxc\s+step-ca\s+absent\n$/);
  const created = lxc(['create', '102']);
  assert.is(created.code, 0, created.stderr);
  host.clearCalls();
  const sync = lxc(['sync', '102']);
  assert.is(sync.code, 0, sync.stderr);
  assert.equal(golden(), 'pct exec 102 -- touch /etc/phoenix-standin/traefik-certs-synced\n');
  host.clearCalls();
  const other = lxc(['sync', '900']);
  assert.is(other.code, 0, other.stderr);
  assert.match(other.stderr, /Nothing to sync for CTID 900/);
  assert.equal(host.calls(), []);
});

test('the certificate run: a failure aborts before the container is touched; a missing manager is one warning', () => {
  resetHost(true);
  const failed = lxc(['create', '103'], { CERT_EXIT: '4' });
  assert.is(failed.code, 1);
  assert.match(failed.stderr, /Certificate generation failed \(exit 4\)\. Aborting create workflow\./);
  assert.equal(mutating(), []);
  const manager = path.join(legacy, 'bin', 'managers', 'certificate-renewal-manager.sh');
  const kept = `${manager}.off`;
  fs.renameSync(manager, kept);
  try {
    const r = lxc(['create', '103']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stderr.match(/skipping the certificate run/g)?.length, 1);
  } finally {
    fs.renameSync(kept, manager);
  }
});

test('the hypervisor manifest staged for a bash application script carries no secret', () => {
  resetHost(true);
  const dir = tmpDir('phoenix-lxc-hv-');
  const hv = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_hypervisor_config.json'), 'utf8'));
  hv.portainer_api.admin_password = 'Sup3rSecret!';
  fs.writeFileSync(path.join(dir, 'hv.json'), JSON.stringify(hv));
  // Keep the staging directory so the test can read what was pushed.
  host.injectExec({ tool: 'pct', guest: '103', command: ['rm', '-rf', '/tmp/phoenix_run'], exit: 0 });
  const r = lxc(['create', '103'], {
    HYPERVISOR_CONFIG_FILE: path.join(dir, 'hv.json'),
    LXC_CONFIG_FILE: path.join(PROJECT_ROOT, 'etc', 'phoenix_lxc_configs.json'),
    VM_CONFIG_FILE: path.join(PROJECT_ROOT, 'etc', 'phoenix_vm_configs.json'),
  });
  assert.is(r.code, 0, r.stderr);
  const staged = fs.readFileSync(host.guestPath('103', '/tmp/phoenix_run/phoenix_hypervisor_config.json'), 'utf8');
  assert.match(staged, /"domain_name"/);
  assert.not.match(staged, /Sup3rSecret|password_hash/);
  assert.not.match(fs.readFileSync(baseEnv.MAIN_LOG_FILE as string, 'utf8'), /Sup3rSecret/);
});

test('bad input: unknown CTID, bad id, bad action, broken manifest, missing feature: exit 1, nothing called', () => {
  resetHost(true);
  const check = (args: string[], env: Record<string, string>, message: RegExp) => {
    const r = lxc(args, env);
    assert.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  };
  check(['create', '4242'], {}, /Configuration for CTID 4242 not found/);
  check(['create', 'abc'], {}, /Invalid CTID 'abc'/);
  check(['frobnicate', '103'], {}, /Invalid action 'frobnicate' for lxc-manager/);
  check(['create'], {}, /'create' needs a ctid/);
  check(['create', '103', '--force'], {}, /unknown option '--force'/);
  check(['create', '103'], manifest((c) => (c['103'].memory_mb = 'lots')), /memory_mb/);
  check(['create', '103'], manifest((c) => (c['103'].clone_from_ctid = '999')), /clone source 999 is not defined/);
  assert.equal(host.calls(), [], 'refused before the first question to the host');
  check(['create', '103'], manifest((c) => (c['103'].features = ['base_setup', 'dns_server'])), /Feature script 'dns_server' for CTID 103 not found/);
  assert.equal(mutating(), [], 'a missing feature script is found before any change');
});

test('create-templates: nothing declared is nothing to do; a declared template is dumped once', () => {
  resetHost(true);
  const none = lxc(['create-templates']);
  assert.is(none.code, 0, none.stderr);
  assert.match(none.stderr, /No LXC templates are defined/);
  const fakeBin = tmpDir('phoenix-lxc-vzdump-');
  writeExecutable(fakeBin, 'vzdump', '#!/usr/bin/env bash\n# fake vzdump: an archive in --dumpdir\nwhile [ $# -gt 0 ]; do [ "$1" = --dumpdir ] && dir="$2"; shift; done\necho archive > "$dir/vzdump-lxc-900-2025_01_01-00_00_00.tar.gz"\n');
  const env = { ...manifest((_c, doc) => (doc.lxc_templates = { 'phoenix-base.tar.gz': { source_ctid: '900' } })), PATH: `${fakeBin}:${baseEnv.PATH}` };
  const r = lxc(['create-templates'], env);
  assert.is(r.code, 0, r.stderr);
  const target = path.join(hostfs, 'fastData', 'shared-iso', 'template', 'cache', 'phoenix-base.tar.gz');
  assert.is(fs.readFileSync(target, 'utf8'), 'archive\n');
  assert.equal(fs.readdirSync(path.dirname(target)).filter((f) => f.startsWith('.')), [], 'no partial dump left behind');
  const again = lxc(['create-templates'], env);
  assert.match(again.stderr, /already exists\. Skipping/);
});

test.run();
