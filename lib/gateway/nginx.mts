// The Nginx gateway's files (CT 101) from the manifests, in the TLS topology
// of gateway.mode (docs/pki-and-gateway.md):
//
//   hybrid       443 is a stream{} server with ssl_preread. ALPN acme-tls/1
//                (tls-alpn-01) and the listed passthrough SNIs go as raw TCP to
//                Traefik's websecure entrypoint; everything else to nginx's own
//                TLS server on a loopback port, which re-encrypts to Traefik's
//                mesh entrypoint presenting the gateway's client certificate.
//   passthrough  443 is raw TCP to Traefik's websecure entrypoint; Traefik terminates.
//   mtls         nginx terminates 443 itself and re-encrypts to the mesh.
//
// Port 80 always sends ACME http-01 to Traefik's web entrypoint and redirects
// the rest to https. The render functions are pure (manifests → text);
// `validateWithNginx` is the one place that runs something: `nginx -t` on a
// copy of the files in a temporary prefix, which changes nothing on the host.
// `writeGatewayFiles` puts the files under <base>/etc/nginx, each atomically,
// and only once nginx has accepted them (the generator script and the gateway
// container's application script share it).

import fs from 'node:fs';
import path from 'node:path';
import type { PhoenixConfig } from '../config/load.mts';
import { writeFileAtomic } from '../core/fs.mts';
import { info, warn } from '../core/log.mts';
import {
  NGINX_CONF_RELATIVE,
  SITE_RELATIVE,
  STREAM_RELATIVE,
  INTERNAL_TLS_ADDRESS,
  INTERNAL_TLS_PORT,
  TRAEFIK_WEB_PORT,
  TRAEFIK_WEBSECURE_PORT,
  gatewayModel,
  type GeneratedFile,
  type GatewayModel,
} from './nginx-model.mts';
import {
  findNginx,
  validateWithNginx,
} from './nginx-check.mts';

export { NGINX_CONF_RELATIVE, SITE_RELATIVE, STREAM_RELATIVE, DEFAULT_SSL_DIR, DEFAULT_CLIENT_CERTIFICATE, INTERNAL_TLS_ADDRESS, INTERNAL_TLS_PORT, TRAEFIK_WEB_PORT, TRAEFIK_WEBSECURE_PORT, STREAM_MODULE, gatewayModel, type GeneratedFile, type GatewayModel } from './nginx-model.mts';
export { findNginx, validateWithNginx } from './nginx-check.mts';
import { block, header, renderNginxConf } from './nginx-conf.mts';
export { renderNginxConf, type NginxConfLayout } from './nginx-conf.mts';

// ---------------------------------------------------------------- rendering



const FORWARD_HEADERS = [
  'proxy_set_header Host $host;',
  'proxy_set_header X-Real-IP $remote_addr;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
];

function meshLocation(model: GatewayModel): string[] {
  return block('location /', [
    `proxy_pass https://${model.traefikAddress}:${model.meshPort};`,
    'proxy_http_version 1.1;',
    ...FORWARD_HEADERS,
    'proxy_set_header X-Forwarded-Proto https;',
    'proxy_set_header Upgrade $http_upgrade;',
    'proxy_set_header Connection $phoenix_connection_upgrade;',
    // The mesh requires and verifies a client certificate (Traefik's mesh-mtls options).
    `proxy_ssl_certificate ${model.clientCert.path};`,
    `proxy_ssl_certificate_key ${model.clientKey.path};`,
    `proxy_ssl_trusted_certificate ${model.rootCa.path};`,
    'proxy_ssl_verify on;',
    'proxy_ssl_verify_depth 2;',
    // Without these nginx checks Traefik's certificate against the IP in proxy_pass and answers 502.
    'proxy_ssl_server_name on;',
    `proxy_ssl_name ${model.meshName};`,
  ]);
}

function tlsServer(model: GatewayModel, listen: string[]): string[] {
  return block('server', [
    ...listen,
    'server_name _;',
    `ssl_certificate ${model.serverCert.path};`,
    `ssl_certificate_key ${model.serverKey.path};`,
    'ssl_protocols TLSv1.2 TLSv1.3;',
    'client_max_body_size 64m;',
    '',
    ...meshLocation(model),
  ]);
}

/** sites-available/gateway: the http{} servers. */
export function renderSite(model: GatewayModel): string {
  const lines = [...header(model, 'Nginx gateway (http)')];
  lines.push(...block('map $http_upgrade $phoenix_connection_upgrade', ['default upgrade;', "'' close;"]), '');
  lines.push(
    ...block('server', [
      'listen 80 default_server;',
      'listen [::]:80 default_server;',
      'server_name _;',
      '',
      ...block('location ^~ /.well-known/acme-challenge/', [
        `proxy_pass http://${model.traefikAddress}:${TRAEFIK_WEB_PORT};`,
        ...FORWARD_HEADERS,
        'proxy_set_header X-Forwarded-Proto $scheme;',
      ]),
      '',
      ...block('location /', ['return 301 https://$host$request_uri;']),
    ]),
  );
  if (model.mode === 'hybrid') {
    lines.push('', `# TLS terminated here for everything the stream server on 443 does not pass through.`);
    lines.push(...tlsServer(model, [`listen ${INTERNAL_TLS_ADDRESS}:${INTERNAL_TLS_PORT} ssl http2;`]));
  } else if (model.mode === 'mtls') {
    lines.push('', ...tlsServer(model, ['listen 443 ssl http2 default_server;', 'listen [::]:443 ssl http2 default_server;']));
  }
  return `${lines.join('\n')}\n`;
}

