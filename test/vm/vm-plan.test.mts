// vm-manager's pure half: a VM manifest entry → the values it acts on, the
// qm options and their difference to a live config, the cloud-init files,
// the scripts sent to guests, the command line. No simulated host here.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse as parseYaml } from 'yaml';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { UsageError } from '../../lib/core/errors.mts';
import type { HypervisorConfig, VmManifest } from '../../lib/config/types.mts';
import { vmSpec, startupValue, type VmSpec } from '../../lib/vm/spec.mts';
import { createFromImageOptions, desiredOptions, diffAsOptions, diffOptions, net0Value, parseSize, resizePlan } from '../../lib/vm/options.mts';
import { cicustomValue, renderCloudInit, digest } from '../../lib/vm/cloud-init.mts';
import { completeLines, FEATURE_LAUNCH_SCRIPT, MOUNT_SCRIPT, mountArgs, stagingScript, TEMPLATE_CLEANUP_SCRIPT } from '../../lib/guest/vm-agent.mts';
import { inProcessInstall } from '../../lib/vm/features.mts';
import { withoutSecrets } from '../../lib/core/redact.mts';
import { parseVmManagerArgs } from '../../lib/vm/args.mts';
import { assertGolden } from '../helpers/golden.mts';
import { tmpDir, writeExecutable } from '../helpers/tmp.mts';
import { expectConfigError } from '../helpers/errors.mts';

const etc = path.join(PROJECT_ROOT, 'etc');
const exampleVm = (): VmManifest => JSON.parse(fs.readFileSync(path.join(etc, 'phoenix_vm_configs.json'), 'utf8')) as VmManifest;
const exampleHv = (): HypervisorConfig => JSON.parse(fs.readFileSync(path.join(etc, 'phoenix_hypervisor_config.json'), 'utf8')) as HypervisorConfig;

function spec(vmid: string, edit: (vm: VmManifest, hv: HypervisorConfig) => void = () => {}): VmSpec {
  const vm = exampleVm();
  const hv = exampleHv();
  edit(vm, hv);
  return vmSpec({ vmManifest: vm, vmFile: '/etc/phoenix_vm_configs.json', hypervisor: hv }, vmid);
}

function entry(vm: VmManifest, vmid: number): Record<string, unknown> {
  return vm.vms.find((v) => v.vmid === vmid) as unknown as Record<string, unknown>;
}


// ---------------------------------------------------------------- spec

test('the example VMs resolve to what vm-manager acts on', () => {
  const t = spec('9000');
  assert.is(t.isTemplate, true);
  assert.is(t.image, 'noble-server-cloudimg-amd64.img');
  assert.is(t.storage, 'quickOS-vm-disks');
  assert.is(t.bridge, 'vmbr0');
  assert.is(t.diskGb, 16, 'per-VM disk_size_gb wins over vm_defaults');
  assert.is(t.onboot, false);
  assert.is(t.startup, undefined);
  assert.is(t.finalSnapshot, undefined, 'a template keeps no snapshot');
  assert.ok(t.notes.some((n) => n.includes("template_snapshot_name 'cloud-base'")));

  const p = spec('1001');
  assert.is(p.cloneFrom, '9000');
  assert.is(p.cores, 4);
  assert.is(p.memoryMb, 8192);
  assert.is(p.diskGb, 64);
  assert.is(p.firewall, true);
  assert.is(p.startup, 'order=4,up=10');
  assert.is(p.onboot, true);
  assert.is(p.ip, '10.0.0.21/24');
  assert.is(p.gw, '10.0.0.1');
  assert.is(p.nameservers, '10.0.0.5');
  assert.is(p.searchdomain, 'internal.example.org');
  assert.is(p.user, 'phoenix_user');
  assert.is(p.cloneBaseSnapshot, 'cloud-base', "the template's template_snapshot_name is kept by its clones");
  assert.equal(p.features, ['base_setup', 'trusted_ca', 'step_cli', 'docker']);
  assert.equal(p.nfsVolumes.map((v) => v.mount_point), ['/mnt/persistent', '/mnt/stacks']);
});

