// hypervisor_initial_setup (setup step 1) on the simulated PVE 8 node: the
// enterprise repositories disabled in the installer's files and the
// no-subscription ones in Phoenix's own; the host tools installed once; the
// time zone; the node never renamed; /etc/hosts kept byte for byte outside
// Phoenix's block; a second run and a dry-run that change nothing; the PVE 9
// (trixie, deb822) layout; a failed key download that leaves nothing behind.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { seedNodeFiles, saveNode } from '../simhost/hostsvc/node.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { disableEnterpriseList, disableEnterpriseSources, parseSourcesFile } from '../../lib/hypervisor/apt-sources.mts';
import { validateInitialSetup, hostsResolve, HOSTS_MARKERS } from '../../lib/hypervisor/initial-setup.mts';
import { treeSnapshot } from '../helpers/host-tree.mts';

const host = createSimHost();
const work = tmpDir('phoenix-initial-setup-');
const hostfs = path.join(host.stateDir, 'hostfs');
const onHost = (p: string) => path.join(hostfs, p);
const SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', 'hypervisor_initial_setup.mjs');

function writeManifests(edit: (hv: any) => void = () => {}): Record<string, string> {
  const etc = path.join(work, 'etc');
  fs.mkdirSync(etc, { recursive: true });
  const env: Record<string, string> = {};
  const names: Record<string, string> = {
    HYPERVISOR_CONFIG_FILE: 'phoenix_hypervisor_config.json',
    LXC_CONFIG_FILE: 'phoenix_lxc_configs.json',
    VM_CONFIG_FILE: 'phoenix_vm_configs.json',
    STACKS_CONFIG_FILE: 'phoenix_stacks_config.json',
    CERTIFICATE_MANIFEST_FILE: 'certificate-manifest.json',
  };
  for (const [key, name] of Object.entries(names)) {
    const doc = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', name), 'utf8'));
    if (key === 'HYPERVISOR_CONFIG_FILE') edit(doc);
    fs.writeFileSync(path.join(etc, name), `${JSON.stringify(doc, null, 2)}\n`);
    env[key] = path.join(etc, name);
  }
  return env;
}

let env: Record<string, string> = {};

function fresh(edit?: (hv: any) => void): void {
  host.reset();
  fs.rmSync(path.join(host.stateDir, 'host-node.json'), { force: true });
  seedNodeFiles(host.stateDir, hostfs);
  host.clearCalls();
  env = { ...host.env, ...writeManifests(edit), PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'), MAIN_LOG_FILE: '/var/log/phoenix_hypervisor.log' };
  delete env.PHOENIX_DRY_RUN;
  delete env.PHOENIX_HOST_ROOT;
}

function setup(...args: string[]) {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

const read = (p: string) => fs.readFileSync(onHost(p), 'utf8');
const shown = (calls: CallRecord[]) => calls.map((c) => `${c.tool} ${c.argv.join(' ')}`);
const changing = (calls: CallRecord[]) =>
  calls.filter(
    (c) =>
      c.tool === 'apt-get' ||
      c.tool === 'curl' ||
      (c.tool === 'timedatectl' && c.argv[0] === 'set-timezone') ||
      (c.tool === 'hostnamectl' && c.argv.length > 1) ||
      c.tool === 'hostnamectl' && c.argv[0] === 'set-hostname' ||
      (c.tool === 'systemctl' && !['is-active', 'is-enabled', 'show', 'status'].includes(c.argv[0] ?? '')),
  );

/** Every file under the host tree with its bytes and mtime. */
function snapshot(): Map<string, string> {
  return treeSnapshot(hostfs, { mtime: true });
}

function installed(name: string): boolean {
  return host.run('dpkg-query', ['-W', '--showformat=${Status}', name]).stdout === 'install ok installed';
}

// ---------------------------------------------------------------- pure parts

test('validateInitialSetup: unknown time zone and bad node name, with pointers', () => {
  const issues = validateInitialSetup({ domain_name: 'x.org', timezone: 'Mars/Olympus', network: { hostname: 'bad_name.example.org' } }, 'hv.json');
  assert.equal(issues.map((i) => i.pointer), ['/timezone', '/network/hostname']);
  assert.equal(validateInitialSetup({ domain_name: 'x.org', timezone: 'Etc/UTC', network: { hostname: 'pve.example.org' } }, 'hv.json'), []);
});

test('enterprise lines are commented, deb822 stanzas get Enabled: no, the rest stays', () => {
  const list = 'deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n# note\ndeb http://ftp.debian.org/debian bookworm main\n';
  assert.is(disableEnterpriseList(list), '# phoenix-disabled: deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n# note\ndeb http://ftp.debian.org/debian bookworm main\n');
  assert.is(disableEnterpriseList(disableEnterpriseList(list)), disableEnterpriseList(list));
  const sources = 'Types: deb\nURIs: https://enterprise.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-enterprise\nSigned-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n\nTypes: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\n';
  const off = disableEnterpriseSources(sources);
  assert.equal(parseSourcesFile(off, 'f').map((e) => e.enabled), [false, true]);
  assert.is(off.replace('Enabled: no\n', ''), sources);
  assert.is(disableEnterpriseSources(off), off);
  assert.is(disableEnterpriseSources(sources.replace('Suites: trixie\nComp', 'Enabled: yes\nSuites: trixie\nComp')), sources.replace('Suites: trixie\nComp', 'Enabled: no\nSuites: trixie\nComp'));
});

test('hostsResolve: only a name field counts, not comments or the address', () => {
  assert.ok(hostsResolve('10.0.0.5 pve.local pve\n', 'pve'));
  assert.not.ok(hostsResolve('10.0.0.5 pve.local\n# 10.0.0.5 pve\n', 'pve'));
});

// ---------------------------------------------------------------- on the simulated node

test('--help: usage on stdout, exit 0, nothing run', () => {
  fresh();
  const r = setup('--help');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /--upgrade/);
  assert.equal(host.calls(), []);
});

test('dry-run on a fresh node: changes planned, nothing changed', () => {
  fresh();
  const before = snapshot();
  const r = setup('--dry-run');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /change\(s\) planned/);
  assert.equal(shown(changing(host.calls())), []);
  assert.equal(snapshot(), before);
});

