// The firewall generator: rule lines as pve-firewall parses them, the files
// from the example manifests (goldens), and the script on the simulated host
// (ownership, stale files, dry-run, idempotency, compile, restart).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { isMutating, transcript } from '../helpers/calls.mts';
import { assertGolden } from '../helpers/golden.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { clearConfigCache, loadConfig, MANIFEST_FILES, ManifestError, type ConfigPaths } from '../../lib/config/load.mts';
import { applyFirewall, applyGuestFirewall, parseCompileOutput } from '../../lib/firewall/apply.mts';
import { checkRule, renderRule, type RuleContext, type RuleSpec } from '../../lib/firewall/rules.mts';
import { keptSections, MARKER, ownership, planFirewall } from '../../lib/firewall/files.mts';
import { configureLog } from '../../lib/core/log.mts';
import { setProcessContext } from '../../lib/core/context.mts';
import { PhoenixError } from '../../lib/core/errors.mts';

const script = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', 'hypervisor_feature_setup_firewall.mjs');
const host = createSimHost();
const work = tmpDir();
const pveDir = path.join(host.stateDir, 'pve');
const fwDir = path.join(pveDir, 'firewall');
const hostFw = path.join(pveDir, 'nodes', 'pve', 'host.fw');
const baseEnv: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: PROJECT_ROOT,
  MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
};
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_RECORD']) delete baseEnv[key];
// In-process calls (applyFirewall) reach the simulated tools too.
Object.assign(process.env, baseEnv);
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE']) delete process.env[key];

let logged: string[] = [];
configureLog({ file: undefined, debug: false, color: false, write: (line) => void logged.push(line) });

const EXAMPLE_IDS = { lxc: ['900', '101', '102', '103'], qemu: ['9000', '1001', '1002'] };

