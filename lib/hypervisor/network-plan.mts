// What the host network should look like, from the manifest's `network`
// section alone (no host access): the checks of validateNetwork and the
// stanzas Phoenix writes into its block of /etc/network/interfaces.
//
// The layout is the bash's (hypervisor_feature_setup_macvlan.sh): the
// management bridge, VLAN-aware, on the physical NIC(s); two VLAN interfaces
// on it (macvlan_vlan_tag, default 10; public_vlan_tag, default 20); and an
// internal bridge without ports whose subnet is NATed out through the
// management bridge. What differs: the NIC comes from the manifest (or the
// bridge's current bridge-ports) instead of the hard-coded enp6s0; the
// internal address keeps the subnet's prefix instead of a fixed /24; the
// hooks are idempotent and never switch IP forwarding off for the whole host
// when the internal bridge goes down; no stanzas for NICs this host may not
// have (enp13s0, wlp7s0).

import type { ConfigIssue, HypervisorConfig } from '../config/types.mts';
import { MAX_IFNAME } from './interfaces-file.mts';

export const DEFAULT_BRIDGE = 'vmbr0';
export const DEFAULT_MACVLAN_TAG = 10;
export const DEFAULT_PUBLIC_TAG = 20;
export const SOURCE_LINE = 'source /etc/network/interfaces.d/*';

export interface Ipv4Cidr {
  address: number;
  prefix: number;
}

export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255)) return undefined;
  return parts.reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function parseCidr(text: string): Ipv4Cidr | undefined {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  if (!match) return undefined;
  const address = parseIpv4(match[1] as string);
  const prefix = Number(match[2]);
  if (address === undefined || prefix > 32) return undefined;
  return { address, prefix };
}

function blockSize(prefix: number): number {
  return 2 ** (32 - prefix);
}

export function networkOf(cidr: Ipv4Cidr): number {
  return cidr.address - (cidr.address % blockSize(cidr.prefix));
}

function contains(cidr: Ipv4Cidr, address: number): boolean {
  return networkOf(cidr) === networkOf({ address, prefix: cidr.prefix });
}

function overlaps(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  const shorter = Math.min(a.prefix, b.prefix);
  return networkOf({ address: a.address, prefix: shorter }) === networkOf({ address: b.address, prefix: shorter });
}

export interface InternalBridgePlan {
  name: string;
  /** The subnet as a network address (`172.16.100.0/24`), what the NAT rules match. */
  subnet: string;
  /** The bridge's own address with the subnet's prefix (`172.16.100.1/24`). */
  address: string;
}

export interface NetworkPlan {
  bridge: string;
  /** From the manifest; undefined: take the bridge's current bridge-ports from the file. */
  ports: string[] | undefined;
  /** interfaces.address as written (`10.0.0.5/24`). */
  address: string;
  gateway: string;
  macvlanTag: number;
  publicTag: number;
  internal: InternalBridgePlan | undefined;
}

type Network = NonNullable<HypervisorConfig['network']>;

/** Whether the manifest asks for the host network at all (a `network.interfaces` section). */
export function wantsHostNetwork(config: HypervisorConfig): boolean {
  return config.network?.interfaces !== undefined;
}

/**
 * The manifest's network checks that need no host: addresses that parse, the
 * gateway on the management subnet, distinct VLAN tags, an internal bridge
 * that is not the management bridge, whose subnet does not overlap it and
 * whose gateway is a host address of it, interface names the kernel takes.
 */