test('nameservers and search domain come from the manifests, never from a literal', () => {
  const fallback = spec('1001', (vm, hv) => {
    const net = entry(vm, 1001).network_config as Record<string, unknown>;
    delete net.nameserver;
    delete net.searchdomain;
    hv.domain_name = 'lab.example.net';
    hv.network!.interfaces!.dns_nameservers = ['192.0.2.53', '192.0.2.54'];
  });
  assert.is(fallback.nameservers, '192.0.2.53 192.0.2.54');
  assert.is(fallback.searchdomain, 'lab.example.net');
  const none = spec('1001', (vm, hv) => {
    delete (entry(vm, 1001).network_config as Record<string, unknown>).nameserver;
    delete hv.network!.interfaces!.dns_nameservers;
  });
  assert.is(none.nameservers, undefined, 'nothing declared: Proxmox decides, no 10.0.0.13');
  const listed = spec('1001', (vm) => {
    (entry(vm, 1001).network_config as Record<string, unknown>).nameserver = '10.0.0.5,10.0.0.6';
  });
  assert.is(listed.nameservers, '10.0.0.5 10.0.0.6');
});

test('per-VM storage_pool and network_bridge win over vm_defaults; vlan_tag is validated', () => {
  const s = spec('1002', (vm) => {
    Object.assign(entry(vm, 1002), { storage_pool: 'fast-disks', network_bridge: 'vmbr1', vlan_tag: 20 });
  });
  assert.is(s.storage, 'fast-disks');
  assert.is(s.bridge, 'vmbr1');
  assert.is(s.vlanTag, 20);
  const bad = expectConfigError(() => spec('1002', (vm) => void Object.assign(entry(vm, 1002), { vlan_tag: 5000 })));
  assert.match(bad.message, /\/vms\/2\/vlan_tag/);
});

test('keys the bash ignored and vm-manager cannot honour are refused, naming the key', () => {
  assert.match(expectConfigError(() => spec('1001', (vm) => void (entry(vm, 1001).qm_options = ['--balloon 0']))).message, /at \/vms\/1\/qm_options: qm_options is not supported/);
  assert.match(expectConfigError(() => spec('1001', (vm) => void (entry(vm, 1001).count = 3))).message, /\/vms\/1\/count: count 3 is not supported/);
  assert.match(expectConfigError(() => spec('1001', (vm) => void (entry(vm, 1001).iptables_rules = ['-A INPUT -j DROP']))).message, /iptables_rules/);
  assert.ok(spec('1001', (vm) => void (entry(vm, 1001).count = 1)), 'count 1 is what one entry is anyway');
  assert.match(expectConfigError(() => spec('1001', (vm) => void (entry(vm, 1001).snapshots = { 'pre-features': 'not a name' }))).message, /snapshots\/pre-features/);
  assert.match(expectConfigError(() => spec('9000', (vm) => void (entry(vm, 9000).snapshots = { 'post-features': 'done' }))).message, /template cannot keep snapshots/);
  assert.match(expectConfigError(() => spec('1001', (vm) => void ((entry(vm, 1001).network_config as Record<string, unknown>).gw = undefined))).message, /needs a gateway/);
  assert.match(expectConfigError(() => spec('4242')).message, /VM 4242 not found in configuration/);
});

test('startup: boot_order and boot_delay, never an empty up=', () => {
  assert.is(startupValue(4, 10), 'order=4,up=10');
  assert.is(startupValue(4, undefined), 'order=4');
  assert.is(startupValue(undefined, 7), 'up=7');
  assert.is(startupValue(undefined, undefined), undefined);
});

// ---------------------------------------------------------------- options

