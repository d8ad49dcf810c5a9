// hypervisor_feature_setup_zfs on a bare simulated node: pools from by-id
// disks with the plan shown before anything is touched, the disk refusals
// (an old partition table without --wipe-disks, a mounted disk or one of an
// imported pool even with it), the ARC limit, datasets and their storages;
// a second run that changes nothing; storages the step does not own (NFS,
// the operator's) kept; dry-run; bad manifests refused with their JSON
// pointer before any host call. Both manifest shapes: the example manifest
// and one shaped like the bash toolkit's own.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { BOOT_DISK_ID, OLD_TABLE_DISK_ID } from '../simhost/disks.mts';
import { bareNode, BY_ID, changingCalls, EXAMPLE_DISKS, exampleManifest, UPSTREAM_DISKS, upstreamShapedManifest } from './storage-fixtures.mts';
import { exactValue, validateZfs } from '../../lib/hypervisor/zfs-setup.mts';
import { datasetStorageId, desiredStorages, parseStorageCfg } from '../../lib/hypervisor/storages.mts';

const ZFS = 'hypervisor_feature_setup_zfs';
const NFS = 'hypervisor_feature_setup_nfs';
const storageCfg = (b: ReturnType<typeof bareNode>) => parseStorageCfg(fs.readFileSync(`${b.host.stateDir}/pve/storage.cfg`, 'utf8'));
const ok = (r: { code: number; stderr: string }) => assert.is(r.code, 0, r.stderr.slice(-3000));

test('example manifest on a bare node: pools on by-id disks, ARC persisted, datasets and storages; the second run changes nothing', () => {
  const b = bareNode(EXAMPLE_DISKS);
  const file = b.manifest(exampleManifest());
  const first = b.script(ZFS, ['--config', file, '--mode', 'safe']);
  ok(first);
  const rt = b.host.runtime();
  assert.equal(Object.keys(rt.zfs.pools).sort(), ['fastData', 'quickOS']);
  assert.equal(rt.zfs.pools.quickOS!.vdevs, EXAMPLE_DISKS.slice(0, 2).map((d) => `${BY_ID}${d.ids[0]}`));
  // The plan names each disk by its by-id path, with device, size and model.
  assert.match(first.stderr, /Pool 'quickOS' \(mirror\) will be created on:\n.*\/dev\/disk\/by-id\/nvme-EXAMPLE_SSD_1TB_SERIAL0001 \(\/dev\/nvme0n1, 1\.0 TB, EXAMPLE SSD 1TB\)/);
  assert.equal(rt.zfs.datasets['quickOS/vm-disks']!.props, { mountpoint: '/quickOS/vm-disks', recordsize: '64K', compression: 'lz4' });
  const cfg = storageCfg(b);
  assert.equal(cfg.get('quickOS-vm-disks'), { type: 'zfspool', props: { pool: 'quickOS/vm-disks', content: 'images', sparse: '1' } });
  assert.equal(cfg.get('fastData-shared-iso')?.props.path, '/fastData/shared-iso');
  assert.equal(cfg.get('fastData-shared-iso')?.props.is_mountpoint, 'yes');
  assert.ok(cfg.has('local') && cfg.has('local-lvm'));
  assert.is(fs.readFileSync(b.onHost('/etc/modprobe.d/zfs.conf'), 'utf8'), '# BEGIN phoenix: zfs.arc_max_gb\noptions zfs zfs_arc_max=8589934592\n# END phoenix: zfs.arc_max_gb\n');
  assert.is(fs.readFileSync(b.onHost('/sys/module/zfs/parameters/zfs_arc_max'), 'utf8').trim(), '8589934592');

  b.host.clearCalls();
  const second = b.script(ZFS, ['--config', file]);
  ok(second);
  assert.equal(changingCalls(b.host.calls()), []);
  assert.match(second.stderr, /already match the manifest; nothing changed/);
});