function runScript(args: string[] = [], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [script, ...args], { env: { ...baseEnv, ...env }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The example manifests copied to a fresh directory, optionally edited. */
function manifests(edit: (docs: Record<keyof ConfigPaths, any>) => void = () => {}): ConfigPaths {
  const dir = fs.mkdtempSync(path.join(work, 'etc-'));
  const docs = {} as Record<keyof ConfigPaths, any>;
  const paths = {} as ConfigPaths;
  for (const [kind, file] of Object.entries(MANIFEST_FILES) as Array<[keyof ConfigPaths, string]>) {
    docs[kind] = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', file), 'utf8'));
    paths[kind] = path.join(dir, file);
  }
  edit(docs);
  for (const kind of Object.keys(docs) as Array<keyof ConfigPaths>) fs.writeFileSync(paths[kind], JSON.stringify(docs[kind], null, 2));
  return paths;
}

function manifestEnv(paths: ConfigPaths): Record<string, string> {
  return { HYPERVISOR_CONFIG_FILE: paths.hypervisor, LXC_CONFIG_FILE: paths.lxc, VM_CONFIG_FILE: paths.vm, CERTIFICATE_MANIFEST_FILE: paths.certificates, STACKS_CONFIG_FILE: paths.stacks };
}

/** pve-firewall reads a guest's file only when the guest exists on the node. */
function defineGuests(ids = EXAMPLE_IDS): void {
  for (const [kind, list] of Object.entries(ids)) {
    for (const id of list) {
      const file = path.join(pveDir, kind === 'lxc' ? 'lxc' : 'qemu-server', `${id}.conf`);
      fs.writeFileSync(file, kind === 'lxc' ? `arch: amd64\nhostname: ct${id}\nmemory: 512\nostype: ubuntu\n` : `memory: 512\nname: vm${id}\n`);
    }
  }
}

function read(file: string): string | undefined {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
}

function fwFiles(): string[] {
  return fs.existsSync(fwDir) ? fs.readdirSync(fwDir).filter((n) => n.endsWith('.fw')).sort() : [];
}

test.before.each(() => {
  host.reset();
  clearConfigCache();
  setProcessContext({ dryRun: false });
  logged = [];
});

// ================================================================ rule lines

test('renderRule: every option in pve-firewall\'s own order and spelling', () => {
  const rule: RuleSpec = {
    type: 'in', action: 'ACCEPT', iface: 'vmbr0', proto: 'tcp', source: '10.0.0.0/24', dest: '10.0.0.5',
    port: '22,8000:8100', sport: '1024:65535', log: 'info', comment: '  admin access  ',
  };
  assert.is(renderRule(rule, 'cluster'), 'IN ACCEPT -i vmbr0 -source 10.0.0.0/24 -dest 10.0.0.5 -p tcp -dport 22,8000:8100 -sport 1024:65535 -log info # admin access');
});

test('renderRule: -i for the interface, never -iface; bash-style lower-case actions are upper-cased', () => {
  const line = renderRule({ type: 'out', action: 'drop', iface: 'eth0', proto: 'udp', port: '53' }, 'host');
  assert.is(line, 'OUT DROP -i eth0 -p udp -dport 53');
  assert.not.match(line, /-iface/);
});

test('renderRule: guest rules name interfaces netN; a container name from network_config is translated', () => {
  const ct: RuleContext = { env: 'ct', interfaces: { eth0: 'net0', eth1: 'net1' } };
  assert.is(renderRule({ type: 'in', action: 'ACCEPT', iface: 'eth1', proto: 'tcp', port: '443' }, ct), 'IN ACCEPT -i net1 -p tcp -dport 443');
  assert.is(renderRule({ type: 'in', action: 'ACCEPT', iface: 'net0' }, 'vm'), 'IN ACCEPT -i net0');
  assert.throws(() => renderRule({ type: 'in', action: 'ACCEPT', iface: 'eth0' }, 'vm'), /iface: a guest rule names its interface as netN/);
});

test('renderRule: ICMP and ICMPv6 types, macros, disabled rules, security groups', () => {
  assert.is(renderRule({ type: 'in', action: 'ACCEPT', proto: 'icmp', icmp_type: 'echo-request' }), 'IN ACCEPT -p icmp -icmp-type echo-request');
  assert.is(renderRule({ type: 'in', action: 'ACCEPT', proto: 'icmpv6', icmp_type: 'neighbor-solicitation', source: 'fd00::/64' }), 'IN ACCEPT -source fd00::/64 -p icmpv6 -icmp-type neighbor-solicitation');
  assert.is(renderRule({ type: 'in', action: 'ACCEPT', macro: 'ssh', source: '10.0.0.0/24' }), 'IN SSH(ACCEPT) -source 10.0.0.0/24', 'macro names take pve-firewall\'s spelling');
  assert.is(renderRule({ type: 'out', action: 'REJECT', proto: 'tcp', port: '25', enable: false, comment: 'no mail' }), '|OUT REJECT -p tcp -dport 25 # no mail');
  const groups: RuleContext = { env: 'ct', cluster: { aliases: new Set(), ipsets: new Set(), groups: new Set(['webservers']) } };
  assert.is(renderRule({ type: 'group', action: 'webservers', iface: 'net0' }, groups), 'GROUP webservers -i net0');
});

test('renderRule: port lists and ranges, address lists, ranges, ipsets and aliases', () => {
  const refs: RuleContext = { env: 'cluster', cluster: { aliases: new Set(['lan']), ipsets: new Set(['admins']), groups: new Set() } };
  assert.is(renderRule({ type: 'in', action: 'ACCEPT', proto: 'tcp', port: 'ssh,https,8000:8100', source: '10.0.0.1-10.0.0.9' }, refs), 'IN ACCEPT -source 10.0.0.1-10.0.0.9 -p tcp -dport ssh,https,8000:8100');
  assert.is(renderRule({ type: 'in', action: 'ACCEPT', source: '+admins', dest: 'dc/lan' }, refs), 'IN ACCEPT -source +admins -dest dc/lan');
  assert.is(renderRule({ type: 'in', action: 'ACCEPT', proto: 'udp', port: '1:2,3:4,5:6,7:8,9:10,11:12,13' }, refs), 'IN ACCEPT -p udp -dport 1:2,3:4,5:6,7:8,9:10,11:12,13', '15 numbers is the limit, not over it');
});

const REJECTS: Array<[string, RuleSpec, RuleContext['env'], string, RegExp]> = [
  ['port without proto', { type: 'in', action: 'ACCEPT', port: '22' }, 'cluster', 'proto', /required when port is set/],
  ['port on ICMP', { type: 'in', action: 'ACCEPT', proto: 'icmp', port: '8' }, 'cluster', 'port', /use icmp_type/],
  ['port on a protocol without ports', { type: 'in', action: 'ACCEPT', proto: 'gre', port: '1' }, 'cluster', 'port', /has no ports/],
  ['port out of range', { type: 'in', action: 'ACCEPT', proto: 'tcp', port: '70000' }, 'cluster', 'port', /invalid port/],
  ['backwards range', { type: 'in', action: 'ACCEPT', proto: 'tcp', port: '200:100' }, 'cluster', 'port', /backwards range/],
  ['more than 15 port numbers', { type: 'in', action: 'ACCEPT', proto: 'tcp', port: '1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16' }, 'cluster', 'port', /too many ports: 16/],
  ['extraneous comma in ports', { type: 'in', action: 'ACCEPT', proto: 'tcp', sport: '80,' }, 'cluster', 'sport', /extraneous commas/],
  ['unknown service name', { type: 'in', action: 'ACCEPT', proto: 'tcp', port: 'web' }, 'cluster', 'port', /unknown service name/],
  ['CIDR with host bits (Net::IP refuses it)', { type: 'in', action: 'ACCEPT', source: '10.0.0.5/24' }, 'cluster', 'source', /not a network address \(the network is 10\.0\.0\.0\/24\)/],
  ['invalid octet', { type: 'in', action: 'ACCEPT', dest: '10.0.0.256' }, 'cluster', 'dest', /invalid address/],
  ['range inside a list', { type: 'in', action: 'ACCEPT', source: '10.0.0.1-10.0.0.5,10.0.0.9' }, 'cluster', 'source', /range cannot be part of a list/],
  ['backwards address range', { type: 'in', action: 'ACCEPT', source: '10.0.0.9-10.0.0.1' }, 'cluster', 'source', /begins after it ends/],
  ['IPv4 and IPv6 in one list', { type: 'in', action: 'ACCEPT', source: '10.0.0.1,fd00::1' }, 'cluster', 'source', /mixes IPv4 and IPv6/],
  ['ICMP (IPv4) with an IPv6 source', { type: 'in', action: 'ACCEPT', proto: 'icmp', source: 'fd00::1' }, 'cluster', 'source', /mixes IPv4 and IPv6 in one rule/],
  ['unknown alias', { type: 'in', action: 'ACCEPT', source: 'office' }, 'cluster', 'source', /no alias "office" in cluster\.fw/],
  ['unknown ipset', { type: 'in', action: 'ACCEPT', source: '+blocked' }, 'cluster', 'source', /no ipset "blocked"/],
  ['ipset in upper case', { type: 'in', action: 'ACCEPT', source: '+Admins' }, 'cluster', 'source', /lower case/],
  ['forward rule in a guest', { type: 'forward', action: 'ACCEPT' }, 'ct', 'type', /forward rules are not allowed in a guest/],
  ['REJECT on the forward chain', { type: 'forward', action: 'REJECT' }, 'cluster', 'action', /REJECT is not allowed on the forward chain/],
  ['unknown action', { type: 'in', action: 'ALLOW' }, 'cluster', 'action', /expected ACCEPT, DROP or REJECT/],
  ['unknown type', { type: 'both', action: 'ACCEPT' }, 'cluster', 'type', /expected one of in, out, forward, group/],
  ['interface name with a space', { type: 'in', action: 'ACCEPT', iface: 'eth 0' }, 'cluster', 'iface', /invalid interface name/],
  ['unknown macro', { type: 'in', action: 'ACCEPT', macro: 'Telepathy' }, 'cluster', 'macro', /unknown macro/],
  ['unknown protocol', { type: 'in', action: 'ACCEPT', proto: 'tcpx' }, 'cluster', 'proto', /unknown protocol/],
  ['icmp_type without an ICMP protocol', { type: 'in', action: 'ACCEPT', proto: 'tcp', icmp_type: 'echo-request' }, 'cluster', 'proto', /icmp_type needs proto icmp/],
  ['unknown ICMP type', { type: 'in', action: 'ACCEPT', proto: 'icmp', icmp_type: 'neighbor-solicitation' }, 'cluster', 'icmp_type', /unknown icmp type/],
  ['unknown log level', { type: 'in', action: 'ACCEPT', log: 'loud' }, 'cluster', 'log', /expected one of emerg/],
  ['comment over two lines', { type: 'in', action: 'ACCEPT', comment: 'one\nIN ACCEPT' }, 'cluster', 'comment', /one line/],
  ['security group with a port', { type: 'group', action: 'web', proto: 'tcp' }, 'cluster', 'proto', /takes only an interface/],
  ['security group name too long', { type: 'group', action: 'a-very-long-group-name' }, 'cluster', 'action', /at most 18 characters/],
  ['unknown security group', { type: 'group', action: 'nosuch' }, 'cluster', 'action', /no security group "nosuch"/],
];

for (const [name, rule, env, field, message] of REJECTS) {
  test(`checkRule rejects: ${name}`, () => {
    const context: RuleContext = { env, cluster: { aliases: new Set(), ipsets: new Set(['admins']), groups: new Set() } };
    const { problems } = checkRule(rule, context);
    const hit = problems.find((p) => p.field === field && message.test(p.message));
    assert.ok(hit, `expected a problem at ${field} matching ${message}, got ${JSON.stringify(problems)}`);
  });
}

test('checkRule: a valid rule has no problems', () => {
  assert.equal(checkRule({ type: 'in', action: 'ACCEPT', proto: 'tcp', port: '443', source: '172.16.100.0/24' }, { env: 'ct' }).problems, []);
});

// ================================================================ file pieces

test('ownership: the marker line decides; empty files hold nothing to lose', () => {
  assert.is(ownership(undefined), 'absent');
  assert.is(ownership(''), 'empty');
  assert.is(ownership('\n\n'), 'empty');
  assert.is(ownership(`${MARKER} rest\n[OPTIONS]\n`), 'owned');
  assert.is(ownership('[OPTIONS]\nenable: 1\n'), 'foreign');
  assert.is(ownership(`[OPTIONS]\n${MARKER}\n`), 'foreign', 'only the first line counts');
});

test('keptSections: aliases and ipsets go before [RULES], groups after; their names are known', () => {
  const current = ['[OPTIONS]', '', 'enable: 1', '', '[ALIASES]', '', 'Office 10.0.0.0/24 # desks', '', '[IPSET Admins]', '', '10.0.0.7', '', '[RULES]', '', 'IN ACCEPT', '', '[group Web] # http', '', 'IN ACCEPT -p tcp -dport 80', ''].join('\n');
  const kept = keptSections(current, 'cluster');
  assert.equal(kept.before, ['[ALIASES]\nOffice 10.0.0.0/24 # desks', '[IPSET Admins]\n10.0.0.7']);
  assert.equal(kept.after, ['[group Web] # http\nIN ACCEPT -p tcp -dport 80']);
  assert.equal([...kept.names.aliases], ['office']);
  assert.equal([...kept.names.ipsets], ['admins']);
  assert.equal([...kept.names.groups], ['web']);
  assert.equal(keptSections(current, 'guest').after, [], 'security groups live in cluster.fw only');
});

test('parseCompileOutput: skipped rules and unparsable lines, with their details', () => {
  const stderr = [
    '/etc/pve/firewall/cluster.fw (line 7): unable to parse rule parameters: -iface eth1 -p tcp',
    '/etc/pve/firewall/101.fw (line 9) - errors in rule parameters: IN ACCEPT -i eth0',
    "  iface: value does not match the regex pattern 'net\\d+'",
    '/etc/pve/local/host.fw (line 3): can\'t parse option \'bogus: 1\'',
    'unrelated line',
  ].join('\n');
  const problems = parseCompileOutput(stderr, '/srv/pve', 'pve1');
  assert.equal(problems.map((p) => [p.path, p.line]), [
    ['/srv/pve/firewall/cluster.fw', 7],
    ['/srv/pve/firewall/101.fw', 9],
    ['/srv/pve/nodes/pve1/host.fw', 3],
  ]);
  assert.match(problems[1]!.text, /errors in rule parameters: IN ACCEPT -i eth0; iface: value does not match/);
});

// ================================================================ the example manifests

function examplePlan() {
  return planFirewall(loadConfig(manifests()), { pveDir: '/etc/pve', node: 'pve', read: () => undefined });
}

test('golden files from the example manifests: cluster.fw, host.fw, 101, 102, 103, 1001', () => {
  const plan = examplePlan();
  const byPath = new Map(plan.files.map((f) => [f.path, f]));
  const golden = (name: string, file: string) => {
    const planned = byPath.get(file);
    assert.ok(planned, `no planned ${file}`);
    assert.equal(planned.issues, []);
    assertGolden(`firewall/${name}`, planned.content);
  };
  golden('cluster.fw', '/etc/pve/firewall/cluster.fw');
  golden('host.fw', '/etc/pve/nodes/pve/host.fw');
  for (const id of ['101', '102', '103', '1001']) golden(`${id}.fw`, `/etc/pve/firewall/${id}.fw`);
  assert.equal([...plan.guestIds].sort(), ['1001', '1002', '101', '102', '103', '900', '9000']);
  // The two example global rules aimed at guests are inert in cluster.fw (it filters the host's own
  // traffic); the guests' own files carry the real rules. That is advice, never an error.
  assert.equal(
    plan.files.flatMap((f) => f.warnings).map((w) => w.pointer),
    ['/firewall/global_firewall_rules/5/dest', '/firewall/global_firewall_rules/6/dest'],
  );
  assert.match(plan.files[0]!.warnings[0]!.message, /^10\.0\.0\.10 is CT 101, not the host: .*\(101\.fw does\)$/);
});

test('the mTLS mesh rules come from the manifests: cluster and both guests, with the guests\' addresses', () => {
  const plan = examplePlan();
  const content = (name: string) => plan.files.find((f) => f.path === `/etc/pve/firewall/${name}`)!.content;
  const config = loadConfig(manifests());
  const gw = config.lxc.lxc_configs['101']!.secondary_network_config!.ip.split('/')[0];
  const traefik = config.lxc.lxc_configs['102']!.network_config.ip.split('/')[0];
  assert.match(content('cluster.fw'), `IN ACCEPT -source ${gw} -dest ${traefik} -p tcp -dport 8443 `);
  assert.match(content('102.fw'), new RegExp(`^IN ACCEPT -source ${gw} -p tcp -dport [0-9,]*8443`, 'm'));
  assert.match(content('101.fw'), new RegExp(`^OUT ACCEPT -dest ${traefik} -p tcp -dport [0-9,]*8443`, 'm'));
  assert.not.match(content('cluster.fw'), /10\.0\.0\.153|10\.0\.0\.12\b/, 'the stale literal addresses of the bash mesh rules (old Traefik and gateway IPs) are nowhere');
});

test('advice: stale addresses, decorative rules, allow-all rules, a Traefik that drops the mesh', () => {
  const paths = manifests((d) => {
    d.hypervisor.firewall.global_firewall_rules.push({ type: 'in', action: 'ACCEPT', proto: 'tcp', source: '10.0.0.153', dest: '10.0.0.12', port: '8443', comment: 'plan addresses' });
    d.lxc.lxc_configs['103'].firewall.enabled = false;
    d.lxc.lxc_configs['102'].firewall.rules[0].port = '80,443';
    d.vm.vms[1].firewall.rules.push({ type: 'in', action: 'ACCEPT', source: '10.0.0.22', comment: 'DEBUG: everything' });
  });
  const plan = planFirewall(loadConfig(paths), { pveDir: '/etc/pve', node: 'pve', read: () => undefined });
  const warnings = plan.files.flatMap((f) => f.warnings).map((w) => `${w.pointer}: ${w.message}`);
  assert.ok(warnings.some((w) => /^\/firewall\/global_firewall_rules\/7\/source: 10\.0\.0\.153 .*stale/.test(w)), warnings.join('\n'));
  assert.ok(warnings.some((w) => /^\/firewall\/global_firewall_rules\/7\/dest: 10\.0\.0\.12 /.test(w)));
  assert.ok(warnings.some((w) => /^\/lxc_configs\/103\/firewall\/enabled: false: CT 103's 4 rules are written but PVE enforces none/.test(w)));
  assert.ok(warnings.some((w) => /^\/vms\/1\/firewall\/rules\/5: accepts every protocol and port from 10\.0\.0\.22/.test(w)));
  assert.ok(warnings.some((w) => /^\/lxc_configs\/102\/firewall\/rules: no rule admits the gateway \(guest 101: 10\.0\.0\.10, 172\.16\.100\.10\) on tcp\/8443/.test(w)));
  assert.equal(plan.files.flatMap((f) => f.issues), [], 'advice is never an error');
});

test('public_interface: HTTP and HTTPS on net1, the device pve-firewall knows (the bash wrote -i eth1)', () => {
  const paths = manifests((d) => (d.lxc.lxc_configs['101'].public_interface = { enabled: true }));
  const plan = planFirewall(loadConfig(paths), { pveDir: '/etc/pve', node: 'pve', read: () => undefined });
  const ct101 = plan.files.find((f) => f.id === '101')!.content;
  assert.match(ct101, /^IN ACCEPT -i net1 -p tcp -dport 80 -log nolog # public HTTP on eth1$/m);
  assert.match(ct101, /^IN ACCEPT -i net1 -p tcp -dport 443 -log nolog # public HTTPS on eth1$/m);
});

// ================================================================ on the simulated host

test('script: writes every file atomically, compiles, restarts; pve-firewall accepts all of it', () => {
  defineGuests();
  const r = runScript();
  assert.is(r.code, 0, r.stderr);
  assert.equal(fwFiles(), ['1001.fw', '1002.fw', '101.fw', '102.fw', '103.fw', '900.fw', '9000.fw', 'cluster.fw']);
  assert.equal(fs.readdirSync(fwDir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
  const plan = planFirewall(loadConfig(manifests()), { pveDir, node: 'pve', read: () => undefined });
  for (const file of plan.files) assert.fixture(read(file.path) ?? '(missing)', file.content);
  assert.is(fs.statSync(path.join(fwDir, 'cluster.fw')).mode & 0o777, 0o640, 'the mode pmxcfs allows');
  assert.is(transcript(host.calls()), 'pvesh get /nodes --output-format json\npve-firewall compile\npve-firewall restart\n');
  const compiled = host.run('pve-firewall', ['compile']);
  assert.is(compiled.code, 0);
  assert.is(compiled.stderr, '', 'pve-firewall compile complains about nothing Phoenix wrote');
  for (const id of ['101', '102', '103', '1001', '1002', '900']) assert.match(compiled.stdout, new RegExp(`(veth|tap)${id}i0-(IN|OUT)`), `rules of ${id} compiled`);
  assert.match(r.stderr, /firewall files: 9 created; pve-firewall restarted/);
});

test('script: a second run writes nothing and does not restart ("unchanged")', () => {
  assert.is(runScript().code, 0);
  const mtimes = fwFiles().map((n) => fs.statSync(path.join(fwDir, n)).mtimeMs);
  host.clearCalls();
  const r = runScript();
  assert.is(r.code, 0, r.stderr);
  assert.equal(host.calls().filter(isMutating), []);
  assert.equal(fwFiles().map((n) => fs.statSync(path.join(fwDir, n)).mtimeMs), mtimes);
  assert.match(r.stderr, /firewall unchanged \(9 unchanged\); no restart/);
});

test('script --dry-run (and PHOENIX_DRY_RUN): writes nothing, says what it would do', () => {
  for (const [args, env] of [[['--dry-run'], {}], [[], { PHOENIX_DRY_RUN: 'true' }]] as const) {
    host.reset();
    const r = runScript([...args], env);
    assert.is(r.code, 0, r.stderr);
    assert.equal(fwFiles(), []);
    assert.not.ok(fs.existsSync(hostFw));
    assert.equal(host.calls().filter(isMutating), []);
    assert.match(r.stderr, /DRY-RUN: would write \S+\/firewall\/cluster\.fw/);
    assert.match(r.stderr, /DRY-RUN: would run: pve-firewall restart/);
  }
});

test('script: a rule pve-firewall would skip is an error naming the manifest pointer; nothing is written', () => {
  const paths = manifests((d) => {
    d.vm.vms[1].firewall.rules[0].source = '172.16.100.12/24';
    d.lxc.lxc_configs['102'].firewall.rules.push({ type: 'forward', action: 'ACCEPT', proto: 'tcp', port: '80' });
  });
  const r = runScript([], manifestEnv(paths));
  assert.is(r.code, 1);
  assert.match(r.stderr, /at \/vms\/1\/firewall\/rules\/0\/source: 172\.16\.100\.12\/24 is not a network address/);
  assert.match(r.stderr, /at \/lxc_configs\/102\/firewall\/rules\/6\/type: forward rules are not allowed in a guest firewall/);
  assert.equal(fwFiles(), []);
  assert.equal(host.calls().filter(isMutating), []);
});

test('script: the optional first argument is the hypervisor config; bad arguments exit 1', () => {
  const paths = manifests((d) => (d.hypervisor.firewall.default_input_policy = 'REJECT'));
  const r = runScript([paths.hypervisor]);
  assert.is(r.code, 0, r.stderr);
  assert.match(read(path.join(fwDir, 'cluster.fw')) ?? '', /^policy_in: REJECT$/m);
  assert.is(runScript(['--bogus']).code, 1);
  assert.is(runScript(['a.json', 'b.json']).code, 1);
  assert.match(runScript(['--help']).stdout, /^Usage: hypervisor_feature_setup_firewall\.sh/);
});

test('files without the marker are left alone (no wipe); --force takes them over and keeps their aliases', async () => {
  fs.mkdirSync(fwDir, { recursive: true });
  const foreignCluster = '[OPTIONS]\n\nenable: 1\n\n[ALIASES]\n\nlan 10.0.0.0/24\n\n[RULES]\n\nIN ACCEPT -source lan -p tcp -dport 22 # by hand\n';
  const foreign101 = '[OPTIONS]\nenable: 1\n[RULES]\nIN ACCEPT -p tcp -dport 3389 # manual\n';
  const foreign555 = '[OPTIONS]\nenable: 1\n';
  fs.writeFileSync(path.join(fwDir, 'cluster.fw'), foreignCluster);
  fs.writeFileSync(path.join(fwDir, '101.fw'), foreign101);
  fs.writeFileSync(path.join(fwDir, '555.fw'), foreign555);
  fs.writeFileSync(path.join(fwDir, '102.fw'), ''); // what the bash left for disabled guests
  const config = loadConfig(manifests());
  const result = await applyFirewall(config, { pveDir });
  assert.is(read(path.join(fwDir, 'cluster.fw')), foreignCluster);
  assert.is(read(path.join(fwDir, '101.fw')), foreign101);
  assert.is(read(path.join(fwDir, '555.fw')), foreign555);
  assert.is(ownership(read(path.join(fwDir, '102.fw'))), 'owned', 'an empty file is taken over');
  assert.equal(result.files.filter((f) => f.outcome === 'foreign').map((f) => path.basename(f.path)).sort(), ['101.fw', 'cluster.fw']);
  assert.ok(logged.some((l) => /cluster\.fw has no Phoenix marker line.*--force/.test(l)));

  const forced = await applyFirewall(config, { pveDir, force: true });
  const cluster = read(path.join(fwDir, 'cluster.fw')) ?? '';
  assert.is(ownership(cluster), 'owned');
  assert.match(cluster, /\[ALIASES\]\nlan 10\.0\.0\.0\/24\n\n\[RULES\]/, 'aliases kept, before [RULES]');
  assert.not.match(cluster, /# by hand/, "the hand-written rules are replaced");
  assert.is(ownership(read(path.join(fwDir, '101.fw'))), 'owned');
  assert.is(read(path.join(fwDir, '555.fw')), foreign555, '--force never deletes a file of a guest Phoenix does not know');
  assert.ok(forced.restarted);
});

test('a stale Phoenix file (guest gone from the manifests) is removed, and the firewall restarted', async () => {
  const config = loadConfig(manifests());
  await applyFirewall(config, { pveDir });
  const stale = path.join(fwDir, '555.fw');
  fs.writeFileSync(stale, `${MARKER} Delete this line to manage the file by hand.\n# CT 555 (gone)\n\n[OPTIONS]\n\nenable: 1\n`);
  host.clearCalls();
  const result = await applyFirewall(config, { pveDir });
  assert.not.ok(fs.existsSync(stale));
  assert.equal(result.files.filter((f) => f.outcome === 'removed').map((f) => f.path), [stale]);
  assert.equal(host.calls().filter(isMutating).map((c) => `${c.tool} ${c.argv.join(' ')}`), ['pve-firewall restart']);
});

test('firewall.enabled=false is the master switch: cluster.fw says enable: 0, guests keep their files', async () => {
  const config = loadConfig(manifests((d) => (d.hypervisor.firewall.enabled = false)));
  await applyFirewall(config, { pveDir });
  assert.match(read(path.join(fwDir, 'cluster.fw')) ?? '', /^enable: 0$/m);
  assert.match(read(path.join(fwDir, '101.fw')) ?? '', /^enable: 1$/m);
  assert.ok(logged.some((l) => /\/firewall\/enabled: false: cluster\.fw says enable: 0/.test(l)));
  assert.match(host.run('pve-firewall', ['status']).stdout, /^Status: disabled\/running/);
  const on = loadConfig(manifests((d) => (d.hypervisor.firewall.enabled = true)));
  const result = await applyFirewall(on, { pveDir });
  assert.ok(result.changed);
  assert.match(read(path.join(fwDir, 'cluster.fw')) ?? '', /^enable: 1$/m);
});

test('applyGuestFirewall: one guest\'s file plus cluster/host when they differ; then nothing', async () => {
  const config = loadConfig(manifests());
  const first = await applyGuestFirewall(config, '102', { pveDir });
  assert.equal(fwFiles(), ['102.fw', 'cluster.fw']);
  assert.ok(fs.existsSync(hostFw));
  assert.ok(first.restarted);
  host.clearCalls();
  const again = await applyGuestFirewall(config, 102, { pveDir });
  assert.not.ok(again.changed);
  assert.equal(host.calls(), [], 'unchanged and the node name is cached: not one call');
  await applyGuestFirewall(config, '101', { pveDir });
  try {
    await applyGuestFirewall(config, '4242', { pveDir });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PhoenixError);
  }
});

test('applyGuestFirewall: a broken rule of another guest does not block this one; its own does', async () => {
  const paths = manifests((d) => (d.lxc.lxc_configs['103'].firewall.rules[0].port = '9000:80'));
  const config = loadConfig(paths);
  await applyGuestFirewall(config, '102', { pveDir });
  assert.ok(fs.existsSync(path.join(fwDir, '102.fw')));
  try {
    await applyGuestFirewall(config, '103', { pveDir });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ManifestError);
    assert.match((err as Error).message, /\/lxc_configs\/103\/firewall\/rules\/0\/port.*backwards range/);
  }
  assert.not.ok(fs.existsSync(path.join(fwDir, '103.fw')));
});

test('rules may name aliases and ipsets kept in the files; pve-firewall accepts them', async () => {
  defineGuests();
  fs.mkdirSync(fwDir, { recursive: true });
  const config0 = loadConfig(manifests());
  await applyFirewall(config0, { pveDir });
  const cluster = path.join(fwDir, 'cluster.fw');
  // An operator adds an alias and an ipset to the Phoenix file and keeps the marker.
  fs.writeFileSync(cluster, (read(cluster) ?? '').replace('[RULES]', '[ALIASES]\n\nlan 10.0.0.0/24\n\n[IPSET admins]\n\n10.0.0.7\n\n[RULES]'));
  clearConfigCache();
  const config = loadConfig(manifests((d) => d.hypervisor.firewall.global_firewall_rules.push({ type: 'in', action: 'ACCEPT', proto: 'tcp', port: '22', source: '+admins', dest: 'lan', comment: 'admins' })));
  logged = [];
  const result = await applyFirewall(config, { pveDir, alwaysValidate: true });
  assert.equal(result.problems, [], logged.join(''));
  const text = read(cluster) ?? '';
  assert.match(text, /\[ALIASES\]\nlan 10\.0\.0\.0\/24\n\n\[IPSET admins\]\n10\.0\.0\.7\n\n\[RULES\]/);
  assert.match(text, /^IN ACCEPT -source \+admins -dest lan -p tcp -dport 22 # admins$/m);
  assert.is(host.run('pve-firewall', ['compile']).stderr, '');
});

test('what pve-firewall compile rejects is reported: a foreign -iface rule warns, a line Phoenix wrote fails the run', async () => {
  defineGuests();
  fs.mkdirSync(fwDir, { recursive: true });
  fs.writeFileSync(path.join(fwDir, '1002.fw'), '[OPTIONS]\nenable: 1\n[RULES]\nIN ACCEPT -iface net0 -p tcp -dport 80\n');
  const config = loadConfig(manifests());
  const result = await applyFirewall(config, { pveDir, alwaysValidate: true });
  assert.equal(result.problems.map((p) => [path.basename(p.path), p.owned]), [['1002.fw', false]]);
  assert.ok(logged.some((l) => /\[WARN\].*pve-firewall rejects \/etc\/pve\/firewall\/1002\.fw line 4: unable to parse rule parameters: -iface net0/.test(l)));

  // A gap between Phoenix's checks and pve-firewall's: the run fails and names the manifest rule.
  const planned = planFirewall(config, { pveDir, node: 'pve', read: () => undefined }).files.find((f) => f.id === '101')!;
  const [line, origin] = [...planned.origins].find(([, o]) => o === '/lxc_configs/101/firewall/rules/3')!;
  host.injectFailure({ tool: 'pve-firewall', argv: ['compile'], times: 1, exit: 0, stdout: 'no changes\n', stderr: `/etc/pve/firewall/101.fw (line ${line}) - errors in rule parameters: OUT ACCEPT …\n  dport: invalid port\n` });
  logged = [];
  try {
    await applyFirewall(config, { pveDir, alwaysValidate: true });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PhoenixError);
    assert.match((err as Error).message, /pve-firewall rejected 1 line Phoenix wrote/);
  }
  assert.ok(logged.some((l) => l.includes('[ERROR]') && l.includes(`101.fw line ${line} (from ${origin})`)), logged.join(''));
});

test.run();
