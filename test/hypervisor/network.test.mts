// Setup step 2, the host network (hypervisor_feature_setup_macvlan): the
// interfaces(5) parser on good and bad files, the manifest checks, and the
// ported script end to end on the simulated host (test/simhost: `ip`,
// `ifreload` and <state>/hostfs/etc/network/interfaces): generation from the
// example and the upstream-shaped manifest, refusals that change nothing, the
// lockout rollback, a second run without ifreload, a dry-run, and the
// operator's own stanzas kept byte for byte. When the real ifupdown2 parser is
// extracted under .tools/ifupdown2 (see test/hypervisor/tools/ifupdown2-check.sh),
// the generated file is checked by it too.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { clearConfigCache } from '../../lib/config/load.mts';
import { parseInterfaces, withoutInterfaces } from '../../lib/hypervisor/interfaces-file.mts';
import { networkPlan, renderBlock, validateNetwork } from '../../lib/hypervisor/network-plan.mts';

const host = createSimHost();
const work = tmpDir('phoenix-network-');
const etcDir = path.join(work, 'etc');
const ifFile = path.join(host.stateDir, 'hostfs', 'etc/network/interfaces');
const stateFile = path.join(host.stateDir, 'host-network.json');
const CHECKER = path.join(PROJECT_ROOT, 'test/hypervisor/tools/ifupdown2-check.sh');
const TOOL_TREE = path.join(PROJECT_ROOT, '.tools/ifupdown2');

function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

const example = () => readJson(path.join(PROJECT_ROOT, 'etc/phoenix_hypervisor_config.json'));
/**
 * A network section in the bash toolkit's shape (its keys, values of our
 * own): no bridge_ports (the bash hard-coded the NIC), the two VLAN tags, an
 * internal bridge without its gateway, a management address the fresh node
 * does not have yet.
 */
const UPSTREAM_SHAPED_NETWORK = {
  external_registry_url: 'docker.io/example',
  portainer_server_ip: '10.0.0.21',
  portainer_server_port: 9443,
  portainer_agent_port: 9001,
  interfaces: { name: 'vmbr0', address: '10.0.0.13/24', gateway: '10.0.0.1', dns_nameservers: ['10.0.0.13', '9.9.9.9'] },
  default_subnet: '10.0.0.0/24',
  nfs_server: '10.0.0.13',
  fallback_dns: '9.9.9.9',
  public_bridge: 'vmbr0',
  macvlan_vlan_tag: 10,
  public_vlan_tag: 20,
  internal_bridge: { name: 'vmbr100', subnet: '172.16.100.0/24' },
};

/** The example manifests, the hypervisor config's `network` changed by `edit`; returns the env. */
function manifests(edit: (hv: any) => void = () => {}): Record<string, string> {
  fs.mkdirSync(etcDir, { recursive: true });
  for (const name of ['phoenix_lxc_configs.json', 'phoenix_vm_configs.json', 'phoenix_stacks_config.json', 'certificate-manifest.json']) {
    fs.copyFileSync(path.join(PROJECT_ROOT, 'etc', name), path.join(etcDir, name));
  }
  const hv = example();
  edit(hv);
  fs.writeFileSync(path.join(etcDir, 'phoenix_hypervisor_config.json'), `${JSON.stringify(hv, null, 2)}\n`);
  clearConfigCache();
  const env: Record<string, string> = {
    ...host.env,
    HYPERVISOR_CONFIG_FILE: path.join(etcDir, 'phoenix_hypervisor_config.json'),
    LXC_CONFIG_FILE: path.join(etcDir, 'phoenix_lxc_configs.json'),
    VM_CONFIG_FILE: path.join(etcDir, 'phoenix_vm_configs.json'),
    STACKS_CONFIG_FILE: path.join(etcDir, 'phoenix_stacks_config.json'),
    CERTIFICATE_MANIFEST_FILE: path.join(etcDir, 'certificate-manifest.json'),
    PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
    MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  };
  delete env.PHOENIX_DRY_RUN;
  delete env.PHOENIX_HOST_ROOT;
  return env;
}

