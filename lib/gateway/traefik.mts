// Traefik's dynamic configuration for the mesh container (CT 102) from the
// manifests, as data (/etc/traefik/dynamic/dynamic_conf.yml): routers on the
// `mesh` entrypoint, routers on `websecure` for what the gateway passes
// through raw (hybrid: the listed SNIs; passthrough: everything), services
// built from the guests' addresses, ports and schemes, the `mesh-mtls` TLS
// options the static configuration's mesh entrypoint names, and Traefik's
// own issued certificate. The static file is traefik-static.mts.
//
// Also the topology lookups the nginx generator shares (which CT runs
// Traefik, which address reaches a guest, where a host file appears inside
// a container). Nothing here runs a command or reads a file, except the
// stacks manifest for passthrough names a stack routes.

import fs from 'node:fs';
import type { PhoenixConfig } from '../config/load.mts';
import type { CertificateEntry, LxcConfig, NetworkConfig } from '../config/types.mts';
import { ConfigError } from '../core/errors.mts';
import { DEFAULT_AGENT_PORT } from '../portainer/agent.mts';
import { CA_PEM } from '../features/lxc/traefik.mts';
import { DEFAULT_STEP_CA_CTID } from '../guest/root-ca.mts';

export { DEFAULT_MESH_PORT } from '../features/lxc/traefik.mts';
import { ACME_RESOLVER, MESH_ENTRYPOINT, MESH_TLS_OPTIONS, WEBSECURE_ENTRYPOINT, acmeEnabled, dashboardHost, staticAddress, traefikCt } from '../features/lxc/traefik-names.mts';
import { loadYaml } from '../core/yaml.mts';
export { ACME_RESOLVER, MESH_ENTRYPOINT, MESH_TLS_OPTIONS, WEBSECURE_ENTRYPOINT, acmeEnabled, dashboardHost, staticAddress, traefikCt };

export const SERVERS_TRANSPORT = 'internal-ca';
/** Where `generate_traefik_config.sh` left the file, relative to PHOENIX_BASE_DIR. */
export const DYNAMIC_RELATIVE = 'etc/traefik/dynamic_conf.yml';
/** Routed by the Swarm provider from the stack's labels, as in the bash. */
const SWARM_ROUTED_SERVICES = new Set(['portainer']);

const HOSTNAME = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

// ---------------------------------------------------------------- shared lookups

export function checkHostname(value: string, file: string, pointer: string): string {
  if (!HOSTNAME.test(value)) throw new ConfigError(file, pointer, `'${value}' is not a host name`);
  return value;
}

function interfaces(ct: LxcConfig): NetworkConfig[] {
  return ct.secondary_network_config ? [ct.network_config, ct.secondary_network_config] : [ct.network_config];
}

/**
 * The address `from` reaches container `to` on: a static address of `to` on a
 * bridge both share (the internal bridge for 101 → 102), else `to`'s first
 * static address. Undefined when `to` has none (dhcp).
 */
export function lxcAddressFrom(to: LxcConfig, from: LxcConfig | undefined): string | undefined {
  const own = interfaces(to).filter((nic) => staticAddress(nic.ip) !== undefined);
  const bridges = new Set(from ? interfaces(from).map((nic) => nic.bridge) : []);
  const shared = own.find((nic) => bridges.has(nic.bridge));
  return staticAddress((shared ?? own[0])?.ip);
}

/**
 * Where a host file (a certificate manifest path) appears inside a container,
 * through the container's bind mounts; undefined when no mount covers it.
 */
export function containerPath(ct: LxcConfig, hostFile: string): string | undefined {
  for (const mount of ct.mount_points ?? []) {
    const root = mount.host_path.replace(/\/+$/, '');
    if (hostFile.startsWith(`${root}/`)) return `${mount.container_path.replace(/\/+$/, '')}${hostFile.slice(root.length)}`;
  }
  return undefined;
}

/** The server certificate the manifest issues for a container: the one named `preferredName`, else its only server entry. */
export function serverCertificate(config: PhoenixConfig, ctid: string, preferredName: string): CertificateEntry | undefined {
  const mine = config.certificates.filter((entry) => String(entry.guest_id) === ctid && entry.guest_type !== 'vm' && entry.cert_type !== 'client');
  return mine.find((entry) => entry.common_name === preferredName) ?? (mine.length === 1 ? mine[0] : undefined);
}

