// A stack's compose file, rendered on the host as data: the template is
// parsed YAML, the manifest's variables are substituted scalar by scalar
// (interpolate.mts), the manifest's Traefik labels are merged into each
// service's deploy.labels and checked (traefik-labels.mts), and the result
// is serialised again. Nothing here runs a command or writes a file, so what
// a deploy would send is testable on its own; `writeRenderedStack` is the
// one write.
//
// Every rendered service carries the label `phoenix.stack.digest`: the
// sha256 of the rendered file without that label. swarm-manager compares it
// with the running services to skip a deploy that would change nothing.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, PhoenixError } from '../core/errors.mts';
import { addSecret } from '../core/redact.mts';
import { writeFileAtomic, type WriteOutcome } from '../core/fs.mts';
import { ManifestError, type PhoenixConfig } from '../config/load.mts';
import { pathIssues } from '../config/paths.mts';
import type { StackConfig } from '../config/types.mts';
import { interpolate } from './interpolate.mts';
import { checkTraefikLabels, mergeLabels, splitLabel } from './traefik-labels.mts';
import { loadYaml } from '../core/yaml.mts';

/** The service label holding the digest of the rendered file. */
export const DIGEST_LABEL = 'phoenix.stack.digest';
/** Upstream's shared stacks directory on the host (NFS-exported to the manager as /mnt/stacks). */
export const DEFAULT_STACKS_DIR = '/quickOS/portainer_stacks';
export const COMPOSE_FILE = 'docker-compose.yml';
/** Stack and environment names become part of Swarm object names. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Variable names whose values must never be shown (same rule as the manifest checks). */
const SECRET_NAME = /password|passwd|passphrase|secret|token|api_?key|private_?key|credential|(^|[_-])pass($|[_-])/i;

export interface RenderOptions {
  /** PHOENIX_BASE_DIR: the upstream layout kept templates in <base>/stacks/<stack>/. */
  baseDir: string;
  /** PHOENIX_HOST_ROOT, under which host paths such as the stacks directory live. */
  hostRoot?: string;
}

export interface RenderedStack {
  stack: string;
  environment: string;
  /** The Swarm stack name, `<environment>_<stack>` as in the bash. */
  name: string;
  /** The template that was read. */
  template: string;
  /** The rendered compose file. */
  text: string;
  /** sha256 (hex) of the rendered file without the digest labels; also in each service's `phoenix.stack.digest`. */
  digest: string;
  /** Compose service names, in file order. */
  services: string[];
  /** Manifest variables used (names only; values may be secret). */
  substituted: string[];
  /** Variables referenced without a value in the manifest: docker leaves them empty. */
  unresolved: string[];
  /** Labels Phoenix added to satisfy Traefik (`service: key=value`). */
  addedLabels: string[];
  /** Manifest variables of this environment that the template never references. */
  unusedVariables: string[];
  /** True when a secret-looking variable's value is in the text: the file is written 0600. */
  sensitive: boolean;
  /** Networks and secrets the file declares `external`: they must exist before the deploy. */
  externalNetworks: string[];
  externalSecrets: string[];
}

/** The manifest entry of a stack, or undefined when the manifest does not name it. */
export function stackEntry(config: PhoenixConfig, stack: string): StackConfig | undefined {
  if (!fs.existsSync(config.paths.stacks)) return undefined;
  const stacks = config.stacks.docker_stacks;
  return Object.hasOwn(stacks, stack) ? stacks[stack] : undefined;
}

/** The host directory holding the stacks (core_paths.stacks_dir, else the upstream path), under the host root. */
export function stacksDirectory(config: PhoenixConfig, hostRoot = '/'): string {
  const configured = fs.existsSync(config.paths.hypervisor) ? config.hypervisor.core_paths?.stacks_dir : undefined;
  const dir = configured ?? DEFAULT_STACKS_DIR;
  return hostRoot === '/' ? dir : path.join(hostRoot, dir);
}

/** Where `deploy` keeps the rendered file of a stack and environment. */
export function renderedPath(config: PhoenixConfig, stack: string, environment: string, hostRoot = '/'): string {
  return path.join(stacksDirectory(config, hostRoot), stack, `docker-compose.${environment}.rendered.yml`);
}

/**
 * The compose template of a stack, first that exists of: compose_file_path
 * (relative to the stacks manifest's directory), <base>/stacks/<stack>/,
 * and the stacks directory (where the bash read its rsync'ed copy).
 */