const LIVE_1001: Record<string, string> = {
  name: 'portainer',
  cores: '4',
  memory: '8192',
  agent: '1',
  onboot: '1',
  startup: 'order=4,up=10',
  net0: 'virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1',
  ipconfig0: 'ip=10.0.0.21/24,gw=10.0.0.1',
  nameserver: '10.0.0.5',
  searchdomain: 'internal.example.org',
  ciuser: 'phoenix_user',
  cicustom: 'user=local:snippets/phoenix-1001-user.yaml,network=local:snippets/phoenix-1001-network.yaml,meta=local:snippets/phoenix-1001-meta.yaml',
  scsi0: 'quickOS-vm-disks:vm-1001-disk-0,size=64G',
  boot: 'order=scsi0',
};

test('an unchanged VM needs no qm set; a changed one gets only the difference', () => {
  const s = spec('1001');
  const cicustom = cicustomValue('local', '1001');
  assert.equal(diffOptions(desiredOptions(s, { cicustom, currentNet0: LIVE_1001.net0 }), LIVE_1001).changed, []);
  const live: Record<string, string> = { ...LIVE_1001, memory: 'current=4096', agent: 'enabled=1,fstrim_cloned_disks=1', nameserver: '10.0.0.5' };
  const diff = diffOptions(desiredOptions(s, { cicustom, currentNet0: live.net0 }), live);
  assert.equal(diff.changed, ['memory']);
  assert.equal(diffAsOptions(diff), { memory: '8192' });
});

test('net0 keeps its MAC and model; the firewall flag is also taken away; a VLAN tag is set', () => {
  const off = spec('1001', (vm) => void (entry(vm, 1001).firewall = { enabled: false }));
  assert.is(net0Value(off, 'virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,rate=10'), 'virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,rate=10');
  const tagged = spec('1001', (vm) => void (entry(vm, 1001).vlan_tag = 30));
  const diff = diffOptions(desiredOptions(tagged, { cicustom: LIVE_1001.cicustom, currentNet0: LIVE_1001.net0 }), LIVE_1001);
  assert.equal(diff.set, { net0: 'virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=30' });
  assert.is(net0Value(spec('9000'), undefined), 'virtio,bridge=vmbr0');
});

test('options the manifest no longer sets are removed, not left behind', () => {
  const s = spec('1001', (vm) => {
    delete entry(vm, 1001).boot_order;
    delete entry(vm, 1001).boot_delay;
  });
  const diff = diffOptions(desiredOptions(s, { cicustom: undefined, currentNet0: LIVE_1001.net0 }), LIVE_1001);
  assert.equal(diff.remove, ['startup', 'cicustom']);
  assert.equal(diffAsOptions(diff), { delete: 'startup,cicustom' });
});

test('disk_size_gb grows the boot disk and never shrinks it', () => {
  const s = spec('1001');
  assert.equal(resizePlan(s, { boot: 'order=scsi0', scsi0: 'quickOS-vm-disks:vm-1001-disk-0,size=16G' }), { action: 'grow', disk: 'scsi0', size: '64G' });
  assert.equal(resizePlan(s, { scsi0: 'x:vm-1001-disk-0,size=65536M' }), { action: 'none' });
  assert.equal(resizePlan(s, { scsi0: 'x:vm-1001-disk-0,size=80G' }), { action: 'larger', disk: 'scsi0', currentGb: 80 });
  assert.equal(resizePlan(spec('1001', (vm) => void delete entry(vm, 1001).disk_size_gb), { scsi0: 'x:d,size=16G' }), { action: 'grow', disk: 'scsi0', size: '32G' }, 'vm_defaults.disk_size_gb');
  assert.is(parseSize('3584M'), 3584 * 1024 ** 2);
  assert.is(parseSize('1.5T'), 1.5 * 1024 ** 4);
});

test('a template is created in one qm create that imports the image onto scsi0 (no disk-0 guess)', () => {
  const options = createFromImageOptions(spec('9000'), 'fastData-shared-iso:iso/noble-server-cloudimg-amd64.img', undefined);
  assert.is(options.scsi0, 'quickOS-vm-disks:0,import-from=fastData-shared-iso:iso/noble-server-cloudimg-amd64.img');
  assert.is(options.ide2, 'quickOS-vm-disks:cloudinit');
  assert.is(options.memory, '2048', 'the manifest memory, not a literal 2048 fixed later');
  assert.is(options.ciuser, 'phoenix_user');
  assert.is(options.ipconfig0, 'ip=dhcp');
  assert.is(options.nameserver, '10.0.0.5');
  assert.is(options.onboot, '0');
});