// ---------------------------------------------------------------- the dynamic file

export interface MeshRoute {
  name: string;
  host: string;
  /** Backend URL; undefined for the dashboard (api@internal). */
  url?: string;
  /** The guest it came from, for the log. */
  source: string;
}

export interface TraefikDynamic {
  routes: MeshRoute[];
  /** The routes Traefik also serves on websecure, where the gateway sends connections raw. */
  websecure: MeshRoute[];
  /** Guests left out, and why (dhcp without a static address, ...), and passthrough SNIs nothing routes. */
  skipped: string[];
  /** Passthrough SNIs routed by the Swarm provider from a stack's labels, not by this file. */
  notes: string[];
  /** Whether routers on websecure get their certificates from Step-CA's ACME directory. */
  acme: boolean;
  /** The certificate files inside the Traefik CT, when the manifest issues one. */
  certificate?: { certFile: string; keyFile: string };
  /** The YAML document as data. */
  document: Record<string, unknown>;
}

/** Whether a container runs the CA: step_ca.ctid (default 103), or it lists the step_ca feature. */
function isCaContainer(config: PhoenixConfig, id: string, ct: LxcConfig): boolean {
  return id === (config.hypervisor.step_ca?.ctid ?? DEFAULT_STEP_CA_CTID) || (ct.features ?? []).includes('step_ca');
}

/** The routes of the mesh, in the bash's order: VM services, Portainer agents, container services, the dashboard. */
export function meshRoutes(config: PhoenixConfig): { routes: MeshRoute[]; skipped: string[]; notes: string[] } {
  const domain = checkHostname(config.hypervisor.domain_name, config.paths.hypervisor, '/domain_name');
  const traefik = traefikCt(config);
  const clientName = config.hypervisor.gateway?.client_certificate ?? 'nginx-gateway-client';
  const gatewayCert = config.certificates.find((entry) => entry.common_name === clientName && entry.guest_type !== 'vm');
  const gatewayId = gatewayCert?.guest_id === undefined ? undefined : String(gatewayCert.guest_id);
  const routes: MeshRoute[] = [];
  const skipped: string[] = [];
  const notes: string[] = [];
  const add = (route: MeshRoute, file: string, pointer: string) => {
    if (!SERVICE_NAME.test(route.name)) throw new ConfigError(file, pointer, `${route.source}: '${route.name}' cannot name a Traefik router`);
    checkHostname(route.host, file, pointer);
    const clash = routes.find((other) => other.name === route.name || other.host === route.host);
    if (clash) throw new ConfigError(file, pointer, `${route.source} and ${clash.source} both publish '${clash.name === route.name ? route.name : route.host}'`);
    routes.push(route);
  };

  config.vm.vms.forEach((vm, index) => {
    const service = vm.traefik_service;
    if (!service || vm.is_template || SWARM_ROUTED_SERVICES.has(service.name)) return;
    const source = `VM ${vm.vmid} (${vm.name})`;
    const address = staticAddress(vm.network_config?.ip);
    if (!address) {
      skipped.push(`${source}: no static address (ip ${vm.network_config?.ip ?? 'unset'})`);
      return;
    }
    const url = `${service.scheme ?? 'https'}://${address}:${service.port}`;
    add({ name: service.name, host: `${service.name}.${domain}`, url, source }, config.paths.vm, `/vms/${index}/traefik_service`);
  });
  const agentPort = config.hypervisor.network?.portainer_agent_port ?? DEFAULT_AGENT_PORT;
  config.vm.vms.forEach((vm, index) => {
    if (!vm.portainer_agent_hostname || vm.is_template) return;
    const source = `VM ${vm.vmid} (${vm.name}) Portainer agent`;
    const address = staticAddress(vm.network_config?.ip);
    if (!address) {
      skipped.push(`${source}: no static address (ip ${vm.network_config?.ip ?? 'unset'})`);
      return;
    }
    const name = vm.portainer_environment_name ?? vm.name;
    add({ name, host: vm.portainer_agent_hostname, url: `https://${address}:${agentPort}`, source }, config.paths.vm, `/vms/${index}/portainer_agent_hostname`);
  });
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id] as LxcConfig;
    const service = ct.traefik_service;
    // Traefik's own entry is its API port: published below as the dashboard.
    if (!service || ct.is_template || id === traefik.id) continue;
    const source = `CT ${id} (${ct.name})`;
    if (id === gatewayId) {
      // Traefik → nginx → Traefik would be a request loop.
      skipped.push(`${source}: the gateway itself`);
      continue;
    }
    const address = lxcAddressFrom(ct, traefik.ct);
    if (!address) {
      skipped.push(`${source}: no static address (ip ${interfaces(ct).map((nic) => nic.ip).join(', ')})`);
      continue;
    }
    let scheme = service.scheme ?? 'http';
    if (scheme !== 'https' && isCaContainer(config, id, ct)) {
      // step-ca answers only TLS: a plain-http backend could never reach it.
      // The bash manifests name no scheme for the CA; an explicit http is a mistake worth saying.
      if (service.scheme !== undefined) notes.push(`${source}: step-ca serves only https; traefik_service.scheme '${service.scheme}' ignored`);
      scheme = 'https';
    }
    const url = `${scheme}://${address}:${service.port}`;
    add({ name: service.name, host: `${service.name}.${domain}`, url, source }, config.paths.lxc, `/lxc_configs/${id}/traefik_service`);
  }
  const dashboardName = traefik.ct.traefik_service?.name ?? 'traefik';
  const dashboard = { name: `${dashboardName}-dashboard`, host: `${dashboardName}.${domain}`, source: `CT ${traefik.id} (${traefik.ct.name}) dashboard` };
  add(dashboard, config.paths.lxc, `/lxc_configs/${traefik.id}/traefik_service`);
  return { routes, skipped, notes };
}