export function templateCandidates(config: PhoenixConfig, stack: string, options: RenderOptions): string[] {
  const entry = stackEntry(config, stack);
  const manifestDir = path.dirname(config.paths.stacks);
  const candidates: string[] = [];
  const configured = entry?.compose_file_path;
  candidates.push(path.resolve(manifestDir, configured ?? path.join('stacks', stack, COMPOSE_FILE)));
  candidates.push(path.join(options.baseDir, 'stacks', stack, COMPOSE_FILE));
  candidates.push(path.join(stacksDirectory(config, options.hostRoot), stack, COMPOSE_FILE));
  return [...new Set(candidates)];
}

/**
 * Render `stack` for `environment` from the manifests. Throws ConfigError
 * (file, JSON pointer, what is wrong) for a bad name, an environment the
 * manifest does not define, a template that is missing or not a compose
 * mapping, labels for a service the template lacks, or labels Traefik cannot
 * use. Values of secret-looking variables are registered for redaction.
 */
export async function renderStack(config: PhoenixConfig, stack: string, environment: string, options: RenderOptions): Promise<RenderedStack> {
  const manifestFile = config.paths.stacks;
  if (!NAME_PATTERN.test(stack)) throw new ConfigError(manifestFile, '', `'${stack}' is not a valid stack name (letters, digits, '_', '.', '-')`);
  if (!NAME_PATTERN.test(environment)) throw new ConfigError(manifestFile, '', `'${environment}' is not a valid environment name`);
  const entry = stackEntry(config, stack);
  const stackPointer = `/docker_stacks/${escapePointer(stack)}`;
  const envPointer = `${stackPointer}/environments/${escapePointer(environment)}`;
  if (entry && !Object.hasOwn(entry.environments, environment)) {
    const known = Object.keys(entry.environments);
    throw new ConfigError(manifestFile, `${stackPointer}/environments`, `stack '${stack}' has no environment '${environment}'`, `defined: ${known.join(', ') || 'none'}`);
  }
  const env = entry?.environments[environment] ?? {};
  // compose_file_path and file sources stay inside the stacks' directories (a `..` could read any host file).
  const misplaced = pathIssues(config, (f) => fs.existsSync(f), { sections: ['stacks'] }).filter((issue) => issue.pointer.startsWith(`${stackPointer}/`));
  if (misplaced.length > 0) throw new ManifestError(misplaced, { hint: 'docs/security.md lists where each kind of path may point' });

  const candidates = templateCandidates(config, stack, options);
  const template = candidates.find((file) => fs.existsSync(file));
  if (template === undefined) {
    throw new PhoenixError(`stack '${stack}' has no compose template`, { hint: `looked for ${candidates.join(', ')}` });
  }
  const source = fs.readFileSync(template, 'utf8');

  const YAML = await loadYaml();
  const doc = YAML.parseDocument(source, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(template, '', `not valid YAML: ${doc.errors[0]?.message ?? 'parse error'}`);
  }
  const services = doc.get('services');
  if (!YAML.isMap(services) || services.items.length === 0) {
    throw new ConfigError(template, '/services', 'a compose file needs a `services` mapping with at least one service');
  }
  const serviceNames = services.items.map((pair) => String(YAML.isScalar(pair.key) ? pair.key.value : pair.key));

  // Variables: every string scalar that is a value (compose never interpolates keys).
  const variables = new Map<string, string>();
  let sensitive = false;
  for (const variable of env.variables ?? []) {
    variables.set(variable.name, variable.value);
    if (SECRET_NAME.test(variable.name) && variable.value !== '') addSecret(variable.value);
  }
  const used = new Set<string>();
  const unresolved = new Set<string>();
  YAML.visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const result = interpolate(node.value, variables);
      result.used.forEach((n) => used.add(n));
      result.unresolved.forEach((n) => unresolved.add(n));
      if (result.text !== node.value) node.value = result.text;
    },
  });
  for (const name of used) if (SECRET_NAME.test(name) && variables.get(name) !== '') sensitive = true;

  // Labels: the manifest's services must exist in the template.
  const addedLabels: string[] = [];
  const problems: string[] = [];
  for (const [service, settings] of Object.entries(env.services ?? {})) {
    const pointer = `${envPointer}/services/${escapePointer(service)}`;
    if (!serviceNames.includes(service)) {
      throw new ConfigError(manifestFile, pointer, `service '${service}' is not in the compose template ${template}`, `its services: ${serviceNames.join(', ')}`);
    }
    const manifestLabels = settings.traefik_labels ?? [];
    if (manifestLabels.length === 0) continue;
    const existing = readLabels(YAML, doc.getIn(['services', service, 'deploy', 'labels']));
    const checked = checkTraefikLabels(mergeLabels(existing.labels, manifestLabels));
    for (const message of checked.errors) problems.push(`${pointer}/traefik_labels: ${message}`);
    for (const label of checked.added) addedLabels.push(`${service}: ${label}`);
    setLabels(doc, service, checked.labels, existing.asMap);
  }
  if (problems.length > 0) {
    throw new ConfigError(manifestFile, envPointer, `Traefik labels of stack '${stack}' cannot work:\n  ${problems.join('\n  ')}`);
  }

  const shownTemplate = path.relative(options.baseDir, template).startsWith('..') ? template : path.relative(options.baseDir, template);
  const header = `# Rendered by Phoenix (swarm-manager.sh deploy) from ${shownTemplate}\n# for environment '${environment}' as stack ${environment}_${stack}. Edits are replaced on the next deploy.\n`;
  const body = doc.toString({ lineWidth: 0 });
  const digest = createHash('sha256').update(header + body).digest('hex');
  for (const service of serviceNames) {
    const existing = readLabels(YAML, doc.getIn(['services', service, 'deploy', 'labels']));
    setLabels(doc, service, [...existing.labels.filter(([k]) => k !== DIGEST_LABEL), [DIGEST_LABEL, digest]], existing.asMap);
  }
  const text = header + doc.toString({ lineWidth: 0 });

  const referenced = new Set([...used, ...unresolved]);
  const external = (section: string): string[] => {
    const node = doc.get(section);
    if (!YAML.isMap(node)) return [];
    const names: string[] = [];
    for (const pair of node.items) {
      const key = String(YAML.isScalar(pair.key) ? pair.key.value : pair.key);
      const spec = YAML.isMap(pair.value) ? (pair.value.toJSON() as Record<string, unknown>) : undefined;
      const ext = spec?.external;
      if (ext === true) names.push(typeof spec?.name === 'string' ? spec.name : key);
      else if (ext !== null && typeof ext === 'object') {
        const named = (ext as Record<string, unknown>).name;
        names.push(typeof named === 'string' ? named : typeof spec?.name === 'string' ? spec.name : key);
      }
    }
    return names;
  };
  return {
    stack,
    environment,
    name: `${environment}_${stack}`,
    template,
    text,
    digest,
    services: serviceNames,
    substituted: [...used].sort(),
    unresolved: [...unresolved].sort(),
    addedLabels,
    unusedVariables: [...variables.keys()].filter((n) => !referenced.has(n)),
    sensitive,
    externalNetworks: external('networks'),
    externalSecrets: external('secrets'),
  };
}

