// The host's split-horizon DNS (dnsmasq), as data: which name answers with
// which address, computed from the manifests, and the files that say so.
// Pure: nothing here reads a file or runs a command (lib/hypervisor/dnsmasq.mts
// applies it).
//
// Who gets which answer (docs/pki-and-gateway.md shows the topology):
// - `step_ca.dns_name` (and the host of `step_ca.ca_url`) → the Step-CA
//   container. The bash sent ca.<domain> to Traefik because CT 103's
//   traefik_service is called "ca", so every `step` client failed.
// - the mesh name nginx verifies (`gateway.mesh_server_name`, default
//   traefik.<domain>) → the Traefik container.
// - public names, the ones served through the gateway (Traefik's routes, the
//   stacks' Host() rules, Portainer's hostname, passthrough SNIs, the
//   gateway's own name) → the nginx gateway container.
// - every guest's own name (<name>.<domain>) → its own address, and the host's
//   (<network.hostname>.<domain>) → the host.
// - `dns_server.records` and the guests' `dns_records` → what they say; they
//   win over everything generated.
// A name with an address on the LAN and one on the internal bridge gets both,
// one host-record line each, and `localise-queries` makes dnsmasq answer with
// the address on the asker's network: LAN clients reach the gateway on the
// LAN, internal guests on the internal bridge.

import type { PhoenixConfig } from '../config/load.mts';
import type { LxcConfig } from '../config/types.mts';
import { ConfigError } from '../core/errors.mts';
import { checkHostname, meshRoutes, staticAddress } from '../gateway/traefik.mts';
import { DEFAULT_CLIENT_CERTIFICATE } from '../gateway/nginx.mts';
import { DEFAULT_STEP_CA_CTID } from '../guest/root-ca.mts';

export const DNSMASQ_CONF = '/etc/dnsmasq.conf';
export const DNSMASQ_CONF_DIR = '/etc/dnsmasq.d';
/** The bash's records file; the same name, so a host moving from the bash gets it replaced. */
export const RECORDS_CONF = '/etc/dnsmasq.d/00-phoenix-internal.conf';
export const RESOLV_CONF = '/etc/resolv.conf';
/** The bash's one-time backup of resolv.conf, which hypervisor-manager restores before a setup. */
export const RESOLV_BACKUP = '/etc/resolv.conf.phoenix.bak';
/** One-time backup of a dnsmasq.conf Phoenix did not write (the bash made a new one every run). */
export const DNSMASQ_CONF_BACKUP = '/etc/dnsmasq.conf.phoenix.bak';
/** First line of every file Phoenix writes here: how a later run knows the file is its own. */
export const MARKER = '# Phoenix:';
/** glibc reads at most three nameserver lines. */
const MAX_NAMESERVERS = 3;

export type RecordRole = 'explicit' | 'ca' | 'mesh' | 'public' | 'guest' | 'host';
/** Lower wins when two roles claim a name. */
const PRECEDENCE: Readonly<Record<RecordRole, number>> = { explicit: 0, ca: 1, mesh: 2, public: 3, guest: 4, host: 5 };

export interface DnsRecord {
  name: string;
  addresses: string[];
  role: RecordRole;
  /** Where it comes from, for the file's comments and the log. */
  source: string;
}

export interface DnsPlan {
  enabled: boolean;
  domain: string;
  /** Zones answered only locally: the domain and `authoritative_zones`. */
  localZones: string[];
  listenAddresses: string[];
  upstreams: string[];
  records: DnsRecord[];
  /** Generated names another role took, and names left out (wildcards, guests without a static address). */
  notes: string[];
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

function uniq<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

function ctAddresses(ct: LxcConfig): string[] {
  const nics = ct.secondary_network_config ? [ct.network_config, ct.secondary_network_config] : [ct.network_config];
  return uniq(nics.map((nic) => staticAddress(nic.ip)).filter((a): a is string => a !== undefined));
}

/** The first address of a subnet such as 172.16.100.0/24 (the bridge's gateway by convention). */
function firstHost(subnet: string | undefined): string | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(subnet ?? '');
  if (!match) return undefined;
  const octets = match.slice(1, 5).map(Number);
  const prefix = Number(match[5]);
  const value = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const network = prefix === 0 ? 0 : (value & (~0 << (32 - prefix))) >>> 0;
  const first = network + 1;
  return [first >>> 24, (first >>> 16) & 255, (first >>> 8) & 255, first & 255].join('.');
}

