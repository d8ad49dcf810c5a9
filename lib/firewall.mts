// The Proxmox firewall files, generated from the manifests.
//
// Three layers, so each can be tested on its own:
// - rules: one manifest rule → one rule line, checked against what
//   pve-firewall's parser and verify_rule accept (PVE's own spelling and
//   order: `-i`, `-source`, `-dest`, `-p`, `-dport`, `-sport`, `-log`,
//   `-icmp-type`). A rule pve-firewall would skip is an error here, before
//   anything is written, never a silent hole in the rule set.
// - files: the manifests → cluster.fw, nodes/<node>/host.fw and one
//   <id>.fw per guest with a `firewall` block. Pure: the current files come
//   in through a reader, because sections an operator keeps there
//   ([ALIASES], [IPSET …], [group …]) are carried over and rules may name them.
// - apply: ownership (a marker line), atomic writes, removal of stale
//   Phoenix files, `pve-firewall compile` and a restart only after a change.

import fs from 'node:fs';
import path from 'node:path';
import { isIPv6 } from 'node:net';
import { ManifestError, type ConfigIssue, type ConfigWarning, type PhoenixConfig } from './config.mts';
import type { FirewallRule, GuestFirewall, LxcConfig, VmConfig } from './config-types.mts';
import { PhoenixError } from './errors.mts';
import { removeFile, writeFileAtomic, type WriteOutcome } from './fs.mts';
import { debug, error, info, success, warn } from './log.mts';
import { resolveOptions } from './env.mts';
import { isDryRun } from './context.mts';
import { firewallCompile, firewallRestart, nodeName } from './pve.mts';

// ================================================================ rules

/** Where a rule lives decides what pve-firewall allows in it. */
export type RuleEnv = 'cluster' | 'host' | 'vm' | 'ct';

/**
 * One rule as the manifests spell it (FirewallRule), plus what the API
 * can express and the schema does not (yet): security-group jumps
 * (`type: group`, `action: <name>`), `icmp_type` and disabled rules.
 */
export interface RuleSpec {
  type: string;
  action: string;
  macro?: string | undefined;
  iface?: string | undefined;
  proto?: string | undefined;
  source?: string | undefined;
  dest?: string | undefined;
  /** Destination port(s): `-dport`. */
  port?: string | undefined;
  sport?: string | undefined;
  icmp_type?: string | undefined;
  log?: string | undefined;
  comment?: string | undefined;
  /** false writes the rule disabled (`|IN …`), as the GUI does. */
  enable?: boolean | undefined;
}

/** Names defined in the firewall files a rule can refer to (all lower case, as pve-firewall keys them). */
export interface NameScope {
  aliases: ReadonlySet<string>;
  ipsets: ReadonlySet<string>;
}

export interface RuleContext {
  env: RuleEnv;
  /** cluster.fw's aliases, ipsets and security groups; without it references are not checked. */
  cluster?: NameScope & { groups: ReadonlySet<string> };
  /** The guest file's own aliases and ipsets. */
  local?: NameScope;
  /** Container interface names (eth0) → the netN pve-firewall wants in guest rules. */
  interfaces?: Readonly<Record<string, string>>;
}

export interface RuleProblem {
  /** The manifest key at fault (port, source, …), or '' for the rule as a whole. */
  field: string;
  message: string;
}

export interface CheckedRule {
  line: string;
  problems: RuleProblem[];
}

const ACTIONS = new Set(['ACCEPT', 'DROP', 'REJECT']);
const LOG_LEVELS = new Set(['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug', 'nolog']);
const NAME = '[A-Za-z][A-Za-z0-9_-]+';
const GROUP_NAME = new RegExp(`^${NAME}$`);
const MAX_GROUP_NAME = 18;
const MAX_ALIAS_NAME = 64;
const MAX_IPSET_REF = 65;
const MAX_PORT_NUMBERS = 15;
/** pve-common's pve-iface format. */
const IFACE = /^[a-z][a-z0-9_]{1,20}([:.]\d+)?$/i;

/**
 * Protocols of Debian's /etc/protocols (what pve-firewall accepts by name
 * or number), plus `icmpv6`, which pve-firewall adds itself.
 */
const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  ip: 0, icmp: 1, igmp: 2, ipencap: 4, tcp: 6, egp: 8, udp: 17, dccp: 33, ipv6: 41, 'ipv6-route': 43,
  'ipv6-frag': 44, rsvp: 46, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60,
  ospf: 89, ipip: 94, etherip: 97, pim: 103, ipcomp: 108, vrrp: 112, l2tp: 115, sctp: 132, udplite: 136,
};
const PROTOCOL_IDS = new Set(Object.values(PROTOCOL_NUMBERS).map(String));
const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'udplite', 'dccp', 'sctp', '6', '17', '136', '33', '132']);
const ICMP_PROTOCOLS = new Set(['icmp', 'icmpv6', 'ipv6-icmp']);

/** Service names from Debian's /etc/services that are safe to use instead of numbers. */
const SERVICES = new Set([
  'ftp-data', 'ftp', 'ssh', 'telnet', 'smtp', 'domain', 'tftp', 'http', 'kerberos', 'pop3', 'sunrpc',
  'ntp', 'netbios-ns', 'netbios-dgm', 'netbios-ssn', 'imap2', 'snmp', 'snmp-trap', 'bgp', 'ldap',
  'https', 'microsoft-ds', 'syslog', 'submission', 'ldaps', 'rsync', 'imaps', 'pop3s', 'openvpn',
  'nfs', 'mysql', 'postgresql', 'http-alt', 'bootps', 'bootpc', 'isakmp', 'ipsec-nat-t', 'xmpp-client',
]);

/** iptables' ICMP type names, and ip6tables' ICMPv6 ones, as pve-firewall lists them. */
const ICMP_TYPES = new Set([
  'any', 'echo-reply', 'destination-unreachable', 'network-unreachable', 'host-unreachable',
  'protocol-unreachable', 'port-unreachable', 'fragmentation-needed', 'source-route-failed',
  'network-unknown', 'host-unknown', 'network-prohibited', 'host-prohibited', 'TOS-network-unreachable',
  'TOS-host-unreachable', 'communication-prohibited', 'host-precedence-violation', 'precedence-cutoff',
  'source-quench', 'redirect', 'network-redirect', 'host-redirect', 'TOS-network-redirect',
  'TOS-host-redirect', 'echo-request', 'router-advertisement', 'router-solicitation', 'time-exceeded',
  'ttl-zero-during-transit', 'ttl-zero-during-reassembly', 'parameter-problem', 'ip-header-bad',
  'required-option-missing', 'timestamp-request', 'timestamp-reply', 'address-mask-request',
  'address-mask-reply',
]);
const ICMPV6_TYPES = new Set([
  'destination-unreachable', 'no-route', 'communication-prohibited', 'beyond-scope', 'address-unreachable',
  'port-unreachable', 'failed-policy', 'reject-route', 'packet-too-big', 'time-exceeded',
  'ttl-zero-during-transit', 'ttl-zero-during-reassembly', 'parameter-problem', 'bad-header',
  'unknown-header-type', 'unknown-option', 'echo-request', 'echo-reply', 'router-solicitation',
  'router-advertisement', 'neighbor-solicitation', 'neighbour-solicitation', 'neighbor-advertisement',
  'neighbour-advertisement', 'redirect',
]);

