// pve-firewall's grammar as data: what a rule line may say (actions,
// protocols, services, ICMP types, macros, name shapes and length limits),
// and the types of a rule and its context. rules.mts checks a whole rule
// against it; addresses.mts checks the address and port lists.

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

export const ACTIONS = new Set(['ACCEPT', 'DROP', 'REJECT']);
export const LOG_LEVELS = new Set(['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug', 'nolog']);
export const NAME = '[A-Za-z][A-Za-z0-9_-]+';
export const GROUP_NAME = new RegExp(`^${NAME}$`);
export const MAX_GROUP_NAME = 18;
export const MAX_ALIAS_NAME = 64;
export const MAX_IPSET_REF = 65;
export const MAX_PORT_NUMBERS = 15;
/** pve-common's pve-iface format. */
export const IFACE = /^[a-z][a-z0-9_]{1,20}([:.]\d+)?$/i;

/**
 * Protocols of Debian's /etc/protocols (what pve-firewall accepts by name
 * or number), plus `icmpv6`, which pve-firewall adds itself.
 */
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  ip: 0, icmp: 1, igmp: 2, ipencap: 4, tcp: 6, egp: 8, udp: 17, dccp: 33, ipv6: 41, 'ipv6-route': 43,
  'ipv6-frag': 44, rsvp: 46, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60,
  ospf: 89, ipip: 94, etherip: 97, pim: 103, ipcomp: 108, vrrp: 112, l2tp: 115, sctp: 132, udplite: 136,
};
export const PROTOCOL_IDS = new Set(Object.values(PROTOCOL_NUMBERS).map(String));
export const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'udplite', 'dccp', 'sctp', '6', '17', '136', '33', '132']);
export const ICMP_PROTOCOLS = new Set(['icmp', 'icmpv6', 'ipv6-icmp']);

/** Service names from Debian's /etc/services that are safe to use instead of numbers. */
export const SERVICES = new Set([
  'ftp-data', 'ftp', 'ssh', 'telnet', 'smtp', 'domain', 'tftp', 'http', 'kerberos', 'pop3', 'sunrpc',
  'ntp', 'netbios-ns', 'netbios-dgm', 'netbios-ssn', 'imap2', 'snmp', 'snmp-trap', 'bgp', 'ldap',
  'https', 'microsoft-ds', 'syslog', 'submission', 'ldaps', 'rsync', 'imaps', 'pop3s', 'openvpn',
  'nfs', 'mysql', 'postgresql', 'http-alt', 'bootps', 'bootpc', 'isakmp', 'ipsec-nat-t', 'xmpp-client',
]);

/** iptables' ICMP type names, and ip6tables' ICMPv6 ones, as pve-firewall lists them. */
export const ICMP_TYPES = new Set([
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
export const ICMPV6_TYPES = new Set([
  'destination-unreachable', 'no-route', 'communication-prohibited', 'beyond-scope', 'address-unreachable',
  'port-unreachable', 'failed-policy', 'reject-route', 'packet-too-big', 'time-exceeded',
  'ttl-zero-during-transit', 'ttl-zero-during-reassembly', 'parameter-problem', 'bad-header',
  'unknown-header-type', 'unknown-option', 'echo-request', 'echo-reply', 'router-solicitation',
  'router-advertisement', 'neighbor-solicitation', 'neighbour-solicitation', 'neighbor-advertisement',
  'neighbour-advertisement', 'redirect',
]);

/** pve-firewall's macros; the lookup is case-insensitive and writes the preferred spelling. */
export const MACROS = new Map(
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
