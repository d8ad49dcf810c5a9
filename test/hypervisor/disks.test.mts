// Disks are sacred: the pure pool planner (lib/hypervisor/disks.mts) with
// hand-made inspections, one test per safety rule, then inspectDisks and
// the whole plan → wipe → create → plan again loop against the simulated
// host's block devices (test/simhost/disks/), whose lsblk, blkid, wipefs
// and zpool create answer as util-linux and OpenZFS do.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSimHost } from '../simhost/index.mts';
import { BLANK_DISK_ID, BOOT_DISK_ID, EXPORTED_POOL, EXPORTED_POOL_DISK_ID, OLD_TABLE_DISK_ID } from '../simhost/disks.mts';
import { configureLog } from '../../lib/core/log.mts';
import { setProcessContext } from '../../lib/core/context.mts';
import { ConfigError } from '../../lib/core/errors.mts';
import {
  describePlannedDisk,
  inspectDisks,
  planPools,
  refusalError,
  zpoolCreateArgs,
  type InspectedDisk,
  type PoolPlan,
  type ZfsSection,
} from '../../lib/hypervisor/disks.mts';

const ID = '/dev/disk/by-id/';
const A = `${ID}ata-DISK_A_SERIAL1`;
const B = `${ID}ata-DISK_B_SERIAL2`;
const C = `${ID}ata-DISK_C_SERIAL3`;

function clean(requested: string, device: string, extra: Partial<InspectedDisk> = {}): InspectedDisk {
  return { requested, found: true, device, type: 'disk', size: 4_000_787_030_016, model: 'DISK MODEL', children: [], ...extra };
}

function zfs(pools: Array<{ name: string; raid_level: string; disks: string[] }>, datasets: Array<{ name: string; pool: string }> = []): ZfsSection {
  return { pools: pools as ZfsSection['pools'], datasets };
}

function rules(plan: PoolPlan): string[] {
  return plan.refusals.map((r) => `${r.rule} ${r.pointer}`);
}

const mirrorAB = zfs([{ name: 'tank', raid_level: 'mirror', disks: [A, B] }]);

// ---------------------------------------------------------------------------
// The planner

test('clean disks: the pool is planned with each disk by its by-id path, size and model, nothing to wipe', () => {
  const plan = planPools(mirrorAB, [clean(A, '/dev/sdb'), clean(B, '/dev/sdc')], [], { wipeDisks: false });
  assert.equal(plan.refusals, []);
  assert.equal(plan.create.length, 1);
  const pool = plan.create[0]!;
  assert.is(pool.vdev, 'mirror');
  assert.equal(pool.disks.map((d) => [d.byId, d.device, d.size, d.model, d.wipe]), [
    [A, '/dev/sdb', 4_000_787_030_016, 'DISK MODEL', []],
    [B, '/dev/sdc', 4_000_787_030_016, 'DISK MODEL', []],
  ]);
  assert.is(describePlannedDisk(pool.disks[0]!), `${A} (/dev/sdb, 4.0 TB, DISK MODEL)`);
  assert.equal(zpoolCreateArgs(pool, { force: false }), ['create', '-o', 'autotrim=on', '-O', 'compression=lz4', '-O', 'atime=off', 'tank', 'mirror', A, B]);
});

test('a partition table is refused unless --wipe-disks, and the plan says it would be wiped', () => {
  const old = clean(B, '/dev/sdc', { partitionTable: 'dos', children: [{ path: '/dev/sdc1', type: 'part', fstype: 'ntfs', label: 'Backup' }] });
  const refused = planPools(mirrorAB, [clean(A, '/dev/sdb'), old], [], { wipeDisks: false });
  assert.equal(rules(refused), ['disk-partition-table /zfs/pools/0/disks/1', 'disk-signature /zfs/pools/0/disks/1']);
  const allowed = planPools(mirrorAB, [clean(A, '/dev/sdb'), old], [], { wipeDisks: true });
  assert.equal(allowed.refusals, []);
  assert.equal(allowed.create[0]!.disks[1]!.wipe, ['a dos partition table', "/dev/sdc1: ntfs 'Backup'"]);
  assert.match(describePlannedDisk(allowed.create[0]!.disks[1]!), /; wipes a dos partition table/);
});