/** pve-firewall's macros; the lookup is case-insensitive and writes the preferred spelling. */
const MACROS = new Map(
  [
    'Amanda', 'Auth', 'BGP', 'BitTorrent', 'BitTorrent32', 'CVS', 'Ceph', 'Citrix', 'DAAP', 'DCC', 'DHCPfwd',
    'DHCPv6', 'DNS', 'Distcc', 'FTP', 'Finger', 'GNUnet', 'GRE', 'Git', 'HKP', 'HTTP', 'HTTPS', 'ICPV2', 'ICQ',
    'IMAP', 'IMAPS', 'IPIP', 'IPP', 'IPsec', 'IPsecah', 'IPsecnat', 'IRC', 'Jetdirect', 'L2TP', 'LDAP', 'LDAPS',
    'MDNS', 'MSNP', 'MSSQL', 'Mail', 'Munin', 'MySQL', 'NNTP', 'NNTPS', 'NTP', 'NeighborDiscovery', 'OSPF',
    'OpenVPN', 'PCA', 'POP3', 'POP3S', 'PPtP', 'Ping', 'PostgreSQL', 'Printer', 'RDP', 'RIP', 'RNDC', 'Razor',
    'Rdate', 'Rsync', 'SANE', 'SMB', 'SMBswat', 'SMTP', 'SMTPS', 'SNMP', 'SPAMD', 'SPICEproxy', 'SSH', 'SVN',
    'SixXS', 'Squid', 'Submission', 'Syslog', 'TFTP', 'Telnet', 'Telnets', 'Time', 'Trcrt', 'VNC', 'VNCL', 'Web',
    'Webcache', 'Webmin', 'Whois',
  ].map((m) => [m.toLowerCase(), m]),
);

/** Render one rule, or throw with every problem it has. */
export function renderRule(rule: RuleSpec, context: RuleEnv | RuleContext = 'cluster'): string {
  const checked = checkRule(rule, typeof context === 'string' ? { env: context } : context);
  if (checked.problems.length > 0) {
    throw new PhoenixError(`invalid firewall rule: ${checked.problems.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join('; ')}`);
  }
  return checked.line;
}

/** The rule line pve-firewall would read, and why it would not (empty when it would). */
export function checkRule(rule: RuleSpec, context: RuleContext): CheckedRule {
  const problems: RuleProblem[] = [];
  const problem = (field: string, message: string): void => {
    problems.push({ field, message });
  };
  const guest = context.env === 'vm' || context.env === 'ct';

  const type = String(rule.type ?? '').toLowerCase();
  const allowedTypes = guest ? ['in', 'out', 'group'] : ['in', 'out', 'forward', 'group'];
  if (!allowedTypes.includes(type)) {
    problem('type', type === 'forward' ? 'forward rules are not allowed in a guest firewall' : `expected one of ${allowedTypes.join(', ')}, got ${JSON.stringify(rule.type)}`);
  }

  let head: string;
  if (type === 'group') {
    const name = String(rule.action ?? '');
    if (!GROUP_NAME.test(name) || name.length > MAX_GROUP_NAME) {
      problem('action', `security group name ${JSON.stringify(name)} must match ${NAME} and have at most ${MAX_GROUP_NAME} characters`);
    } else if (context.cluster && !context.cluster.groups.has(name)) {
      problem('action', `no security group ${JSON.stringify(name)} in cluster.fw${context.cluster.groups.has(name.toLowerCase()) ? ' (pve-firewall keys groups in lower case; write it in lower case)' : ''}`);
    }
    for (const field of ['macro', 'proto', 'source', 'dest', 'port', 'sport', 'icmp_type', 'log'] as const) {
      if (present(rule[field])) problem(field, 'a security-group rule takes only an interface (-i); set this in the group');
    }
    head = `GROUP ${name}`;
  } else {
    const action = String(rule.action ?? '').toUpperCase();
    if (!ACTIONS.has(action)) problem('action', `expected ACCEPT, DROP or REJECT, got ${JSON.stringify(rule.action)}`);
    if (type === 'forward' && action === 'REJECT') problem('action', 'REJECT is not allowed on the forward chain');
    let verb = action;
    if (present(rule.macro)) {
      const macro = MACROS.get(rule.macro.toLowerCase());
      if (!macro) problem('macro', `unknown macro ${JSON.stringify(rule.macro)}`);
      verb = `${macro ?? rule.macro}(${action})`;
    }
    head = `${type.toUpperCase()} ${verb}`;
  }

  const parts: string[] = [head];
  if (present(rule.iface)) {
    const iface = guestInterface(rule.iface, context, problem);
    parts.push(`-i ${iface}`);
  }

  if (type !== 'group') {
    const proto = present(rule.proto) ? rule.proto : undefined;
    let version: 4 | 6 | undefined;
    const setVersion = (v: 4 | 6 | undefined, field: string): void => {
      if (v === undefined) return;
      if (version !== undefined && v !== version) problem(field, 'mixes IPv4 and IPv6 in one rule');
      else version = v;
    };
    if (proto !== undefined) {
      if (!Object.hasOwn(PROTOCOL_NUMBERS, proto) && proto !== 'icmpv6' && !PROTOCOL_IDS.has(proto)) problem('proto', `unknown protocol ${JSON.stringify(proto)}`);
      if (proto === 'icmp') setVersion(4, 'proto');
      if (proto === 'icmpv6' || proto === 'ipv6-icmp') setVersion(6, 'proto');
    }
    const icmp = proto !== undefined && ICMP_PROTOCOLS.has(proto);

    for (const field of ['source', 'dest'] as const) {
      const value = rule[field];
      if (!present(value)) continue;
      const parsed = parseAddressList(value);
      if (typeof parsed === 'string') problem(field, parsed);
      else {
        setVersion(parsed.kind === 'list' ? parsed.version : undefined, field);
        const missing = referenceProblem(parsed, context);
        if (missing) problem(field, missing);
      }
      parts.push(`-${field} ${value}`);
    }
    if (proto !== undefined) parts.push(`-p ${proto}`);
    for (const [field, flag] of [['port', 'dport'], ['sport', 'sport']] as const) {
      const value = rule[field];
      if (!present(value)) continue;
      if (proto === undefined) problem('proto', `required when ${field} is set`);
      else if (icmp) problem(field, `ICMP has no ports${field === 'port' ? '; use icmp_type' : ''}`);
      else if (!PORT_PROTOCOLS.has(proto)) problem(field, `protocol ${proto} has no ports`);
      const bad = portProblem(value);
      if (bad) problem(field, bad);
      parts.push(`-${flag} ${value}`);
    }
    if (present(rule.log)) {
      if (!LOG_LEVELS.has(rule.log)) problem('log', `expected one of ${[...LOG_LEVELS].join(', ')}, got ${JSON.stringify(rule.log)}`);
      parts.push(`-log ${rule.log}`);
    }
    if (present(rule.icmp_type)) {
      const names = proto === 'icmp' ? ICMP_TYPES : ICMPV6_TYPES;
      if (!icmp) problem('proto', 'icmp_type needs proto icmp, icmpv6 or ipv6-icmp');
      else if (!names.has(rule.icmp_type)) problem('icmp_type', `unknown ${proto} type ${JSON.stringify(rule.icmp_type)}`);
      parts.push(`-icmp-type ${rule.icmp_type}`);
    }
  }

  if (rule.comment !== undefined) {
    // pve-firewall ends the rule at the first '#' and trims the comment; a
    // line break would start a new (broken) line in the file.
    if (/[\u0000-\u001f\u007f]/.test(rule.comment)) problem('comment', 'must be one line without control characters');
    const comment = rule.comment.trim();
    if (comment !== '') parts.push(`# ${comment}`);
  }
  for (const part of parts.slice(1)) {
    // Every value is one word to pve-firewall's parser: a space would shift
    // the rest of the line into the next option or make it unparsable.
    if (!part.startsWith('#') && /\s/.test(part.slice(part.indexOf(' ') + 1))) {
      problems.push({ field: fieldOfFlag(part), message: 'must not contain spaces' });
    }
  }
  const line = `${rule.enable === false ? '|' : ''}${parts.join(' ')}`;
  return { line, problems: dedupe(problems) };
}

