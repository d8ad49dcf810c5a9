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
import os from 'node:os';
import path from 'node:path';
import type { PhoenixConfig } from '../config/load.mts';
import type { CertificateEntry, GatewayMode, LxcConfig } from '../config/types.mts';
import { ConfigError, PhoenixError } from '../core/errors.mts';
import { query } from '../core/runner.mts';
import { writeFileAtomic } from '../core/fs.mts';
import { onHost } from '../guest/hostdirs.mts';
import { info, warn } from '../core/log.mts';
import { GUEST_CA_DIR, GUEST_CA_NAME } from '../features/lxc/trusted-ca.mts';
import { DEFAULT_ROOT_CA_FILE } from '../guest/root-ca.mts';
import { DEFAULT_MESH_PORT, checkHostname, containerPath, lxcAddressFrom, serverCertificate, traefikCt } from './traefik.mts';

export const NGINX_CONF_RELATIVE = 'etc/nginx/nginx.conf';
export const SITE_RELATIVE = 'etc/nginx/sites-available/gateway';
export const STREAM_RELATIVE = 'etc/nginx/stream.d/stream-gateway.conf';
/** Installed paths inside the gateway CT, which nginx.conf includes. */
const CT_SITES_ENABLED = '/etc/nginx/sites-enabled';
const CT_STREAM_DIR = '/etc/nginx/stream.d';
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