/** Whether a passthrough SNI (a name or *.wildcard, as nginx's map reads it) covers a host. */
function sniCovers(sni: string, host: string): boolean {
  if (!sni.startsWith('*.')) return sni.toLowerCase() === host.toLowerCase();
  const suffix = sni.slice(1).toLowerCase();
  const lower = host.toLowerCase();
  return lower.endsWith(suffix) && !lower.slice(0, -suffix.length).includes('.');
}

/** The stack whose Traefik labels route a host, when the stacks manifest has one. */
function stackRouting(config: PhoenixConfig, host: string): string | undefined {
  if (!fs.existsSync(config.paths.stacks)) return undefined;
  const rule = `Host(\`${host}\`)`;
  for (const [name, stack] of Object.entries(config.stacks.docker_stacks)) {
    if (JSON.stringify(stack).includes(rule)) return name;
  }
  return undefined;
}

/**
 * What reaches Traefik's websecure entrypoint raw from the gateway, so
 * Traefik must route it there itself: in passthrough mode every connection,
 * in hybrid mode the listed SNIs (ALPN acme-tls/1 is answered by the ACME
 * resolver, not by a router), in mtls mode nothing.
 */
export function websecureRoutes(config: PhoenixConfig, routes: readonly MeshRoute[]): { websecure: MeshRoute[]; unrouted: string[]; notes: string[] } {
  const gateway = config.hypervisor.gateway;
  const mode = gateway?.mode ?? 'hybrid';
  if (mode === 'mtls') return { websecure: [], unrouted: [], notes: [] };
  const snis = (gateway?.passthrough_snis ?? []).map((sni, i) => checkHostname(sni, config.paths.hypervisor, `/gateway/passthrough_snis/${i}`));
  const chosen = new Set<MeshRoute>(mode === 'passthrough' ? routes : []);
  const unrouted: string[] = [];
  const notes: string[] = [];
  for (const sni of new Set(snis)) {
    const covered = routes.filter((route) => sniCovers(sni, route.host));
    for (const route of covered) chosen.add(route);
    if (covered.length > 0) continue;
    const stack = stackRouting(config, sni);
    if (stack) notes.push(`passthrough SNI ${sni}: routed by the Swarm provider from the labels of stack ${stack}`);
    else unrouted.push(`passthrough SNI ${sni}: no guest or stack in the manifests publishes it; Traefik will answer 404`);
  }
  return { websecure: routes.filter((route) => chosen.has(route)), unrouted, notes };
}