/** The hosts named by `Host(`…`)` in a Traefik router rule. */
export function ruleHosts(rule: string): string[] {
  return [...rule.matchAll(/Host\(\s*`([^`]+)`(?:\s*,\s*`([^`]+)`)*\s*\)/g)].flatMap((m) => {
    const inner = m[0].slice(m[0].indexOf('(') + 1, -1);
    return [...inner.matchAll(/`([^`]+)`/g)].map((h) => h[1] as string);
  });
}

export function dnsPlan(config: PhoenixConfig): DnsPlan {
  const hv = config.hypervisor;
  const hvFile = config.paths.hypervisor;
  const dns = hv.dns_server ?? {};
  const domain = checkHostname(hv.domain_name, hvFile, '/domain_name').toLowerCase();
  const plan: DnsPlan = {
    enabled: dns.enabled === true,
    domain,
    localZones: uniq([domain, ...(dns.authoritative_zones ?? []).map((z) => z.toLowerCase())]),
    listenAddresses: [],
    upstreams: [],
    records: [],
    notes: [],
  };
  if (!plan.enabled) return plan;

  plan.upstreams = uniq(dns.upstream_servers ?? []);
  if (plan.upstreams.length === 0) {
    throw new ConfigError(hvFile, '/dns_server/upstream_servers', 'at least one upstream server is needed: dnsmasq forwards every name outside the local zones there and reads no resolv.conf', 'e.g. "upstream_servers": ["9.9.9.9", "1.1.1.1"]');
  }
  const hostAddress = staticAddress(hv.network?.interfaces?.address);
  const internalGateway = hv.network?.internal_bridge ? (hv.network.internal_bridge.gateway ?? firstHost(hv.network.internal_bridge.subnet)) : undefined;
  if (dns.listen_addresses) plan.listenAddresses = uniq(dns.listen_addresses);
  else {
    if (!hostAddress) {
      throw new ConfigError(hvFile, '/network/interfaces/address', 'the host address (with its prefix length, e.g. 10.0.0.5/24) is needed: dnsmasq listens there for the LAN', 'or list the addresses in dns_server.listen_addresses');
    }
    plan.listenAddresses = uniq(['127.0.0.1', hostAddress, ...(internalGateway ? [internalGateway] : [])]);
  }

  const claims = new Map<string, DnsRecord>();
  const claim = (name: string, addresses: string[], role: RecordRole, source: string) => {
    const key = name.toLowerCase().replace(/\.$/, '');
    if (key.startsWith('*.')) {
      plan.notes.push(`${key} (${source}): wildcard names are not published; list the names themselves`);
      return;
    }
    if (!HOST_NAME.test(key)) {
      plan.notes.push(`'${key}' (${source}) is not a host name; no record`);
      return;
    }
    if (addresses.length === 0) return;
    const current = claims.get(key);
    if (!current || PRECEDENCE[role] < PRECEDENCE[current.role]) {
      if (current && !sameAddresses(current.addresses, addresses)) plan.notes.push(`${key}: ${source} takes precedence over ${current.source}`);
      claims.set(key, { name: key, addresses: uniq(addresses), role, source });
      return;
    }
    if (role === current.role && role === 'explicit') {
      current.addresses = uniq([...current.addresses, ...addresses]);
      return;
    }
    if (!sameAddresses(current.addresses, addresses)) plan.notes.push(`${key}: ${current.source} takes precedence over ${source}`);
  };
  const fqdn = (label: string) => (label.includes('.') ? label : `${label}.${domain}`);

  // Explicit records.
  (dns.records ?? []).forEach((record) => claim(fqdn(record.hostname), [record.ip], 'explicit', 'dns_server.records'));
  for (const id of config.lxcIds()) {
    for (const record of config.lxc.lxc_configs[id]?.dns_records ?? []) claim(fqdn(record.hostname), [record.ip], 'explicit', `CT ${id} dns_records`);
  }
  for (const vm of config.vm.vms) {
    for (const record of vm.dns_records ?? []) claim(fqdn(record.hostname), [record.ip], 'explicit', `VM ${vm.vmid} dns_records`);
  }

  // The CA.
  if (hv.step_ca) {
    const caId = hv.step_ca.ctid ?? DEFAULT_STEP_CA_CTID;
    const ca = config.lxc.lxc_configs[caId];
    if (!ca) throw new ConfigError(hvFile, '/step_ca/ctid', `the CA container ${caId} is not in ${config.paths.lxc}`);
    const addresses = ctAddresses(ca);
    if (addresses.length === 0) throw new ConfigError(config.paths.lxc, `/lxc_configs/${caId}/network_config/ip`, `the CA container needs a static address for ${hv.step_ca.dns_name ?? 'its DNS name'} to point at`);
    const names = [hv.step_ca.dns_name ?? `ca.${domain}`];
    const urlHost = caUrlHost(hv.step_ca.ca_url);
    if (urlHost && !IPV4.test(urlHost)) names.push(urlHost);
    for (const name of uniq(names)) claim(name, addresses, 'ca', `the CA (CT ${caId}, step_ca)`);
  }

  // Traefik's mesh name and the public names behind the gateway.
  const traefikIds = config.lxcIds().filter((id) => config.lxc.lxc_configs[id]?.features?.includes('traefik'));
  if (traefikIds.length === 1) {
    const traefikId = traefikIds[0] as string;
    const meshName = checkHostname(hv.gateway?.mesh_server_name ?? `traefik.${domain}`, hvFile, '/gateway/mesh_server_name');
    claim(meshName, ctAddresses(config.lxc.lxc_configs[traefikId] as LxcConfig), 'mesh', `Traefik's mesh name (CT ${traefikId})`);
  }
  const gateway = gatewayContainer(config);
  if (gateway) {
    const addresses = ctAddresses(gateway.ct);
    const source = `the gateway (CT ${gateway.id})`;
    if (addresses.length === 0) plan.notes.push(`public names not published: the gateway CT ${gateway.id} has no static address`);
    const publicNames: string[] = [`${gateway.ct.traefik_service?.name ?? 'nginx'}.${domain}`];
    if (traefikIds.length > 0) publicNames.push(...meshRoutes(config).routes.map((route) => route.host));
    for (const stack of Object.values(config.stacks.docker_stacks)) {
      if (stack.nginx_proxy?.hostname) publicNames.push(stack.nginx_proxy.hostname);
      for (const environment of Object.values(stack.environments)) {
        for (const service of Object.values(environment.services ?? {})) {
          for (const label of service.traefik_labels ?? []) {
            const rule = /^traefik\.http\.routers\.[^.=]+\.rule=(.*)$/.exec(label);
            if (rule) publicNames.push(...ruleHosts(rule[1] as string));
          }
        }
      }
    }
    if (hv.portainer_api?.portainer_hostname) publicNames.push(hv.portainer_api.portainer_hostname);
    publicNames.push(...(hv.gateway?.passthrough_snis ?? []));
    for (const name of uniq(publicNames.map((n) => n.toLowerCase()))) claim(name, addresses, 'public', source);
  } else {
    plan.notes.push(`public names not published: no container holds the gateway's client certificate '${hv.gateway?.client_certificate ?? DEFAULT_CLIENT_CERTIFICATE}' in ${config.paths.certificates}`);
  }

  // Every guest's own name, and the host's.
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id] as LxcConfig;
    if (ct.is_template) continue;
    guestName(ct.name, ctAddresses(ct), `CT ${id}`);
  }
  for (const vm of config.vm.vms) {
    if (vm.is_template) continue;
    const address = staticAddress(vm.network_config?.ip);
    guestName(vm.name, address ? [address] : [], `VM ${vm.vmid}`);
  }
  if (hostAddress) {
    const hostname = hv.network?.hostname ?? 'phoenix';
    claim(`${hostname}.${domain}`, uniq([hostAddress, ...(internalGateway ? [internalGateway] : [])]), 'host', 'the Proxmox host');
  }

  plan.records = [...claims.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return plan;

  function guestName(name: string, addresses: string[], source: string): void {
    const label = name.toLowerCase();
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) {
      plan.notes.push(`${source}: name '${name}' is not a DNS label; no record`);
      return;
    }
    if (addresses.length === 0) {
      plan.notes.push(`${label}.${domain} (${source}): no static address; no record`);
      return;
    }
    claim(`${label}.${domain}`, addresses, 'guest', `${source} (${name})`);
  }
}