function present(value: string | undefined): value is string {
  return value !== undefined && value !== '';
}

function fieldOfFlag(part: string): string {
  const flag = part.slice(1, part.indexOf(' '));
  return ({ i: 'iface', p: 'proto', dport: 'port', 'icmp-type': 'icmp_type' } as Record<string, string>)[flag] ?? flag;
}

function dedupe(problems: RuleProblem[]): RuleProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.field}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function guestInterface(iface: string, context: RuleContext, problem: (field: string, message: string) => void): string {
  if (context.env !== 'vm' && context.env !== 'ct') {
    if (!IFACE.test(iface)) problem('iface', `invalid interface name ${JSON.stringify(iface)}`);
    return iface;
  }
  if (/^net\d+$/.test(iface)) return iface;
  // Inside a guest file pve-firewall wants the Proxmox device (net0), not
  // the name the container gives it (eth0).
  const mapped = context.interfaces?.[iface];
  if (mapped) return mapped;
  problem('iface', `a guest rule names its interface as netN (net0, net1…)${context.env === 'ct' ? ' or by the container name in network_config' : ''}, got ${JSON.stringify(iface)}`);
  return iface;
}

// ---------------------------------------------------------------- addresses

export type AddressList =
  | { kind: 'ipset'; name: string; scope: string }
  | { kind: 'alias'; name: string; scope: string }
  | { kind: 'list'; version: 4 | 6; items: AddressItem[] };

export interface AddressItem {
  text: string;
  version: 4 | 6;
  first: bigint;
  last: bigint;
}

/** pve-firewall's parse_address_list: an ipset, an alias, or IPs/CIDRs (one range at most). Returns the problem as a string. */
export function parseAddressList(value: string): AddressList | string {
  const ipset = /^\+(\S+)$/.exec(value);
  if (ipset) {
    if (value.length > MAX_IPSET_REF) return 'ipset name too long';
    const m = new RegExp(`^(guest/|dc/|sdn/)?(${NAME})$`).exec(ipset[1] as string);
    if (!m) return `invalid ipset name ${JSON.stringify(value)}`;
    return { kind: 'ipset', scope: m[1] ?? '', name: m[2] as string };
  }
  const alias = new RegExp(`^(dc/|guest/)?(${NAME})$`).exec(value);
  if (alias) {
    if (value.length > MAX_ALIAS_NAME) return 'alias name too long';
    return { kind: 'alias', scope: alias[1] ?? '', name: alias[2] as string };
  }
  const elements = value.split(',');
  if (elements.some((e) => e === '')) return 'extraneous commas in list';
  const items: AddressItem[] = [];
  let ranges = 0;
  for (const element of elements) {
    const item = parseAddressItem(element);
    if (typeof item === 'string') return item;
    if (element.includes('-')) ranges++;
    const first = items[0];
    if (first && first.version !== item.version) return `mixes IPv4 and IPv6 addresses in ${JSON.stringify(value)}`;
    items.push(item);
  }
  if (ranges > 0 && items.length > 1) return 'a range cannot be part of a list';
  return { kind: 'list', version: (items[0] as AddressItem).version, items };
}

function parseAddressItem(text: string): AddressItem | string {
  const range = /^([^-]+)-([^-]+)$/.exec(text);
  if (range) {
    const a = parseIp(range[1] as string);
    const b = parseIp(range[2] as string);
    if (!a || !b) return `invalid address ${JSON.stringify(text)}`;
    if (a.version !== b.version) return `mixes IPv4 and IPv6 in range ${JSON.stringify(text)}`;
    if (a.value > b.value) return `range ${JSON.stringify(text)} begins after it ends`;
    return { text, version: a.version, first: a.value, last: b.value };
  }
  const [ip = '', prefix, extra] = text.split('/');
  if (extra !== undefined) return `invalid address ${JSON.stringify(text)}`;
  const parsed = parseIp(ip);
  if (!parsed) return `invalid address ${JSON.stringify(text)}`;
  const bits = parsed.version === 4 ? 32 : 128;
  if (prefix === undefined) return { text, version: parsed.version, first: parsed.value, last: parsed.value };
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits) return `invalid prefix length in ${JSON.stringify(text)}`;
  const hostBits = BigInt(bits - Number(prefix));
  const hostMask = (1n << hostBits) - 1n;
  // Net::IP, which pve-firewall uses, refuses a CIDR with host bits set.
  if ((parsed.value & hostMask) !== 0n) {
    const network = formatIp(parsed.value & ~hostMask, parsed.version);
    return `${text} is not a network address (the network is ${network}/${prefix}); pve-firewall rejects it`;
  }
  return { text, version: parsed.version, first: parsed.value, last: parsed.value | hostMask };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseIp(text: string): { version: 4 | 6; value: bigint } | undefined {
  const v4 = IPV4.exec(text);
  if (v4) return { version: 4, value: v4.slice(1, 5).reduce((acc, octet) => (acc << 8n) | BigInt(octet), 0n) };
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let groups = text;
  const embedded = /^(.*:)((?:\d+\.){3}\d+)$/.exec(text);
  if (embedded) {
    const v4value = parseIp(embedded[2] as string);
    if (!v4value || v4value.version !== 4) return undefined;
    groups = `${embedded[1]}${(v4value.value >> 16n).toString(16)}:${(v4value.value & 0xffffn).toString(16)}`;
  }
  const [left = '', right] = groups.split('::');
  const head = left === '' ? [] : left.split(':');
  const tail = right === undefined || right === '' ? [] : right.split(':');
  const fill = right === undefined ? [] : new Array<string>(8 - head.length - tail.length).fill('0');
  const all = [...head, ...fill, ...tail];
  if (all.length !== 8) return undefined;
  return { version: 6, value: all.reduce((acc, group) => (acc << 16n) | BigInt(`0x${group}`), 0n) };
}