test('upstream-shaped manifest: fallback storage ids, quota and sync properties, then one differing property is all that is set', () => {
  const b = bareNode(UPSTREAM_DISKS, '192.168.50.10');
  const hv = upstreamShapedManifest();
  const file = b.manifest(hv);
  // The line the Proxmox installer writes on a ZFS-root host stays; Phoenix's block follows it.
  const installer = '# set by the installer\noptions zfs zfs_arc_max=3221225472\n';
  fs.mkdirSync(b.onHost('/etc/modprobe.d'), { recursive: true });
  fs.writeFileSync(b.onHost('/etc/modprobe.d/zfs.conf'), installer);
  const run = b.script(ZFS, ['--config', file]);
  ok(run);
  assert.is(fs.readFileSync(b.onHost('/etc/modprobe.d/zfs.conf'), 'utf8'), `${installer}# BEGIN phoenix: zfs.arc_max_gb\noptions zfs zfs_arc_max=17179869184\n# END phoenix: zfs.arc_max_gb\n`);
  assert.match(run.stderr, /sets zfs_arc_max outside Phoenix's block too; the block comes last and wins/);
  const cfg = storageCfg(b);
  for (const id of ['quickOS-vm-disks', 'quickOS-lxc-disks', 'quickOS-shared-prod-data-sync', 'fastData-shared-bulk-data', 'fastData-shared-backups', 'quickOS-portainer_stacks']) assert.ok(cfg.has(id), id);
  const rt = b.host.runtime();
  assert.is(rt.zfs.datasets['fastData/shared-bulk-data']!.props.quota, '1.2T');
  assert.is(rt.zfs.datasets['quickOS/shared-prod-data-sync']!.props.sync, 'always');

  hv.zfs.datasets[0].properties = 'recordsize=64K,compression=lz4,sync=standard,quota=700G';
  hv.zfs.datasets[1].proxmox_content_type = 'rootdir,images';
  hv.zfs.datasets[2].proxmox_content_type = 'images';
  b.manifest(hv);
  b.host.clearCalls();
  ok(b.script(ZFS, ['--config', file]));
  // Only the property that differs is set; content order is not a difference.
  assert.equal(changingCalls(b.host.calls()), ['zfs set recordsize=64K quickOS/vm-disks', 'pvesm set quickOS-shared-prod-data --content images']);
});

test('a disk with an old partition table: refused without --wipe-disks (nothing touched), wiped after the plan with it', () => {
  const b = bareNode(EXAMPLE_DISKS);
  const hv = exampleManifest();
  hv.zfs.pools.push({ name: 'tank', raid_level: 'single', disks: [`${BY_ID}${OLD_TABLE_DISK_ID}`] });
  const file = b.manifest(hv);
  const refused = b.script(ZFS, ['--config', file, '--mode', 'safe']);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /at \/zfs\/pools\/2\/disks\/0: .*ST4000VN008-2DR166_ZDHSIM12 \(\/dev\/sdc\) holds a dos partition table: give --wipe-disks to erase it/);
  assert.equal(changingCalls(b.host.calls()), []);

  const wiped = b.script(ZFS, ['--config', file, '--mode', 'force-destructive']);
  ok(wiped);
  const plan = wiped.stderr.indexOf(`${OLD_TABLE_DISK_ID} (/dev/sdc, 4.0 TB, ST4000VN008-2DR166); wipes a dos partition table`);
  const wipe = wiped.stderr.indexOf(`Executing: wipefs --all ${BY_ID}${OLD_TABLE_DISK_ID}`);
  const firstCreate = wiped.stderr.indexOf('Executing: zpool create');
  assert.ok(plan > 0 && wipe > plan && firstCreate > plan, wiped.stderr);
  assert.ok(b.host.runtime().zfs.pools.tank);
  // Only the disk with something on it is wiped.
  assert.equal(changingCalls(b.host.calls()).filter((c) => c.startsWith('wipefs')), [`wipefs --all ${BY_ID}${OLD_TABLE_DISK_ID}`]);
});

test('a mounted disk and a disk of an imported pool are refused even with --wipe-disks', () => {
  const b = bareNode(EXAMPLE_DISKS);
  ok(b.script(ZFS, ['--config', b.manifest(exampleManifest())]));
  const hv = exampleManifest();
  // fastData's disk asked for by a new pool, and the boot disk.
  hv.zfs.pools[1].name = 'fastData2';
  hv.zfs.pools.push({ name: 'boot', raid_level: 'single', disks: [`${BY_ID}${BOOT_DISK_ID}`] });
  hv.zfs.datasets = hv.zfs.datasets.filter((d: any) => d.pool === 'quickOS');
  b.host.clearCalls();
  const refused = b.script(ZFS, ['--config', b.manifest(hv), '--mode', 'force-destructive']);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /at \/zfs\/pools\/1\/disks\/0: .* holds .*a vdev of the imported pool 'fastData': never wiped, --wipe-disks or not/);
  assert.match(refused.stderr, /\/zfs\/pools\/2\/disks\/0: .* mounted on \/boot\/efi: never wiped, --wipe-disks or not/);
  assert.equal(changingCalls(b.host.calls()), []);
});

test('NFS storages and the operator\'s storages survive a ZFS re-run; a storage of the manifest\'s name and another type is refused, not replaced', () => {
  const b = bareNode(EXAMPLE_DISKS);
  const hv = exampleManifest();
  const file = b.manifest(hv);
  ok(b.script(ZFS, ['--config', file]));
  ok(b.script(NFS, [file]));
  b.host.run('pvesm', ['add', 'dir', 'operator-scratch', '--path', '/srv/scratch', '--content', 'iso']);
  b.host.clearCalls();
  ok(b.script(ZFS, ['--config', file]));
  const ids = [...storageCfg(b).keys()];
  for (const id of ['nfs-vm-persistent-data', 'nfs-portainer_stacks', 'operator-scratch', 'local', 'local-lvm']) assert.ok(ids.includes(id), id);
  assert.equal(changingCalls(b.host.calls()), []);

  // The operator's own storage under a name the manifest now uses.
  hv.proxmox_storage_ids.quickOS_vm_disks = 'operator-scratch';
  b.host.clearCalls();
  const clash = b.script(ZFS, ['--config', b.manifest(hv)]);
  assert.is(clash.code, 1);
  assert.match(clash.stderr, /at \/zfs\/datasets\/0: storage 'operator-scratch' is a dir storage, the manifest wants zfspool/);
  assert.equal(changingCalls(b.host.calls()), []);
  assert.is(storageCfg(b).get('operator-scratch')?.props.path, '/srv/scratch');
});