test('an empty partition table alone is refused too', () => {
  const plan = planPools(mirrorAB, [clean(A, '/dev/sdb'), clean(B, '/dev/sdc', { partitionTable: 'gpt' })], [], { wipeDisks: false });
  assert.equal(rules(plan), ['disk-partition-table /zfs/pools/0/disks/1']);
});

test('a file-system signature on the disk is refused unless --wipe-disks', () => {
  const disks = [clean(A, '/dev/sdb', { signature: 'ext4' }), clean(B, '/dev/sdc')];
  assert.equal(rules(planPools(mirrorAB, disks, [], { wipeDisks: false })), ['disk-signature /zfs/pools/0/disks/0']);
  assert.equal(planPools(mirrorAB, disks, [], { wipeDisks: true }).refusals, []);
});

test('the label of a pool that is not imported is refused unless --wipe-disks', () => {
  const disks = [clean(A, '/dev/sdb', { partitionTable: 'gpt', children: [{ path: '/dev/sdb1', type: 'part', fstype: 'zfs_member', label: 'oldtank' }, { path: '/dev/sdb9', type: 'part' }] }), clean(B, '/dev/sdc')];
  assert.equal(rules(planPools(mirrorAB, disks, ['rpool'], { wipeDisks: false })), ['disk-partition-table /zfs/pools/0/disks/0', 'disk-pool-label /zfs/pools/0/disks/0']);
  assert.equal(planPools(mirrorAB, disks, ['rpool'], { wipeDisks: true }).refusals, []);
});

test('a disk of an imported pool is refused even with --wipe-disks', () => {
  const member = clean(A, '/dev/sdb', { partitionTable: 'gpt', children: [{ path: '/dev/sdb1', type: 'part', fstype: 'zfs_member', label: 'rpool' }] });
  const plan = planPools(mirrorAB, [member, clean(B, '/dev/sdc')], ['rpool'], { wipeDisks: true });
  assert.equal(rules(plan), ['disk-imported-pool /zfs/pools/0/disks/0']);
  assert.match(plan.refusals[0]!.message, /imported pool 'rpool'.*never wiped/);
  // A whole-disk vdev (no partition table) the same.
  const whole = clean(A, '/dev/sdb', { signature: 'zfs_member', signatureLabel: 'rpool' });
  assert.equal(rules(planPools(mirrorAB, [whole, clean(B, '/dev/sdc')], ['rpool'], { wipeDisks: true })), ['disk-imported-pool /zfs/pools/0/disks/0']);
});

test('a disk with a mounted file system is refused even with --wipe-disks', () => {
  const mounted = clean(A, '/dev/sdb', { partitionTable: 'gpt', children: [{ path: '/dev/sdb1', type: 'part', fstype: 'ext4', mountpoint: '/srv' }] });
  const plan = planPools(mirrorAB, [mounted, clean(B, '/dev/sdc')], [], { wipeDisks: true });
  assert.equal(rules(plan), ['disk-in-use /zfs/pools/0/disks/0']);
  assert.match(plan.refusals[0]!.message, /\/dev\/sdb1 mounted on \/srv/);
  // Mounted on the whole disk, and active device-mapper volumes, the same.
  const wholeMounted = clean(A, '/dev/sdb', { signature: 'xfs', children: [{ path: '/dev/sdb', type: 'disk', mountpoint: '/data' }] });
  assert.equal(rules(planPools(mirrorAB, [wholeMounted, clean(B, '/dev/sdc')], [], { wipeDisks: true })), ['disk-in-use /zfs/pools/0/disks/0']);
  const lvm = clean(A, '/dev/sdb', { signature: 'LVM2_member', children: [{ path: '/dev/mapper/vg-data', type: 'lvm' }] });
  assert.equal(rules(planPools(mirrorAB, [lvm, clean(B, '/dev/sdc')], [], { wipeDisks: true })), ['disk-in-use /zfs/pools/0/disks/0']);
});