test('bookworm node: enterprise off, no-subscription on, tools installed, zone set, node not renamed; second run changes nothing', () => {
  fresh();
  const sourcesList = read('/etc/apt/sources.list');
  const r = setup();
  assert.is(r.code, 0, r.stderr);
  assert.is(read('/etc/apt/sources.list.d/pve-enterprise.list'), '# phoenix-disabled: deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n');
  assert.is(read('/etc/apt/sources.list.d/ceph.list'), '# phoenix-disabled: deb https://enterprise.proxmox.com/debian/ceph-quincy bookworm enterprise\n');
  const owned = read('/etc/apt/sources.list.d/phoenix-proxmox.sources');
  assert.match(owned, /URIs: http:\/\/download\.proxmox\.com\/debian\/pve\nSuites: bookworm\nComponents: pve-no-subscription\nSigned-By: \/etc\/apt\/trusted\.gpg\.d\/proxmox-release-bookworm\.gpg\n/);
  // The Ceph release the installer chose (quincy), not trixie's squid.
  assert.match(owned, /URIs: http:\/\/download\.proxmox\.com\/debian\/ceph-quincy\nSuites: bookworm\nComponents: no-subscription\n/);
  assert.not.match(owned, /trixie/);
  assert.is(read('/etc/apt/sources.list'), sourcesList);
  assert.match(read('/etc/logrotate.d/phoenix_hypervisor'), /^\/var\/log\/phoenix_hypervisor\.log \{\n[\s\S]*create 0640 root adm\n\}\n$/m);
  assert.match(read('/etc/apt/keyrings/smallstep.asc'), /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
  assert.match(read('/etc/apt/sources.list.d/smallstep.list'), /deb \[signed-by=\/etc\/apt\/keyrings\/smallstep\.asc\] https:\/\/packages\.smallstep\.com\/stable\/debian debs main/);
  for (const name of ['step-cli', 's-tui', 'samba', 'samba-common-bin', 'smbclient', 'libguestfs-tools', 'yq', 'chrony']) assert.ok(installed(name), name);
  const installs = host.calls('apt-get').filter((c) => c.argv[0] === 'install');
  assert.is(installs.length, 1, 'one apt-get install for every missing package');
  assert.not.ok(installs[0]!.argv.includes('chrony'), 'chrony was installed already');
  assert.is(host.run('timedatectl', ['show', '-p', 'Timezone', '--value']).stdout, 'Etc/UTC\n');
  // network.hostname says phoenix; the node is pve and stays pve.
  assert.match(r.stderr, /network\.hostname is 'phoenix' but this Proxmox VE node is named 'pve'; the node keeps its name/);
  assert.is(read('/etc/hostname'), 'pve\n');
  assert.is(host.run('hostnamectl', ['hostname']).stdout, 'pve\n');
  assert.ok(!fs.existsSync(onHost('/etc/hosts.phoenix-orig')), 'pve already resolves: /etc/hosts untouched');
  assert.ok(!fs.existsSync(onHost('/etc/network/interfaces.d/50-vmbr0.cfg')));

  host.clearCalls();
  const before = snapshot();
  const again = setup();
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stderr, /already matched; nothing changed/);
  assert.equal(shown(changing(host.calls())), []);
  assert.equal(snapshot(), before);

  // dist-upgrade only when asked for (planned here: the simulated apt-get has no dist-upgrade).
  const upgrade = setup('--upgrade', '--dry-run');
  assert.is(upgrade.code, 0, upgrade.stderr);
  assert.match(upgrade.stderr, /DRY-RUN: would run: apt-get update -q\n[^]*DRY-RUN: would run: apt-get dist-upgrade -y/);
  assert.equal(shown(changing(host.calls())), []);
});