export function traefikDynamic(config: PhoenixConfig): TraefikDynamic {
  const { routes, skipped, notes: routeNotes } = meshRoutes(config);
  const traefik = traefikCt(config);
  const acme = acmeEnabled(config);
  const { websecure, unrouted, notes: sniNotes } = websecureRoutes(config, routes);
  const notes = [...routeNotes, ...sniNotes];
  const routers: Record<string, unknown> = {};
  const services: Record<string, unknown> = {};
  const serviceOf = (route: MeshRoute) => (route.url === undefined ? 'api@internal' : `${route.name}-service`);
  for (const route of routes) {
    routers[`${route.name}-router`] = {
      rule: `Host(\`${route.host}\`)`,
      service: serviceOf(route),
      entryPoints: [MESH_ENTRYPOINT],
      tls: {},
    };
    if (route.url === undefined) continue;
    const tlsBackend = route.url.startsWith('https:');
    services[`${route.name}-service`] = {
      loadBalancer: {
        servers: [{ url: route.url }],
        passHostHeader: true,
        ...(tlsBackend ? { serversTransport: SERVERS_TRANSPORT } : {}),
      },
    };
  }
  for (const route of websecure) {
    routers[`${route.name}-websecure-router`] = {
      rule: `Host(\`${route.host}\`)`,
      service: serviceOf(route),
      entryPoints: [WEBSECURE_ENTRYPOINT],
      // Without ACME, Traefik's default certificate (its issued one) answers.
      tls: acme ? { certResolver: ACME_RESOLVER } : {},
    };
  }
  // Always defined: Swarm stacks name it in their labels (serverstransport=internal-ca@file).
  // CA_PEM is the root the traefik feature and the CT 102 script install, so
  // every https backend (the CA itself included) is verified, never skipped.
  const http: Record<string, unknown> = {
    routers,
    services,
    serversTransports: { [SERVERS_TRANSPORT]: { insecureSkipVerify: false, rootCAs: [CA_PEM] } },
  };

  const meshName = config.hypervisor.gateway?.mesh_server_name ?? `traefik.${config.hypervisor.domain_name}`;
  const entry = serverCertificate(config, traefik.id, meshName);
  let certificate: TraefikDynamic['certificate'];
  if (entry) {
    const certFile = containerPath(traefik.ct, entry.cert_path);
    const keyFile = containerPath(traefik.ct, entry.key_path);
    if (certFile === undefined || keyFile === undefined) {
      throw new ConfigError(
        config.paths.certificates,
        `/${config.certificates.indexOf(entry)}`,
        `certificate '${entry.common_name}' (${entry.cert_path}) is not under a mount point of CT ${traefik.id}`,
        `bind-mount its directory into CT ${traefik.id} (mount_points) so Traefik can read it`,
      );
    }
    certificate = { certFile, keyFile };
  }
  const tls: Record<string, unknown> = {
    options: {
      [MESH_TLS_OPTIONS]: {
        minVersion: 'VersionTLS12',
        clientAuth: { caFiles: [CA_PEM], clientAuthType: 'RequireAndVerifyClientCert' },
      },
    },
  };
  if (certificate) {
    tls.certificates = [{ ...certificate }];
    // Also the default, so a client without SNI (or nginx before proxy_ssl_server_name) gets it too.
    tls.stores = { default: { defaultCertificate: { ...certificate } } };
  }
  return { routes, websecure, skipped: [...skipped, ...unrouted], notes, acme, ...(certificate ? { certificate } : {}), document: { http, tls } };
}

/** The dynamic file's text: a header, then the document serialised by the yaml package. */
export async function renderTraefikDynamic(config: PhoenixConfig): Promise<{ text: string; model: TraefikDynamic }> {
  const model = traefikDynamic(config);
  const { stringify } = await loadYaml();
  const header = [
    '# Traefik dynamic configuration, generated by Phoenix (generate_traefik_config.sh) from the manifests.',
    '# Edits are overwritten on the next run; change the manifests instead.',
    '',
  ].join('\n');
  return { text: header + stringify(model.document, { lineWidth: 0 }), model };
}
