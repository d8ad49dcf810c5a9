// The simulated `pve-firewall`. `compile` reads the files the real daemon
// reads — /etc/pve/firewall/cluster.fw, /etc/pve/nodes/<node>/host.fw and
// /etc/pve/firewall/<vmid>.fw of the guests that exist on this node (any
// other *.fw, such as a <hostname>.fw, is ignored, as on PVE) — and parses
// rules with pve-firewall's grammar: `-i` (one dash only), `-p`/`-proto`,
// `-source`, `-dest`, `-dport`, `-sport`, `-log`, `-icmp-type` (one or two
// dashes). Whatever it cannot parse is reported on stderr with the file and
// line and left out, exactly what happens to upstream's `-iface` rules.
// The printed rule set is a readable approximation of iptables-save lines,
// not the daemon's exact chains.

import fs from 'node:fs';
import path from 'node:path';

import type { Ctx } from './cli.mts';
import { guestKindOf } from './pveconf.mts';
import { die, loadRuntime, paths, updateRuntime } from './state.mts';

type RuleEnv = 'cluster' | 'host' | 'vm' | 'ct';

export interface FwRule {
  type: string;
  action: string;
  macro?: string;
  enable: boolean;
  iface?: string;
  proto?: string;
  dport?: string;
  sport?: string;
  source?: string;
  dest?: string;
  log?: string;
  icmpType?: string;
  comment?: string;
}

interface FwFile {
  /** The path PVE would print (under /etc/pve). */
  shownPath: string;
  env: RuleEnv;
  vmid?: string;
  options: Record<string, string>;
  rules: FwRule[];
  groups: Record<string, FwRule[]>;
  aliases: Set<string>;
  ipsets: Set<string>;
}

const MACROS = [
  'Amanda', 'Auth', 'BGP', 'BitTorrent', 'BitTorrent32', 'CVS', 'Ceph', 'Citrix', 'DAAP', 'DCC', 'DHCPfwd', 'DHCPv6', 'DNS', 'Distcc', 'FTP', 'Finger', 'GNUnet', 'GRE', 'Git', 'HKP', 'HTTP', 'HTTPS', 'ICPV2', 'ICQ', 'IMAP', 'IMAPS', 'IPIP', 'IPP', 'IPsec', 'IPsecah', 'IPsecnat', 'IRC', 'Jetdirect', 'L2TP', 'LDAP', 'LDAPS', 'MDNS', 'MSNP', 'MSSQL', 'Mail', 'Munin', 'MySQL', 'NNTP', 'NNTPS', 'NTP', 'NeighborDiscovery', 'OSPF', 'OpenVPN', 'PCA', 'POP3', 'POP3S', 'PPtP', 'Ping', 'PostgreSQL', 'Printer', 'RDP', 'RIP', 'RNDC', 'Razor', 'Rdate', 'Rsync', 'SANE', 'SMB', 'SMBswat', 'SMTP', 'SMTPS', 'SNMP', 'SPAMD', 'SPICEproxy', 'SSH', 'SVN', 'SixXS', 'Squid', 'Submission', 'Syslog', 'TFTP', 'Telnet', 'Telnets', 'Time', 'Trcrt', 'VNC', 'VNCL', 'Web', 'Webcache', 'Webmin', 'Whois',
];
const MACRO_BY_LC = new Map(MACROS.map((m) => [m.toLowerCase(), m]));

