// The simulated exportfs against Debian 12's own: `exportfs -ra` of
// nfs-kernel-server, unpacked (not installed: its postinst starts services)
// in .tools/nfs-kernel-server by `make tools`, run as root in a private
// mount namespace where /etc (a copy holding the file under test) and
// /var/lib are private, so this machine's /etc/exports and NFS state are
// never touched; it parses and checks the file without a kernel NFS server.
// Phoenix's block (both manifest shapes, with the operator's lines around
// it) must pass it with no message, and for the grammar cases of exports(5)
// the simulator must print what it prints and exit as it exits.
//
// Without the unpacked binary, root or unshare the tests are not registered.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { exportLine } from '../../lib/hypervisor/nfs.mts';
import { exampleManifest, upstreamShapedManifest } from './storage-fixtures.mts';

const EXPORTFS = process.env.PHOENIX_REAL_EXPORTFS ?? path.join(PROJECT_ROOT, '.tools/nfs-kernel-server/usr/sbin/exportfs');

// Inside a new mount namespace: private copies of /etc (with the exports file) and /var/lib.
const NAMESPACE_SCRIPT = `
set -e
mount --make-rprivate /
t=$(mktemp -d); mount -t tmpfs none "$t"
mkdir "$t/etc" "$t/varlib"; cp -a /etc/. "$t/etc/"; cp "$1" "$t/etc/exports"
mount --bind "$t/etc" /etc
mount --bind "$t/varlib" /var/lib; mkdir -p /var/lib/nfs
"$0" -ra
`;

function usable(): string | undefined {
  if (!fs.existsSync(EXPORTFS)) return `${EXPORTFS} is not unpacked (make tools)`;
  if (process.getuid?.() !== 0) return 'not root';
  const probe = spawnSync('unshare', ['-m', 'true'], { timeout: 10_000 });
  if (probe.status !== 0) return 'unshare -m is not allowed here';
  return undefined;
}

const work = tmpDir('phoenix-exportfs-');
const host = createSimHost();
host.run('apt-get', ['install', '-y', '-q', 'nfs-kernel-server']);
const hostfs = path.join(host.stateDir, 'hostfs');

/** The same exports file through the real exportfs and the simulated one. */
function both(text: string, dirs: string[]): { real: { code: number; stderr: string }; sim: { code: number; stderr: string } } {
  for (const d of dirs) {
    fs.mkdirSync(d, { recursive: true });
    fs.mkdirSync(path.join(hostfs, d), { recursive: true });
  }
  const file = path.join(work, 'exports');
  fs.writeFileSync(file, text);
  const r = spawnSync('unshare', ['-m', 'bash', '-c', NAMESPACE_SCRIPT, EXPORTFS, file], { encoding: 'utf8', timeout: 30_000 });
  fs.writeFileSync(path.join(hostfs, 'etc/exports'), text);
  const s = host.run('exportfs', ['-ra']);
  return { real: { code: r.status ?? 128, stderr: r.stderr }, sim: { code: s.code, stderr: s.stderr } };
}

const skip = usable();
if (skip !== undefined) {
  console.log(`nfs-real-exportfs: not run: ${skip}`);
} else {
  test('Phoenix\'s block and the operator\'s lines pass Debian\'s exportfs without a message', () => {
    for (const hv of [exampleManifest(), upstreamShapedManifest()]) {
      const exports = hv.nfs.exports.map((e: any) => ({ ...e, path: path.join(work, e.path) }));
      const operator = `# kept by hand\n${work}/srv/media 192.168.1.0/24(ro,sync,no_subtree_check)\n`;
      const text = `${operator}# BEGIN phoenix: nfs.exports\n${exports.map(exportLine).join('\n')}\n# END phoenix: nfs.exports\n`;
      const { real, sim } = both(text, [...exports.map((e: any) => e.path), `${work}/srv/media`]);
      assert.equal(real, { code: 0, stderr: '' });
      assert.equal(sim, real);
    }
  });

  test('the exports(5) cases: the simulated exportfs says and exits what Debian\'s says and exits', () => {
    const d = `${work}/srv/a`;
    const cases = [
      `${d} 10.1.1.1(rw,sync,no_subtree_check) 10.0.0.0/8(ro,no_root_squash,no_subtree_check) *(ro,fsid=1,anonuid=1000,sec=krb5p:sys,no_subtree_check)\n`,
      `${d} 10.1.1.1 (rw)\n`,
      `${d} 10.1.1.1(rw,no_subtree_check)\n${d} 10.1.1.2(rw,nosuch)\n${d} 10.1.1.3(rw)\n`,
      `${d} 10.1.1.1(rw\n`,
      `${d} 10.1.1.1(anonuid=x)\n`,
      `${d} -sync,no_subtree_check 10.1.1.1 10.1.1.2(rw)\n`,
      `"${work}/srv/with space" *(ro,no_subtree_check)\n${work}/srv/with\\040space 10.1.1.1(ro,no_subtree_check)\n`,
    ];
    for (const text of cases) {
      const { real, sim } = both(text, [d, `${work}/srv/with space`]);
      assert.equal(sim, real, text);
    }
  });
}

test.run();
