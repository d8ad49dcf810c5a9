// hypervisor_feature_provision_shared_resources: the shared_zfs_volumes of
// the bash's shape (an object keyed by name) allocated once, the shared
// directories and the empty ca_password.txt created only when missing; the
// second run; dry-run; the array shape and bad entries refused with their
// JSON pointer before any host call.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { bareNode, changingCalls, EXAMPLE_DISKS, exampleManifest, UPSTREAM_DISKS, upstreamShapedManifest } from './storage-fixtures.mts';
import { validateSharedResources } from '../../lib/hypervisor/shared-resources.mts';

const ZFS = 'hypervisor_feature_setup_zfs';
const SHARED = 'hypervisor_feature_provision_shared_resources';
const ok = (r: { code: number; stderr: string }) => assert.is(r.code, 0, r.stderr.slice(-3000));
const BASE = '/usr/local/phoenix_hypervisor';

test('upstream-shaped manifest: volumes allocated once, directories and the password placeholder only when missing', () => {
  const b = bareNode(UPSTREAM_DISKS, '192.168.50.10');
  const file = b.manifest(upstreamShapedManifest());
  ok(b.script(ZFS, ['--config', file]));
  b.host.clearCalls();
  const dry = b.script(SHARED, [file, '--dry-run']);
  ok(dry);
  assert.match(dry.stderr, /DRY-RUN: would run: pvesm alloc quickOS-vm-disks 99999 vm-99999-disk-certs-cache 2G --format raw/);
  assert.equal(changingCalls(b.host.calls()), []);
  assert.not.ok(fs.existsSync(b.onHost(`${BASE}/persistent-storage`)));

  // A placeholder the operator already filled keeps its content and mode.
  ok(b.script(SHARED, [file]));
  assert.equal(changingCalls(b.host.calls()), ['pvesm alloc quickOS-vm-disks 99999 vm-99999-disk-certs-cache 2G --format raw', 'pvesm alloc quickOS-vm-disks 99999 vm-99999-disk-scratch 8G --format raw']);
  assert.is(b.host.runtime().zfs.datasets['quickOS/vm-disks/vm-99999-disk-scratch']?.volsize ?? b.host.runtime().zfs.datasets['quickOS/vm-99999-disk-scratch']?.volsize, 8 * 1024 ** 3);
  const password = b.onHost(`${BASE}/persistent-storage/ssl/ca_password.txt`);
  assert.is(fs.readFileSync(password, 'utf8'), '');
  assert.is(fs.statSync(password).mode & 0o777, 0o600);
  assert.ok(fs.statSync(b.onHost('/mnt/pve/quickOS/shared-prod-data/logs/nginx')).isDirectory());
  fs.writeFileSync(password, 'kept');
  fs.chmodSync(password, 0o640);

  b.host.clearCalls();
  const second = b.script(SHARED, [file]);
  ok(second);
  assert.equal(changingCalls(b.host.calls()), []);
  assert.match(second.stderr, /nothing changed/);
  assert.is(fs.readFileSync(password, 'utf8'), 'kept');
  assert.is(fs.statSync(password).mode & 0o777, 0o640);
});

test('example manifest (no shared_zfs_volumes): only the directories', () => {
  const b = bareNode(EXAMPLE_DISKS);
  const file = b.manifest(exampleManifest());
  const r = b.script(SHARED, [file]);
  ok(r);
  assert.equal(changingCalls(b.host.calls()), []);
  assert.match(r.stderr, /created \/usr\/local\/phoenix_hypervisor\/persistent-storage\/ssl; created \/mnt\/pve\/quickOS\/shared-prod-data\/logs\/nginx; created .*ca_password\.txt \(empty, 0600\)/);
});

test('the array shape and bad entries are refused with their JSON pointer before any host call', () => {
  const b = bareNode(EXAMPLE_DISKS);
  const cases: Array<[unknown, RegExp]> = [
    [[{ pool: 'quickOS-vm-disks', size_gb: 2 }], /\/shared_zfs_volumes/],
    [{ certs: { pool: 'quickOS-vm-disks', size_gb: 0 } }, /\/shared_zfs_volumes\/certs\/size_gb/],
    [{ certs: { size_gb: 2 } }, /\/shared_zfs_volumes\/certs/],
  ];
  for (const [volumes, expected] of cases) {
    const hv = exampleManifest();
    hv.shared_zfs_volumes = volumes;
    b.host.clearCalls();
    const r = b.script(SHARED, [b.manifest(hv)]);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, expected);
    assert.equal(b.host.calls().map((c) => c.tool), []);
  }
  assert.equal(validateSharedResources({ ...exampleManifest(), shared_zfs_volumes: { 'a/b': { pool: 'x', size_gb: 1.5 } } }, 'f').map((i) => i.pointer), ['/shared_zfs_volumes/a~1b', '/shared_zfs_volumes/a~1b/size_gb']);
});

test.run();
