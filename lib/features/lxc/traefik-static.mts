// Traefik's static configuration for the mesh container (CT 102):
// /etc/traefik/traefik.yml from the template etc/traefik/traefik.yml.template,
// handled as parsed YAML, never by text substitution:
//
// - sections the manifests turn off removed, `${NAME}` placeholders filled;
// - what the rest of Phoenix relies on made true whatever the template says:
//   the mesh entrypoint names the dynamic file's mesh-mtls options, and the
//   `step-ca` ACME resolver the websecure routers use exists (added when the
//   template has none, as the bash toolkit's template has none);
// - unsafe settings overridden with a warning: an insecure API (the
//   dashboard stays reachable through its router on the mesh entrypoint),
//   and a DEBUG/TRACE log level unless gateway.traefik_log_level asks for it.
//
// Only the template is read; nothing runs.

import fs from 'node:fs';
import path from 'node:path';
import type { PhoenixConfig } from '../../config/load.mts';
import { ConfigError } from '../../core/errors.mts';
import type { FeatureContext } from '../../guest/container.mts';
import {
  ACME_PROVISIONER,
  CA_PEM,
  CERTS_DIR,
  CONFIG_DIR,
  DEFAULT_API_PORT,
  DEFAULT_MESH_PORT,
  DYNAMIC_DIR,
  SWARM_DOCKER_PORT,
  SWARM_NETWORK,
  TEMPLATE_RELATIVE,
} from './traefik-names.mts';
import { info, warn } from '../../core/log.mts';
import { ACME_RESOLVER, MESH_ENTRYPOINT, MESH_TLS_OPTIONS, WEBSECURE_ENTRYPOINT, acmeEnabled, dashboardHost, staticAddress } from './traefik-names.mts';
import { PROJECT_ROOT } from '../../core/project-root.mts';
import { loadYaml } from '../../core/yaml.mts';

/** The rendered static configuration, relative to PHOENIX_BASE_DIR (next to the dynamic file). */
export const STATIC_RELATIVE = 'etc/traefik/traefik.yml';
/** Traefik's ACME store in the Traefik CT; Traefik refuses it unless its mode is 0600. */
export const ACME_STORAGE = `${CONFIG_DIR}/acme.json`;
/** The template shipped with Phoenix, used when PHOENIX_BASE_DIR has none. */
const SHIPPED_TEMPLATE = path.join(PROJECT_ROOT, 'etc', 'traefik', 'traefik.yml.template');
/** The most verbose level Traefik runs at unless the hypervisor config asks for more. */
const DEFAULT_LOG_CAP = 'INFO';
/** Levels above the cap: DEBUG logs request details and TLS internals, TRACE more still. */
const VERBOSE_LEVELS = new Set(['DEBUG', 'TRACE']);

/** The static template: <base>/etc/traefik/traefik.yml.template, else the one shipped with Phoenix. */
export function staticTemplatePath(baseDir: string): string {
  const own = path.join(baseDir, TEMPLATE_RELATIVE);
  return fs.existsSync(own) ? own : SHIPPED_TEMPLATE;
}

/** Step-CA's ACME directory under a CA URL (the CA container adds the provisioner). */
export function acmeDirectory(ca: string): string {
  return `${ca.replace(/\/+$/, '')}/acme/${ACME_PROVISIONER}/directory`;
}

/** The Docker API of the Swarm manager VM, when one has a static address. */
function swarmEndpoint(config: PhoenixConfig): string | undefined {
  for (const vm of config.vm.vms) {
    if (vm.swarm_role !== 'manager' || vm.is_template) continue;
    const address = staticAddress(vm.network_config?.ip);
    if (address) return `tcp://${address}:${SWARM_DOCKER_PORT}`;
  }
  return undefined;
}

const PLACEHOLDER = /\$\{([A-Za-z0-9_]*)\}/g;

type Yaml = null | boolean | number | string | Yaml[] | { [key: string]: Yaml };
type Mapping = { [key: string]: Yaml };