function script(env: Record<string, string>, args: string[] = []): { code: number; out: string } {
  const file = path.join(PROJECT_ROOT, 'scripts/hypervisor_setup/hypervisor_feature_setup_macvlan.mjs');
  const r = spawnSync(process.execPath, [file, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 128, out: `${r.stdout}${r.stderr}` };
}

/** A fresh node: state and files gone; the first `ip` call writes the installer's interfaces file. */
function fresh(): void {
  host.reset();
  host.run('ip', ['-j', 'link', 'show']);
  host.clearCalls();
}

const ifreloads = () => host.calls('ifreload').length;
const ipJson = (args: string[]) => JSON.parse(host.run('ip', ['-j', ...args]).stdout);
const addressesOf = (dev: string): string[] => ipJson(['addr', 'show', 'dev', dev])[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);

function setFault(fault: string[]): void {
  const state = readJson(stateFile);
  state.faults = { ifreload: fault };
  fs.writeFileSync(stateFile, JSON.stringify(state));
}

// ---------------------------------------------------------------- the parser (interfaces(5) / ifupdown2 grammar)

const MAN_GOOD = `# from interfaces(5)
auto lo eth0
allow-hotplug eth1

iface lo inet loopback

source /etc/network/interfaces.d/bridges

iface eth0 inet static
    address 192.168.1.1/24
    up flush-mail

iface eth0 inet6 static
    address fec0:0:0:1::2/64

iface eth1 inet dhcp
iface eth2 inet \\
    static
\taddress 10.1.1.1/24
`;

test('parser: the man page example parses, with families, options and a continuation', () => {
  const parsed = parseInterfaces(MAN_GOOD);
  assert.equal(parsed.errors, []);
  const eth0 = parsed.stanzas.filter((s) => s.name === 'eth0');
  assert.equal(eth0.map((s) => s.family), ['inet', 'inet6']);
  assert.equal(eth0[0]!.options.map((o) => `${o.key}=${o.value}`), ['address=192.168.1.1/24', 'up=flush-mail']);
  assert.equal(parsed.stanzas.find((s) => s.kind === 'allow')!.keyword, 'allow-hotplug');
  assert.equal(parsed.stanzas.find((s) => s.name === 'eth2')!.options[0]!.value, '10.1.1.1/24');
});

test('parser: bad files give ifupdown2-like errors with their lines', () => {
  const cases: Array<[string, RegExp]> = [
    ['address 10.0.0.1/24\n', /line 1: error processing line 'address/],
    ['iface eth0 inet static\n\taddress\n', /line 2: iface eth0: invalid syntax 'address'/],
    ['iface eth0 inet bogus\n', /unsupported address method 'bogus'/],
    ['iface eth0 ipx static\n', /unsupported address family 'ipx'/],
    ['auto\n', /invalid auto line/],
    ['mapping eth0\n\tscript /usr/local/sbin/map-scheme\n\tmap HOME eth0-home\n', /'mapping' stanzas are not understood by ifupdown2/],
    ['source-directory /etc/network/interfaces.d\n', /'source-directory' stanzas are not understood/],
    ['iface eth0 inet manual\n\niface eth0 inet manual\n', /line 3: duplicate interface eth0 \(inet\): already defined at line 1/],
    ['iface averyveryverylongname0 inet manual\n', /interface name too long/],
  ];
  for (const [text, expected] of cases) {
    const messages = parseInterfaces(text).errors.map((e) => `line ${e.line}: ${e.message}`).join('\n');
    assert.match(messages, expected, text);
  }
});

test('withoutInterfaces takes only the named stanzas and auto words, keeping every other byte', () => {
  const text = 'auto lo vmbr0 \nauto vmbr0\niface lo inet loopback\n\niface vmbr0 inet static\n\taddress 1.2.3.4/24\n\n# mine  \niface eno2 inet manual\r\n';
  const { text: out, taken } = withoutInterfaces(text, new Set(['vmbr0']));
  assert.equal(out, 'auto lo\niface lo inet loopback\n\n# mine  \niface eno2 inet manual\r\n');
  assert.equal(taken.length, 3);
});

// ---------------------------------------------------------------- the manifest checks

test('validateNetwork names the JSON paths of bad values', () => {
  const hv = example();
  hv.network.interfaces.gateway = '192.168.1.1';
  hv.network.macvlan_vlan_tag = 20;
  hv.network.public_vlan_tag = 20;
  hv.network.internal_bridge = { name: 'vmbr0', subnet: '10.0.0.0/16', gateway: '10.0.255.255' };
  const pointers = validateNetwork(hv, 'hv.json').map((i) => i.pointer).sort();
  assert.equal(pointers, ['/network/interfaces/gateway', '/network/internal_bridge/gateway', '/network/internal_bridge/name', '/network/internal_bridge/subnet', '/network/public_vlan_tag']);
  assert.equal(validateNetwork(example(), 'hv.json'), []);
});

test('the internal bridge gets the first host address with the subnet\'s own prefix; no host-wide forwarding off', () => {
  const hv = example();
  hv.network.internal_bridge = { name: 'vmbr100', subnet: '172.16.96.0/20' };
  const lines = renderBlock(networkPlan(hv)!, ['eno1'], true).join('\n');
  assert.match(lines, /\taddress 172\.16\.96\.1\/20\n/);
  assert.match(lines, /POSTROUTING -s 172\.16\.96\.0\/20 -o vmbr0 -j MASQUERADE/);
  assert.not.match(lines, /ip_forward=0|echo 0/);
  assert.not.match(lines, /enp6s0|enp13s0|wlp7s0/);
  // Each post-up rule is checked (-C) before it is added, so a reload never stacks copies.
  for (const line of lines.split('\n').filter((l) => /post-up iptables/.test(l))) assert.match(line, / -C .* \|\| iptables /);
});

// ---------------------------------------------------------------- the script on the simulated host

test('example manifest on a fresh node: block written, NIC and bridge taken over, applied; second run changes nothing', () => {
  fresh();
  const before = fs.readFileSync(ifFile);
  const env = manifests();
  const first = script(env);
  assert.is(first.code, 0, first.out);
  const text = fs.readFileSync(ifFile, 'utf8');
  assert.equal(parseInterfaces(text).errors, []);
  assert.ok(fs.readFileSync(`${ifFile}.phoenix-orig`).equals(before), 'the original is kept once');
  const block = text.slice(text.indexOf('# BEGIN phoenix: host network'));
  for (const line of ['iface eno1 inet manual', 'auto vmbr0', '\tbridge-ports eno1', '\tbridge-vlan-aware yes', 'auto vmbr0.10', 'auto vmbr0.20', 'auto vmbr100', '\taddress 172.16.100.1/24']) {
    assert.ok(block.includes(`${line}\n`), line);
  }
  // Outside the block: the installer's header comments, lo and the source line, once each.
  const outside = text.slice(0, text.indexOf('# BEGIN phoenix: host network'));
  assert.ok(outside.startsWith('# network interface settings; autogenerated\n'));
  assert.match(outside, /auto lo\niface lo inet loopback\n/);
  assert.not.match(outside, /vmbr0|eno1/);
  assert.is(text.split(/^source \/etc\/network\/interfaces\.d\/\*$/m).length, 2, 'one source line');
  assert.is(ifreloads(), 1);
  assert.equal(addressesOf('vmbr0'), ['10.0.0.5/24']);
  assert.equal(addressesOf('vmbr100'), ['172.16.100.1/24']);
  assert.is(ipJson(['link', 'show', 'dev', 'vmbr0.10'])[0].link, 'vmbr0');
  assert.equal(ipJson(['route', 'show', 'default']), [{ dst: 'default', gateway: '10.0.0.1', dev: 'vmbr0', flags: [] }]);

  host.clearCalls();
  const mtime = fs.statSync(ifFile).mtimeMs;
  const second = script(env);
  assert.is(second.code, 0, second.out);
  assert.match(second.out, /nothing changed/);
  assert.is(ifreloads(), 0, 'no ifreload on a second run');
  assert.is(fs.statSync(ifFile).mtimeMs, mtime);
});

test('real ifupdown2 parser accepts the generated file and rejects a bad one (when extracted)', () => {
  if (!fs.existsSync(path.join(TOOL_TREE, 'usr/share/ifupdown2/ifupdown/networkinterfaces.py'))) {
    console.log(`  skipped: the ifupdown2 tree is not extracted under ${TOOL_TREE} (see test/hypervisor/tools/ifupdown2-check.sh)`);
    return;
  }
  fresh();
  assert.is(script(manifests()).code, 0);
  const good = spawnSync(CHECKER, [ifFile], { encoding: 'utf8', timeout: 60_000 });
  assert.is(good.status, 0, `${good.stdout}${good.stderr}`);
  const bad = path.join(work, 'bad.interfaces');
  fs.writeFileSync(bad, 'iface eth0 inet static\n\tadress 10.0.0.1/24\n\tbridge-port eno1\n');
  const refused = spawnSync(CHECKER, [bad], { encoding: 'utf8', timeout: 60_000 });
  assert.is(refused.status, 1, `${refused.stdout}${refused.stderr}`);
  assert.match(refused.stderr, /unsupported keyword \(adress\)/);
});

test('upstream-shaped manifest (no bridge_ports): the NIC is taken from the bridge-ports in the file', () => {
  fresh();
  const upstream = structuredClone(UPSTREAM_SHAPED_NETWORK) as any;
  assert.is(upstream.interfaces.bridge_ports, undefined);
  const run = script(manifests((hv) => { hv.network = upstream; }));
  assert.is(run.code, 0, run.out);
  const text = fs.readFileSync(ifFile, 'utf8');
  assert.match(text, /\tbridge-ports eno1\n/);
  assert.match(text, /\taddress 10\.0\.0\.13\/24\n/);
  assert.match(run.out, /the management address of vmbr0 changes from 10\.0\.0\.5\/24 to 10\.0\.0\.13\/24/);
  assert.equal(addressesOf('vmbr0'), ['10.0.0.13/24']);
  // Running again: the bridge-ports now come from Phoenix's own block; nothing changes.
  host.clearCalls();
  const again = script(manifests((hv) => { hv.network = upstream; }));
  assert.is(again.code, 0, again.out);
  assert.is(ifreloads(), 0);
});

test('no bridge_ports and none in the file: refused with the JSON path', () => {
  fresh();
  fs.writeFileSync(ifFile, 'auto lo\niface lo inet loopback\n');
  const run = script(manifests((hv) => { delete hv.network.interfaces.bridge_ports; }));
  assert.is.not(run.code, 0);
  assert.match(run.out, /\/network\/interfaces\/bridge_ports/);
  assert.is(fs.readFileSync(ifFile, 'utf8'), 'auto lo\niface lo inet loopback\n');
});

test('a NIC the host does not have is refused with the JSON path; nothing changes, no ifreload', () => {
  fresh();
  const before = fs.readFileSync(ifFile);
  const run = script(manifests((hv) => { hv.network.interfaces.bridge_ports = 'enp6s0'; }));
  assert.is(run.code, 1, run.out);
  assert.match(run.out, /at \/network\/interfaces\/bridge_ports: no network interface enp6s0 on this host/);
  assert.ok(fs.readFileSync(ifFile).equals(before));
  assert.not.ok(fs.existsSync(`${ifFile}.phoenix-orig`));
  assert.is(ifreloads(), 0);
});

test('a candidate file that would not parse is refused before ifreload; nothing changes', () => {
  fresh();
  fs.appendFileSync(ifFile, '\niface eno2 inet bogus\n');
  const before = fs.readFileSync(ifFile);
  const run = script(manifests());
  assert.is(run.code, 1, run.out);
  assert.match(run.out, /would not parse cleanly; nothing was changed/);
  assert.match(run.out, /unsupported address method 'bogus'/);
  assert.ok(fs.readFileSync(ifFile).equals(before));
  assert.is(ifreloads(), 0);
});

test('a Phoenix interface also defined in a sourced file (interfaces.d) is refused; nothing changes', () => {
  fresh();
  const dropIn = path.join(path.dirname(ifFile), 'interfaces.d', '50-vmbr0.cfg');
  fs.mkdirSync(path.dirname(dropIn), { recursive: true });
  fs.writeFileSync(dropIn, 'iface vmbr0 inet static\n\tdns-nameservers 127.0.0.1\n');
  const before = fs.readFileSync(ifFile);
  const run = script(manifests());
  assert.is(run.code, 1, run.out);
  assert.match(run.out, /\/etc\/network\/interfaces\.d\/50-vmbr0\.cfg: line 1: vmbr0 is defined here and in Phoenix's block/);
  assert.ok(fs.readFileSync(ifFile).equals(before));
  assert.is(ifreloads(), 0);
});

test('lockout: the reload loses the management address -> old file back, second ifreload, error exit', () => {
  fresh();
  const before = fs.readFileSync(ifFile);
  setFault(['lose-address']);
  const run = script(manifests());
  assert.is(run.code, 1, run.out);
  assert.match(run.out, /the management address 10\.0\.0\.5\/24 is not on vmbr0 any more/);
  assert.match(run.out, /no default route \(it was via 10\.0\.0\.1 dev vmbr0\)/);
  assert.match(run.out, /the previous \/etc\/network\/interfaces is back and was reloaded/);
  assert.ok(fs.readFileSync(ifFile).equals(before), 'the file is byte-identical to before');
  assert.is(ifreloads(), 2);
  assert.equal(addressesOf('vmbr0'), ['10.0.0.5/24']);
});

test('ifreload failing on the new file: old file back and reloaded, error exit', () => {
  fresh();
  const before = fs.readFileSync(ifFile);
  setFault(['fail']);
  const run = script(manifests());
  assert.is(run.code, 1, run.out);
  assert.match(run.out, /ifreload -a failed \(exit 1\).*simulated failure.*the previous \/etc\/network\/interfaces is back/s, run.out);
  assert.ok(fs.readFileSync(ifFile).equals(before));
  assert.is(ifreloads(), 2);
});

test('dry-run prints the diff, writes nothing, runs no ifreload', () => {
  fresh();
  const before = fs.readFileSync(ifFile);
  const run = script(manifests(), ['--dry-run']);
  assert.is(run.code, 0, run.out);
  assert.match(run.out, /^--- a\/etc\/network\/interfaces$/m);
  assert.match(run.out, /^\+auto vmbr0\.10$/m);
  assert.match(run.out, /^\+# BEGIN phoenix: host network$/m);
  assert.match(run.out, /DRY-RUN: 1 change\(s\) planned/);
  assert.ok(fs.readFileSync(ifFile).equals(before));
  assert.not.ok(fs.existsSync(`${ifFile}.phoenix-orig`));
  assert.is(ifreloads(), 0);
});

test('the operator\'s stanzas are kept byte for byte; defining a Phoenix interface outside the block is refused', () => {
  fresh();
  const mine = '\n# operator: storage NIC  \r\nauto eno2\r\niface eno2 inet static\r\n\taddress 192.168.50.2/24\r\n';
  fs.appendFileSync(ifFile, mine);
  const env = manifests();
  assert.is(script(env).code, 0);
  const text = fs.readFileSync(ifFile, 'latin1');
  assert.ok(text.includes(mine.slice(1)), 'operator lines intact');
  assert.equal(addressesOf('eno2'), ['192.168.50.2/24']);
  // Now the block exists: a vmbr100 stanza outside it is a clash, refused before any change.
  fs.appendFileSync(ifFile, '\nauto vmbr100\niface vmbr100 inet manual\n');
  const clashed = fs.readFileSync(ifFile);
  host.clearCalls();
  const run = script(env);
  assert.is(run.code, 1, run.out);
  assert.match(run.out, /vmbr100 is defined outside Phoenix's block as well as inside it/);
  assert.ok(fs.readFileSync(ifFile).equals(clashed));
  assert.is(ifreloads(), 0);
});

test('file already right but the running network lacks an interface (a run stopped before ifreload): reloaded once', () => {
  fresh();
  const env = manifests();
  assert.is(script(env).code, 0);
  const state = readJson(stateFile);
  state.links = state.links.filter((link: any) => link.name !== 'vmbr100');
  fs.writeFileSync(stateFile, JSON.stringify(state));
  const before = fs.readFileSync(ifFile);
  host.clearCalls();
  const run = script(env);
  assert.is(run.code, 0, run.out);
  assert.match(run.out, /applied \/etc\/network\/interfaces with ifreload -a \(the running network lacked: vmbr100\)/);
  assert.is(ifreloads(), 1);
  assert.ok(fs.readFileSync(ifFile).equals(before));
  assert.equal(addressesOf('vmbr100'), ['172.16.100.1/24']);
});

test('--help and a usage error', () => {
  const help = script(manifests(), ['--help']);
  assert.is(help.code, 0, help.out);
  assert.match(help.out, /Usage: hypervisor_feature_setup_macvlan\.sh \[HYPERVISOR_CONFIG_FILE\] \[--dry-run\]/);
  assert.is(script(manifests(), ['--bogus']).code, 1);
});

test.run();