function formatIp(value: bigint, version: 4 | 6): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  return groups.join(':');
}

function referenceProblem(parsed: AddressList, context: RuleContext): string | undefined {
  if (parsed.kind === 'list' || !context.cluster) return undefined;
  const cluster = context.cluster;
  const local = context.local;
  if (parsed.kind === 'ipset') {
    if (parsed.scope === 'sdn/') return undefined; // SDN ipsets are made by PVE itself
    if (cluster.ipsets.has(parsed.name) || local?.ipsets.has(parsed.name)) return undefined;
    const lower = parsed.name.toLowerCase();
    const caseHint = cluster.ipsets.has(lower) || local?.ipsets.has(lower) ? ' (pve-firewall keys ipsets in lower case; write it in lower case)' : '';
    return `no ipset ${JSON.stringify(parsed.name)} in ${local ? 'cluster.fw or this guest file' : 'cluster.fw'}${caseHint}`;
  }
  const name = parsed.name.toLowerCase();
  const inCluster = cluster.aliases.has(name);
  const inLocal = local?.aliases.has(name) ?? false;
  const found = parsed.scope === 'dc/' ? inCluster : parsed.scope === 'guest/' ? inLocal : inCluster || inLocal;
  return found ? undefined : `no alias ${JSON.stringify(parsed.name)} in ${parsed.scope === 'guest/' ? 'this guest file' : parsed.scope === 'dc/' || !local ? 'cluster.fw' : 'cluster.fw or this guest file'} (and it is no IP address)`;
}

// ---------------------------------------------------------------- ports

/** pve-firewall's parse_port_name_number_or_range; the problem, or undefined. */
export function portProblem(spec: string): string | undefined {
  const items = spec.split(',');
  if (items.some((i) => i === '')) return 'extraneous commas in list';
  let numbers = 0;
  for (const item of items) {
    const range = /^(\d+):(\d+)$/.exec(item);
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])];
      if (a > 65535 || b > 65535) return `invalid port in ${JSON.stringify(item)}`;
      if (a > b) return `backwards range ${JSON.stringify(item)}; write ${b}:${a}`;
      numbers += 2;
    } else if (/^\d+$/.test(item)) {
      if (Number(item) > 65535) return `invalid port ${JSON.stringify(item)}`;
      numbers += 1;
    } else if (!SERVICES.has(item)) {
      return `unknown service name ${JSON.stringify(item)}; use the port number`;
    }
  }
  // pve-firewall counts a range as two (iptables multiport's own limit).
  if (numbers > MAX_PORT_NUMBERS) return `too many ports: ${numbers} numbers (a range counts 2), pve-firewall allows ${MAX_PORT_NUMBERS}; split the rule`;
  return undefined;
}

// ================================================================ files

/** First line of every file Phoenix writes; a file without it belongs to someone else. */
export const MARKER = '# Generated by Phoenix (hypervisor_feature_setup_firewall) from the manifests.';
const MARKER_NOTE = ' Delete this line to manage the file by hand.';

export type Ownership = 'absent' | 'empty' | 'owned' | 'foreign';

/** Whose a firewall file is. An empty file (the bash toolkit truncated disabled guests' files) holds nothing to lose. */
export function ownership(current: string | undefined): Ownership {
  if (current === undefined) return 'absent';
  if (current.trim() === '') return 'empty';
  return current.split('\n', 1)[0]?.startsWith(MARKER) ? 'owned' : 'foreign';
}

export type FileKind = 'cluster' | 'host' | 'guest';

export interface PlannedFile {
  kind: FileKind;
  /** Guest id of a guest file. */
  id?: string;
  path: string;
  /** The whole new content: Phoenix's part plus the sections kept from the current file. */
  content: string;
  /** 1-based line → the manifest rule it came from, to name it when pve-firewall complains. */
  origins: ReadonlyMap<number, string>;
  ownership: Ownership;
  /** What makes the file unwritable (rules pve-firewall would skip). */
  issues: ConfigIssue[];
  warnings: ConfigWarning[];
}

export interface FirewallPlan {
  files: PlannedFile[];
  /** Guest ids that get a file; any other Phoenix-owned <id>.fw is stale. */
  guestIds: ReadonlySet<string>;
  firewallDir: string;
}

export interface PlanOptions {
  /** Root of the cluster filesystem (/etc/pve, PHOENIX_PVE_DIR). */
  pveDir: string;
  /** This host's node name (host.fw lives under nodes/<node>/). */
  node: string;
  /** The current content of a file, undefined when there is none. */
  read: (file: string) => string | undefined;
}

interface RuleSource {
  rule: RuleSpec;
  file: string;
  /** JSON pointer of the rule in `file`. */
  pointer: string;
}

interface Kept {
  /** Sections that go before [RULES] (aliases, ipsets), verbatim. */
  before: string[];
  /** Sections that go after it (security groups). */
  after: string[];
  names: { aliases: Set<string>; ipsets: Set<string>; groups: Set<string> };
}

