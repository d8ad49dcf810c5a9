// The Nginx gateway as Phoenix generates it, driven onto loopback for the
// real-component tests.
//
// The example manifests are copied to a temporary base dir and edited there
// (Traefik's CT on a 127.0.0.x address, the mesh port, the gateway's ssl
// mount and certificate paths pointing at the test PKI), loaded with
// lib/config/load.mts, and rendered with lib/gateway/nginx.mts. The generator
// writes the production listeners and Traefik's fixed entrypoint ports
// (listen 80/443 on every address, [::], Traefik :80/:443, the internal TLS
// listener 127.0.0.1:10443), which a test cannot bind; `toLoopback` rewrites
// exactly those lines and fails loudly when one is not where it expects it,
// and `assertLoopbackOnly` then checks that no address outside 127.0.0.0/8
// and no privileged port is left. nginx.conf is the generator's own
// validation layout (renderNginxConf with a scratch prefix).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import type { GatewayMode } from '../../lib/config/types.mts';
import {
  INTERNAL_TLS_ADDRESS,
  INTERNAL_TLS_PORT,
  NGINX_CONF_RELATIVE,
  SITE_RELATIVE,
  STREAM_MODULE,
  STREAM_RELATIVE,
  TRAEFIK_WEBSECURE_PORT,
  TRAEFIK_WEB_PORT,
  gatewayModel,
  renderGatewayFiles,
  renderNginxConf,
  type GatewayModel,
  type GeneratedFile,
} from '../../lib/gateway/nginx.mts';
import { freePorts } from './ports.mts';
import type { GatewayPki, Issued } from './pki.mts';
import { childEnv, runBounded, startDaemon, waitForTcp, type CommandOutcome, type Daemon, type Scope } from './procs.mts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DOMAIN = 'internal.example.org';
export const MESH_NAME = `traefik.${DOMAIN}`;
export const SERVER_NAME = `nginx.${DOMAIN}`;
export const CLIENT_NAME = 'nginx-gateway-client';

export interface GatewayPorts {
  /** Stands in for the gateway's :443. */
  https: number;
  /** Stands in for the gateway's :80. */
  http: number;
  /** nginx's own TLS server behind the stream split (hybrid). */
  internalTls: number;
  /** Traefik's web (:80), websecure (:443) and mesh entrypoints. */
  traefikWeb: number;
  traefikWebsecure: number;
  mesh: number;
}

export interface GatewayPlan {
  mode: GatewayMode;
  /** Where the test gateway listens (127.0.0.x). */
  gatewayAddress: string;
  /** Traefik's CT address in the manifest (127.0.0.y). */
  traefikAddress: string;
  ports: GatewayPorts;
  /** Directory with every certificate and key the gateway reads (its "ssl mount"). */
  sslDir: string;
  serverChain: string;
  serverKey: string;
  clientChain: string;
  clientKey: string;
  rootCa: string;
  passthroughSnis?: string[];
}

