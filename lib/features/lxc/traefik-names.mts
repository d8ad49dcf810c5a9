// The names Traefik's static and dynamic files share (entrypoints, the
// mesh TLS options, the ACME resolver) and the lookups both make in the
// manifests: which container runs Traefik, the dashboard's host name,
// whether ACME is on. The feature renders the static file
// (traefik-static.mts); the gateway renders the dynamic one
// (lib/gateway/traefik.mts).

import type { PhoenixConfig } from '../../config/load.mts';
import type { LxcConfig } from '../../config/types.mts';
import { ConfigError } from '../../core/errors.mts';
import { STEP_CA_STEPPATH } from '../../guest/root-ca.mts';

/** The Traefik release installed (upstream literal; the manifests carry no version). */
export const TRAEFIK_VERSION = 'v3.6.2';
export const BINARY = '/usr/local/bin/traefik';
export const CONFIG_DIR = '/etc/traefik';
export const DYNAMIC_DIR = '/etc/traefik/dynamic';
export const LOG_DIR = '/var/log/traefik';
export const CERTS_DIR = '/etc/traefik/certs';
export const CA_PEM = `${CERTS_DIR}/ca.pem`;
export const STATIC_CONFIG = '/etc/traefik/traefik.yml';
export const UNIT_PATH = '/etc/systemd/system/traefik.service';
/** Where `step ca bootstrap` records the CA URL and fingerprint (root's STEPPATH in the container). */
export const STEP_DEFAULTS = `${STEP_CA_STEPPATH}/config/defaults.json`;
/** The static template, relative to PHOENIX_BASE_DIR (the bash toolkit's path); Phoenix ships one for when it is absent. */
export const TEMPLATE_RELATIVE = 'etc/traefik/traefik.yml.template';
/** Name of the ACME provisioner the CA container's application script adds (upstream literal). */
export const ACME_PROVISIONER = 'acme';
/** Docker's TLS port on the Swarm manager and the overlay network Traefik routes on (upstream literals). */
export const SWARM_DOCKER_PORT = 2376;
export const SWARM_NETWORK = 'traefik-public';
export const DEFAULT_MESH_PORT = 8443;
export const DEFAULT_API_PORT = 8080;

export const MESH_ENTRYPOINT = 'mesh';
export const WEBSECURE_ENTRYPOINT = 'websecure';
export const MESH_TLS_OPTIONS = 'mesh-mtls';
/** Name of the ACME certificate resolver (Swarm stacks refer to it in their labels: tls.certresolver=step-ca). */
export const ACME_RESOLVER = 'step-ca';
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** A static IPv4 address of an interface, without its prefix length; undefined for dhcp/manual. */
export function staticAddress(ip: string | undefined): string | undefined {
  const address = ip?.split('/')[0];
  return address !== undefined && IPV4.test(address) ? address : undefined;
}

/** The container running Traefik: the one that lists the traefik feature. */
export function traefikCt(config: PhoenixConfig): { id: string; ct: LxcConfig } {
  const ids = config.lxcIds().filter((id) => config.lxc.lxc_configs[id]?.features?.includes('traefik'));
  if (ids.length !== 1) {
    throw new ConfigError(
      config.paths.lxc,
      '/lxc_configs',
      ids.length === 0 ? 'no container lists the traefik feature' : `several containers list the traefik feature: ${ids.join(', ')}`,
      'exactly one container must have "traefik" in its features',
    );
  }
  const id = ids[0] as string;
  return { id, ct: config.lxc.lxc_configs[id] as LxcConfig };
}

/** The name the dashboard router answers to: the Traefik CT's traefik_service name (default traefik) under domain_name. */
export function dashboardHost(config: PhoenixConfig): string {
  return `${traefikCt(config).ct.traefik_service?.name ?? 'traefik'}.${config.hypervisor.domain_name}`;
}

/**
 * Whether Traefik obtains certificates from Step-CA's ACME directory (the
 * TLS challenge): only where the gateway lets tls-alpn-01 reach it, that is
 * every mode but mtls, unless gateway.acme_tls_alpn is false.
 */
export function acmeEnabled(config: PhoenixConfig): boolean {
  const gateway = config.hypervisor.gateway;
  return (gateway?.mode ?? 'hybrid') !== 'mtls' && gateway?.acme_tls_alpn !== false;
}