/** The firewall files the manifests describe. Pure: current files come through `read`. */
export function planFirewall(config: PhoenixConfig, options: PlanOptions): FirewallPlan {
  const firewallDir = path.join(options.pveDir, 'firewall');
  const clusterPath = path.join(firewallDir, 'cluster.fw');
  const clusterCurrent = options.read(clusterPath);
  const clusterKept = keptSections(clusterCurrent, 'cluster');
  const known = knownAddresses(config);
  const hvFile = config.paths.hypervisor;
  const firewall = config.hypervisor.firewall;
  const files: PlannedFile[] = [];

  // ---- cluster.fw
  {
    const issues: ConfigIssue[] = [];
    const warnings: ConfigWarning[] = [];
    const policy = (key: 'default_input_policy' | 'default_output_policy'): string => {
      const value = firewall?.[key];
      if (value === undefined) issues.push({ file: hvFile, pointer: `/firewall/${key}`, message: 'required (DROP, ACCEPT or REJECT): the cluster-wide default policy' });
      return value ?? '';
    };
    const enabled = firewall?.enabled ?? true;
    if (!enabled) {
      warnings.push({ file: hvFile, pointer: '/firewall/enabled', message: 'false: cluster.fw says enable: 0, so PVE enforces none of the rules below (host and guests)' });
    }
    const options = [`enable: ${enabled ? 1 : 0}`, `policy_in: ${policy('default_input_policy')}`, `policy_out: ${policy('default_output_policy')}`];
    const sources: RuleSource[] = (firewall?.global_firewall_rules ?? []).map((rule, i) => ({ rule, file: hvFile, pointer: `/firewall/global_firewall_rules/${i}` }));
    const loopback: RuleSource = { rule: { type: 'in', action: 'ACCEPT', iface: 'lo', comment: 'host loopback' }, file: hvFile, pointer: '' };
    const context: RuleContext = { env: 'cluster', cluster: clusterKept.names };
    const body = renderRules([loopback, ...sources], context, issues, warnings, known);
    files.push(composeFile({ kind: 'cluster', path: clusterPath, current: clusterCurrent, title: 'cluster-wide rules', options, kept: clusterKept, body, issues, warnings }));
  }

  // ---- nodes/<node>/host.fw: the only host file PVE reads (the bash wrote <hostname>.fw)
  {
    const hostPath = path.join(options.pveDir, 'nodes', options.node, 'host.fw');
    const current = options.read(hostPath);
    const none: Kept = { before: [], after: [], names: emptyNames() };
    files.push(composeFile({ kind: 'host', path: hostPath, current, title: `host ${options.node}`, options: ['enable: 1'], kept: none, body: { lines: [], origins: [] }, issues: [], warnings: [] }));
  }

  // ---- <id>.fw for every guest with a firewall block
  const guestIds = new Set<string>();
  const guests: Array<{ id: string; kind: 'ct' | 'vm'; name: string; firewall: GuestFirewall; file: string; base: string; config: LxcConfig | VmConfig }> = [];
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id] as LxcConfig;
    if (ct.firewall) guests.push({ id, kind: 'ct', name: ct.name, firewall: ct.firewall, file: config.paths.lxc, base: `/lxc_configs/${escapePointer(id)}`, config: ct });
  }
  config.vm.vms.forEach((vm, i) => {
    if (vm.firewall) guests.push({ id: String(vm.vmid), kind: 'vm', name: vm.name, firewall: vm.firewall, file: config.paths.vm, base: `/vms/${i}`, config: vm });
  });
  for (const guest of guests) {
    const issues: ConfigIssue[] = [];
    const warnings: ConfigWarning[] = [];
    if (guestIds.has(guest.id)) {
      issues.push({ file: guest.file, pointer: guest.base, message: `guest ${guest.id} is defined twice (a container and a VM share one id space and one ${guest.id}.fw)` });
    }
    guestIds.add(guest.id);
    const guestPath = path.join(firewallDir, `${guest.id}.fw`);
    const current = options.read(guestPath);
    const kept = keptSections(current, 'guest');
    const label = `${guest.kind === 'ct' ? 'CT' : 'VM'} ${guest.id}`;
    const sources: RuleSource[] = [];
    const interfaces: Record<string, string> = {};
    if (guest.kind === 'ct') {
      const ct = guest.config as LxcConfig;
      interfaces[ct.network_config.name] = 'net0';
      if (ct.secondary_network_config) interfaces[ct.secondary_network_config.name] = 'net1';
      if (ct.public_interface?.enabled === true) {
        if (!ct.secondary_network_config) {
          issues.push({ file: guest.file, pointer: `${guest.base}/public_interface/enabled`, message: 'the public interface is net1, but there is no secondary_network_config' });
        } else {
          for (const [port, what] of [['80', 'HTTP'], ['443', 'HTTPS']] as const) {
            sources.push({ rule: { type: 'in', action: 'ACCEPT', iface: 'net1', proto: 'tcp', port, log: 'nolog', comment: `public ${what} on ${ct.secondary_network_config.name}` }, file: guest.file, pointer: `${guest.base}/public_interface` });
          }
        }
      }
      for (const [net, nc] of [['net0', ct.network_config], ['net1', ct.secondary_network_config]] as const) {
        if (nc && guest.firewall.enabled && (nc.firewall === false || nc.type === 'macvlan')) {
          warnings.push({ file: guest.file, pointer: `${guest.base}/${net === 'net0' ? 'network_config' : 'secondary_network_config'}`, message: `${label}'s ${net} has the firewall off (${nc.type === 'macvlan' ? 'macvlan' : 'firewall: false'}), so its rules do not filter traffic on ${nc.name}` });
        }
      }
    }
    (guest.firewall.rules ?? []).forEach((rule, i) => sources.push({ rule, file: guest.file, pointer: `${guest.base}/firewall/rules/${i}` }));
    if (!guest.firewall.enabled && (guest.firewall.rules?.length ?? 0) > 0) {
      warnings.push({ file: guest.file, pointer: `${guest.base}/firewall/enabled`, message: `false: ${label}'s ${guest.firewall.rules?.length} rules are written but PVE enforces none of them` });
    }
    const context: RuleContext = { env: guest.kind, cluster: clusterKept.names, local: kept.names, interfaces };
    const body = renderRules(sources, context, issues, warnings, known);
    files.push(
      composeFile({ kind: 'guest', id: guest.id, path: guestPath, current, title: `${label} (${guest.name})`, options: [`enable: ${guest.firewall.enabled ? 1 : 0}`], kept, body, issues, warnings }),
    );
  }
  const mesh = meshWarning(config);
  if (mesh) files.find((f) => f.kind === 'guest' && f.id === mesh.id)?.warnings.push(mesh.warning);
  return { files, guestIds, firewallDir };
}

interface RenderedBody {
  lines: string[];
  /** Per line, the manifest pointer it came from ('' for lines Phoenix adds itself). */
  origins: string[];
}

function renderRules(sources: RuleSource[], context: RuleContext, issues: ConfigIssue[], warnings: ConfigWarning[], known: KnownAddresses): RenderedBody {
  const body: RenderedBody = { lines: [], origins: [] };
  for (const { rule, file, pointer } of sources) {
    const checked = checkRule(rule, context);
    for (const p of checked.problems) {
      issues.push({ file, pointer: p.field && pointer ? `${pointer}/${p.field}` : pointer, message: `${p.message} (rule: ${checked.line})` });
    }
    if (pointer) warnings.push(...ruleWarnings(rule, file, pointer, known, context.env));
    body.lines.push(checked.line);
    body.origins.push(pointer);
  }
  return body;
}