test('a node name that does not resolve: Phoenix block with the host address; every other byte kept', () => {
  fresh();
  const original = '127.0.0.1\tlocalhost  \n# operator note\n10.0.0.99 other.example other\n\n::1 ip6-localhost';
  fs.writeFileSync(onHost('/etc/hosts'), original);
  assert.is(setup().code, 0);
  const text = read('/etc/hosts');
  assert.match(text, new RegExp(`${HOSTS_MARKERS.begin}\\n10\\.0\\.0\\.5 pve\\n${HOSTS_MARKERS.end}`));
  const outside = text.replace(/# BEGIN phoenix: node name\n[^]*?# END phoenix: node name\n?/, '');
  assert.is(outside.replace(/\n$/, ''), original.replace(/\n$/, ''));
  assert.is(read('/etc/hosts.phoenix-orig'), original);
  host.clearCalls();
  const before = snapshot();
  assert.is(setup().code, 0);
  assert.equal(snapshot(), before);
});

test('trixie node (PVE 9, deb822): Enabled: no on the enterprise stanzas, squid and the archive keyring', () => {
  fresh();
  fs.writeFileSync(onHost('/etc/os-release'), read('/etc/os-release').replace(/bookworm/g, 'trixie').replace('12', '13'));
  fs.rmSync(onHost('/etc/apt/sources.list.d/pve-enterprise.list'));
  fs.rmSync(onHost('/etc/apt/sources.list.d/ceph.list'));
  fs.mkdirSync(onHost('/usr/share/keyrings'), { recursive: true });
  fs.writeFileSync(onHost('/usr/share/keyrings/proxmox-archive-keyring.gpg'), Buffer.from([0x99, 1, 2]));
  const enterprise = 'Types: deb\nURIs: https://enterprise.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-enterprise\nSigned-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n';
  fs.writeFileSync(onHost('/etc/apt/sources.list.d/pve-enterprise.sources'), enterprise);
  fs.writeFileSync(onHost('/etc/apt/sources.list.d/ceph.sources'), enterprise.replace('/pve', '/ceph-squid').replace('pve-enterprise', 'enterprise'));
  const r = setup();
  assert.is(r.code, 0, r.stderr);
  assert.is(read('/etc/apt/sources.list.d/pve-enterprise.sources'), `${enterprise}Enabled: no\n`);
  const owned = read('/etc/apt/sources.list.d/phoenix-proxmox.sources');
  assert.match(owned, /debian\/pve\nSuites: trixie\nComponents: pve-no-subscription\nSigned-By: \/usr\/share\/keyrings\/proxmox-archive-keyring\.gpg/);
  assert.match(owned, /debian\/ceph-squid\nSuites: trixie\nComponents: no-subscription/);
});

test('no-subscription already enabled by the operator: Phoenix adds no second copy', () => {
  fresh();
  fs.writeFileSync(onHost('/etc/apt/sources.list.d/pve-no-sub.list'), 'deb http://download.proxmox.com/debian/pve bookworm pve-no-subscription\n');
  assert.is(setup().code, 0);
  const owned = read('/etc/apt/sources.list.d/phoenix-proxmox.sources');
  assert.not.match(owned, /pve-no-subscription/);
  assert.match(owned, /ceph-quincy/);
});

test('the Smallstep key download fails: fatal, no key and no partial file left', () => {
  fresh();
  host.injectFailure({ tool: 'curl', exit: 22, stderr: 'curl: (22) The requested URL returned error: 503\n' });
  const r = setup();
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /downloading https:\/\/packages\.smallstep\.com\/keys\/apt\/repo-signing-key\.gpg failed \(curl exit 22: curl: \(22\) The requested URL returned error: 503\)/);
  assert.equal(fs.readdirSync(onHost('/etc/apt/keyrings')), []);
  assert.not.ok(installed('step-cli'));
});

test('a key download cut half way: nothing kept under the key name, the next run fetches it whole', () => {
  fresh();
  saveNode(host.stateDir, { curl_partial: ['smallstep'] });
  assert.is(setup().code, 1);
  assert.equal(fs.readdirSync(onHost('/etc/apt/keyrings')), []);
  saveNode(host.stateDir, {});
  assert.is(setup().code, 0);
  assert.match(read('/etc/apt/keyrings/smallstep.asc'), /-----END PGP PUBLIC KEY BLOCK-----\n$/);
});

test.run();
