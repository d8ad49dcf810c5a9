// lib/lxc: the pure parts. Manifest entry + parsed `pct config` in, changes
// out; the config-file editor; host-side ownership; what is staged into a CT.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import type { LxcConfig, LxcManifest } from '../../lib/config/types.mts';
import { parseConfigLines } from '../../lib/pve/args.mts';
import {
  createOptions,
  desiredNet,
  desiredRawLines,
  gpuLines,
  isEmptyPlan,
  netMatches,
  parseProps,
  planConfig,
  planMounts,
  planRawLines,
  sizeInGb,
  desiredMounts,
} from '../../lib/lxc/plan.mts';
import { editLiveSection } from '../../lib/lxc/conf.mts';
import { planHostDirs, exclusiveHostDirs } from '../../lib/guest/hostdirs.mts';
import { toHostId as hostId, completeIdMaps, extraHostRanges } from '../../lib/config/id-maps.mts';
import { subidFileText } from '../../lib/lxc/subids.mts';
import { withoutSecrets } from '../../lib/core/redact.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

const example = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_lxc_configs.json'), 'utf8')) as LxcManifest;
const ct = (id: string, patch: Partial<LxcConfig> = {}): LxcConfig => ({ ...structuredClone(example.lxc_configs[id] as LxcConfig), ...patch });

/** What `pct config` prints for a container that already matches 103 (as the simulated host lays it out). */
const CONFIG_103 = `arch: amd64
cores: 1
hostname: step-ca
memory: 1024
mp0: /quickOS/lxc-persistent-data/103/step,mp=/root/.step
nameserver: 172.16.100.1
net0: bridge=vmbr100,firewall=1,gw=172.16.100.1,hwaddr=BC:24:11:00:01:03,ip=172.16.100.11/24,name=eth0,type=veth
onboot: 1
ostype: ubuntu
rootfs: quickOS-lxc-disks:basevol-900-disk-0/subvol-103-disk-0,size=8G
startup: order=1,up=5,down=5
swap: 256
unprivileged: 1
`;

test('a container that matches its manifest gives an empty plan', () => {
  const plan = planConfig({ ct: ct('103'), current: parseConfigLines(CONFIG_103) });
  assert.ok(isEmptyPlan(plan), JSON.stringify(plan));
  assert.equal(plan.notes, []);
});

test('only what differs is set, in one option map; MAC case and type=veth do not count', () => {
  const current = parseConfigLines(CONFIG_103.replace('memory: 1024', 'memory: 512').replace('BC:24:11:00:01:03', 'bc:24:11:00:01:03'));
  const plan = planConfig({ ct: ct('103'), current });
  assert.equal(plan.set, { memory: '1024' });
  const clone = parseConfigLines(CONFIG_103.replace('BC:24:11:00:01:03', 'BC:24:11:9A:FA:D4').replace('onboot: 1\n', ''));
  assert.equal(Object.keys(planConfig({ ct: ct('103'), current: clone }).set).sort(), ['net0', 'onboot']);
});

test('net0: firewall flag from firewall.enabled, MAC from mac_address, secondary net1, and removal of a stale net1', () => {
  assert.equal(desiredNet(ct('103'), 0), { name: 'eth0', bridge: 'vmbr100', ip: '172.16.100.11/24', gw: '172.16.100.1', hwaddr: 'BC:24:11:00:01:03', firewall: '1' });
  assert.is(desiredNet(ct('103', { firewall: { enabled: false } }), 0)?.firewall, '0');
  assert.equal(desiredNet(ct('101'), 1), { name: 'eth1', bridge: 'vmbr100', ip: '172.16.100.10/24', hwaddr: 'BC:24:11:00:01:02', firewall: '1' });
  const withNet1 = parseConfigLines(`${CONFIG_103}net1: bridge=vmbr0,name=eth1,ip=dhcp,hwaddr=BC:24:11:00:00:01,type=veth\n`);
  assert.equal(planConfig({ ct: ct('103'), current: withNet1 }).delete, ['net1']);
});