interface ComposeInput {
  kind: FileKind;
  id?: string;
  path: string;
  current: string | undefined;
  title: string;
  options: string[];
  kept: Kept;
  body: RenderedBody;
  issues: ConfigIssue[];
  warnings: ConfigWarning[];
}

/** Lay a file out the way pve-firewall writes its own: options, aliases/ipsets, rules, groups. */
function composeFile(input: ComposeInput): PlannedFile {
  const lines: string[] = [`${MARKER}${MARKER_NOTE}`, `# ${input.title}`, '', '[OPTIONS]', '', ...input.options, ''];
  for (const section of input.kept.before) lines.push(...section.split('\n'), '');
  const origins = new Map<number, string>();
  if (input.kind !== 'host' || input.body.lines.length > 0) {
    lines.push('[RULES]', '');
    input.body.lines.forEach((line, i) => {
      lines.push(line);
      const origin = input.body.origins[i];
      if (origin) origins.set(lines.length, origin);
    });
    lines.push('');
  }
  for (const section of input.kept.after) lines.push(...section.split('\n'), '');
  while (lines.at(-1) === '') lines.pop();
  const planned: PlannedFile = {
    kind: input.kind,
    path: input.path,
    content: `${lines.join('\n')}\n`,
    origins,
    ownership: ownership(input.current),
    issues: input.issues,
    warnings: input.warnings,
  };
  if (input.id !== undefined) planned.id = input.id;
  return planned;
}

function emptyNames(): Kept['names'] {
  return { aliases: new Set(), ipsets: new Set(), groups: new Set() };
}

/**
 * The sections of a current file Phoenix does not generate but rules may
 * name: [ALIASES], [IPSET x] (kept before [RULES]: pve-firewall resolves
 * names while it reads, top to bottom) and, in cluster.fw, [group x].
 */
export function keptSections(current: string | undefined, kind: 'cluster' | 'guest'): Kept {
  const kept: Kept = { before: [], after: [], names: emptyNames() };
  if (current === undefined) return kept;
  let section: { text: string[]; where: 'before' | 'after' } | undefined;
  const flush = (): void => {
    if (!section) return;
    while (section.text.at(-1)?.trim() === '') section.text.pop();
    kept[section.where].push(section.text.join('\n'));
    section = undefined;
  };
  let inAliases = false;
  for (const raw of current.split('\n')) {
    const line = raw.trim();
    const header = /^\[([^\]]+)\]\s*(?:#.*)?$/.exec(line);
    if (header) {
      flush();
      inAliases = false;
      const [word = '', name] = (header[1] as string).trim().split(/\s+/);
      const lower = word.toLowerCase();
      if (lower === 'aliases' && name === undefined) {
        section = { text: [line], where: 'before' };
        inAliases = true;
      } else if (lower === 'ipset' && name !== undefined) {
        section = { text: [line], where: 'before' };
        kept.names.ipsets.add(name.toLowerCase());
      } else if (lower === 'group' && name !== undefined && kind === 'cluster') {
        section = { text: [line], where: 'after' };
        kept.names.groups.add(name.toLowerCase());
      }
      continue;
    }
    if (!section) continue;
    if (line === '' && section.text.length === 1) continue; // the blank line PVE puts after a header
    section.text.push(raw.replace(/\s+$/, ''));
    if (inAliases && line !== '' && !line.startsWith('#')) {
      const alias = /^(\S+)\s/.exec(line);
      if (alias) kept.names.aliases.add((alias[1] as string).toLowerCase());
    }
  }
  flush();
  return kept;
}

// ---------------------------------------------------------------- advice (warnings, never errors)

interface KnownAddresses {
  /** Single addresses the manifests give to the host, guests, gateways and name servers. */
  hosts: Set<bigint>;
  /** Subnets whose members the manifests are expected to name. */
  subnets: Array<{ first: bigint; last: bigint }>;
  /** Static guest addresses → "CT 101". */
  guests: Map<bigint, string>;
  /** The Proxmox host's own addresses (its bridge addresses). */
  own: Set<bigint>;
}

function knownAddresses(config: PhoenixConfig): KnownAddresses {
  const known: KnownAddresses = { hosts: new Set(), subnets: [], guests: new Map(), own: new Set() };
  const host = (value: string | undefined, owner?: string): void => {
    for (const part of (value ?? '').split(/[\s,]+/)) {
      const ip = parseIp(part.split('/')[0] ?? '');
      if (ip?.version !== 4) continue;
      known.hosts.add(ip.value);
      if (owner === 'host') known.own.add(ip.value);
      else if (owner !== undefined) known.guests.set(ip.value, owner);
    }
  };
  const subnet = (value: string | undefined): void => {
    if (value === undefined) return;
    const [ip = '', prefix] = value.split('/');
    const parsed = parseIp(ip);
    if (parsed?.version !== 4 || prefix === undefined) return;
    const mask = (1n << BigInt(32 - Number(prefix))) - 1n;
    known.subnets.push({ first: parsed.value & ~mask, last: parsed.value | mask });
  };
  const network = config.hypervisor.network;
  host(network?.interfaces?.address, 'host');
  subnet(network?.interfaces?.address);
  host(network?.interfaces?.gateway);
  for (const ns of network?.interfaces?.dns_nameservers ?? []) host(ns);
  host(network?.nfs_server);
  host(network?.portainer_server_ip);
  host(network?.fallback_dns);
  host(network?.internal_bridge?.gateway, 'host');
  subnet(network?.internal_bridge?.subnet);
  subnet(network?.default_subnet);
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id] as LxcConfig;
    for (const nc of [ct.network_config, ct.secondary_network_config]) {
      if (!nc) continue;
      host(nc.ip, `CT ${id}`);
      subnet(nc.ip);
      host(nc.gw);
      host(nc.nameserver);
      host(nc.nameservers);
    }
  }
  for (const vm of config.vm.vms) {
    host(vm.network_config?.ip, `VM ${vm.vmid}`);
    subnet(vm.network_config?.ip);
    host(vm.network_config?.gw);
    host(vm.network_config?.nameserver);
  }
  return known;
}

