// Advice on a firewall that is valid but probably not what was meant:
// rules that name addresses no guest has, and a mesh the rules do not let
// through. Warnings, never errors.

import { escapePointer } from '../config/json-values.mts';
import fs from 'node:fs';
import { type ConfigWarning, type PhoenixConfig } from '../config/load.mts';
import { type FirewallRule, type LxcConfig } from '../config/types.mts';
import { type RuleEnv, type RuleSpec, present } from './rules.mts';
import { debug } from '../core/log.mts';
import { formatIp, parseAddressList, parseIp } from './addresses.mts';

export interface KnownAddresses {
  /** Single addresses the manifests give to the host, guests, gateways and name servers. */
  hosts: Set<bigint>;
  /** Subnets whose members the manifests are expected to name. */
  subnets: Array<{ first: bigint; last: bigint }>;
  /** Static guest addresses → "CT 101". */
  guests: Map<bigint, string>;
  /** The Proxmox host's own addresses (its bridge addresses). */
  own: Set<bigint>;
}

export function knownAddresses(config: PhoenixConfig): KnownAddresses {
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

export function ruleWarnings(rule: RuleSpec, file: string, pointer: string, known: KnownAddresses, env: RuleEnv): ConfigWarning[] {
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
export function meshWarning(config: PhoenixConfig): { id: string; warning: ConfigWarning } | undefined {
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

