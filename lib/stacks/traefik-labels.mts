// The Traefik labels of one compose service: the manifest's `traefik_labels`
// merged over the template's `deploy.labels`, checked against what Phoenix's
// Traefik needs (docs/pki-and-gateway.md):
//
// - the Swarm provider runs with exposedByDefault: false, so labels that
//   define routers without any `traefik.enable` get `traefik.enable=true`;
// - Swarm gives Traefik no port to guess from, so a service with routers
//   must name `traefik.http.services.<s>.loadbalancer.server.port`;
// - the `mesh` entrypoint only speaks TLS, and its client-certificate
//   requirement comes from the entrypoint's TLS options: a router on it gets
//   `tls=true` when it has no TLS label, and a router that names other TLS
//   options (which would replace mesh-mtls and drop client authentication)
//   is refused.
//
// The bash replaced the template's labels wholesale and built the YAML list
// by stripping brackets from a JSON string (a label holding `]` broke it).

import { MESH_ENTRYPOINT, MESH_TLS_OPTIONS } from '../gateway/traefik.mts';

export interface LabelCheck {
  labels: Array<[string, string]>;
  /** Labels Phoenix added, as `key=value`, for the operator's information. */
  added: string[];
  /** Problems that stop the deploy, each a sentence. */
  errors: string[];
}

export function splitLabel(label: string): [string, string] {
  const eq = label.indexOf('=');
  return eq === -1 ? [label, ''] : [label.slice(0, eq), label.slice(eq + 1)];
}

/** Existing labels (compose allows a mapping or a list of `key=value`) then the manifest's; a later key wins in place. */
export function mergeLabels(existing: ReadonlyArray<[string, string]>, manifest: readonly string[]): Array<[string, string]> {
  const merged = new Map<string, string>(existing);
  for (const label of manifest) {
    const [key, value] = splitLabel(label);
    merged.set(key, value);
  }
  return [...merged];
}

const ROUTER = /^traefik\.http\.routers\.([^.]+)\.(.+)$/;
const SERVER_PORT = /^traefik\.http\.services\.[^.]+\.loadbalancer\.server\.port$/;

export function checkTraefikLabels(labels: ReadonlyArray<[string, string]>): LabelCheck {
  const out = [...labels];
  const added: string[] = [];
  const errors: string[] = [];
  const keys = new Set(out.map(([k]) => k));
  const routers = new Map<string, Map<string, string>>();
  for (const [key, value] of out) {
    const m = ROUTER.exec(key);
    if (!m) continue;
    const name = m[1] as string;
    if (!routers.has(name)) routers.set(name, new Map());
    (routers.get(name) as Map<string, string>).set(m[2] as string, value);
  }
  if (routers.size === 0) return { labels: out, added, errors };

  if (!keys.has('traefik.enable')) {
    out.unshift(['traefik.enable', 'true']);
    added.push('traefik.enable=true');
  }
  if (![...keys].some((k) => SERVER_PORT.test(k))) {
    errors.push('routers are defined but no traefik.http.services.<name>.loadbalancer.server.port: Swarm gives Traefik no port to route to');
  }
  for (const [router, settings] of routers) {
    const entrypoints = (settings.get('entrypoints') ?? '').split(',').map((e) => e.trim());
    if (!entrypoints.includes(MESH_ENTRYPOINT)) continue;
    const options = settings.get('tls.options');
    if (options !== undefined && options !== `${MESH_TLS_OPTIONS}@file` && options !== MESH_TLS_OPTIONS) {
      errors.push(`router '${router}' is on the ${MESH_ENTRYPOINT} entrypoint but sets tls.options=${options}, which would replace ${MESH_TLS_OPTIONS}@file and stop requiring client certificates`);
    }
    const hasTls = [...settings.keys()].some((k) => k === 'tls' || k.startsWith('tls.'));
    if (!hasTls) {
      out.push([`traefik.http.routers.${router}.tls`, 'true']);
      added.push(`traefik.http.routers.${router}.tls=true`);
    } else if (settings.get('tls') === 'false') {
      errors.push(`router '${router}' is on the ${MESH_ENTRYPOINT} entrypoint, which only accepts TLS, but sets tls=false`);
    }
  }
  return { labels: out, added, errors };
}