test('a MAC the manifest leaves open is whatever Proxmox generated; any other extra key is a difference', () => {
  assert.ok(netMatches({ name: 'eth0', bridge: 'vmbr0', ip: 'dhcp', firewall: '0' }, 'bridge=vmbr0,hwaddr=BC:24:11:12:34:56,ip=dhcp,name=eth0,type=veth'));
  assert.not.ok(netMatches({ name: 'eth0', bridge: 'vmbr0', firewall: '0' }, 'bridge=vmbr0,ip=dhcp,name=eth0,type=veth'));
  assert.not.ok(netMatches({ name: 'eth0', bridge: 'vmbr0', ip: 'dhcp', firewall: '1' }, 'bridge=vmbr0,ip=dhcp,name=eth0'));
});

test('macvlan: the Proxmox entry has no address and no firewall; the lxc.net.0.* lines are owned by the manifest', () => {
  const mac = ct('103', {
    lxc_options: ['lxc.net.0.type: macvlan', 'lxc.net.0.macvlan.mode: bridge', 'lxc.net.0.link: vmbr0'],
  });
  assert.equal(desiredNet(mac, 0), { name: 'eth0', bridge: 'vmbr100', hwaddr: 'BC:24:11:00:01:03', firewall: '0' });
  const current = parseConfigLines(`${CONFIG_103}lxc.net.0.type: macvlan\nlxc.net.0.link: vmbr9\nlxc.net.0.flags: up\n`);
  const plan = planConfig({ ct: mac, current });
  assert.is(plan.set.net0, 'name=eth0,bridge=vmbr100,hwaddr=BC:24:11:00:01:03,firewall=0');
  assert.equal(plan.raw.remove, [
    { key: 'lxc.net.0.link', value: 'vmbr9' },
    { key: 'lxc.net.0.flags', value: 'up' },
  ]);
  assert.equal(plan.raw.add, [
    { key: 'lxc.net.0.macvlan.mode', value: 'bridge' },
    { key: 'lxc.net.0.link', value: 'vmbr0' },
  ]);
});

test('lxc_options: one entry is one line, whatever spaces it holds; = and : are the same', () => {
  const lines = desiredRawLines(ct('101', { lxc_options: ['lxc.apparmor.profile: unconfined', 'lxc.cgroup2.devices.allow = c 10:200 rwm', 'lxc.cap.keep=sys_admin,net_admin'] }));
  assert.equal(lines, [
    { key: 'lxc.apparmor.profile', value: 'unconfined' },
    { key: 'lxc.cgroup2.devices.allow', value: 'c 10:200 rwm' },
    { key: 'lxc.cap.keep', value: 'sys_admin' },
    { key: 'lxc.cap.keep', value: 'net_admin' },
  ]);
});

test('raw lines: single-valued keys are replaced, multi-valued ones only gain, unknown ones are left alone', () => {
  const desired = [
    { key: 'lxc.apparmor.profile', value: 'unconfined' },
    { key: 'lxc.mount.entry', value: '/dev/a dev/a none bind' },
  ];
  const current = [
    { key: 'lxc.apparmor.profile', value: 'generated' },
    { key: 'lxc.mount.entry', value: '/dev/b dev/b none bind' },
    { key: 'lxc.environment', value: 'X=1' },
  ];
  const { plan } = planRawLines(desired, current);
  assert.equal(plan.remove, [{ key: 'lxc.apparmor.profile', value: 'generated' }]);
  assert.equal(plan.add, desired);
  assert.equal(planRawLines(desired, [...desired]).plan, { add: [], remove: [] });
});