function ruleWarnings(rule: RuleSpec, file: string, pointer: string, known: KnownAddresses, env: RuleEnv): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  // cluster.fw's [RULES] filter what enters and leaves the host itself;
  // bridged traffic between guests never passes those chains.
  const inward = String(rule.type).toLowerCase() === 'in' ? rule.dest : String(rule.type).toLowerCase() === 'out' ? rule.source : undefined;
  if (env === 'cluster' && present(inward)) {
    const parsed = parseAddressList(inward);
    if (typeof parsed !== 'string' && parsed.kind === 'list') {
      const owners = parsed.items.map((item) => (item.first === item.last && !known.own.has(item.first) ? known.guests.get(item.first) : undefined));
      if (owners.every((o) => o !== undefined)) {
        const files = [...new Set(owners.map((o) => `${(o as string).split(' ')[1]}.fw`))].join(', ');
        warnings.push({ file, pointer: `${pointer}/${rule.type === 'in' ? 'dest' : 'source'}`, message: `${inward} is ${[...new Set(owners)].join(', ')}, not the host: a cluster.fw rule filters only the host's own traffic, so this one never matches guest traffic (${files} does)` });
      }
    }
  }
  for (const field of ['source', 'dest'] as const) {
    const value = rule[field];
    if (!present(value)) continue;
    const parsed = parseAddressList(value);
    if (typeof parsed === 'string' || parsed.kind !== 'list') continue;
    for (const item of parsed.items) {
      if (item.version !== 4 || item.first !== item.last) continue;
      const inKnownSubnet = known.subnets.some((s) => item.first >= s.first && item.first <= s.last);
      if (inKnownSubnet && !known.hosts.has(item.first)) {
        warnings.push({ file, pointer: `${pointer}/${field}`, message: `${item.text} is in a Phoenix subnet but belongs to no guest or host in the manifests: a stale address?` });
      }
    }
  }
  if (String(rule.action).toUpperCase() === 'ACCEPT' && String(rule.type).toLowerCase() !== 'group' && !present(rule.proto) && !present(rule.macro)) {
    warnings.push({ file, pointer, message: `accepts every protocol and port${present(rule.source) ? ` from ${rule.source}` : ''}${present(rule.dest) ? ` to ${rule.dest}` : ''}` });
  }
  return warnings;
}

/**
 * The gateway reaches Traefik's mTLS entrypoint in the hybrid and mtls
 * modes of gateway.mode (docs/pki-and-gateway.md). When the Traefik guest filters its input, one of its rules
 * must let the gateway in on the mesh port, or every proxied request dies.
 * Guests are found from the manifests: Traefik by its `traefik` feature,
 * the gateway as the guest of the client certificate gateway.client_certificate names.
 */
function meshWarning(config: PhoenixConfig): { id: string; warning: ConfigWarning } | undefined {
  const gateway = config.hypervisor.gateway;
  if (!gateway || gateway.mode === 'passthrough' || gateway.client_certificate === undefined) return undefined;
  let entry;
  try {
    entry = fs.existsSync(config.paths.certificates) ? config.certificates.find((c) => c.common_name === gateway.client_certificate) : undefined;
  } catch (err) {
    // Advice only: a broken certificate manifest is its own script's business.
    debug(`mesh rule check skipped: ${(err as Error).message}`);
    return undefined;
  }
  if (entry?.guest_id === undefined) return undefined;
  const gatewayAddresses = guestAddresses(config, String(entry.guest_id));
  const port = BigInt(gateway.mesh_port ?? 8443);
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id] as LxcConfig;
    if (!ct.features?.includes('traefik') || !ct.firewall?.enabled || id === String(entry.guest_id)) continue;
    const own = guestAddresses(config, id);
    const admits = (ct.firewall.rules ?? []).some((rule) => admitsMesh(rule, gatewayAddresses, own, port));
    if (!admits) {
      const gwText = gatewayAddresses.map((a) => formatIp(a, 4)).join(', ') || 'no static address';
      return {
        id,
        warning: {
          file: config.paths.lxc,
          pointer: `/lxc_configs/${escapePointer(id)}/firewall/rules`,
          message: `no rule admits the gateway (guest ${entry.guest_id}: ${gwText}) on tcp/${port}, Traefik's mTLS mesh entrypoint: proxied requests would be dropped`,
        },
      };
    }
  }
  return undefined;
}

function guestAddresses(config: PhoenixConfig, id: string): bigint[] {
  const guest = config.guest(id);
  if (!guest) return [];
  const raw = guest.kind === 'lxc' ? [guest.config.network_config.ip, guest.config.secondary_network_config?.ip] : [guest.config.network_config?.ip];
  return raw.flatMap((value) => {
    const ip = parseIp((value ?? '').split('/')[0] ?? '');
    return ip?.version === 4 ? [ip.value] : [];
  });
}

function admitsMesh(rule: FirewallRule, from: bigint[], to: bigint[], port: bigint): boolean {
  if (rule.type !== 'in' || rule.action !== 'ACCEPT' || present(rule.macro)) return false;
  if (present(rule.proto) && rule.proto !== 'tcp' && rule.proto !== '6') return false;
  if (present(rule.port) && !portCovers(rule.port, port)) return false;
  return addressCovers(rule.source, from) && addressCovers(rule.dest, to);
}

function portCovers(spec: string, port: bigint): boolean {
  return spec.split(',').some((item) => {
    const [a, b = a] = item.split(':');
    return /^\d+$/.test(a ?? '') && BigInt(a as string) <= port && port <= BigInt(b as string);
  });
}

/** Whether a source/dest value lets one of `addresses` through; aliases and ipsets are given the benefit of the doubt. */
function addressCovers(value: string | undefined, addresses: bigint[]): boolean {
  if (!present(value)) return true;
  const parsed = parseAddressList(value);
  if (typeof parsed === 'string') return false;
  if (parsed.kind !== 'list') return true;
  return parsed.items.some((item) => item.version === 4 && addresses.some((a) => item.first <= a && a <= item.last));
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

// ================================================================ apply

export interface ApplyOptions {
  /** Overwrite or delete firewall files that carry no Phoenix marker. */
  force?: boolean;
  /** Only this guest's file (plus cluster.fw and host.fw). */
  only?: string;
  /** Run `pve-firewall compile` even when nothing changed (the script does; in-process callers need not). */
  alwaysValidate?: boolean;
  pveDir?: string;
  node?: string;
}

export interface FileResult {
  path: string;
  outcome: WriteOutcome | 'removed' | 'foreign';
}

export interface CompileProblem {
  /** The file as pve-firewall names it (/etc/pve/…). */
  shownPath: string;
  /** The file on this host. */
  path: string;
  line: number;
  text: string;
  /** The manifest rule the line came from, when Phoenix wrote it. */
  origin?: string;
  owned: boolean;
}

export interface ApplyResult {
  files: FileResult[];
  changed: boolean;
  restarted: boolean;
  problems: CompileProblem[];
}

const FILE_MODE = 0o640; // the only mode pmxcfs (/etc/pve) lets a file have outside priv/

const nodeNames = new Map<string, Promise<string>>();

/** This host's node name, asked once per process. */
function localNode(pveDir: string): Promise<string> {
  let name = nodeNames.get(pveDir);
  if (!name) {
    name = nodeName().then((n) => {
      // It becomes a path component under /etc/pve/nodes.
      if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(n)) throw new PhoenixError(`pvesh reports an unusable node name ${JSON.stringify(n)}`);
      return n;
    });
    nodeNames.set(pveDir, name);
    name.catch(() => nodeNames.delete(pveDir));
  }
  return name;
}