function sameAddresses(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');
}

function caUrlHost(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** The nginx gateway: the container holding the client certificate nginx presents to the mesh (as in gateway/nginx.mts). */
function gatewayContainer(config: PhoenixConfig): { id: string; ct: LxcConfig } | undefined {
  const name = config.hypervisor.gateway?.client_certificate ?? DEFAULT_CLIENT_CERTIFICATE;
  const entry = config.certificates.find((e) => e.common_name === name && e.guest_type !== 'vm' && e.guest_id !== undefined);
  if (!entry) return undefined;
  const id = String(entry.guest_id);
  const ct = config.lxc.lxc_configs[id];
  return ct ? { id, ct } : undefined;
}

// ---------------------------------------------------------------- files

const SCRIPT = 'hypervisor_feature_setup_dns_server.sh';

/** /etc/dnsmasq.conf: the server's settings. `includeDir` false leaves out conf-dir (for checking the files alone). */
export function renderDnsmasqConf(plan: DnsPlan, includeDir = true): string {
  return [
    `${MARKER} dnsmasq for ${plan.domain}, written by ${SCRIPT} from the manifests.`,
    '# Edits are overwritten on the next run; change the manifests instead.',
    `# The records are in ${RECORDS_CONF}.`,
    'port=53',
    // Never forward plain names or private reverse lookups upstream.
    'domain-needed',
    'bogus-priv',
    'strict-order',
    'stop-dns-rebind',
    // Upstream servers come from the config, not from resolv.conf (which points here).
    'no-resolv',
    // Bind to the listen addresses as they appear (vmbr100 may come up later),
    // and leave port 53 on other addresses to other servers.
    'bind-dynamic',
    // A name with several addresses is answered with the one on the asker's network.
    'localise-queries',
    ...plan.localZones.map((zone) => `local=/${zone}/`),
    ...plan.listenAddresses.map((address) => `listen-address=${address}`),
    ...plan.upstreams.map((server) => `server=${server}`),
    ...(includeDir ? [`conf-dir=${DNSMASQ_CONF_DIR},*.conf`] : []),
    '',
  ].join('\n');
}

/** /etc/dnsmasq.d/00-phoenix-internal.conf: one host-record line per name and address. */
export function renderRecordsConf(plan: DnsPlan): string {
  const lines = [
    `${MARKER} host records for ${plan.domain}, written by ${SCRIPT} from the manifests.`,
    '# Edits are overwritten on the next run; change the manifests instead.',
  ];
  for (const record of plan.records) {
    lines.push(`# ${record.name}: ${record.source}`);
    for (const address of record.addresses) lines.push(`host-record=${record.name},${address}`);
  }
  lines.push('');
  return lines.join('\n');
}

/** Both files as one, for `dnsmasq --test`: what the service will load from Phoenix's files. */
export function renderCheckedConf(plan: DnsPlan): string {
  return `${renderDnsmasqConf(plan, false)}${renderRecordsConf(plan)}`;
}

/** /etc/resolv.conf: the host asks its own dnsmasq first. */
export function renderResolvConf(plan: DnsPlan): string {
  const local = plan.listenAddresses.find((a) => a.startsWith('127.')) ?? plan.listenAddresses[0];
  const servers = uniq([...(local ? [local] : []), ...plan.upstreams]).slice(0, MAX_NAMESERVERS);
  return [`${MARKER} the host resolves through its own dnsmasq (${SCRIPT}).`, `search ${plan.domain}`, ...servers.map((s) => `nameserver ${s}`), ''].join('\n');
}