export function validateNetwork(config: HypervisorConfig, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const net = config.network;
  const ifs = net?.interfaces;
  if (net === undefined || ifs === undefined) return issues;
  const issue = (pointer: string, message: string) => issues.push({ file, pointer, message });
  const bridge = ifs.name ?? DEFAULT_BRIDGE;
  const address = ifs.address === undefined ? undefined : parseCidr(ifs.address);
  if (ifs.address === undefined) issue('/network/interfaces/address', 'the management bridge needs its address (CIDR, e.g. 10.0.0.5/24)');
  else if (address === undefined || address.prefix === 0 || address.prefix > 30) issue('/network/interfaces/address', `'${ifs.address}' is not an IPv4 address with a prefix length of 1-30`);
  if (ifs.gateway === undefined) issue('/network/interfaces/gateway', 'the management bridge needs the default gateway');
  else {
    const gateway = parseIpv4(ifs.gateway);
    if (gateway === undefined) issue('/network/interfaces/gateway', `'${ifs.gateway}' is not an IPv4 address`);
    else if (address !== undefined && !contains(address, gateway)) issue('/network/interfaces/gateway', `${ifs.gateway} is not on the management subnet of ${ifs.address}`);
    else if (address !== undefined && gateway === address.address) issue('/network/interfaces/gateway', `${ifs.gateway} is the host's own address`);
  }
  const ports = splitPorts(ifs.bridge_ports);
  if (ports !== undefined) {
    if (ports.length === 0) issue('/network/interfaces/bridge_ports', 'names no NIC');
    for (const port of ports) {
      if (port === bridge || port === net.internal_bridge?.name) issue('/network/interfaces/bridge_ports', `${port} is a bridge Phoenix defines, not a physical NIC`);
      if (port.length > MAX_IFNAME) issue('/network/interfaces/bridge_ports', `${port}: interface name longer than ${MAX_IFNAME} characters`);
    }
  }
  const tags = vlanTags(net);
  if (tags.macvlan === tags.public) issue('/network/public_vlan_tag', `the same VLAN tag as macvlan_vlan_tag (${tags.public}); the two VLAN interfaces must differ`);
  for (const [key, tag] of [['macvlan_vlan_tag', tags.macvlan], ['public_vlan_tag', tags.public]] as const) {
    if (`${bridge}.${tag}`.length > MAX_IFNAME) issue(`/network/${key}`, `${bridge}.${tag}: interface name longer than ${MAX_IFNAME} characters`);
  }
  const internal = net.internal_bridge;
  if (internal !== undefined) {
    if (internal.name === bridge) issue('/network/internal_bridge/name', `the internal bridge cannot be the management bridge ${bridge}`);
    if (internal.name.length > MAX_IFNAME) issue('/network/internal_bridge/name', `interface name longer than ${MAX_IFNAME} characters`);
    const subnet = parseCidr(internal.subnet);
    if (subnet === undefined || subnet.prefix === 0 || subnet.prefix > 30) issue('/network/internal_bridge/subnet', `'${internal.subnet}' is not an IPv4 subnet with a prefix length of 1-30`);
    else {
      if (address !== undefined && overlaps(subnet, address)) issue('/network/internal_bridge/subnet', `${internal.subnet} overlaps the management subnet of ${ifs.address}`);
      if (internal.gateway !== undefined) {
        const gateway = parseIpv4(internal.gateway);
        const net0 = networkOf(subnet);
        if (gateway === undefined) issue('/network/internal_bridge/gateway', `'${internal.gateway}' is not an IPv4 address`);
        else if (!contains(subnet, gateway)) issue('/network/internal_bridge/gateway', `${internal.gateway} is not in ${internal.subnet}`);
        else if (gateway === net0 || gateway === net0 + blockSize(subnet.prefix) - 1) issue('/network/internal_bridge/gateway', `${internal.gateway} is the network or broadcast address of ${internal.subnet}`);
      }
    }
  }
  return issues;
}

function splitPorts(text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split(/\s+/).filter((word) => word !== '');
}

function vlanTags(net: Network): { macvlan: number; public: number } {
  return { macvlan: net.macvlan_vlan_tag ?? DEFAULT_MACVLAN_TAG, public: net.public_vlan_tag ?? DEFAULT_PUBLIC_TAG };
}