test('a disk that does not exist is refused', () => {
  const plan = planPools(mirrorAB, [clean(A, '/dev/sdb'), { requested: B, found: false, children: [] }], [], { wipeDisks: true });
  assert.equal(rules(plan), ['disk-not-found /zfs/pools/0/disks/1']);
  // Not inspected at all counts as not found, never as clean.
  assert.equal(rules(planPools(mirrorAB, [clean(A, '/dev/sdb')], [], { wipeDisks: true })), ['disk-not-found /zfs/pools/0/disks/1']);
});

test('a disk listed twice is refused at its second place, in the same pool or another, by name or by device', () => {
  const twice = zfs([
    { name: 'tank', raid_level: 'mirror', disks: [A, B] },
    { name: 'fast', raid_level: 'single', disks: [A] },
  ]);
  assert.equal(rules(planPools(twice, [clean(A, '/dev/sdb'), clean(B, '/dev/sdc')], [], { wipeDisks: false })), ['duplicate-disk /zfs/pools/1/disks/0']);
  const sameTwiceInOne = zfs([{ name: 'tank', raid_level: 'single', disks: [A, B, A] }]);
  assert.equal(rules(planPools(sameTwiceInOne, [clean(A, '/dev/sdb'), clean(B, '/dev/sdc')], [], { wipeDisks: false })), ['duplicate-disk /zfs/pools/0/disks/2']);
  // Two by-id names of one disk (ata- and wwn- links).
  const alias = `${ID}wwn-0x5000c500a1b2c3d4`;
  const aliased = zfs([{ name: 'tank', raid_level: 'mirror', disks: [A, alias] }]);
  const plan = planPools(aliased, [clean(A, '/dev/sdb'), clean(alias, '/dev/sdb')], [], { wipeDisks: true });
  assert.equal(rules(plan), ['duplicate-disk /zfs/pools/0/disks/1']);
  assert.match(plan.refusals[0]!.message, /same disk \(\/dev\/sdb\) as \/zfs\/pools\/0\/disks\/0/);
});

test('an unknown raid level is refused at its JSON path', () => {
  const plan = planPools(zfs([{ name: 'tank', raid_level: 'raid5', disks: [A, B] }]), [clean(A, '/dev/sdb'), clean(B, '/dev/sdc')], [], { wipeDisks: false });
  assert.equal(rules(plan), ['unknown-raid-level /zfs/pools/0/raid_level']);
  assert.equal(plan.create, []);
  const known = planPools(zfs([{ name: 'z', raid_level: 'RAIDZ1', disks: [A, B, C] }]), [clean(A, '/dev/sdb'), clean(B, '/dev/sdc'), clean(C, '/dev/sdd')], [], { wipeDisks: false });
  assert.equal(known.refusals, []);
  assert.is(known.create[0]!.vdev, 'raidz1');
});

test('too few disks for the raid level are refused', () => {
  assert.equal(rules(planPools(zfs([{ name: 'tank', raid_level: 'mirror', disks: [A] }]), [clean(A, '/dev/sdb')], [], { wipeDisks: false })), ['too-few-disks /zfs/pools/0/disks']);
  assert.equal(rules(planPools(zfs([{ name: 'tank', raid_level: 'raidz2', disks: [A, B] }]), [clean(A, '/dev/sdb'), clean(B, '/dev/sdc')], [], { wipeDisks: false })), ['too-few-disks /zfs/pools/0/disks']);
});

test('a disk named by its kernel name is refused: sdX names change between boots', () => {
  const plan = planPools(zfs([{ name: 'tank', raid_level: 'single', disks: ['/dev/sdb'] }]), [clean('/dev/sdb', '/dev/sdb')], [], { wipeDisks: true });
  assert.equal(rules(plan), ['not-by-id /zfs/pools/0/disks/0']);
});

test('a dataset on a pool neither in the manifest nor on the host is refused at its JSON path', () => {
  const section = zfs([{ name: 'tank', raid_level: 'single', disks: [A] }], [
    { name: 'vm-disks', pool: 'tank' },
    { name: 'iso', pool: 'rpool' },
    { name: 'backups', pool: 'nopool' },
  ]);
  assert.equal(rules(planPools(section, [clean(A, '/dev/sdb')], ['rpool'], { wipeDisks: false })), ['dataset-unknown-pool /zfs/datasets/2/pool']);
});