test('complete id_maps are written as given, replacing every earlier lxc.idmap line', () => {
  const mapped = ct('101', {
    id_maps: [
      { type: 'uid', container_id: 0, host_id: 100000, size: 65536 },
      { type: 'gid', container_id: 0, host_id: 100000, size: 33 },
      { type: 'gid', container_id: 33, host_id: 33, size: 1 },
      { type: 'gid', container_id: 34, host_id: 100034, size: 65502 },
    ],
  });
  const current = parseConfigLines('memory: 1024\nlxc.idmap: u 0 100000 65536\nlxc.idmap: g 0 100000 65536\n');
  const plan = planConfig({ ct: mapped, current });
  assert.equal(plan.raw.remove, [{ key: 'lxc.idmap', value: 'g 0 100000 65536' }]);
  assert.equal(plan.raw.add.map((l) => l.value), ['g 0 100000 33', 'g 33 33 1', 'g 34 100034 65502']);
  assert.is(hostId(mapped, 'gid', 33), 33);
  assert.is(hostId(mapped, 'gid', 0), 100000);
  assert.is(hostId(mapped, 'uid', 33), 100033);
  assert.is(hostId(ct('101', { unprivileged: false }), 'uid', 33), 33);
});

test('a partial id map (only the passed-through ids) is completed around its holes, for both kinds', () => {
  // The bash toolkit's shape: one gid passed through, nothing else named.
  const partial = ct('101', { id_maps: [{ type: 'gid', container_id: 33, host_id: 33, size: 1 }] });
  const plan = planConfig({ ct: partial, current: parseConfigLines('memory: 1024\n') });
  assert.equal(
    plan.raw.add.filter((l) => l.key === 'lxc.idmap').map((l) => l.value),
    ['u 0 100000 65536', 'g 0 100000 33', 'g 33 33 1', 'g 34 100034 65502'],
  );
  // Container root is mapped, and the named id goes through.
  assert.is(hostId(partial, 'uid', 0), 100000);
  assert.is(hostId(partial, 'gid', 0), 100000);
  assert.is(hostId(partial, 'gid', 33), 33);
  assert.is(hostId(partial, 'gid', 34), 100034);
  // What root must be granted in /etc/subgid beyond the default range.
  assert.equal(extraHostRanges(partial), [{ kind: 'g', start: 33, size: 1 }]);
  // Several holes, one at the very start.
  const holes = completeIdMaps([
    { type: 'uid', container_id: 0, host_id: 0, size: 1 },
    { type: 'uid', container_id: 1000, host_id: 1000, size: 2 },
  ]);
  assert.equal(holes.problems, []);
  assert.equal(holes.ranges.filter((r) => r.kind === 'u').map((r) => [r.container, r.host, r.size]), [[0, 0, 1], [1, 100001, 999], [1000, 1000, 2], [1002, 101002, 64534]]);
});

test('id maps that claim one id twice are refused, with the entry named', () => {
  const overlapping = completeIdMaps([
    { type: 'gid', container_id: 30, host_id: 30, size: 5 },
    { type: 'gid', container_id: 33, host_id: 33, size: 1 },
  ]);
  assert.is(overlapping.problems.length, 1);
  assert.is(overlapping.problems[0]?.entry, 1);
  assert.match(overlapping.problems[0]?.message ?? '', /overlaps/);
  // Host id 100033 is already the default home of container gid 33.
  const sharedHost = completeIdMaps([{ type: 'gid', container_id: 40, host_id: 100033, size: 1 }]);
  assert.is(sharedHost.problems.length, 1);
  assert.match(sharedHost.problems[0]?.message ?? '', /shares host ids with the default range/);
  assert.equal(completeIdMaps(undefined), { ranges: [], problems: [] });
});

test('/etc/subgid: a passed-through id is granted to root in a marked block, once, and only when no line grants it', () => {
  const fresh = 'root:100000:65536\n';
  const granted = subidFileText(fresh, [{ start: 33, size: 1 }]);
  assert.ok(granted?.startsWith('root:100000:65536\n# BEGIN phoenix'));
  assert.match(granted ?? '', /^root:33:1$/m);
  // A second run converges; the operator's own lines are kept.
  assert.is(subidFileText(granted as string, [{ start: 33, size: 1 }]), undefined);
  assert.is(subidFileText('root:100000:65536\nroot:33:1\n', [{ start: 33, size: 1 }]), undefined, 'already granted outside the block');
  // Nothing needed any more: the block goes, the rest stays.
  assert.is(subidFileText(`lxd:200000:65536\n${granted as string}`, []), 'lxd:200000:65536\nroot:100000:65536\n');
  assert.is(subidFileText(fresh, []), undefined);
});