function isMapping(value: Yaml | undefined): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pointerOf(keys: readonly (string | number)[]): string {
  return keys.map((key) => `/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** Remove `keys` from the mapping at `parents`, then any mapping this leaves empty above it. */
function removeAt(root: Mapping, parents: readonly string[], key: string): void {
  const chain: Mapping[] = [root];
  for (const name of parents) {
    const next = chain[chain.length - 1]?.[name];
    if (!isMapping(next)) return;
    chain.push(next);
  }
  delete chain[chain.length - 1]?.[key];
  for (let i = chain.length - 1; i > 0; i--) {
    if (Object.keys(chain[i] as object).length > 0) break;
    delete chain[i - 1]?.[parents[i - 1] as string];
  }
}

/**
 * The `step-ca` resolver the websecure routers name: the template's own when
 * it has one (kept as written), else added with the CA's ACME directory, the
 * root CA Phoenix installs and the 0600 store the CT 102 script creates.
 */
function ensureAcmeResolver(filled: Mapping, file: string, ca: string): { added: boolean; acme: Mapping } {
  const resolvers = filled.certificatesResolvers;
  if (resolvers !== undefined && resolvers !== null && !isMapping(resolvers)) {
    throw new ConfigError(file, '/certificatesResolvers', 'expected a mapping of certificate resolvers');
  }
  const existing = isMapping(resolvers) ? resolvers[ACME_RESOLVER] : undefined;
  if (existing !== undefined && existing !== null) {
    if (!isMapping(existing) || !isMapping(existing.acme)) {
      throw new ConfigError(file, `/certificatesResolvers/${ACME_RESOLVER}`, `'${ACME_RESOLVER}' is not an ACME resolver, and the websecure routers use it as one`, 'make it an acme resolver, remove it (Phoenix adds one), or set gateway.acme_tls_alpn to false');
    }
    return { added: false, acme: existing.acme };
  }
  const acme: Mapping = { caServer: acmeDirectory(ca), caCertificates: [CA_PEM], storage: ACME_STORAGE, tlsChallenge: {} };
  filled.certificatesResolvers = { ...(isMapping(resolvers) ? resolvers : {}), [ACME_RESOLVER]: { acme } };
  return { added: true, acme };
}

/**
 * Settings overridden for safety, each with its reason: `api.insecure` is
 * always false (it would serve the API and dashboard on the `traefik`
 * entrypoint to anyone who can reach the container, bypassing the mesh's
 * client certificates); the log level is gateway.traefik_log_level when set,
 * else the template's capped at INFO (DEBUG logs request headers and TLS
 * details of every connection through the mesh).
 */
function enforceSafety(filled: Mapping, config: PhoenixConfig): string[] {
  const overridden: string[] = [];
  const api = filled.api;
  if (isMapping(api) && api.insecure !== undefined && api.insecure !== false) {
    const dashboard = api.dashboard === true ? `; the dashboard stays reachable as https://${dashboardHost(config)} through the mesh entrypoint (client certificate required)` : '';
    overridden.push(`api.insecure ${JSON.stringify(api.insecure)} -> false: an insecure API answers anyone who reaches the container, without the mesh's client certificates${dashboard}`);
    api.insecure = false;
  }
  const wanted = config.hypervisor.gateway?.traefik_log_level;
  const log = filled.log;
  const current = isMapping(log) ? log.level : undefined;
  if (wanted !== undefined) {
    if (typeof current !== 'string' || current.toUpperCase() !== wanted) {
      info(`Traefik log level ${wanted}, from gateway.traefik_log_level${typeof current === 'string' ? ` (the template says ${current})` : ''}`);
      filled.log = { ...(isMapping(log) ? log : {}), level: wanted };
    }
  } else if (isMapping(log) && typeof current === 'string' && VERBOSE_LEVELS.has(current.toUpperCase())) {
    overridden.push(`log.level ${current} -> ${DEFAULT_LOG_CAP}: ${current} logs request details of every connection through the mesh; set gateway.traefik_log_level to ${current.toUpperCase()} in ${config.paths.hypervisor} to keep it`);
    log.level = DEFAULT_LOG_CAP;
  }
  return overridden;
}

/** The host of a URL, undefined when the value is not one. */
function urlHost(value: Yaml | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    return new URL(value).hostname;
  } catch {
    return undefined;
  }
}

/** The port of an entrypoint address such as ":8443", "0.0.0.0:8443" or ":8443/tcp". */
function addressPort(address: Yaml | undefined): number | undefined {
  const match = typeof address === 'string' ? /:(\d+)(\/[a-z]+)?$/.exec(address) : null;
  return match ? Number(match[1]) : undefined;
}

export interface TraefikStatic {
  text: string;
  /** The template it came from. */
  source: string;
  document: Record<string, unknown>;
  /** What the template said that Phoenix overrode, and why (also logged as WARN). */
  overridden: string[];
}

/**
 * Traefik's static configuration from the template: parsed as YAML, the
 * sections the manifests turn off removed, every ${NAME} in a value filled
 * from the manifests, the mesh entrypoint tied to the dynamic file's
 * mesh-mtls options, the ACME resolver added when missing, unsafe settings
 * overridden, and serialised again. Refuses a template with an unknown
 * placeholder, without a mesh entrypoint, with a `step-ca` resolver that is
 * not ACME, or with Traefik v1's entrypoint `clientCA`. Same inputs, same
 * text: the traefik feature and the Traefik CT's application script install
 * the same file.
 */