const PROTOCOLS = new Set(['tcp', 'udp', 'icmp', 'icmpv6', 'ipv6-icmp', 'udplite', 'sctp', 'dccp', 'gre', 'esp', 'ah', 'igmp', 'ospf', 'vrrp', 'ipv6', 'ipip', 'pim', 'l2tp', 'ip']);
const PROTOCOLS_WITH_PORTS = new Set(['tcp', 'udp', 'udplite', 'sctp', 'dccp', '6', '17', '136', '132', '33']);
const ICMP_TYPES = new Set(['any', 'echo-reply', 'destination-unreachable', 'network-unreachable', 'host-unreachable', 'protocol-unreachable', 'port-unreachable', 'fragmentation-needed', 'source-route-failed', 'network-unknown', 'host-unknown', 'network-prohibited', 'host-prohibited', 'TOS-network-unreachable', 'TOS-host-unreachable', 'communication-prohibited', 'host-precedence-violation', 'precedence-cutoff', 'source-quench', 'redirect', 'network-redirect', 'host-redirect', 'TOS-network-redirect', 'TOS-host-redirect', 'echo-request', 'router-advertisement', 'router-solicitation', 'time-exceeded', 'ttl-zero-during-transit', 'ttl-zero-during-reassembly', 'parameter-problem', 'ip-header-bad', 'required-option-missing', 'timestamp-request', 'timestamp-reply', 'address-mask-request', 'address-mask-reply']);

const ipv4 = String.raw`(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)`;
const ADDRESS = new RegExp(`^(?:${ipv4}(?:/(?:3[0-2]|[12]?\\d))?|${ipv4}-${ipv4}|[0-9a-fA-F:]+:[0-9a-fA-F:.]*(?:/\\d{1,3})?)$`);

function portError(value: string, isIcmp: boolean): string | undefined {
  for (const item of value.split(',')) {
    if (isIcmp) continue;
    const parts = item.split(':');
    if (parts.length > 2) return `invalid port '${item}'`;
    for (const p of parts) {
      if (/^\d+$/.test(p)) {
        if (Number(p) > 65535) return `invalid port '${p}'`;
      } else if (!/^[a-z][a-z0-9-]*$/i.test(p)) {
        return `invalid port '${p}'`;
      }
    }
  }
  return undefined;
}