/** stream.d/stream-gateway.conf: the stream{} servers on 443 (none in mtls mode). */
export function renderStream(model: GatewayModel): string {
  const lines = [...header(model, 'Nginx gateway (stream)')];
  const websecure = `${model.traefikAddress}:${TRAEFIK_WEBSECURE_PORT}`;
  if (model.mode === 'mtls') {
    lines.push('# mtls mode: nginx terminates 443 in its http server; nothing is passed through.');
    return `${lines.join('\n')}\n`;
  }
  lines.push(...block('upstream phoenix_traefik_websecure', [`server ${websecure};`]), '');
  if (model.mode === 'passthrough') {
    lines.push(
      ...block('server', ['listen 443;', 'listen [::]:443;', 'proxy_pass phoenix_traefik_websecure;', 'proxy_connect_timeout 10s;']),
    );
    return `${lines.join('\n')}\n`;
  }
  lines.push(...block('upstream phoenix_gateway_tls', [`server ${INTERNAL_TLS_ADDRESS}:${INTERNAL_TLS_PORT};`]), '');
  lines.push(
    ...block(
      'map $ssl_preread_server_name $phoenix_sni_route',
      ['hostnames;', ...model.passthroughSnis.map((sni) => `${sni} phoenix_traefik_websecure;`), 'default phoenix_gateway_tls;'],
    ),
    '',
  );
  const alpn = model.acmeTlsAlpn ? ['~\\bacme-tls/1\\b phoenix_traefik_websecure;'] : [];
  lines.push(...block('map $ssl_preread_alpn_protocols $phoenix_gateway_route', [...alpn, 'default $phoenix_sni_route;']), '');
  lines.push(
    ...block('server', [
      'listen 443;',
      'listen [::]:443;',
      'ssl_preread on;',
      'proxy_pass $phoenix_gateway_route;',
      'proxy_connect_timeout 10s;',
    ]),
  );
  return `${lines.join('\n')}\n`;
}

/** The three files, paths relative to PHOENIX_BASE_DIR (as the bash wrote them). */
export function renderGatewayFiles(model: GatewayModel): GeneratedFile[] {
  return [
    { relative: NGINX_CONF_RELATIVE, text: renderNginxConf(model) },
    { relative: SITE_RELATIVE, text: renderSite(model) },
    { relative: STREAM_RELATIVE, text: renderStream(model) },
  ];
}

// ---------------------------------------------------------------- writing under <base>

export interface GatewayFileTarget extends GeneratedFile {
  /** Absolute path under PHOENIX_BASE_DIR. */
  target: string;
}

export interface GatewayPlan {
  model: GatewayModel;
  /** PHOENIX_HOST_ROOT: where the manifest's host paths (certificates, root CA) are on this machine. */
  hostRoot: string;
  files: GatewayFileTarget[];
  /** The files whose content or mode differs from what is under PHOENIX_BASE_DIR. */
  pending: GatewayFileTarget[];
}

/** Render the three files from the manifests and compare them with what `baseDir` holds. */
export function planGatewayFiles(config: PhoenixConfig, baseDir: string, hostRoot = '/'): GatewayPlan {
  const model = gatewayModel(config);
  const files = renderGatewayFiles(model).map((file) => ({ ...file, target: path.join(baseDir, file.relative) }));
  return { model, hostRoot, files, pending: files.filter((file) => !sameFile(file.target, file.text)) };
}

/**
 * Check the rendered files with `nginx -t` where nginx is installed here,
 * then write every file atomically (mode 0644). A configuration nginx
 * rejects is never written. The caller holds the host lock.
 */
export async function writeGatewayFiles(plan: GatewayPlan, nginx: string | undefined = findNginx()): Promise<void> {
  if (plan.pending.length === 0) return;
  if (nginx) {
    await validateWithNginx(plan.model, plan.files, nginx, plan.hostRoot);
    info('nginx -t accepted the generated configuration');
  } else {
    warn('nginx is not installed here: the generated configuration was not checked with nginx -t');
  }
  for (const file of plan.files) writeFileAtomic(file.target, file.text, { mode: 0o644 });
}

function sameFile(file: string, text: string): boolean {
  try {
    return fs.readFileSync(file, 'utf8') === text && (fs.statSync(file).mode & 0o7777) === 0o644;
  } catch {
    return false;
  }
}