// ---------------------------------------------------------------- cloud-init

const MACS: Record<string, string> = { '9000': 'bc:24:11:00:90:00', '1001': 'bc:24:11:00:10:01', '1002': 'bc:24:11:00:10:02' };

for (const vmid of ['9000', '1001', '1002']) {
  test(`cloud-init files of ${vmid} (golden)`, async () => {
    const files = await renderCloudInit(spec(vmid), { mac: MACS[vmid] });
    assertGolden(`vm/cloud-init/${vmid}-user-data.yaml`, files.userData);
    assertGolden(`vm/cloud-init/${vmid}-network-config.yaml`, files.networkConfig);
    assertGolden(`vm/cloud-init/${vmid}-meta-data.yaml`, files.metaData);
    assert.ok(files.userData.startsWith('#cloud-config\n'), 'cloud-init only reads user-data whose first line is #cloud-config');
    const user = parseYaml(files.userData) as Record<string, unknown>;
    assert.is(user.hostname, spec(vmid).name);
    assert.not.ok('password' in user || 'chpasswd' in user, 'no password is set');
  });
}

test('cloud-init values are data: a hostile value cannot escape its place', async () => {
  const s = { ...spec('1001'), name: "evil: x\n#cloud-config\nruncmd: [rm -rf /]", searchdomain: 'a.example' };
  const files = await renderCloudInit(s, { mac: MACS['1001'] });
  const user = parseYaml(files.userData) as Record<string, unknown>;
  assert.is(user.hostname, s.name);
  assert.equal(user.runcmd, [['systemctl', 'enable', '--now', 'qemu-guest-agent']]);
  const net = parseYaml(files.networkConfig) as { ethernets: { eth0: Record<string, unknown> } };
  assert.equal(net.ethernets.eth0.addresses, ['10.0.0.21/24']);
  assert.equal(net.ethernets.eth0.routes, [{ to: 'default', via: '10.0.0.1' }]);
  assert.equal((net.ethernets.eth0.match as Record<string, string>).macaddress, MACS['1001']);
});

test('cloud-init is printed for YAML 1.1 readers: look-alike strings are quoted', async () => {
  const files = await renderCloudInit({ ...spec('1001'), name: 'yes' }, { mac: '52:54:00:12:34:56' });
  assert.match(files.networkConfig, /macaddress: "52:54:00:12:34:56"/);
  assert.match(files.userData, /hostname: "yes"/);
});

test('the instance id follows the rendered content, so cloud-init re-applies changes', async () => {
  const a = await renderCloudInit(spec('1001'), { mac: MACS['1001'] });
  const b = await renderCloudInit(spec('1001', (vm) => void ((entry(vm, 1001).network_config as Record<string, unknown>).ip = '10.0.0.31/24')), { mac: MACS['1001'] });
  assert.is.not(a.metaData, b.metaData);
  assert.is(a.metaData, (await renderCloudInit(spec('1001'), { mac: MACS['1001'] })).metaData);
  assert.is(digest('abc'), digest('abc'));
  assert.is.not(digest('abc'), digest('abd'));
});

// ---------------------------------------------------------------- scripts

test('the guest scripts are valid bash and carry no values of their own', () => {
  for (const [name, script] of Object.entries({ MOUNT_SCRIPT, FEATURE_LAUNCH_SCRIPT, TEMPLATE_CLEANUP_SCRIPT })) {
    const r = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    assert.is(r.status, 0, `${name}: ${r.stderr}`);
    assert.not.match(script, /10\.0\.0\.|phoenix_user|\/quickOS/, `${name} hard-codes nothing from a manifest`);
  }
});