test('/etc/subgid: the block is rewritten where it stands, and broken markers are refused, not guessed at', () => {
  const granted = subidFileText('root:100000:65536\n', [{ start: 33, size: 1 }]) as string;
  const withLater = `${granted}lxd:200000:65536\n`;
  const regranted = subidFileText(withLater, [{ start: 33, size: 1 }, { start: 44, size: 1 }]);
  assert.ok(regranted?.endsWith('# END phoenix\nlxd:200000:65536\n'), 'the operator line after the block stays after it');
  assert.match(regranted ?? '', /^root:44:1$/m);
  const lonelyBegin = granted.split('\n').filter((line) => line !== '# END phoenix').join('\n') + 'lxd:200000:65536\n';
  assert.throws(() => subidFileText(lonelyBegin, [{ start: 33, size: 1 }], '/etc/subgid'), /\/etc\/subgid, line \d+/);
});

test('gpu_assignment: device binds for each GPU plus the control devices; none gives nothing', () => {
  const lines = gpuLines('0, 1');
  assert.ok(lines.some((l) => l.value === '/dev/nvidia1 dev/nvidia1 none bind,optional,create=file'));
  assert.is(lines.filter((l) => l.key === 'lxc.cgroup2.devices.allow').length, 2);
  assert.is(lines.length, 7);
  assert.equal(gpuLines('none'), []);
  assert.equal(gpuLines(undefined), []);
});

test('volumes: an existing slot is found by its mount path, never re-added; new mounts take free slots', () => {
  const withVolume = ct('103', { zfs_volumes: [{ name: 'models', pool: 'fastData-shared-bulk-data', size_gb: 50, mount_point: '/vllm_models' }] });
  const mounts = desiredMounts(withVolume);
  const before = parseConfigLines('mp1: /srv/other,mp=/other\n');
  assert.equal(planMounts(mounts, before).set, {
    mp0: 'fastData-shared-bulk-data:50,mp=/vllm_models',
    mp2: '/quickOS/lxc-persistent-data/103/step,mp=/root/.step',
  });
  const after = parseConfigLines('mp0: fastData-shared-bulk-data:subvol-103-disk-1,mp=/vllm_models,size=50G\nmp1: /srv/other,mp=/other\nmp2: /quickOS/lxc-persistent-data/103/step,mp=/root/.step\n');
  assert.equal(planMounts(mounts, after), { set: {}, resize: [], notes: [] });
  const bigger = planMounts(desiredMounts(ct('103', { zfs_volumes: [{ name: 'models', pool: 'fastData-shared-bulk-data', size_gb: 80, mount_point: '/vllm_models' }] })), after);
  assert.equal(bigger.resize, [{ disk: 'mp0', size: '80G' }]);
  const readOnly = planMounts(desiredMounts(ct('103', { mount_points: [{ host_path: '/srv/other', container_path: '/other', read_only: true }] })), after);
  assert.equal(readOnly.set, { mp1: '/srv/other,mp=/other,ro=1' });
});

test('rootfs only grows; a smaller size is a note, not a resize', () => {
  assert.equal(planConfig({ ct: ct('103', { storage_size_gb: 16 }), current: parseConfigLines(CONFIG_103) }).resize, [{ disk: 'rootfs', size: '16G' }]);
  const smaller = planConfig({ ct: ct('103', { storage_size_gb: 4 }), current: parseConfigLines(CONFIG_103) });
  assert.equal(smaller.resize, []);
  assert.match(smaller.notes.join('\n'), /never shrunk/);
  assert.is(sizeInGb('512M'), 0.5);
  assert.is(sizeInGb('1T'), 1024);
});

test('pct_options become --features, compared as a set', () => {
  const withFeatures = ct('103', { pct_options: ['nesting=1', 'keyctl=1'] });
  assert.is(planConfig({ ct: withFeatures, current: parseConfigLines(CONFIG_103) }).set.features, 'nesting=1,keyctl=1');
  assert.ok(isEmptyPlan(planConfig({ ct: withFeatures, current: parseConfigLines(`${CONFIG_103}features: keyctl=1,nesting=1\n`) })));
});