export interface LoopbackGateway {
  plan: GatewayPlan;
  model: GatewayModel;
  /** The generator's files, unchanged. */
  generated: GeneratedFile[];
  /** The same files moved onto loopback (site and stream; nginx.conf is `conf`). */
  files: GeneratedFile[];
  prefix: string;
  conf: string;
  errorLog: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export type TraefikPorts = Pick<GatewayPorts, 'traefikWeb' | 'traefikWebsecure' | 'mesh'>;

/** Free ports for Traefik's three entrypoints on `address`. */
export async function traefikPorts(address: string): Promise<TraefikPorts> {
  const [traefikWeb, traefikWebsecure, mesh] = (await freePorts(3, { addresses: [address] })) as [number, number, number];
  return { traefikWeb, traefikWebsecure, mesh };
}

/**
 * A plan for the gateway on `gatewayAddress` in front of Traefik's
 * entrypoints `traefik` on `traefikAddress`, with the PKI's files (the client
 * certificate can be swapped for a negative test).
 */
export async function gatewayPlan(options: {
  mode: GatewayMode;
  gatewayAddress: string;
  traefikAddress: string;
  traefik: TraefikPorts;
  pki: GatewayPki;
  sslDir: string;
  client?: Issued;
  httpsPort?: number;
}): Promise<GatewayPlan> {
  const [https, http, internalTls] = (await freePorts(3, { addresses: ['127.0.0.1', options.gatewayAddress] })) as [number, number, number];
  const client = options.client ?? options.pki.client;
  return {
    mode: options.mode,
    gatewayAddress: options.gatewayAddress,
    traefikAddress: options.traefikAddress,
    ports: { https: options.httpsPort ?? https, http, internalTls, ...options.traefik },
    sslDir: options.sslDir,
    serverChain: options.pki.server.chain,
    serverKey: options.pki.server.key,
    clientChain: client.chain,
    clientKey: client.key,
    rootCa: options.pki.ca.root.cert,
  };
}

/** A base dir with the example manifests, edited for this plan. */
export function loopbackManifests(dir: string, plan: GatewayPlan): string {
  const etc = path.join(dir, 'etc');
  fs.mkdirSync(etc, { recursive: true });
  for (const file of fs.readdirSync(path.join(ROOT, 'etc'))) {
    if (file.endsWith('.json')) fs.copyFileSync(path.join(ROOT, 'etc', file), path.join(etc, file));
  }
  const read = (file: string): Json => JSON.parse(fs.readFileSync(path.join(etc, file), 'utf8'));
  const write = (file: string, doc: Json) => fs.writeFileSync(path.join(etc, file), `${JSON.stringify(doc, null, 2)}\n`);

  const hv = read('phoenix_hypervisor_config.json');
  if (hv.domain_name !== DOMAIN) throw new Error(`the example manifests moved to domain ${hv.domain_name}; update test/realtls/gateway.mts`);
  hv.gateway = { ...hv.gateway, mode: plan.mode, mesh_port: plan.ports.mesh, mesh_server_name: MESH_NAME, client_certificate: CLIENT_NAME };
  if (plan.passthroughSnis) hv.gateway.passthrough_snis = plan.passthroughSnis;
  hv.step_ca = { ...hv.step_ca, root_ca_file: plan.rootCa };
  write('phoenix_hypervisor_config.json', hv);

  const lxc = read('phoenix_lxc_configs.json');
  const ids = Object.keys(lxc.lxc_configs);
  const traefikId = ids.find((id) => lxc.lxc_configs[id].features?.includes('traefik'));
  const gatewayId = String(read('certificate-manifest.json').find((entry: Json) => entry.common_name === CLIENT_NAME)?.guest_id);
  const traefik = lxc.lxc_configs[traefikId ?? ''];
  const gateway = lxc.lxc_configs[gatewayId];
  if (!traefik || !gateway) throw new Error('the example manifests have no Traefik CT or no gateway CT; update test/realtls/gateway.mts');
  // Traefik on loopback; the gateway's NICs too, so nothing in these manifests names a real network.
  traefik.network_config = { ...traefik.network_config, ip: `${plan.traefikAddress}/8`, gw: undefined };
  delete traefik.secondary_network_config;
  gateway.network_config = { ...gateway.network_config, ip: `${plan.gatewayAddress}/8`, gw: undefined };
  if (gateway.secondary_network_config) gateway.secondary_network_config = { ...gateway.secondary_network_config, ip: `${plan.gatewayAddress}/8` };
  // The ssl bind mount maps the test PKI directory onto itself, so the paths nginx reads are the files on disk.
  gateway.mount_points = [{ host_path: plan.sslDir, container_path: plan.sslDir, owner_uid: 0, owner_gid: 0 }];
  write('phoenix_lxc_configs.json', lxc);

  const certs: Json[] = read('certificate-manifest.json');
  const server = certs.find((entry) => entry.common_name === SERVER_NAME);
  const client = certs.find((entry) => entry.common_name === CLIENT_NAME);
  if (!server || !client) throw new Error(`the example certificate manifest lacks ${SERVER_NAME} or ${CLIENT_NAME}; update test/realtls/gateway.mts`);
  Object.assign(server, { cert_path: plan.serverChain, key_path: plan.serverKey });
  Object.assign(client, { cert_path: plan.clientChain, key_path: plan.clientKey });
  write('certificate-manifest.json', certs);
  return dir;
}

// ---------------------------------------------------------------- onto loopback

interface Rule {
  name: string;
  /** Modes whose output must contain the line (a generator change then fails the test). */
  modes: GatewayMode[];
  file: string;
  pattern: RegExp;
  replace: string;
}

function rules(plan: GatewayPlan): Rule[] {
  const gw = plan.gatewayAddress;
  const t = plan.traefikAddress.replaceAll('.', '\\.');
  const p = plan.ports;
  const all: GatewayMode[] = ['hybrid', 'passthrough', 'mtls'];
  return [
    { name: 'listen 80', modes: all, file: SITE_RELATIVE, pattern: /^(\s*)listen 80( default_server)?;$/gm, replace: `$1listen ${gw}:${p.http}$2;` },
    { name: 'listen [::]:80', modes: all, file: SITE_RELATIVE, pattern: /^\s*listen \[::\]:80\b.*\n/gm, replace: '' },
    { name: 'listen 443 ssl', modes: ['mtls'], file: SITE_RELATIVE, pattern: /^(\s*)listen 443( ssl.*);$/gm, replace: `$1listen ${gw}:${p.https}$2;` },
    { name: 'listen [::]:443 ssl', modes: ['mtls'], file: SITE_RELATIVE, pattern: /^\s*listen \[::\]:443 ssl.*\n/gm, replace: '' },
    {
      name: 'internal TLS listener',
      modes: ['hybrid'],
      file: SITE_RELATIVE,
      pattern: new RegExp(`\\b${INTERNAL_TLS_ADDRESS.replaceAll('.', '\\.')}:${INTERNAL_TLS_PORT}(?!\\d)`, 'g'),
      replace: `${INTERNAL_TLS_ADDRESS}:${p.internalTls}`,
    },
    { name: 'Traefik web', modes: all, file: SITE_RELATIVE, pattern: new RegExp(`\\b${t}:${TRAEFIK_WEB_PORT}(?!\\d)`, 'g'), replace: `${plan.traefikAddress}:${p.traefikWeb}` },
    { name: 'listen 443 (stream)', modes: ['hybrid', 'passthrough'], file: STREAM_RELATIVE, pattern: /^(\s*)listen 443;$/gm, replace: `$1listen ${gw}:${p.https};` },
    { name: 'listen [::]:443 (stream)', modes: ['hybrid', 'passthrough'], file: STREAM_RELATIVE, pattern: /^\s*listen \[::\]:443;\n/gm, replace: '' },
    {
      name: 'internal TLS upstream',
      modes: ['hybrid'],
      file: STREAM_RELATIVE,
      pattern: new RegExp(`\\b${INTERNAL_TLS_ADDRESS.replaceAll('.', '\\.')}:${INTERNAL_TLS_PORT}(?!\\d)`, 'g'),
      replace: `${INTERNAL_TLS_ADDRESS}:${p.internalTls}`,
    },
    {
      name: 'Traefik websecure',
      modes: ['hybrid', 'passthrough'],
      file: STREAM_RELATIVE,
      pattern: new RegExp(`\\b${t}:${TRAEFIK_WEBSECURE_PORT}(?!\\d)`, 'g'),
      replace: `${plan.traefikAddress}:${p.traefikWebsecure}`,
    },
  ];
}

/** The generated site and stream files with the production listeners and Traefik's fixed ports moved to the plan's. */
export function toLoopback(files: GeneratedFile[], plan: GatewayPlan): GeneratedFile[] {
  const out = files.map((file) => ({ ...file }));
  for (const rule of rules(plan)) {
    const file = out.find((f) => f.relative === rule.file);
    if (!file) throw new Error(`the generator produced no ${rule.file}`);
    const matches = file.text.match(rule.pattern)?.length ?? 0;
    if (matches === 0 && rule.modes.includes(plan.mode)) {
      throw new Error(`generator output changed: no '${rule.name}' line in ${rule.file} (mode ${plan.mode}); update toLoopback in test/realtls/gateway.mts`);
    }
    file.text = file.text.replace(rule.pattern, rule.replace);
  }
  return out;
}

/**
 * Throws unless every listener is a 127.0.0.0/8 address with a port >= 1024
 * and every address named outside comments is in 127.0.0.0/8.
 */
export function assertLoopbackOnly(text: string, where: string): void {
  const lines = text.split('\n').map((line) => line.replace(/#.*$/, '').trim());
  for (const line of lines) {
    const listen = /^listen\s+([^\s;]+)/.exec(line);
    if (listen) {
      const m = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d+)$/.exec(listen[1] as string);
      if (!m || Number(m[2]) < 1024) throw new Error(`${where}: '${line}' is not a loopback address with a high port`);
    }
    for (const ip of line.match(/\b\d{1,3}(\.\d{1,3}){3}\b/g) ?? []) {
      if (!ip.startsWith('127.')) throw new Error(`${where}: '${line}' names ${ip}, outside 127.0.0.0/8`);
    }
    if (/\[[0-9a-f:]*\]/i.test(line)) throw new Error(`${where}: '${line}' names an IPv6 address`);
  }
}

/** Generate the gateway for `plan` into `dir` (manifests, prefix, nginx.conf) without starting anything. */
export function buildGateway(dir: string, plan: GatewayPlan, adjust: (model: GatewayModel) => GatewayModel = (model) => model): LoopbackGateway {
  const base = loopbackManifests(path.join(dir, 'base'), plan);
  const config = loadConfig(resolveConfigPaths({}, { PHOENIX_BASE_DIR: base }));
  // The root CA's path inside the gateway CT is where the trusted_ca feature installs it;
  // on this machine it is the test root.
  const model = adjust({ ...gatewayModel(config), rootCa: { path: plan.rootCa, host: plan.rootCa } });
  const generated = renderGatewayFiles(model);
  const files = toLoopback(generated.filter((file) => file.relative !== NGINX_CONF_RELATIVE), plan);
  const prefix = path.join(dir, 'prefix');
  fs.mkdirSync(prefix, { recursive: true, mode: 0o755 });
  // nginx's workers run as www-data when the test runs as root: they must be able to enter the prefix.
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(prefix, 0o755);
  const site = path.join(prefix, 'gateway');
  const stream = path.join(prefix, 'stream-gateway.conf');
  for (const file of files) {
    assertLoopbackOnly(file.text, file.relative);
    fs.writeFileSync(file.relative === SITE_RELATIVE ? site : stream, file.text);
  }
  const confText = renderNginxConf(model, { streamModule: STREAM_MODULE, scratch: prefix, sitesInclude: site, streamInclude: stream });
  assertLoopbackOnly(confText, 'nginx.conf');
  const conf = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(conf, confText);
  return { plan, model, generated, files, prefix, conf, errorLog: path.join(prefix, 'error.log') };
}

/** `nginx -t` on the gateway's files in its prefix (binds the listeners, loads every certificate). */
export function nginxTest(nginx: string, gateway: LoopbackGateway): Promise<CommandOutcome> {
  return runBounded(nginx, ['-t', '-q', '-p', `${gateway.prefix}/`, '-c', gateway.conf, '-e', gateway.errorLog], { timeoutMs: 20_000 });
}

/** The gateway's listeners: what a started nginx must accept connections on. */
export function listeners(gateway: LoopbackGateway): { host: string; port: number }[] {
  const { plan } = gateway;
  const out = [
    { host: plan.gatewayAddress, port: plan.ports.http },
    { host: plan.gatewayAddress, port: plan.ports.https },
  ];
  if (plan.mode === 'hybrid') out.push({ host: INTERNAL_TLS_ADDRESS, port: plan.ports.internalTls });
  return out;
}

/** Start nginx on the gateway's files in the foreground (its own process group) and wait for every listener. */
export async function startNginx(scope: Scope, nginx: string, gateway: LoopbackGateway, name = `nginx ${gateway.plan.mode}`): Promise<Daemon> {
  const daemon = startDaemon(scope, {
    name,
    cmd: nginx,
    args: ['-p', `${gateway.prefix}/`, '-c', gateway.conf, '-e', gateway.errorLog, '-g', 'daemon off;'],
    logFile: path.join(gateway.prefix, 'stdout.log'),
    env: childEnv(),
    lifetimeS: 90,
  });
  try {
    for (const { host, port } of listeners(gateway)) await waitForTcp(host, port, 10_000, daemon);
  } catch (error) {
    const log = fs.existsSync(gateway.errorLog) ? fs.readFileSync(gateway.errorLog, 'utf8') : '';
    throw new Error(`${(error as Error).message}\nerror.log:\n${log.split('\n').slice(-20).join('\n')}`);
  }
  return daemon;
}
