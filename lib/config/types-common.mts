// The manifests' shapes shared by several files: guest ids, firewall rules,
// a guest's Traefik service.

/** A guest id written as a string of digits ("101"), as in `dependencies` and `clone_from_ctid`. */
export type GuestId = string;

// ---------------------------------------------------------------- shared

export type FirewallRuleType = 'in' | 'out' | 'forward';
export type FirewallAction = 'ACCEPT' | 'DROP' | 'REJECT';

export interface FirewallRule {
  type: FirewallRuleType;
  action: FirewallAction;
  /** tcp, udp, icmp, icmpv6, ... or a protocol number. Required when `port`/`sport` is set. */
  proto?: string;
  /** Address, CIDR, range, alias or +ipset; comma-separated lists allowed. */
  source?: string;
  dest?: string;
  /** Destination port(s): "443", "80,443", "8000:8100". */
  port?: string;
  sport?: string;
  iface?: string;
  macro?: string;
  log?: 'emerg' | 'alert' | 'crit' | 'err' | 'warning' | 'notice' | 'info' | 'debug' | 'nolog';
  comment?: string;
}

export interface GuestFirewall {
  enabled: boolean;
  rules?: FirewallRule[];
}

export interface TraefikService {
  /** DNS label: the service is published as <name>.<domain_name>. */
  name: string;
  port: number;
  scheme?: 'http' | 'https';
}

export interface TestCase {
  name: string;
  type: string;
  path: string;
}
