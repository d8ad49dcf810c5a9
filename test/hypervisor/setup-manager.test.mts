// `phoenix setup` end to end on the simulated bare Proxmox VE 8 node
// (test/simhost/bare-node.mts), through phoenix-cli as an operator runs it:
// bad manifests stop before the first call to the host; a dry-run changes
// nothing; the first run builds pools, datasets, storages, exports,
// accounts and the rest; the second run changes nothing and says so for
// every step.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type SimHost } from '../simhost/index.mts';
import { bareSeedOptions, poolDisksIn } from '../simhost/bare-node.mts';
import { upstreamShapedManifest } from './storage-fixtures.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { treeDifferences, treeSnapshot } from '../helpers/host-tree.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { NODE_PCI, NVIDIA_RTX_2070_SUPER, rebootSimHost, setKernelState } from '../simhost/hostsvc/kernel-state.mts';
import { REBOOT_REQUIRED_EXIT } from '../../lib/hypervisor/setup-step.mts';

const EXAMPLE_ETC = path.join(PROJECT_ROOT, 'etc');
const CLI = path.join(PROJECT_ROOT, 'scripts', 'phoenix-cli.mjs');

function readExample(file: string): any {
  return JSON.parse(fs.readFileSync(path.join(EXAMPLE_ETC, file), 'utf8'));
}

interface Node {
  host: SimHost;
  work: string;
  env: Record<string, string>;
}

/**
 * A bare node with the example manifests (the hypervisor one changed by
 * `edit`) in a base dir of its own; the node has blank disks for the pools
 * that manifest names.
 */