test('pools that exist are left alone: no disk is looked at, nothing is planned', () => {
  const plan = planPools(mirrorAB, [], ['tank'], { wipeDisks: false });
  assert.equal(plan, { create: [], existing: ['tank'], refusals: [] });
});

test('refusalError names the first JSON path and lists every refusal', () => {
  const plan = planPools(zfs([{ name: 'tank', raid_level: 'raid5', disks: [A, A] }]), [clean(A, '/dev/sdb')], [], { wipeDisks: false });
  const error = refusalError('/etc/phoenix_hypervisor_config.json', plan.refusals);
  assert.instance(error, ConfigError);
  assert.is(error.pointer, '/zfs/pools/0/raid_level');
  assert.match(error.message, /\/zfs\/pools\/0\/disks\/1: .* listed twice/);
});

// ---------------------------------------------------------------------------
// Against the simulated host

const host = createSimHost();
Object.assign(process.env, host.env);
configureLog({ file: undefined, write: () => {} });
setProcessContext({ dryRun: false });

const SEEDED_POOLS = ['fastData', 'quickOS'];
const QUICKOS_DISK = `${ID}nvme-Samsung_SSD_990_EVO_Plus_2TB_SIM0000001`;
const QUICKOS_DISK_2 = `${ID}nvme-Samsung_SSD_990_EVO_Plus_2TB_SIM0000002`;
const BLANK = `${ID}${BLANK_DISK_ID}`;
const OLD_TABLE = `${ID}${OLD_TABLE_DISK_ID}`;
const BOOT = `${ID}${BOOT_DISK_ID}`;
const EXPORTED = `${ID}${EXPORTED_POOL_DISK_ID}`;
const MISSING = `${ID}ata-NOT_THERE_SIM9`;

test.before.each(() => {
  host.reset();
  setProcessContext({ dryRun: false });
});

test('simulated lsblk: util-linux JSON, sizes in bytes, nulls, children, 32/64 for missing devices', () => {
  const r = host.run('lsblk', ['--json', '--bytes', '--output', 'NAME,PATH,SIZE,MODEL,TYPE,FSTYPE,MOUNTPOINT,PKNAME', OLD_TABLE]);
  assert.is(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), {
    blockdevices: [{
      name: 'sdc', path: '/dev/sdc', size: 4_000_787_030_016, model: 'ST4000VN008-2DR166', type: 'disk', fstype: null, mountpoint: null, pkname: null,
      children: [{ name: 'sdc1', path: '/dev/sdc1', size: 4_000_785_981_440, model: null, type: 'part', fstype: 'ntfs', mountpoint: null, pkname: 'sdc' }],
    }],
  });
  const none = host.run('lsblk', ['--json', MISSING]);
  assert.is(none.code, 32);
  assert.is(none.stderr, `lsblk: ${MISSING}: not a block device\n`);
  assert.is(host.run('lsblk', ['-J', BLANK, MISSING]).code, 64);
  assert.is(host.run('lsblk', ['--output', 'NAME,BOGUS']).code, 1);
});

test('simulated blkid -p: the partition table or signature on the device, exit 2 when there is none', () => {
  const table = host.run('blkid', ['-p', '-o', 'export', OLD_TABLE]);
  assert.is(table.code, 0);
  assert.match(table.stdout, new RegExp(`^DEVNAME=${OLD_TABLE}\\nPTUUID=\\S+\\nPTTYPE=dos\\n$`));
  const part = host.run('blkid', ['-p', '-o', 'export', `${OLD_TABLE}-part1`]);
  assert.match(part.stdout, /LABEL=Backup\n[\s\S]*TYPE=ntfs\nUSAGE=filesystem\nPART_ENTRY_SCHEME=dos\nPART_ENTRY_NUMBER=1\n/);
  const blank = host.run('blkid', ['-p', '-o', 'export', BLANK]);
  assert.equal([blank.code, blank.stdout], [2, '']);
  const missing = host.run('blkid', ['-p', MISSING]);
  assert.equal([missing.code, missing.stderr], [2, `blkid: error: ${MISSING}: No such file or directory\n`]);
});