interface TlsFile {
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

function tlsFile(ct: LxcConfig, hostFile: string | undefined, fallback: string): TlsFile {
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

// ---------------------------------------------------------------- rendering

/** Indent a block of lines by one level. */
function block(head: string, lines: string[], indent = '    '): string[] {
  return [`${head} {`, ...lines.map((line) => (line === '' ? '' : indent + line)), '}'];
}

function header(model: GatewayModel, what: string): string[] {
  return [
    `# ${what}, generated by Phoenix (generate_nginx_gateway_config.sh) from the manifests.`,
    `# Gateway CT ${model.gatewayId}, mode ${model.mode}, Traefik CT ${model.traefikId} at ${model.traefikAddress}.`,
    '# Edits are overwritten on the next run; change the manifests instead.',
    '',
  ];
}

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

export interface NginxConfLayout {
  /** A load_module line for the validation copy; the installed file includes Debian's modules-enabled. */
  streamModule?: string;
  /** Directory for pid, logs and temp paths in the validation copy. */
  scratch?: string;
  sitesInclude?: string;
  streamInclude?: string;
}

/** nginx.conf: Debian's layout plus the top-level stream{} block the gateway needs. */
export function renderNginxConf(model: GatewayModel, layout: NginxConfLayout = {}): string {
  const scratch = layout.scratch;
  const lines = [...header(model, 'nginx.conf')];
  lines.push('user www-data;', 'worker_processes auto;', `pid ${scratch ? `${scratch}/nginx.pid` : '/run/nginx.pid'};`);
  lines.push(layout.streamModule ? `load_module ${layout.streamModule};` : 'include /etc/nginx/modules-enabled/*.conf;');
  lines.push(`error_log ${scratch ? `${scratch}/error.log` : '/var/log/nginx/error.log'} warn;`, '');
  lines.push(...block('events', ['worker_connections 768;']), '');
  const http = [
    'sendfile on;',
    'tcp_nopush on;',
    'types_hash_max_size 2048;',
    'server_tokens off;',
    'include /etc/nginx/mime.types;',
    'default_type application/octet-stream;',
    'ssl_protocols TLSv1.2 TLSv1.3;',
    'ssl_prefer_server_ciphers on;',
    `access_log ${scratch ? `${scratch}/access.log` : '/var/log/nginx/access.log'};`,
    'gzip on;',
  ];
  if (scratch) {
    for (const kind of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) http.push(`${kind}_temp_path ${scratch}/${kind}_temp;`);
  } else {
    http.push('include /etc/nginx/conf.d/*.conf;');
  }
  http.push(`include ${layout.sitesInclude ?? `${CT_SITES_ENABLED}/*`};`);
  lines.push(...block('http', http), '');
  lines.push(...block('stream', [`include ${layout.streamInclude ?? `${CT_STREAM_DIR}/*.conf`};`]));
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

// ---------------------------------------------------------------- nginx -t

/** The nginx binary on PATH, without spawning anything. */
export function findNginx(envPath = process.env.PATH ?? ''): string | undefined {
  return findOnPath('nginx', envPath);
}

function findOnPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * `nginx -t` opens the listening sockets it checks. As root it runs in a
 * network namespace of its own (`unshare --net`), so the check never holds
 * the host's :80/:443, even for a moment; where namespaces are not allowed
 * it runs as is.
 */
async function nginxTest(nginx: string, args: string[]) {
  const unshare = process.getuid?.() === 0 ? findOnPath('unshare') : undefined;
  if (unshare) {
    const isolated = await query({ cmd: unshare, args: ['--net', '--', nginx, ...args], allowFailure: true, timeoutMs: 30_000 });
    if (isolated.code === 0 || !/^unshare: /m.test(isolated.stderr)) return isolated;
  }
  return query({ cmd: nginx, args, allowFailure: true, timeoutMs: 30_000 });
}

function readable(file: string | undefined): file is string {
  if (file === undefined) return false;
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Check the site and stream files with `nginx -t` in a temporary prefix
 * before anything is installed. Certificates are the host's copies where the
 * manifest names readable ones (so nginx also checks that key and certificate
 * match); otherwise a throw-away self-signed pair stands in. Listeners and
 * upstreams are checked as written (IP literals only, so nothing is resolved;
 * nginx -t ignores a port already in use). Read-only for the host: it runs
 * in dry-run too. Throws with nginx's own message when the files are rejected.
 */
export async function validateWithNginx(model: GatewayModel, files: GeneratedFile[], nginx: string, hostRoot = '/'): Promise<void> {
  const hostCopy = (file: TlsFile) => (file.host === undefined ? undefined : onHost(hostRoot, file.host));
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-nginx-t-'));
  try {
    const replacements = new Map<string, string>();
    let throwaway: { cert: string; key: string } | undefined;
    const standIn = async () => {
      if (!throwaway) {
        throwaway = { cert: path.join(scratch, 'standin.crt'), key: path.join(scratch, 'standin.key') };
        await query({
          cmd: 'openssl',
          args: ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=phoenix-nginx-check', '-keyout', throwaway.key, '-out', throwaway.cert],
          quiet: true,
        });
      }
      return throwaway;
    };
    for (const [cert, key] of [
      [model.serverCert, model.serverKey],
      [model.clientCert, model.clientKey],
    ] as const) {
      const certHost = hostCopy(cert);
      const keyHost = hostCopy(key);
      const pair = readable(certHost) && readable(keyHost) ? { cert: certHost, key: keyHost } : await standIn();
      replacements.set(cert.path, pair.cert);
      replacements.set(key.path, pair.key);
    }
    const rootHost = hostCopy(model.rootCa);
    replacements.set(model.rootCa.path, readable(rootHost) ? rootHost : (await standIn()).cert);

    const copy = (text: string) => {
      let out = text;
      for (const [from, to] of replacements) out = out.split(` ${from};`).join(` ${to};`);
      return out;
    };
    const site = files.find((file) => file.relative === SITE_RELATIVE);
    const stream = files.find((file) => file.relative === STREAM_RELATIVE);
    if (!site || !stream) throw new PhoenixError('internal: the gateway files to validate are incomplete');
    fs.writeFileSync(path.join(scratch, 'gateway'), copy(site.text));
    fs.writeFileSync(path.join(scratch, 'stream-gateway.conf'), copy(stream.text));
    const conf = renderNginxConf(model, {
      ...(fs.existsSync(STREAM_MODULE) ? { streamModule: STREAM_MODULE } : {}),
      scratch,
      sitesInclude: path.join(scratch, 'gateway'),
      streamInclude: path.join(scratch, 'stream-gateway.conf'),
    });
    const confFile = path.join(scratch, 'nginx.conf');
    fs.writeFileSync(confFile, conf);
    const result = await nginxTest(nginx, ['-t', '-q', '-p', `${scratch}/`, '-c', confFile, '-e', path.join(scratch, 'error.log')]);
    if (result.code !== 0) {
      const reason = (result.stderr || result.stdout).split('\n').filter((line) => /emerg|alert|crit|error/.test(line)).join('; ') || result.stderr.trim();
      throw new PhoenixError(`nginx rejected the generated gateway configuration: ${reason.split(scratch).join('<check dir>')}`, {
        hint: 'nothing was installed; fix the manifests (or the certificate files they name) and run again',
      });
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
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