function bareNode(edit: (hv: any) => void = () => {}): Node {
  const manifest = readExample('phoenix_hypervisor_config.json');
  edit(manifest);
  const host = createSimHost(undefined, { ...bareSeedOptions(poolDisksIn(manifest)), bareHost: true });
  const work = tmpDir('phoenix-setup-');
  const etc = path.join(work, 'base', 'etc');
  fs.mkdirSync(etc, { recursive: true });
  fs.cpSync(EXAMPLE_ETC, etc, { recursive: true });
  fs.writeFileSync(path.join(etc, 'phoenix_hypervisor_config.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  // The passwords the example manifest names, as the operator leaves them before setup: root-only files.
  const secrets = path.join(host.stateDir, 'hostfs', 'etc', 'phoenix', 'secrets');
  fs.mkdirSync(secrets, { recursive: true, mode: 0o700 });
  for (const name of ['heads', 'samba']) fs.writeFileSync(path.join(secrets, `${name}.password`), `${name}-secret-${process.pid}\n`, { mode: 0o600 });
  const env: Record<string, string> = {
    ...host.env,
    PHOENIX_BASE_DIR: path.join(work, 'base'),
    PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
    MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
    PHOENIX_POLL_INTERVAL_MS: '50',
  };
  for (const key of ['STEPPATH', 'PHOENIX_DRY_RUN', 'PHOENIX_HOST_ROOT', 'HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE']) delete env[key];
  return { host, work, env };
}

function setup(node: Node, args: string[] = []): { code: number; out: string } {
  const r = spawnSync(process.execPath, [CLI, 'setup', ...args], { env: node.env, encoding: 'utf8', timeout: 240_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status ?? 128, out: `${r.stdout}${r.stderr}` };
}

/**
 * systemd's view without what it loads on demand: a unit file systemd read
 * because a query named it is not a change to the host (the simulator
 * records such units as inactive, never started, not enabled).
 */
function servicesView(file: string): string {
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as { units: Record<string, { active: string; enabled?: string; starts?: number }> };
  const units = Object.entries(state.units).filter(([, u]) => !(u.active === 'inactive' && !u.starts && u.enabled !== 'enabled'));
  return JSON.stringify(units.sort(([a], [b]) => a.localeCompare(b)));
}

/** Every file of the simulated host (state, /etc/pve, the host tree), without the call record and Phoenix's own cache. */
function snapshot(host: SimHost): Map<string, string> {
  return treeSnapshot(host.stateDir, {
    skip: (rel) => rel === 'calls.jsonl' || rel === 'cache' || rel.endsWith('.lock') || rel === 'run/lock',
    view: (rel, file) => (rel === 'host-services.json' ? servicesView(file) : undefined),
  });
}

const differences = treeDifferences;

// ---------------------------------------------------------------- bad manifests

const DRIVER_VERSION = '550.127.05';
const DRIVER = { install: true, version: DRIVER_VERSION, runfile_url: `https://us.download.nvidia.com/XFree86/Linux-x86_64/${DRIVER_VERSION}/NVIDIA-Linux-x86_64-${DRIVER_VERSION}.run` };

const BAD_MANIFESTS: Array<[string, (hv: any) => void, RegExp]> = [
  ['a pool without its disks', (hv) => delete hv.zfs.pools[0].disks, /\/zfs\/pools\/0/],
  ['an unknown raid level', (hv) => (hv.zfs.pools[0].raid_level = 'raid5'), /\/zfs\/pools\/0\/raid_level/],
  ['a disk listed twice', (hv) => hv.zfs.pools[1].disks.push(hv.zfs.pools[0].disks[0]), /\/zfs\/pools\/1\/disks\/1/],
  ['a dataset on an unknown pool', (hv) => (hv.zfs.datasets[0].pool = 'nosuchpool'), /\/zfs\/datasets\/0\/pool/],
  [
    'VFIO for the GPU the NVIDIA driver is asked to drive',
    (hv) => {
      hv.vfio = { enabled: true, device_ids: ['10de:1e84'] };
      hv.nvidia_driver = DRIVER;
    },
    /\/vfio\/device_ids\/0[\s\S]*\/nvidia_driver\/install|\/nvidia_driver\/install[\s\S]*\/vfio\/device_ids\/0/,
  ],
];

for (const [what, edit, pointer] of BAD_MANIFESTS) {
  test(`${what}: refused with the JSON path before any call to the host`, () => {
    const node = bareNode(edit);
    const before = snapshot(node.host);
    const r = setup(node);
    assert.is(r.code, 1, r.out);
    assert.match(r.out, pointer);
    assert.equal(node.host.calls().map((c) => `${c.tool} ${c.argv.join(' ')}`), []);
    assert.equal(differences(before, snapshot(node.host)), []);
    node.host.dispose();
  });
}

// ---------------------------------------------------------------- secrets that cannot be had: refused before the first change

const SAMBA = { user: 'heads', shares: [{ name: 'media', path: 'quickOS/shared-prod-data', valid_users: ['heads'] }] };

test('Samba without a password (and no terminal): refused naming the key, nothing changed', () => {
  const node = bareNode((hv) => (hv.samba = SAMBA));
  const before = snapshot(node.host);
  const r = setup(node);
  assert.is(r.code, 1, r.out);
  assert.match(r.out, /\/samba\/password_file/);
  assert.match(r.out, /no terminal/);
  assert.not.match(r.out, /\[1\/16\]/);
  assert.equal(differences(before, snapshot(node.host)), []);
  node.host.dispose();
});

test('a Samba password file others can read: refused naming the key, nothing changed', () => {
  const node = bareNode((hv) => (hv.samba = { ...SAMBA, password_file: '/etc/phoenix/samba.password' }));
  const secret = path.join(node.host.stateDir, 'hostfs', 'etc', 'phoenix', 'samba.password');
  fs.mkdirSync(path.dirname(secret), { recursive: true });
  fs.writeFileSync(secret, 'correct horse\n', { mode: 0o644 });
  fs.chmodSync(secret, 0o644);
  const before = snapshot(node.host);
  const r = setup(node);
  assert.is(r.code, 1, r.out);
  assert.match(r.out, /\/samba\/password_file/);
  assert.not.match(r.out, /correct horse/);
  assert.not.match(r.out, /\[1\/16\]/);
  assert.equal(differences(before, snapshot(node.host)), []);
  node.host.dispose();
});

// ---------------------------------------------------------------- the bare node, three times

const node = bareNode();

test('dry-run on the bare node: every change is printed (with file diffs), none is made', () => {
  const before = snapshot(node.host);
  const r = setup(node, ['--dry-run']);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /would make \d+ change/);
  assert.match(r.out, /zpool create|pool quickOS/);
  assert.match(r.out, /^\+\+\+ b\/.*\/etc\/exports$/m);
  assert.equal(differences(before, snapshot(node.host)), []);
});

test('the first run takes the bare node to the manifest', () => {
  const r = setup(node);
  assert.is(r.code, 0, r.out);
  const hv = readExample('phoenix_hypervisor_config.json');
  const pools = node.host.run('zpool', ['list', '-H', '-o', 'name']).stdout.split('\n').filter(Boolean);
  for (const pool of hv.zfs.pools) assert.ok(pools.includes(pool.name), `pool ${pool.name}: ${pools}`);
  const storages = node.host.run('pvesm', ['status']).stdout;
  for (const ds of hv.zfs.datasets.filter((d: any) => d.proxmox_storage_type)) assert.match(storages, new RegExp(`^${ds.pool}-${ds.name}\\s`, 'm'));
  for (const exp of hv.nfs.exports) assert.match(storages, new RegExp(`^nfs-${path.basename(exp.path)}\\s`, 'm'));
  assert.match(r.out, /hypervisor_feature_setup_samba: changed/);
  for (const name of ['heads', 'samba']) {
    const secret = `${name}-secret-${process.pid}`;
    assert.not.match(r.out, secret);
    assert.not.match(fs.readFileSync(path.join(node.host.stateDir, 'calls.jsonl'), 'utf8'), secret);
  }
  const link = path.join(node.host.stateDir, 'hostfs', 'usr', 'local', 'bin', 'phoenix');
  assert.is(fs.readlinkSync(link), path.join(PROJECT_ROOT, 'scripts', 'phoenix-global.mjs'));
});

test('the second run changes nothing, and says so for every step', () => {
  node.host.clearCalls();
  const before = snapshot(node.host);
  const r = setup(node);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /nothing changed/);
  assert.not.match(r.out, /: (would change|changed) \d+/);
  const steps = r.out.match(/\[\d+\/16\] \S+: (unchanged|skipped)/g) ?? [];
  assert.is(steps.length, 16, r.out);
  const made = node.host.calls().filter((c) => ['zpool create', 'zfs create', 'zfs set', 'pvesm add', 'pvesm remove', 'exportfs -ra', 'useradd', 'chpasswd', 'smbpasswd', 'ifreload', 'update-grub', 'update-initramfs', 'apt-get install'].some((p) => `${c.tool} ${c.argv.join(' ')}`.startsWith(p)));
  assert.equal(made.map((c) => `${c.tool} ${c.argv.join(' ')}`), []);
  assert.equal(differences(before, snapshot(node.host)).filter((f) => !f.startsWith('hostfs/var/log')), []);
});

test.after(() => node.host.dispose());

// ---------------------------------------------------------------- a manifest in the bash toolkit's shape

/** The storage sections of storage-fixtures.mts plus the bash's Samba, NVIDIA and admin sections (values of our own). */
function upstreamShaped(hv: any): void {
  Object.assign(hv, upstreamShapedManifest());
  delete hv.operator_user;
  hv.users = { username: 'phoenix_admin', password_hash: 'NOT_SET', sudo_access: true, ssh_public_key: '' };
  hv.nvidia_driver = { ...DRIVER, cuda_version: '12.8', install_vllm_libs: true };
  hv.samba = {
    user: 'heads',
    shares: [
      { name: 'shared-prod-data', path: 'quickOS/shared-prod-data', options: 'browseable=yes writable=yes', valid_users: ['heads'] },
      { name: 'shared-bulk-data', path: 'fastData/shared-bulk-data', options: 'browseable=yes writable=yes', valid_users: ['heads'] },
    ],
  };
}

test('a manifest in the bash toolkit\'s shape: refused only for the Samba password the bash had built in; with a password file it sets the node up, then changes nothing', () => {
  const bash = bareNode(upstreamShaped);
  const before = snapshot(bash.host);
  const refused = setup(bash);
  assert.is(refused.code, 1, refused.out);
  assert.match(refused.out, /\/samba\/password_file/);
  assert.equal(differences(before, snapshot(bash.host)), []);

  // The one change an operator makes to such a manifest: name the password file.
  const file = path.join(bash.work, 'base', 'etc', 'phoenix_hypervisor_config.json');
  const hv = JSON.parse(fs.readFileSync(file, 'utf8'));
  hv.samba.password_file = '/etc/phoenix/secrets/samba.password';
  fs.writeFileSync(file, `${JSON.stringify(hv, null, 2)}\n`);
  const first = setup(bash);
  assert.is(first.code, 0, first.out);
  assert.match(first.out, /hypervisor_feature_install_nvidia: skipped: no NVIDIA GPU present/);
  assert.match(first.out, /hypervisor_feature_setup_samba: changed/);
  assert.match(fs.readFileSync(path.join(bash.host.stateDir, 'hostfs', 'etc', 'samba', 'smb.conf'), 'utf8'), /\[shared-bulk-data\][\s\S]*writable = yes/i);
  const storages = bash.host.run('pvesm', ['status']).stdout;
  for (const id of ['quickOS-vm-disks', 'fastData-shared-iso', 'nfs-vm-persistent-data', 'nfs-portainer_stacks']) assert.match(storages, new RegExp(`^${id}\\s`, 'm'));

  const second = setup(bash);
  assert.is(second.code, 0, second.out);
  assert.match(second.out, /nothing changed/);
  bash.host.dispose();
});

// ---------------------------------------------------------------- a GPU node: the reboot in the middle

test('the NVIDIA driver stops the run for a reboot; a re-run before it stops again; after it, setup goes on to the end', () => {
  const gpu = bareNode((hv) => (hv.nvidia_driver = DRIVER));
  setKernelState(gpu.host.stateDir, { pci: [...NODE_PCI, ...NVIDIA_RTX_2070_SUPER] });
  const first = setup(gpu);
  assert.is(first.code, REBOOT_REQUIRED_EXIT, first.out);
  assert.match(first.out, /must reboot/);
  assert.not.match(first.out, /\[8\/16\]/); // nothing after the driver ran
  const installs = () => gpu.host.calls('nvidia-runfile').length;
  assert.is(installs(), 1);

  const again = setup(gpu);
  assert.is(again.code, REBOOT_REQUIRED_EXIT, again.out);
  assert.is(installs(), 1, 'the driver is not installed a second time before the reboot');

  rebootSimHost(gpu.host.stateDir, gpu.env);
  const after = setup(gpu);
  assert.is(after.code, 0, after.out);
  assert.match(after.out, /\[7\/16\] hypervisor_feature_install_nvidia: unchanged/);
  assert.match(after.out, /\[8\/16\] hypervisor_feature_initialize_nvidia_gpus: changed/);
  assert.match(after.out, /\[16\/16\]/);
  assert.is(installs(), 1);

  const last = setup(gpu);
  assert.is(last.code, 0, last.out);
  assert.match(last.out, /nothing changed/);
  gpu.host.dispose();
});

test.run();