test('simulated wipefs: lists, refuses a busy disk even with --no-act, erases a partition table and its partitions', () => {
  const busy = host.run('wipefs', ['--no-act', '--all', BOOT]);
  assert.equal([busy.code, busy.stderr], [1, `wipefs: error: ${BOOT}: probing initialization failed: Device or resource busy\n`]);
  const imported = host.run('wipefs', ['--all', QUICKOS_DISK]);
  assert.is(imported.code, 1);
  assert.match(imported.stderr, /Device or resource busy/);
  const dry = host.run('wipefs', ['--no-act', '--all', OLD_TABLE]);
  assert.equal([dry.code, dry.stdout], [0, `${OLD_TABLE}: 2 bytes were erased at offset 0x000001fe (dos): 55 aa\n`]);
  assert.is(host.run('blkid', ['-p', OLD_TABLE]).code, 0, '--no-act changed nothing');
  const wiped = host.run('wipefs', ['--all', OLD_TABLE]);
  assert.is(wiped.code, 0, wiped.stderr);
  assert.match(wiped.stdout, /re-read partition table: Success/);
  assert.is(host.run('blkid', ['-p', OLD_TABLE]).code, 2);
  assert.not.ok('children' in (JSON.parse(host.run('lsblk', ['-J', OLD_TABLE]).stdout) as { blockdevices: object[] }).blockdevices[0]!);
  assert.is(host.run('wipefs', ['--all', MISSING]).code, 1);
});

test('simulated zpool create: refuses what OpenZFS refuses, -f where it may, and labels the disks it takes', () => {
  const exported = host.run('zpool', ['create', 'tank', EXPORTED]);
  assert.equal([exported.code, exported.stderr], [1, `invalid vdev specification\nuse '-f' to override the following errors:\n${EXPORTED}-part1 is part of exported pool '${EXPORTED_POOL}'\n`]);
  const active = host.run('zpool', ['create', '-f', 'tank', QUICKOS_DISK]);
  assert.is(active.code, 1);
  assert.match(active.stderr, /must be manually repaired:\n.*-part1 is part of active pool 'quickOS'/);
  const boot = host.run('zpool', ['create', '-f', 'tank', BOOT]);
  assert.equal([boot.code, boot.stderr], [1, 'warning: device in use checking failed: Device or resource busy\n']);
  assert.is(host.run('zpool', ['create', 'tank', MISSING]).code, 1);
  assert.equal(Object.keys(host.runtime().zfs.pools).sort(), SEEDED_POOLS, 'no refusal created a pool');
  // OpenZFS does not look into an MBR-partitioned disk: it takes it without -f. Phoenix's checks are what stop that.
  const mbr = host.run('zpool', ['create', 'tank', 'mirror', BLANK, OLD_TABLE]);
  assert.is(mbr.code, 0, mbr.stderr);
  assert.equal(host.runtime().zfs.pools.tank?.vdevs, [BLANK, OLD_TABLE]);
  assert.match(host.run('blkid', ['-p', '-o', 'export', `${BLANK}-part1`]).stdout, /LABEL=tank\n[\s\S]*TYPE=zfs_member\n/);
  assert.match(host.run('zpool', ['create', 'tank', EXPORTED]).stderr, /exported pool/);
  assert.is(host.run('zpool', ['create', '-f', 'tank2', EXPORTED]).code, 0);
});