test('mount arguments: one fstab line per volume, blanks escaped, options honoured', () => {
  const args = mountArgs([
    { server: '10.0.0.5', path: '/quickOS/data 1', mountPoint: '/mnt/my data', options: 'ro' },
    { server: 'nas.example.org', path: '/x', mountPoint: '/mnt/x' },
  ]);
  assert.equal(args, [
    '10.0.0.5:/quickOS/data 1', '/mnt/my data', 'defaults,_netdev,nofail,ro', '10.0.0.5:/quickOS/data\\0401 /mnt/my\\040data nfs defaults,_netdev,nofail,ro 0 0',
    'nas.example.org:/x', '/mnt/x', 'defaults,_netdev,nofail', 'nas.example.org:/x /mnt/x nfs defaults,_netdev,nofail 0 0',
  ]);
});

test('mount script: one fstab line per mount point, replaced when its options change, mounted or an error', () => {
  const dir = tmpDir();
  const state = path.join(dir, 'state');
  fs.mkdirSync(state);
  // Stand-ins for mountpoint(1) and mount(8): a marker file per mounted target.
  writeExecutable(path.join(dir, 'bin'), 'mountpoint', '#!/bin/sh\n[ -e "$STATE/$(printf %s "$3" | tr / _)" ]\n');
  writeExecutable(path.join(dir, 'bin'), 'mount', '#!/bin/sh\n[ -z "${FAIL_MOUNT:-}" ] || exit 32\n: > "$STATE/$(printf %s "$2" | tr / _)"\n');
  const fstab = path.join(dir, 'fstab');
  fs.writeFileSync(fstab, '# static file system information\nUUID=abc / ext4 defaults 0 1\n');
  const target = path.join(dir, 'mnt', 'my data');
  const run = (options: string | undefined, extra: Record<string, string> = {}) =>
    spawnSync('bash', ['-s', '--', ...mountArgs([{ server: '10.0.0.5', path: '/srv/nfs', mountPoint: target, options }])], {
      input: MOUNT_SCRIPT,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`, PHOENIX_FSTAB: fstab, STATE: state, ...extra },
    });
  const escaped = target.replace(/ /g, '\\040');
  let r = run('ro');
  assert.is(r.status, 0, r.stderr);
  assert.is(fs.readFileSync(fstab, 'utf8'), `# static file system information\nUUID=abc / ext4 defaults 0 1\n10.0.0.5:/srv/nfs ${escaped} nfs defaults,_netdev,nofail,ro 0 0\n`);
  assert.ok(fs.statSync(target).isDirectory());
  r = run('ro');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, '', 'a second run changes nothing');
  r = run(undefined);
  assert.is(r.status, 0, r.stderr);
  assert.is(fs.readFileSync(fstab, 'utf8').split('\n').filter((l) => l.includes(escaped)).length, 1, 'the old line for the mount point is replaced');
  assert.match(fs.readFileSync(fstab, 'utf8'), /nfs defaults,_netdev,nofail 0 0\n$/);
  fs.rmSync(path.join(state, target.replace(/\//g, '_')));
  r = run(undefined, { FAIL_MOUNT: '1' });
  assert.is(r.status, 32);
  assert.match(r.stderr, /10\.0\.0\.5:\/srv\/nfs is not mounted on/);
});

test('staging script: contents travel base64 in stdin, land with their modes, atomically', () => {
  const dir = tmpDir();
  const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n';
  const script = stagingScript([
    { path: `${dir}/sub/key.pem`, content: key, mode: '0600' },
    { path: `${dir}/run.sh`, content: "echo 'quoted' $HOME\n", mode: '0755' },
  ]);
  assert.not.ok(script.includes('PRIVATE KEY'), 'the key is not readable in the script text');
  const r = spawnSync('bash', ['-s'], { input: script, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(fs.readFileSync(path.join(dir, 'sub', 'key.pem'), 'utf8'), key);
  assert.is(fs.statSync(path.join(dir, 'sub', 'key.pem')).mode & 0o777, 0o600);
  assert.is(fs.readFileSync(path.join(dir, 'run.sh'), 'utf8'), "echo 'quoted' $HOME\n");
  assert.is(fs.statSync(path.join(dir, 'run.sh')).mode & 0o777, 0o755);
  assert.equal(fs.readdirSync(dir).sort(), ['run.sh', 'sub'], 'no temporary file is left');
  assert.throws(() => stagingScript([{ path: "/tmp/x'; rm -rf /", content: '', mode: '0600' }]), /unusual guest path/);
  assert.throws(() => stagingScript([{ path: '/tmp/../etc/shadow', content: '', mode: '0600' }]), /unusual guest path/);
});

test('feature launcher: runs the script from its directory with the VMID, exit status and log as they are', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'vm_context.json'), '{}');
  fs.writeFileSync(path.join(dir, 'feature_install_x.sh'), '[ -f vm_context.json ] || exit 9\necho "vm $1"\necho oops >&2\nexit 3\n');
  const log = path.join(dir, 'logs', 'feature_x.log');
  fs.mkdirSync(path.dirname(log));
  fs.writeFileSync(log, 'left from an earlier run\n');
  const r = spawnSync('bash', ['-s', '--', dir, 'feature_install_x.sh', log, '1001'], { input: FEATURE_LAUNCH_SCRIPT, encoding: 'utf8' });
  assert.is(r.status, 3);
  assert.is(fs.readFileSync(log, 'utf8'), 'vm 1001\noops\n');
});

test('only complete lines of a growing log are shown', () => {
  assert.equal(completeLines(''), []);
  assert.equal(completeLines('a\nb\npartial'), ['a', 'b']);
  assert.equal(completeLines('a\n'), ['a']);
});

test('staged manifests lose their secrets, keep paths to secret files', () => {
  const clean = withoutSecrets({ portainer_api: { admin_user: 'admin', admin_password: 'hunter2', admin_password_file: '/etc/x' }, users: { password_hash: '$6$x' }, list: [{ api_key: 'k', name: 'n' }] });
  assert.equal(clean, { portainer_api: { admin_user: 'admin', admin_password_file: '/etc/x' }, users: {}, list: [{ name: 'n' }] });
});

test('ported features are found for in-process calls by their upstream names', async () => {
  for (const name of ['base_setup', 'trusted_ca', 'step_cli', 'docker', 'docker_proxy']) {
    assert.type(await inProcessInstall(`vm_features/feature_install_${name}.sh`), 'function', name);
  }
  assert.type(await inProcessInstall('vm_features/feature_sync_docker_certs.sh'), 'function');
  assert.type(await inProcessInstall('vm_features/feature_sync_docker_proxy.sh'), 'function');
  assert.is(await inProcessInstall('vm_features/feature_install_nothing.sh'), undefined);
  assert.is(await inProcessInstall('managers/certificate-renewal-manager.sh'), undefined);
});

// ---------------------------------------------------------------- arguments

test('command line: the bash form, --config, and clear refusals', () => {
  assert.equal(parseVmManagerArgs(['create', '1001']), { action: 'create', vmids: ['1001'], configFile: undefined, dryRun: false, help: false, ignored: [] });
  const withConfig = parseVmManagerArgs(['create', '1001', '--config', '/x/vm.json', 'extra']);
  assert.is(withConfig.configFile, '/x/vm.json');
  assert.equal(withConfig.ignored, ['extra'], 'words after the VMID are ignored, as the bash did');
  assert.equal(parseVmManagerArgs(['status', '9000', '1001']).vmids, ['9000', '1001']);
  assert.ok(parseVmManagerArgs(['--help']).help);
  assert.ok(parseVmManagerArgs(['--dry-run', 'converge', '1002']).dryRun);
  assert.throws(() => parseVmManagerArgs(['frobnicate', '1001']), (e: unknown) => e instanceof UsageError && /Invalid action 'frobnicate'/.test(e.message));
  assert.throws(() => parseVmManagerArgs(['start']), /needs a VMID/);
  assert.throws(() => parseVmManagerArgs(['start', 'abc']), /Invalid VMID 'abc'/);
  assert.throws(() => parseVmManagerArgs(['start', '1001', '--force']), /unknown option '--force'/);
});

test.run();
