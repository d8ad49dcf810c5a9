// hypervisor_feature_setup_nfs (and wait_for_nfs_ready) on a simulated node
// whose pools the ZFS step made: the packages only when missing, Phoenix's
// block of /etc/exports with every other byte kept, NEED_STATD, export
// directories without chmod 777, exportfs only when the block changed, the
// bounded wait for showmount, the nfs storages; the second run; dry-run; bad
// manifests. And the exports(5) grammar the simulated exportfs applies,
// which Phoenix's block passes.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { bareNode, changingCalls, EXAMPLE_DISKS, exampleManifest, UPSTREAM_DISKS, upstreamShapedManifest } from './storage-fixtures.mts';
import { parseExports } from '../simhost/hostsvc/nfs.mts';
import { exportLine, exportsWord, shownExports, validateNfs } from '../../lib/hypervisor/nfs.mts';

const ZFS = 'hypervisor_feature_setup_zfs';
const NFS = 'hypervisor_feature_setup_nfs';
const ok = (r: { code: number; stderr: string }) => assert.is(r.code, 0, r.stderr.slice(-3000));

// The operator's lines: a comment with trailing blanks, a CRLF line, a continued line, no final newline.
const OPERATOR = '# exports kept by hand   \n/srv/media 192.168.1.0/24(ro,sync,no_subtree_check)\r\n/srv/backup \\\n  192.168.1.9(rw,sync,no_subtree_check)';

function withZfs(disks = EXAMPLE_DISKS, hv = exampleManifest(), address = '10.0.0.5') {
  const b = bareNode(disks, address);
  const file = b.manifest(hv);
  ok(b.script(ZFS, ['--config', file]));
  for (const dir of ['/srv/media', '/srv/backup']) fs.mkdirSync(b.onHost(dir), { recursive: true });
  fs.writeFileSync(b.onHost('/etc/exports'), OPERATOR);
  b.host.clearCalls();
  return { b, file };
}