test('inspectDisks reads what each seeded disk holds', async () => {
  const found = await inspectDisks([BLANK, OLD_TABLE, BOOT, EXPORTED, QUICKOS_DISK, MISSING, BLANK]);
  assert.is(found.length, 6, 'each path once');
  const [blank, old, boot, exported, member, missing] = found;
  assert.equal(blank, { requested: BLANK, found: true, device: '/dev/sdb', type: 'disk', size: 4_000_787_030_016, model: 'WDC WD40EFRX-68N32N0', children: [] });
  assert.is(old!.partitionTable, 'dos');
  assert.equal(old!.children, [{ path: '/dev/sdc1', type: 'part', fstype: 'ntfs', label: 'Backup' }]);
  assert.equal(boot!.children.filter((c) => c.mountpoint).map((c) => c.mountpoint), ['/boot/efi', '[SWAP]', '/']);
  assert.equal(exported!.children.find((c) => c.fstype === 'zfs_member')?.label, EXPORTED_POOL);
  assert.equal(member!.children.find((c) => c.fstype === 'zfs_member')?.label, 'quickOS');
  assert.equal(missing, { requested: MISSING, found: false, children: [] });
  assert.ok(host.calls().every((c) => ['lsblk', 'blkid'].includes(c.tool)), 'read-only tools only');
});

test('on the seeded host: what is refused, with and without --wipe-disks', async () => {
  const section = zfs([
    { name: 'quickOS', raid_level: 'mirror', disks: [QUICKOS_DISK, QUICKOS_DISK_2] },
    { name: 'tank', raid_level: 'mirror', disks: [BLANK, OLD_TABLE] },
    { name: 'old', raid_level: 'single', disks: [EXPORTED] },
    { name: 'boot', raid_level: 'single', disks: [BOOT] },
    { name: 'ghost', raid_level: 'single', disks: [MISSING] },
  ]);
  const inspected = await inspectDisks([BLANK, OLD_TABLE, EXPORTED, BOOT, MISSING]);
  const strict = planPools(section, inspected, SEEDED_POOLS, { wipeDisks: false });
  assert.equal(strict.existing, ['quickOS']);
  assert.equal([...new Set(rules(strict))], [
    'disk-partition-table /zfs/pools/1/disks/1',
    'disk-signature /zfs/pools/1/disks/1',
    'disk-partition-table /zfs/pools/2/disks/0',
    'disk-pool-label /zfs/pools/2/disks/0',
    'disk-in-use /zfs/pools/3/disks/0',
    'disk-partition-table /zfs/pools/3/disks/0',
    'disk-signature /zfs/pools/3/disks/0',
    'disk-not-found /zfs/pools/4/disks/0',
  ]);
  const wiping = planPools(section, inspected, SEEDED_POOLS, { wipeDisks: true });
  assert.equal([...new Set(rules(wiping))], ['disk-in-use /zfs/pools/3/disks/0', 'disk-not-found /zfs/pools/4/disks/0']);
});

test('plan, wipe, create, plan again: the second plan creates nothing', async () => {
  const section = zfs([{ name: 'tank', raid_level: 'mirror', disks: [BLANK, OLD_TABLE] }], [{ name: 'data', pool: 'tank' }]);
  const first = planPools(section, await inspectDisks([BLANK, OLD_TABLE]), SEEDED_POOLS, { wipeDisks: true });
  assert.equal(first.refusals, []);
  const pool = first.create[0]!;
  assert.equal(pool.disks.map((d) => [d.byId, d.device, d.model]), [[BLANK, '/dev/sdb', 'WDC WD40EFRX-68N32N0'], [OLD_TABLE, '/dev/sdc', 'ST4000VN008-2DR166']]);
  for (const disk of pool.disks.filter((d) => d.wipe.length > 0)) assert.is(host.run('wipefs', ['--all', disk.byId]).code, 0);
  const created = host.run('zpool', zpoolCreateArgs(pool, { force: false }));
  assert.is(created.code, 0, created.stderr);
  const pools = Object.keys(host.runtime().zfs.pools).sort();
  assert.equal(pools, ['fastData', 'quickOS', 'tank']);
  const again = planPools(section, await inspectDisks([BLANK, OLD_TABLE]), pools, { wipeDisks: true });
  assert.equal(again, { create: [], existing: ['tank'], refusals: [] });
  // Listed for another pool now, the disks are an imported pool's: refused, --wipe-disks or not.
  const reuse = planPools(zfs([{ name: 'other', raid_level: 'single', disks: [BLANK] }]), await inspectDisks([BLANK]), pools, { wipeDisks: true });
  assert.equal(rules(reuse), ['disk-imported-pool /zfs/pools/0/disks/0']);
});

test.run();