export async function renderTraefikStatic(context: FeatureContext, ctid: string, ca: string): Promise<TraefikStatic> {
  const config = context.config;
  const file = staticTemplatePath(context.options.baseDir);
  const { parseDocument, Document, visit } = await loadYaml();
  const parsed = parseDocument(fs.readFileSync(file, 'utf8'), { uniqueKeys: true });
  if (parsed.errors.length > 0) throw new ConfigError(file, '', `not valid YAML: ${parsed.errors[0]?.message ?? 'parse error'}`);
  const root = parsed.toJS() as Yaml;
  if (!isMapping(root)) throw new ConfigError(file, '', 'expected a mapping (Traefik static configuration)');

  const acme = acmeEnabled(config);
  const swarm = swarmEndpoint(config);
  if (!swarm) removeAt(root, ['providers'], 'swarm');
  if (!acme) {
    removeAt(root, ['certificatesResolvers'], ACME_RESOLVER);
    removeAt(root, ['entryPoints', WEBSECURE_ENTRYPOINT, 'http', 'tls'], 'certResolver');
  }
  const meshPort = config.hypervisor.gateway?.mesh_port ?? DEFAULT_MESH_PORT;
  const values: Record<string, string | undefined> = {
    MESH_PORT: String(meshPort),
    API_PORT: String(config.lxc.lxc_configs[ctid]?.traefik_service?.port ?? DEFAULT_API_PORT),
    DYNAMIC_DIR,
    CERTS_DIR,
    CA_FILE: CA_PEM,
    ACME_STORAGE,
    ACME_CA_SERVER: acme ? acmeDirectory(ca) : undefined,
    SWARM_ENDPOINT: swarm,
    SWARM_NETWORK,
  };
  const fill = (node: Yaml, keys: (string | number)[]): Yaml => {
    if (typeof node === 'string') {
      return node.replace(PLACEHOLDER, (_whole, name: string) => {
        const value = values[name];
        if (value === undefined) {
          const why = name in values ? 'has no value for these manifests (its section is turned off)' : 'is not a placeholder Phoenix knows';
          throw new ConfigError(file, pointerOf(keys), `\${${name}} ${why}`, `known: ${Object.keys(values).map((key) => `\${${key}}`).join(' ')}`);
        }
        return value;
      });
    }
    if (Array.isArray(node)) return node.map((item, i) => fill(item, [...keys, i]));
    if (isMapping(node)) {
      const out: Mapping = {};
      for (const [key, value] of Object.entries(node)) {
        if (key === 'clientCA') {
          throw new ConfigError(file, pointerOf([...keys, key]), 'clientCA is Traefik v1 syntax; Traefik v3 refuses it', `client certificates are required by the dynamic file's TLS options ${MESH_TLS_OPTIONS}`);
        }
        out[key] = fill(value, [...keys, key]);
      }
      return out;
    }
    return node;
  };
  const filled = fill(root, []) as Mapping;

  const entryPoints = filled.entryPoints;
  const mesh = isMapping(entryPoints) ? entryPoints[MESH_ENTRYPOINT] : undefined;
  if (!isMapping(mesh)) throw new ConfigError(file, `/entryPoints/${MESH_ENTRYPOINT}`, `the template has no '${MESH_ENTRYPOINT}' entrypoint, which the gateway and the mesh routers use`);
  // Qualified: a Swarm-provider router on mesh would otherwise look for mesh-mtls@swarm.
  const meshHttp = isMapping(mesh.http) ? mesh.http : (mesh.http = {});
  const meshTls = isMapping(meshHttp.tls) ? meshHttp.tls : (meshHttp.tls = {});
  meshTls.options = `${MESH_TLS_OPTIONS}@file`;
  const templatePort = addressPort(mesh.address);
  if (templatePort !== undefined && templatePort !== meshPort) {
    warn(`${file}: the mesh entrypoint listens on ${templatePort}, but the gateway connects to ${meshPort} (gateway.mesh_port): use \${MESH_PORT} in the template`);
  }
  if (acme) {
    const resolver = ensureAcmeResolver(filled, file, ca);
    if (resolver.added) info(`${file} has no ACME resolver '${ACME_RESOLVER}': added one (caServer ${resolver.acme.caServer as string}, storage ${ACME_STORAGE})`);
    // A CA reached by address presents a certificate for its name: tell Traefik which name to verify.
    const caName = config.hypervisor.step_ca?.dns_name;
    if (caName && resolver.acme.caServerName === undefined && staticAddress(urlHost(resolver.acme.caServer)) !== undefined) resolver.acme.caServerName = caName;
  }
  const overridden = enforceSafety(filled, config);
  for (const line of overridden) warn(`Traefik static configuration: ${line} (overriding ${file})`);

  const doc = new Document(filled);
  // ":80" is a valid plain scalar in YAML 1.2 but not for every parser; quote addresses.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && node.value.startsWith(':')) node.type = 'QUOTE_DOUBLE';
    },
  });
  const header = [
    `# Traefik static configuration, generated by Phoenix from ${TEMPLATE_RELATIVE} and the manifests.`,
    '# Edits are overwritten on the next run; change the template or the manifests instead.',
    '',
  ].join('\n');
  return { text: header + doc.toString({ lineWidth: 0 }), source: file, document: filled as Record<string, unknown>, overridden };
}