test('example manifest: packages, NEED_STATD, the block beside the operator\'s lines, storages; the second run changes nothing', () => {
  const { b, file } = withZfs();
  fs.mkdirSync(b.onHost('/quickOS/portainer_stacks'), { recursive: true, mode: 0o750 });
  fs.chmodSync(b.onHost('/quickOS/portainer_stacks'), 0o750);
  const first = b.script(NFS, [file]);
  ok(first);
  const exportsText = fs.readFileSync(b.onHost('/etc/exports'), 'utf8');
  assert.ok(exportsText.startsWith(OPERATOR), exportsText);
  assert.is(exportsText.slice(OPERATOR.length), '\n# BEGIN phoenix: nfs.exports\n/quickOS/vm-persistent-data 10.0.0.21(rw,sync,no_subtree_check,root_squash) 10.0.0.22(rw,sync,no_subtree_check,root_squash)\n/quickOS/portainer_stacks 10.0.0.21(ro,sync,no_subtree_check,root_squash)\n# END phoenix: nfs.exports\n');
  assert.is(fs.readFileSync(b.onHost('/etc/exports.phoenix-orig'), 'utf8'), OPERATOR);
  assert.equal(fs.readdirSync(b.onHost('/etc')).filter((n) => n.startsWith('exports.bak')), []);
  assert.match(fs.readFileSync(b.onHost('/etc/default/nfs-common'), 'utf8'), /\n# BEGIN phoenix: NFS locking\nNEED_STATD=yes\n# END phoenix: NFS locking\n$/);
  // A new export directory is root 0755; an existing one keeps its mode.
  assert.is(fs.statSync(b.onHost('/quickOS/vm-persistent-data')).mode & 0o7777, 0o755);
  assert.is(fs.statSync(b.onHost('/quickOS/portainer_stacks')).mode & 0o7777, 0o750);
  assert.equal(changingCalls(b.host.calls()).filter((c) => !c.startsWith('pvesm')), ['apt-get update -q', 'apt-get install -y -q nfs-kernel-server nfs-common', 'exportfs -ra', 'systemctl restart nfs-server.service']);
  const shown = b.host.run('showmount', ['-e', '10.0.0.5']);
  assert.is(shown.stdout, 'Export list for 10.0.0.5:\n/srv/media                  192.168.1.0/24\n/srv/backup                 192.168.1.9\n/quickOS/vm-persistent-data 10.0.0.21,10.0.0.22\n/quickOS/portainer_stacks   10.0.0.21\n');
  const cfg = fs.readFileSync(`${b.host.stateDir}/pve/storage.cfg`, 'utf8');
  assert.match(cfg, /nfs: nfs-vm-persistent-data\n\texport \/quickOS\/vm-persistent-data\n\tpath \/mnt\/nfs\/nfs-vm-persistent-data\n\tserver 10.0.0.5\n\toptions vers=4,soft,timeo=30,retrans=3\n/);

  b.host.clearCalls();
  const second = b.script(NFS, [file]);
  ok(second);
  assert.equal(changingCalls(b.host.calls()), []);
  assert.match(second.stderr, /nothing changed/);
  assert.ok(fs.readFileSync(b.onHost('/etc/exports'), 'utf8').startsWith(OPERATOR));
});

test('upstream-shaped manifest: no_root_squash export, server on its own address; then a changed client list rewrites only the block', () => {
  const hv = upstreamShapedManifest();
  const { b, file } = withZfs(UPSTREAM_DISKS, hv, '192.168.50.10');
  ok(b.script(NFS, [file]));
  assert.match(b.host.run('exportfs', ['-v']).stdout, /\/quickOS\/vm-persistent-data\n\t\t192\.168\.50\.31\(sync,wdelay,hide,no_subtree_check,sec=sys,rw,secure,no_root_squash,no_all_squash\)/);
  hv.nfs.exports[1].clients.push('192.168.50.33');
  b.manifest(hv);
  b.host.clearCalls();
  ok(b.script(NFS, [file]));
  assert.equal(changingCalls(b.host.calls()), ['exportfs -ra']);
  assert.ok(fs.readFileSync(b.onHost('/etc/exports'), 'utf8').startsWith(OPERATOR));
  assert.match(b.host.run('showmount', ['-e', '192.168.50.10']).stdout, /\/quickOS\/portainer_stacks\s+192\.168\.50\.31,192\.168\.50\.33\n/);
});

test('dry-run changes nothing; a stopped server is started; the wait is bounded and a server that does not answer fails the step before any storage', () => {
  const { b, file } = withZfs();
  ok(b.script(NFS, [file, '--dry-run']));
  assert.equal(changingCalls(b.host.calls()), []);
  assert.is(fs.readFileSync(b.onHost('/etc/exports'), 'utf8'), OPERATOR);
  ok(b.script(NFS, [file]));
  // A stopped server is started, and nothing else changes.
  b.host.run('systemctl', ['stop', 'nfs-server.service']);
  b.host.clearCalls();
  ok(b.script(NFS, [file]));
  assert.equal(changingCalls(b.host.calls()), ['systemctl start nfs-server.service']);
  // A server that does not answer at its address is waited for, then the step fails.
  fs.writeFileSync(b.onHost('/etc/network/interfaces'), 'auto lo\n');
  b.host.run('pvesm', ['remove', 'nfs-portainer_stacks']);
  const env = { PHOENIX_NFS_WAIT_SECONDS: '1' };
  const started = Date.now();
  const failed = b.script(NFS, [file], env);
  assert.is(failed.code, 1);
  assert.ok(Date.now() - started < 20_000);
  assert.match(failed.stderr, /the NFS server 10\.0\.0\.5 does not export what \/etc\/exports says after 1 s \(showmount exited 1: clnt_create: RPC: Port mapper failure/);
  assert.not.match(fs.readFileSync(`${b.host.stateDir}/pve/storage.cfg`, 'utf8'), /nfs-portainer_stacks/);
});

test('bad manifests fail with the JSON pointer before any host call', () => {
  const b = bareNode(EXAMPLE_DISKS);
  const cases: Array<[(hv: any) => void, RegExp]> = [
    [(hv) => void (hv.nfs.exports[1].path = '/srv/elsewhere'), /at \/nfs\/exports\/1\/path: \/srv\/elsewhere lies in no dataset of zfs.datasets/],
    [(hv) => void (hv.nfs.exports[0].options[3] = 'root_sqash'), /\/nfs\/exports\/0\/options\/3/],
    [(hv) => void hv.nfs.exports.push({ ...hv.nfs.exports[0] }), /at \/nfs\/exports\/2\/path: \/quickOS\/vm-persistent-data is already exported at \/nfs\/exports\/0/],
  ];
  for (const [edit, expected] of cases) {
    const hv = exampleManifest();
    edit(hv);
    b.host.clearCalls();
    const r = b.script(NFS, [b.manifest(hv)]);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, expected);
    assert.equal(b.host.calls().map((c) => c.tool), []);
  }
  const same = exampleManifest();
  same.nfs.exports[1].path = '/quickOS/vm-persistent-data/sub/vm-persistent-data';
  assert.equal(validateNfs(same, 'f').map((i) => i.pointer), ['/nfs/exports/1']);
});

// ---------------------------------------------------------------- exports(5)

test('exports(5) grammar of the simulated exportfs: what the man page allows, and what exportfs refuses', () => {
  const good = parseExports('# comment\n/srv/a  host1(rw,sync,no_subtree_check) *.example.org(ro,subtree_check) 10.0.0.0/8(rw,no_root_squash,no_subtree_check) @trusted(ro,no_subtree_check)\n"/srv/with space" *(ro,fsid=1,anonuid=1000,sec=krb5p:sys,no_subtree_check)\n/srv/b -sync,no_subtree_check host2 host3(rw)\n', '/etc/exports');
  assert.equal(good.errors, []);
  assert.equal(good.warnings, []);
  assert.equal(good.exports.map((e) => `${e.path}|${e.client}|${e.options.join(',')}`), [
    '/srv/a|host1|rw,sync,no_subtree_check', '/srv/a|*.example.org|ro,subtree_check', '/srv/a|10.0.0.0/8|rw,no_root_squash,no_subtree_check', '/srv/a|@trusted|ro,no_subtree_check',
    '/srv/with space|*|ro,fsid=1,anonuid=1000,sec=krb5p:sys,no_subtree_check', '/srv/b|host2|sync,no_subtree_check', '/srv/b|host3|sync,no_subtree_check,rw',
  ]);
  // A blank before "(": the options go to the world, with exportfs's warning.
  const world = parseExports('/srv/a host1 (rw)\n', '/etc/exports');
  assert.equal(world.exports.map((e) => `${e.client}|${e.options.join(',')}`), ['host1|', '*|rw']);
  assert.equal(world.warnings.map((w) => w.split('\n')[0]), [
    'No options for /srv/a host1: suggest host1(sync) to avoid warning',
    `/etc/exports [1]: Neither 'subtree_check' or 'no_subtree_check' specified for export "host1:/srv/a".`,
    'No host name given with /srv/a (rw), suggest *(rw) to avoid warning',
    `/etc/exports [1]: Neither 'subtree_check' or 'no_subtree_check' specified for export "*:/srv/a".`,
  ]);
  // An unknown keyword stops the file there; what came before stays.
  const bad = parseExports('/srv/a h(rw)\n/srv/b h(rw,nosuch)\n/srv/c h(rw)\n', '/etc/exports');
  assert.equal(bad.errors, ['/etc/exports:2: unknown keyword "nosuch"\n']);
  assert.equal(bad.exports.map((e) => e.path), ['/srv/a']);
  assert.equal(parseExports('/srv/a h(rw\n', '/etc/exports').errors, ['/etc/exports:1: syntax error: bad option list']);
  assert.equal(parseExports('/srv/a h(anonuid=x)\n', '/etc/exports').errors, ['/etc/exports: 1: bad anonuid "anonuid=x"\n']);
});

test('Phoenix\'s export lines pass that grammar as written, odd paths escaped', () => {
  for (const hv of [exampleManifest(), upstreamShapedManifest()]) {
    const text = hv.nfs.exports.map(exportLine).join('\n');
    const parsed = parseExports(text, '/etc/exports');
    assert.equal(parsed.errors, []);
    assert.equal(parsed.warnings, []);
    assert.equal(parsed.exports.length, hv.nfs.exports.reduce((n: number, e: any) => n + e.clients.length, 0));
  }
  const odd = exportLine({ path: '/srv/my share#1', clients: ['*'], options: ['ro'] });
  assert.is(odd, '/srv/my\\040share\\0431 *(ro)');
  assert.equal(parseExports(odd, '/etc/exports').exports.map((e) => e.path), ['/srv/my share#1']);
  assert.is(exportsWord('/a-b_c.d'), '/a-b_c.d');
  assert.equal([...shownExports('Export list for x:\n/a 1.2.3.4\n/b/c (everyone)\n')], ['/a', '/b/c']);
});

test.run();