test('a template only takes option changes: its disks are bases of linked clones', () => {
  const tmpl = parseConfigLines(`${CONFIG_103.replace('mp0: /quickOS/lxc-persistent-data/103/step,mp=/root/.step\n', '')}template: 1\n`);
  const plan = planConfig({ ct: ct('103', { memory_mb: 2048, storage_size_gb: 32 }), current: tmpl, isTemplate: true });
  assert.equal(plan.set, { memory: '2048' });
  assert.equal(plan.resize, []);
  assert.match(plan.notes.join('\n'), /template are not changed/);
});

test('pct create for an OS template carries resources, network, boot order and the unprivileged flag', () => {
  assert.equal(createOptions(ct('900')), {
    hostname: 'base-template',
    memory: '1024',
    cores: '1',
    swap: '256',
    storage: 'quickOS-lxc-disks',
    rootfs: 'quickOS-lxc-disks:8',
    net0: 'name=eth0,bridge=vmbr100,ip=172.16.100.90/24,gw=172.16.100.1,hwaddr=BC:24:11:00:09:00,firewall=1',
    nameserver: '172.16.100.1',
    onboot: '0',
    startup: 'order=0,up=0,down=0',
    unprivileged: '1',
  });
  assert.equal(parseProps('local:subvol-1-disk-0,mp=/x,size=8G', 'volume'), { volume: 'local:subvol-1-disk-0', mp: '/x', size: '8G' });
});

test('config file edits land in the live section, before the first snapshot, and touch nothing else', () => {
  const text = `#note\narch: amd64\nlxc.apparmor.profile: generated\nparent: pre-configured\n\n[pre-configured]\narch: amd64\nlxc.apparmor.profile: generated\nsnaptime: 1\n`;
  const out = editLiveSection(text, {
    remove: [{ key: 'lxc.apparmor.profile', value: 'generated' }],
    add: [{ key: 'lxc.apparmor.profile', value: 'unconfined' }],
  });
  assert.is(out, `#note\narch: amd64\nparent: pre-configured\nlxc.apparmor.profile: unconfined\n\n[pre-configured]\narch: amd64\nlxc.apparmor.profile: generated\nsnaptime: 1\n`);
  assert.is(editLiveSection('arch: amd64\n', { remove: [], add: [{ key: 'lxc.x', value: 'a b' }] }), 'arch: amd64\nlxc.x: a b\n');
});

test('host directories: owner ids through the idmap, and no owner when two containers disagree', () => {
  const manifest = structuredClone(example);
  const plans = planHostDirs('101', manifest, '/r');
  assert.equal(plans.map((p) => [p.hostPath, p.owner]), [
    ['/r/quickOS/lxc-persistent-data/101/logs', { uid: 100033, gid: 100033 }],
    ['/r/quickOS/lxc-persistent-data/101/ssl', { uid: 100000, gid: 100033 }],
  ]);
  manifest.lxc_configs['102']!.mount_points!.push({ host_path: '/quickOS/lxc-persistent-data/101/ssl', container_path: '/x', owner_uid: 0, owner_gid: 0 });
  const contested = planHostDirs('101', manifest, '/')[1]!;
  assert.is(contested.owner, undefined);
  assert.match(contested.ownerSkipped ?? '', /CT 102 as 100000:100000/);
  assert.equal(exclusiveHostDirs('101', manifest, '/'), { remove: ['/quickOS/lxc-persistent-data/101/logs'], shared: ['/quickOS/lxc-persistent-data/101/ssl'] });
});

test('the hypervisor manifest staged into a container carries no secret', () => {
  const doc = { domain_name: 'x', users: { username: 'a', password_hash: 'h' }, portainer_api: { admin_user: 'admin', admin_password: 'p', admin_password_file: '/etc/f', api_key: 'k' }, list: [{ token: 't', name: 'n' }] };
  assert.equal(withoutSecrets(doc), { domain_name: 'x', users: { username: 'a' }, portainer_api: { admin_user: 'admin', admin_password_file: '/etc/f' }, list: [{ name: 'n' }] });
});

test.run();