function readCurrent(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Bring the firewall files to the manifests' state: write what differs,
 * remove stale Phoenix files, check the result with `pve-firewall compile`,
 * and restart the firewall only when something changed.
 */
export async function applyFirewall(config: PhoenixConfig, options: ApplyOptions = {}): Promise<ApplyResult> {
  const pveDir = options.pveDir ?? resolveOptions().pveDir;
  const node = options.node ?? (await localNode(pveDir));
  const plan = planFirewall(config, { pveDir, node, read: readCurrent });
  const only = options.only;
  if (only !== undefined && !config.guest(only)) throw new PhoenixError(`no guest ${only} in the manifests`);
  const selected = plan.files.filter((f) => f.kind !== 'guest' || only === undefined || f.id === only);

  const issues = selected.flatMap((f) => f.issues);
  if (issues.length > 0) {
    throw new ManifestError(issues, { hint: 'pve-firewall would skip these rules; nothing was written' });
  }
  for (const file of selected) for (const w of file.warnings) warn(`${w.file}${w.pointer ? ` at ${w.pointer}` : ''}: ${w.message}`);

  const results: FileResult[] = [];
  const blocked: string[] = [];
  // Guests first, cluster.fw (with the master switch) last: the daemon may
  // pick files up at any moment and should never see new cluster rules
  // before the guest rules they go with.
  const order: FileKind[] = ['guest', 'host', 'cluster'];
  for (const kind of order) {
    for (const file of selected.filter((f) => f.kind === kind)) {
      if (file.ownership === 'foreign' && !options.force) {
        blocked.push(file.path);
        results.push({ path: file.path, outcome: 'foreign' });
        continue;
      }
      results.push({ path: file.path, outcome: writeFileAtomic(file.path, file.content, { mode: FILE_MODE }) });
    }
  }
  // Only Phoenix's own files are stale; a file of a guest the manifests do
  // not know belongs to whoever made it, even under --force.
  for (const stale of staleFiles(plan, only, readCurrent)) {
    if (stale.ownership !== 'owned') continue;
    const outcome = removeFile(stale.path);
    if (outcome === 'removed') results.push({ path: stale.path, outcome });
  }
  for (const file of blocked) {
    warn(`${file} has no Phoenix marker line: someone else manages it, so it was left as it is (run with --force to replace it; aliases, ipsets and groups in it are kept)`);
  }

  const changed = results.some((r) => r.outcome === 'created' || r.outcome === 'changed' || r.outcome === 'removed');
  let problems: CompileProblem[] = [];
  if (isDryRun()) {
    debug('dry-run: pve-firewall compile skipped (it would read the old files)');
  } else if (changed || options.alwaysValidate) {
    const compiled = await firewallCompile();
    const ownedPaths = new Map<string, PlannedFile>();
    for (const file of selected) if (results.some((r) => r.path === file.path && r.outcome !== 'foreign')) ownedPaths.set(file.path, file);
    problems = parseCompileOutput(`${compiled.stderr}\n${compiled.stdout}`, pveDir, node).map((p) => {
      const planned = ownedPaths.get(p.path);
      const origin = planned?.origins.get(p.line);
      return { ...p, owned: planned !== undefined, ...(origin ? { origin } : {}) };
    });
    for (const p of problems) {
      const where = `${p.shownPath} line ${p.line}${p.origin ? ` (from ${p.origin})` : ''}`;
      (p.owned ? error : warn)(`pve-firewall rejects ${where}: ${p.text}`);
    }
  }

  let restarted = false;
  if (changed) {
    await firewallRestart();
    restarted = true;
  }
  const counts = summarize(results);
  if (changed) success(`firewall files: ${counts}; pve-firewall ${isDryRun() ? 'would be ' : ''}restarted`);
  else info(`firewall unchanged (${counts}); no restart`);

  const rejected = problems.filter((p) => p.owned);
  if (rejected.length > 0) {
    throw new PhoenixError(`pve-firewall rejected ${rejected.length} line${rejected.length === 1 ? '' : 's'} Phoenix wrote`, {
      hint: 'this is a gap between Phoenix\'s checks and pve-firewall; please report it with the lines above',
    });
  }
  return { files: results, changed, restarted, problems };
}

/**
 * One guest's firewall file (and cluster.fw / host.fw when they differ),
 * for lxc-manager and vm-manager after they create or change a guest.
 */
export function applyGuestFirewall(config: PhoenixConfig, id: string | number, options: Omit<ApplyOptions, 'only'> = {}): Promise<ApplyResult> {
  return applyFirewall(config, { ...options, only: String(id) });
}

interface StaleFile {
  path: string;
  ownership: Ownership;
}

function staleFiles(plan: FirewallPlan, only: string | undefined, read: (file: string) => string | undefined): StaleFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(plan.firewallDir);
  } catch {
    return [];
  }
  const stale: StaleFile[] = [];
  for (const name of names.sort()) {
    const m = /^(\d+)\.fw$/.exec(name);
    if (!m || plan.guestIds.has(m[1] as string)) continue;
    if (only !== undefined && m[1] !== only) continue;
    const file = path.join(plan.firewallDir, name);
    stale.push({ path: file, ownership: ownership(read(file)) });
  }
  return stale;
}

function summarize(results: FileResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  const label: Record<string, string> = { created: 'created', changed: 'updated', unchanged: 'unchanged', removed: 'removed', foreign: 'left to their owner' };
  return [...counts].map(([k, n]) => `${n} ${label[k] ?? k}`).join(', ');
}

/**
 * The complaints of `pve-firewall compile` about files: `<file> (line N): msg`
 * for lines it cannot parse, `<file> (line N) - errors in rule parameters: <rule>`
 * followed by indented `  <param>: <msg>` lines for rules it skips.
 */
export function parseCompileOutput(output: string, pveDir: string, node: string): Omit<CompileProblem, 'owned' | 'origin'>[] {
  const problems: Omit<CompileProblem, 'owned' | 'origin'>[] = [];
  const lines = output.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\/etc\/pve\/\S+) \(line (\d+)\)(?::| -) (.*)$/.exec(lines[i] as string);
    if (!m) continue;
    const details: string[] = [];
    while (i + 1 < lines.length && /^\s+\S/.test(lines[i + 1] as string)) details.push((lines[++i] as string).trim());
    const shownPath = m[1] as string;
    const relative = shownPath.slice('/etc/pve/'.length).replace(/^local\//, `nodes/${node}/`);
    problems.push({
      shownPath,
      path: path.join(pveDir, relative),
      line: Number(m[2]),
      text: [m[3] as string, ...details].join('; '),
    });
  }
  return problems;
}
