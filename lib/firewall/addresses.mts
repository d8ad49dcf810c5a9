// Addresses and ports in firewall rules, as pve-firewall reads them: lists
// of addresses, ranges and CIDRs (or alias and ipset names), and port
// lists of numbers, ranges and service names.

import { isIPv6 } from 'node:net';
import { MAX_ALIAS_NAME, MAX_IPSET_REF, MAX_PORT_NUMBERS, NAME, type RuleContext, SERVICES } from './grammar.mts';

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

export function parseIp(text: string): { version: 4 | 6; value: bigint } | undefined {
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

export function formatIp(value: bigint, version: 4 | 6): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  return groups.join(':');
}

export function referenceProblem(parsed: AddressList, context: RuleContext): string | undefined {
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