/** The plan from a manifest that passed validateNetwork (undefined: no `network.interfaces`). */
export function networkPlan(config: HypervisorConfig): NetworkPlan | undefined {
  const net = config.network;
  const ifs = net?.interfaces;
  if (net === undefined || ifs === undefined) return undefined;
  const tags = vlanTags(net);
  let internal: InternalBridgePlan | undefined;
  if (net.internal_bridge !== undefined) {
    const subnet = parseCidr(net.internal_bridge.subnet) as Ipv4Cidr;
    const base = networkOf(subnet);
    // The first host address of the subnet unless the manifest names one.
    const gateway = net.internal_bridge.gateway ?? formatIpv4(base + 1);
    internal = { name: net.internal_bridge.name, subnet: `${formatIpv4(base)}/${subnet.prefix}`, address: `${gateway}/${subnet.prefix}` };
  }
  return {
    bridge: ifs.name ?? DEFAULT_BRIDGE,
    ports: splitPorts(ifs.bridge_ports),
    address: ifs.address as string,
    gateway: ifs.gateway as string,
    macvlanTag: tags.macvlan,
    publicTag: tags.public,
    internal,
  };
}

/** The interfaces whose stanzas Phoenix writes. */
export function managedInterfaces(plan: NetworkPlan, ports: readonly string[]): string[] {
  const names = [...ports, plan.bridge, `${plan.bridge}.${plan.macvlanTag}`, `${plan.bridge}.${plan.publicTag}`];
  if (plan.internal !== undefined) names.push(plan.internal.name);
  return names;
}

/** The lines of Phoenix's block (between the markers). */
export function renderBlock(plan: NetworkPlan, ports: readonly string[], withSource: boolean): string[] {
  const { bridge } = plan;
  const lines: string[] = [
    '# Managed by Phoenix (hypervisor_feature_setup_macvlan) from phoenix_hypervisor_config.json `network`;',
    '# edits between these markers are overwritten. Define other interfaces outside them.',
  ];
  for (const port of ports) lines.push(`iface ${port} inet manual`);
  lines.push(
    '',
    '# Management bridge, VLAN-aware so guests can use tagged VLANs on it',
    `auto ${bridge}`,
    `iface ${bridge} inet static`,
    `\taddress ${plan.address}`,
    `\tgateway ${plan.gateway}`,
    `\tbridge-ports ${ports.join(' ')}`,
    '\tbridge-stp off',
    '\tbridge-fd 0',
    '\tbridge-vlan-aware yes',
    '\tbridge-vids 2-4094',
  );
  for (const [tag, what] of [[plan.macvlanTag, 'macvlan portal (legacy public containers)'], [plan.publicTag, 'public VLAN portal']] as const) {
    lines.push('', `# VLAN ${tag}: ${what}`, `auto ${bridge}.${tag}`, `iface ${bridge}.${tag} inet manual`, `\tvlan-raw-device ${bridge}`);
  }
  const internal = plan.internal;
  if (internal !== undefined) {
    const nat = `POSTROUTING -s ${internal.subnet} -o ${bridge} -j MASQUERADE`;
    const out = `FORWARD -i ${internal.name} -o ${bridge} -j ACCEPT`;
    const back = `FORWARD -i ${bridge} -o ${internal.name} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`;
    lines.push(
      '',
      `# Internal bridge ${internal.subnet}, NATed out through ${bridge}`,
      `auto ${internal.name}`,
      `iface ${internal.name} inet static`,
      `\taddress ${internal.address}`,
      '\tbridge-ports none',
      '\tbridge-stp off',
      '\tbridge-fd 0',
      // Forwarding stays on when the bridge goes down: other bridges and guests rely on it.
      '\tpost-up sysctl -q -w net.ipv4.ip_forward=1',
      // -C first, so an ifreload never stacks a second copy of a rule.
      `\tpost-up iptables -t nat -C ${nat} 2>/dev/null || iptables -t nat -A ${nat}`,
      `\tpost-up iptables -C ${out} 2>/dev/null || iptables -I ${out.replace(/^FORWARD/, 'FORWARD 1')}`,
      `\tpost-up iptables -C ${back} 2>/dev/null || iptables -I ${back.replace(/^FORWARD/, 'FORWARD 1')}`,
      `\tpost-down iptables -t nat -D ${nat} 2>/dev/null || true`,
      `\tpost-down iptables -D ${out} 2>/dev/null || true`,
      `\tpost-down iptables -D ${back} 2>/dev/null || true`,
    );
  }
  if (withSource) lines.push('', SOURCE_LINE);
  return lines;
}