/** Write the rendered file atomically (0600 when it holds a secret value, else 0644). */
export function writeRenderedStack(rendered: RenderedStack, file: string): WriteOutcome {
  return writeFileAtomic(file, rendered.text, { mode: rendered.sensitive ? 0o600 : 0o644, dirMode: 0o755 });
}

type YamlModule = typeof import('yaml');

function readLabels(YAML: YamlModule, node: unknown): { labels: Array<[string, string]>; asMap: boolean } {
  if (YAML.isMap(node)) {
    return {
      asMap: true,
      labels: node.items.map((pair) => [String(YAML.isScalar(pair.key) ? pair.key.value : pair.key), YAML.isScalar(pair.value) ? String(pair.value.value ?? '') : String(pair.value ?? '')]),
    };
  }
  if (YAML.isSeq(node)) {
    return { asMap: false, labels: node.items.map((item) => splitLabel(String(YAML.isScalar(item) ? item.value : item))) };
  }
  // No labels yet: a list, as the bash wrote them.
  return { asMap: false, labels: [] };
}

function setLabels(doc: import('yaml').Document, service: string, labels: ReadonlyArray<[string, string]>, asMap: boolean): void {
  const value = asMap ? Object.fromEntries(labels) : labels.map(([k, v]) => `${k}=${v}`);
  doc.setIn(['services', service, 'deploy', 'labels'], doc.createNode(value));
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
