// The Nginx gateway's model: what the manifests say the gateway container
// serves (mode, names, certificates, the Traefik it forwards to), and the
// places of its files. nginx.mts renders it; nginx-check.mts checks the
// result with the real nginx.

import path from 'node:path';
import type { PhoenixConfig } from '../config/load.mts';
import type { CertificateEntry, GatewayMode, LxcConfig } from '../config/types.mts';
import { ConfigError } from '../core/errors.mts';
import { GUEST_CA_DIR, GUEST_CA_NAME } from '../features/lxc/trusted-ca.mts';
import { DEFAULT_ROOT_CA_FILE } from '../guest/root-ca.mts';
import { DEFAULT_MESH_PORT, checkHostname, containerPath, lxcAddressFrom, serverCertificate, traefikCt } from './traefik.mts';

export const NGINX_CONF_RELATIVE = 'etc/nginx/nginx.conf';
export const SITE_RELATIVE = 'etc/nginx/sites-available/gateway';
export const STREAM_RELATIVE = 'etc/nginx/stream.d/stream-gateway.conf';
/** Installed paths inside the gateway CT, which nginx.conf includes. */
export const CT_SITES_ENABLED = '/etc/nginx/sites-enabled';
export const CT_STREAM_DIR = '/etc/nginx/stream.d';
/** Where the certificates live in the gateway CT when the manifest does not say (its ssl bind mount). */
export const DEFAULT_SSL_DIR = '/etc/nginx/ssl';
export const DEFAULT_CLIENT_CERTIFICATE = 'nginx-gateway-client';
/** The loopback listener of nginx's own TLS server in hybrid mode (nothing outside the CT reaches it). */
export const INTERNAL_TLS_ADDRESS = '127.0.0.1';
export const INTERNAL_TLS_PORT = 10443;
/** Traefik's web and websecure entrypoints (the static configuration's :80 and :443). */
export const TRAEFIK_WEB_PORT = 80;
export const TRAEFIK_WEBSECURE_PORT = 443;
/** Debian's stream module; loaded by absolute path only in the validation copy. */
export const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

export interface GeneratedFile {
  /** Path relative to PHOENIX_BASE_DIR. */
  relative: string;
  text: string;
}

export interface TlsFile {
  /** The path nginx reads inside the gateway CT. */
  path: string;
  /** The same file on the host, when the certificate manifest names it. */
  host?: string;
}

export interface GatewayModel {
  mode: GatewayMode;
  gatewayId: string;
  traefikId: string;
  traefikAddress: string;
  meshPort: number;
  meshName: string;
  acmeTlsAlpn: boolean;
  passthroughSnis: string[];
  serverCert: TlsFile;
  serverKey: TlsFile;
  clientCert: TlsFile;
  clientKey: TlsFile;
  rootCa: TlsFile;
}

// ---------------------------------------------------------------- the model

export function tlsFile(ct: LxcConfig, hostFile: string | undefined, fallback: string): TlsFile {
  if (hostFile === undefined) return { path: fallback };
  return { path: containerPath(ct, hostFile) ?? `${DEFAULT_SSL_DIR}/${path.basename(hostFile)}`, host: hostFile };
}

export function gatewayModel(config: PhoenixConfig): GatewayModel {
  const hv = config.hypervisor;
  const gateway = hv.gateway;
  const hvFile = config.paths.hypervisor;
  const domain = checkHostname(hv.domain_name, hvFile, '/domain_name');
  const clientName = gateway?.client_certificate ?? DEFAULT_CLIENT_CERTIFICATE;
  const clientIndex = config.certificates.findIndex((entry) => entry.common_name === clientName);
  const client: CertificateEntry | undefined = config.certificates[clientIndex];
  if (!client || client.guest_id === undefined || client.guest_type === 'vm') {
    throw new ConfigError(
      config.paths.certificates,
      client ? `/${clientIndex}` : '',
      `no container certificate named '${clientName}' (gateway.client_certificate): it names the gateway container and the client certificate nginx presents to the mesh`,
      `add an entry with common_name '${clientName}', guest_type lxc and the gateway's guest_id`,
    );
  }
  const gatewayId = String(client.guest_id);
  const gatewayCt = config.lxc.lxc_configs[gatewayId];
  if (!gatewayCt) throw new ConfigError(config.paths.certificates, `/${clientIndex}/guest_id`, `CT ${gatewayId} is not in ${config.paths.lxc}`);
  const traefik = traefikCt(config);
  const traefikAddress = lxcAddressFrom(traefik.ct, gatewayCt);
  if (!traefikAddress) {
    throw new ConfigError(config.paths.lxc, `/lxc_configs/${traefik.id}/network_config/ip`, `Traefik's CT ${traefik.id} has no static address for the gateway to reach`);
  }
  const meshName = checkHostname(gateway?.mesh_server_name ?? `traefik.${domain}`, hvFile, '/gateway/mesh_server_name');
  const snis = (gateway?.passthrough_snis ?? []).map((sni, i) => checkHostname(sni, hvFile, `/gateway/passthrough_snis/${i}`));
  const serverName = `${gatewayCt.traefik_service?.name ?? 'nginx'}.${domain}`;
  const server = serverCertificate(config, gatewayId, serverName);
  const defaultServer = `${DEFAULT_SSL_DIR}/${serverName}`;
  return {
    mode: gateway?.mode ?? 'hybrid',
    gatewayId,
    traefikId: traefik.id,
    traefikAddress,
    meshPort: gateway?.mesh_port ?? DEFAULT_MESH_PORT,
    meshName,
    acmeTlsAlpn: gateway?.acme_tls_alpn ?? true,
    passthroughSnis: [...new Set(snis)],
    serverCert: tlsFile(gatewayCt, server?.cert_path, `${defaultServer}.crt`),
    serverKey: tlsFile(gatewayCt, server?.key_path, `${defaultServer}.key`),
    clientCert: tlsFile(gatewayCt, client.cert_path, `${DEFAULT_SSL_DIR}/${clientName}.crt`),
    clientKey: tlsFile(gatewayCt, client.key_path, `${DEFAULT_SSL_DIR}/${clientName}.key`),
    // The trusted_ca feature installs the root CA there; the host keeps its copy at step_ca.root_ca_file.
    rootCa: { path: `${GUEST_CA_DIR}/${GUEST_CA_NAME}`, host: hv.step_ca?.root_ca_file ?? DEFAULT_ROOT_CA_FILE },
  };
}