function checkAddress(value: string, file: FwFile, cluster: FwFile | undefined): string | undefined {
  if (value.startsWith('+')) {
    const name = value.slice(1).replace(/^(dc|guest)\//, '').toLowerCase();
    if (file.ipsets.has(name) || cluster?.ipsets.has(name)) return undefined;
    return `no such ipset '${value.slice(1)}'`;
  }
  if (/^[a-z][a-z0-9_-]*$/i.test(value) && !ADDRESS.test(value)) {
    const name = value.replace(/^(dc|guest)\//, '').toLowerCase();
    if (file.aliases.has(name) || cluster?.aliases.has(name)) return undefined;
    return `no such alias '${value}'`;
  }
  for (const item of value.split(',')) if (!ADDRESS.test(item)) return `invalid address '${item}'`;
  return undefined;
}

/** pve-firewall's verify_rule, for the checks that matter to generated files. */
function verifyRule(rule: FwRule, env: RuleEnv, file: FwFile, cluster: FwFile | undefined): Array<[string, string]> {
  const errors: Array<[string, string]> = [];
  const add = (k: string, m: string) => {
    if (!errors.some(([key]) => key === k)) errors.push([k, m]);
  };
  const validTypes = env === 'cluster' || env === 'host' ? ['in', 'out', 'group', 'forward'] : ['in', 'out', 'group'];
  if (!validTypes.includes(rule.type)) add('type', `invalid rule type '${rule.type}' for rule_env '${env}'`);
  if (['in', 'out', 'forward'].includes(rule.type)) {
    if (!/^(ACCEPT|DROP|REJECT)$/.test(rule.action)) add('action', `unknown action '${rule.action}'`);
  } else if (rule.type === 'group') {
    if (!/^[A-Za-z][A-Za-z0-9\-_]+$/.test(rule.action)) add('action', 'invalid characters in security group name');
    else if (!cluster?.groups[rule.action.toLowerCase()]) add('action', `no such security group '${rule.action}'`);
  }
  if (rule.iface) {
    if (!/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(rule.iface) || rule.iface.length > 20) add('iface', `invalid format - invalid network interface name '${rule.iface}'`);
    if ((env === 'vm' || env === 'ct') && !/^net\d+$/.test(rule.iface)) add('iface', "value does not match the regex pattern 'net\\d+'");
  }
  if (rule.macro) {
    const preferred = MACRO_BY_LC.get(rule.macro.toLowerCase());
    if (preferred) rule.macro = preferred;
    else add('macro', `unknown macro '${rule.macro}'`);
  }
  let isIcmp = false;
  if (rule.proto) {
    if (!PROTOCOLS.has(rule.proto) && !/^\d+$/.test(rule.proto)) add('proto', `unknown protocol '${rule.proto}'`);
    isIcmp = ['icmp', 'icmpv6', 'ipv6-icmp', '1', '58'].includes(rule.proto);
  }
  if (rule.dport) {
    const e = portError(rule.dport, isIcmp);
    if (e) add('dport', e);
    if (!rule.proto) add('proto', "missing property - 'dport' requires this property");
    else if (!PROTOCOLS_WITH_PORTS.has(rule.proto) && !isIcmp) add('dport', `protocol '${rule.proto}' does not support ports`);
  }
  if (rule.icmpType) {
    if (!isIcmp) add('proto', "missing property - 'icmp-type' requires this property");
    if (rule.dport) add('icmp-type', "'icmp-type' cannot be specified together with 'dport'");
    if (rule.proto === 'icmp' && !ICMP_TYPES.has(rule.icmpType) && !/^\d+$/.test(rule.icmpType)) add('icmp-type', `invalid icmp-type '${rule.icmpType}' for proto 'icmp'`);
  }
  if (rule.sport) {
    const e = portError(rule.sport, false);
    if (e) add('sport', e);
    if (!rule.proto) add('proto', "missing property - 'sport' requires this property");
    else if (!PROTOCOLS_WITH_PORTS.has(rule.proto)) add('sport', `protocol '${rule.proto}' does not support ports`);
  }
  for (const key of ['source', 'dest'] as const) {
    const value = rule[key];
    if (value) {
      const e = checkAddress(value, file, cluster);
      if (e) add(key, e);
    }
  }
  return errors;
}

function parseRuleLine(line: string): FwRule {
  let text = line;
  const rule: FwRule = { type: '', action: '', enable: true };
  const comment = /#\s*(.*?)\s*$/.exec(text);
  if (comment) {
    rule.comment = comment[1]!;
    text = text.slice(0, comment.index);
  }
  if (text.startsWith('|')) {
    rule.enable = false;
    text = text.slice(1);
  }
  const head = /^(\S+)\s+(\S+)\s*/.exec(text);
  if (!head) throw new Error(`unable to parse rule: ${text}`);
  rule.type = head[1]!.toLowerCase();
  rule.action = head[2]!;
  text = text.slice(head[0].length);
  if (['in', 'out', 'forward'].includes(rule.type)) {
    const m = /^(\S+)\((ACCEPT|DROP|REJECT)\)$/.exec(rule.action);
    if (m) {
      rule.macro = m[1]!;
      rule.action = m[2]!;
    }
  }
  for (;;) {
    if (text.length === 0) break;
    let m = /^-i (\S+)\s*/.exec(text);
    if (m) {
      rule.iface = m[1]!;
      text = text.slice(m[0].length);
      continue;
    }
    if (rule.type === 'group') break;
    const patterns: Array<[RegExp, keyof FwRule]> = [
      [/^(?:-p|--?proto) (\S+)\s*/, 'proto'],
      [/^--?dport (\S+)\s*/, 'dport'],
      [/^--?sport (\S+)\s*/, 'sport'],
      [/^--?source (\S+)\s*/, 'source'],
      [/^--?dest (\S+)\s*/, 'dest'],
      [/^--?log (emerg|alert|crit|err|warning|notice|info|debug|nolog)\s*/, 'log'],
      [/^--?icmp-type (\S+)\s*/, 'icmpType'],
    ];
    let matched = false;
    for (const [re, key] of patterns) {
      m = re.exec(text);
      if (m) {
        (rule as unknown as Record<string, string>)[key] = m[1]!;
        text = text.slice(m[0].length);
        matched = true;
        break;
      }
    }
    if (!matched) break;
  }
  if (text.length > 0) throw new Error(`unable to parse rule parameters: ${text}`);
  return rule;
}

const OPTION_PATTERNS: Record<RuleEnv, RegExp[]> = {
  cluster: [/^(enable):\s*(\d+)\s*$/i, /^(ebtables):\s*([01])\s*$/i, /^(policy_(?:in|out|forward)):\s*(ACCEPT|DROP|REJECT)\s*$/i, /^(log_ratelimit):\s*(\S+)\s*$/],
  host: [
    /^(enable|nosmurfs|tcpflags|ndp|log_nf_conntrack|nf_conntrack_allow_invalid|protection_synflood|nftables):\s*([01])\s*$/i,
    /^(log_level_(?:in|out|forward)|tcp_flags_log_level|smurf_log_level):\s*((?:emerg|alert|crit|err|warning|notice|info|debug|nolog)?)\s*$/i,
    /^(nf_conntrack_helpers):\s*((?:\S+[,]?)+)\s*$/i,
    /^(nf_conntrack_max|nf_conntrack_tcp_timeout_established|nf_conntrack_tcp_timeout_syn_recv|protection_synflood_rate|protection_synflood_burst|protection_limit):\s*(\d+)\s*$/i,
  ],
  vm: [/^(enable|dhcp|ndp|radv|macfilter|ipfilter|ips):\s*([01])\s*$/i, /^(log_level_in|log_level_out):\s*((?:emerg|alert|crit|err|warning|notice|info|debug|nolog)?)\s*$/i, /^(policy_(?:in|out)):\s*(ACCEPT|DROP|REJECT)\s*$/i, /^(ips_queues):\s*(\S+)\s*$/i],
  ct: [],
};
OPTION_PATTERNS.ct = OPTION_PATTERNS.vm;

function parseFwFile(text: string, shownPath: string, env: RuleEnv, warn: (s: string) => void, cluster?: FwFile): FwFile {
  const file: FwFile = { shownPath, env, options: {}, rules: [], groups: {}, aliases: new Set(), ipsets: new Set() };
  const pendingRules: Array<{ rule: FwRule; prefix: string; line: string; group?: string }> = [];
  let section: string | undefined;
  let group: string | undefined;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const prefix = `${shownPath} (line ${n + 1})`;
    if (/^\[options\]$/i.test(line)) {
      section = 'options';
      continue;
    }
    if (/^\[aliases\]$/i.test(line)) {
      section = 'aliases';
      continue;
    }
    if (/^\[rules\]$/i.test(line)) {
      section = 'rules';
      continue;
    }
    const g = /^\[group\s+(\S+)\]\s*(?:#\s*(.*?)\s*)?$/i.exec(line);
    if (g && env === 'cluster') {
      group = g[1]!.toLowerCase();
      if (!/^[A-Za-z][A-Za-z0-9\-_]+$/.test(group)) {
        warn(`${prefix}: invalid security group name '${group}'\n`);
        section = undefined;
        continue;
      }
      section = 'groups';
      file.groups[group] = [];
      continue;
    }
    const ipset = /^\[ipset\s+(\S+)\]\s*(?:#\s*(.*?)\s*)?$/i.exec(line);
    if (ipset) {
      section = 'ipset';
      file.ipsets.add(ipset[1]!.toLowerCase());
      continue;
    }
    if (!section) {
      warn(`${prefix}: skip line - no section\n`);
      continue;
    }
    if (section === 'options') {
      const m = OPTION_PATTERNS[env].map((re) => re.exec(line)).find(Boolean);
      if (!m) warn(`${prefix}: can't parse option '${line}'\n`);
      else file.options[m[1]!.toLowerCase()] = m[2]!;
      continue;
    }
    if (section === 'aliases') {
      const m = /^(\S+)\s+(\S+)\s*(?:#\s*(.*?)\s*)?$/.exec(line);
      if (!m) warn(`${prefix}: can't parse alias '${line}'\n`);
      else file.aliases.add(m[1]!.toLowerCase());
      continue;
    }
    if (section === 'ipset') continue;
    try {
      const rule = parseRuleLine(line);
      pendingRules.push({ rule, prefix, line, ...(section === 'groups' && group ? { group } : {}) });
    } catch (error) {
      warn(`${prefix}: ${(error as Error).message}\n`);
    }
  }
  // Verified after the whole file is read: aliases and ipsets may come later in it.
  for (const { rule, prefix, line, group: g } of pendingRules) {
    const errors = verifyRule(rule, g ? 'cluster' : env, file, cluster ?? (env === 'cluster' ? file : undefined));
    if (errors.length > 0) {
      warn(`${prefix} - errors in rule parameters: ${line}\n`);
      for (const [k, m] of errors) warn(`  ${k}: ${m}\n`);
      // A rule with errors is kept but never compiled into the rule set.
      continue;
    }
    if (g) file.groups[g]!.push(rule);
    else file.rules.push(rule);
  }
  return file;
}

function readIf(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

interface Compiled {
  enabled: boolean;
  text: string;
}

/** Load and compile every firewall file the daemon would read; warnings go to `warn`. */
export function compileFirewall(root: string, node: string, warn: (s: string) => void): Compiled {
  const p = paths(root);
  const clusterText = readIf(path.join(p.firewallDir, 'cluster.fw')) ?? '';
  const cluster = parseFwFile(clusterText, '/etc/pve/firewall/cluster.fw', 'cluster', warn);
  const hostText = readIf(path.join(p.pve, 'nodes', node, 'host.fw')) ?? '';
  const host = parseFwFile(hostText, `/etc/pve/nodes/${node}/host.fw`, 'host', warn, cluster);
  const guests: FwFile[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(p.firewallDir);
  } catch {
    names = [];
  }
  for (const name of names.sort()) {
    const m = /^(\d+)\.fw$/.exec(name);
    if (!m) continue;
    const kind = guestKindOf(root, m[1]!);
    if (!kind) continue; // files of guests that do not exist here are not read
    const text = readIf(path.join(p.firewallDir, name)) ?? '';
    const file = parseFwFile(text, `/etc/pve/firewall/${name}`, kind === 'lxc' ? 'ct' : 'vm', warn, cluster);
    file.vmid = m[1]!;
    guests.push(file);
  }

  const enabled = cluster.options.enable !== undefined && Number(cluster.options.enable) > 0;
  const lines: string[] = [];
  const hostIn = 'PVEFW-HOST-IN';
  const hostOut = 'PVEFW-HOST-OUT';
  for (const [gname, rules] of Object.entries(cluster.groups)) {
    for (const r of rules) lines.push(ruleLine(`GROUP-${gname}-${r.type === 'out' ? 'OUT' : 'IN'}`, r));
  }
  if (host.options.enable !== '0') {
    for (const r of [...host.rules, ...cluster.rules]) lines.push(ruleLine(r.type === 'out' ? hostOut : hostIn, r));
  }
  for (const g of guests) {
    if (g.options.enable !== '1') continue;
    const dev = g.env === 'ct' ? 'veth' : 'tap';
    for (const r of g.rules) {
      const nic = r.iface ? r.iface.replace(/^net/, 'i') : 'i0';
      const rule: FwRule = { ...r };
      delete rule.iface;
      lines.push(ruleLine(`${dev}${g.vmid}${nic}-${r.type === 'out' ? 'OUT' : 'IN'}`, rule));
    }
  }
  const policyIn = cluster.options.policy_in ?? 'DROP';
  const policyOut = cluster.options.policy_out ?? 'ACCEPT';
  lines.push(`-A ${hostIn} -j ${policyIn === 'REJECT' ? 'PVEFW-reject' : policyIn}`, `-A ${hostOut} -j ${policyOut === 'REJECT' ? 'PVEFW-reject' : policyOut}`);
  return { enabled, text: lines.map((l) => `${l}\n`).join('') };
}

function ruleLine(chain: string, r: FwRule): string {
  if (r.type === 'group') return `-A ${chain} -j GROUP-${r.action.toLowerCase()}-${chain.endsWith('OUT') ? 'OUT' : 'IN'}`;
  const parts = [`-A ${chain}`];
  if (r.iface) parts.push(`-${chain.endsWith('OUT') ? 'o' : 'i'} ${r.iface}`);
  if (r.source) parts.push(`-s ${r.source}`);
  if (r.dest) parts.push(`-d ${r.dest}`);
  if (r.proto) parts.push(`-p ${r.proto}`);
  if (r.dport) parts.push(r.dport.includes(',') ? `--match multiport --dports ${r.dport}` : `--dport ${r.dport}`);
  if (r.sport) parts.push(r.sport.includes(',') ? `--match multiport --sports ${r.sport}` : `--sport ${r.sport}`);
  if (r.icmpType) parts.push(`--icmp-type ${r.icmpType}`);
  if (r.macro) parts.push(`-m comment --comment "macro ${r.macro}"`);
  parts.push(`-j ${r.action === 'REJECT' ? 'PVEFW-reject' : r.action}`);
  const line = parts.join(' ');
  return r.enable ? line : `# disabled: ${line}`;
}

export function runFirewall(ctx: Ctx): void {
  const verb = ctx.verb(ctx.argv[0], ['compile', 'restart', 'start', 'status', 'stop'], ['localnet', 'simulate']);
  if (ctx.argv.length > 1 && !['start', 'restart'].includes(verb)) die(`400 too many arguments\npve-firewall ${verb}`);
  ctx.begin();
  const warn = (s: string) => ctx.err(s);
  switch (verb) {
    case 'status': {
      const rt = loadRuntime(ctx.root);
      const compiled = compileFirewall(ctx.root, ctx.host.node, warn);
      const running = rt.firewall.running;
      const changes = running && rt.firewall.applied !== compiled.text;
      ctx.out(`Status: ${compiled.enabled ? 'enabled' : 'disabled'}/${running ? 'running' : 'stopped'}${changes && compiled.enabled ? ' (pending changes)' : ''}\n`);
      return;
    }
    case 'compile': {
      const rt = loadRuntime(ctx.root);
      const compiled = compileFirewall(ctx.root, ctx.host.node, warn);
      const changed = rt.firewall.applied !== compiled.text;
      let out = 'ipset cmdlist:\n\niptables cmdlist:\n';
      out += compiled.text;
      out += '\nip6tables cmdlist:\n\nebtables cmdlist:\n\niptables table raw cmdlist:\n\nip6tables table raw cmdlist:\n';
      out += changed ? 'detected changes\n' : 'no changes\n';
      if (!compiled.enabled) out += 'firewall disabled\n';
      ctx.out(out);
      return;
    }
    case 'start':
    case 'restart': {
      const compiled = compileFirewall(ctx.root, ctx.host.node, () => {});
      updateRuntime(ctx.root, (rt) => {
        rt.firewall.running = true;
        rt.firewall.applied = compiled.text;
      });
      return;
    }
    case 'stop':
      updateRuntime(ctx.root, (rt) => {
        rt.firewall.running = false;
        delete rt.firewall.applied;
      });
      return;
  }
}