test('dry-run on a bare node: the plan and every change are printed, nothing is changed', () => {
  const b = bareNode(EXAMPLE_DISKS);
  const file = b.manifest(exampleManifest());
  const dry = b.script(ZFS, ['--config', file, '--dry-run']);
  ok(dry);
  assert.match(dry.stderr, /DRY-RUN: would run: zpool create .* quickOS mirror/);
  assert.match(dry.stderr, /DRY-RUN: would run: pvesm add zfspool quickOS-vm-disks/);
  assert.equal(changingCalls(b.host.calls()), []);
  assert.equal(Object.keys(b.host.runtime().zfs.pools), []);
  assert.not.ok(fs.existsSync(b.onHost('/etc/modprobe.d/zfs.conf')));
  assert.is(fs.readFileSync(b.onHost('/sys/module/zfs/parameters/zfs_arc_max'), 'utf8'), '0\n');
});

test('bad manifests fail with the JSON pointer before any host call', () => {
  const b = bareNode(EXAMPLE_DISKS);
  const cases: Array<[(hv: any) => void, RegExp]> = [
    [(hv) => void (hv.zfs.datasets[3].pool = 'nosuchpool'), /at \/zfs\/datasets\/3\/pool: dataset 'vm-persistent-data' is on the pool 'nosuchpool'/],
    [(hv) => void hv.zfs.datasets.push({ ...hv.zfs.datasets[0] }), /at \/zfs\/datasets\/7\/name: dataset quickOS\/vm-disks is already defined at \/zfs\/datasets\/0/],
    [(hv) => void (hv.zfs.pools[0].disks[1] = hv.zfs.pools[0].disks[0]), /at \/zfs\/pools\/0\/disks\/1: .* is listed twice/],
    [(hv) => void (hv.zfs.pools[1].raid_level = 'raid5'), /\/zfs\/pools\/1\/raid_level/],
    [(hv) => void (hv.proxmox_storage_ids.fastData_shared_iso = 'quickOS-vm-disks'), /at \/zfs\/datasets\/5: storage id 'quickOS-vm-disks' is already used by \/zfs\/datasets\/0/],
  ];
  for (const [edit, expected] of cases) {
    const hv = exampleManifest();
    edit(hv);
    b.host.clearCalls();
    const r = b.script(ZFS, ['--config', b.manifest(hv)]);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, expected);
    assert.equal(b.host.calls().map((c) => c.tool), [], r.stderr);
  }
});

test('command line: --config - reads stdin, unknown modes are refused, interactive without a terminal runs as safe', () => {
  const b = bareNode(EXAMPLE_DISKS);
  const hv = exampleManifest();
  hv.zfs.pools.push({ name: 'tank', raid_level: 'single', disks: [`${BY_ID}${OLD_TABLE_DISK_ID}`] });
  const bad = b.script(ZFS, ['--config', b.manifest(hv), '--mode', 'yolo']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /Invalid execution mode: yolo/);
  const interactive = b.script(ZFS, ['--config', b.manifest(hv), '--mode', 'interactive']);
  assert.is(interactive.code, 1);
  assert.match(interactive.stderr, /running as safe/);
  assert.equal(changingCalls(b.host.calls()), []);
  const piped = b.script(ZFS, ['--config', '-', '--dry-run'], {}, JSON.stringify(exampleManifest()));
  ok(piped);
  assert.match(piped.stderr, /would run: zpool create/);
});

test('pure parts: storage ids as the bash named them, exact property values', () => {
  const hv = upstreamShapedManifest();
  assert.is(datasetStorageId(hv, 'quickOS', 'vm-disks'), 'quickOS-vm-disks');
  assert.is(datasetStorageId({ ...hv, proxmox_storage_ids: { quickOS_vm_disks: 'vmstore' } }, 'quickOS', 'vm-disks'), 'vmstore');
  assert.equal(desiredStorages(hv).filter((s) => s.owner === 'nfs').map((s) => s.id), ['nfs-vm-persistent-data', 'nfs-portainer_stacks']);
  assert.is(exactValue('quota', '1.4T'), '1539316278886');
  assert.is(exactValue('recordsize', '64K'), '65536');
  assert.is(exactValue('quota', 'none'), '0');
  assert.is(exactValue('compression', 'lz4'), 'lz4');
  assert.equal(validateZfs(exampleManifest(), 'f'), []);
  assert.equal(validateZfs(hv, 'f'), []);
});

test.run();
