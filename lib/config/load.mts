// The five manifests: where they are, reading them once per process, and
// refusing bad input before anything changes on the host. The pieces live
// in lib/config/: file names and limits (files.mts), reading a file
// (read.mts, json-scan.mts), the schema check and its messages
// (schema-check.mts), the checks across manifests (references.mts).
//
// - Paths: explicit flags, then the environment (which is how a parent's
//   choice reaches its child scripts), then the hypervisor config's
//   core_paths, then <baseDir>/etc. The bash re-exported fixed paths in every
//   child, so overrides never arrived; here `configPathsEnv` hands them down.
// - Reading: a file is read and parsed once per process, however many
//   PhoenixConfig objects name it, and validated only when a script first
//   touches that manifest.
// - Errors: every problem of a file in one ConfigError (ManifestError), one
//   line each, with the JSON pointer and what was expected. Values at
//   secret-looking keys never appear in a message.

import fs from 'node:fs';
import path from 'node:path';
import { resolveOptions } from '../core/env.mts';
import { ConfigError } from '../core/errors.mts';
import { pathIssues } from './paths.mts';
import { KINDS, MANIFEST_ENV, MANIFEST_FILES } from './files.mts';
import { parseFile } from './read.mts';
import { describeValue, issueError, ManifestError, validateDocument } from './schema-check.mts';
import { collectWarnings, referenceIssues } from './references.mts';
import { byCodePoint, isRecord } from './json-values.mts';

export { MANIFEST_ENV, MANIFEST_FILES } from './files.mts';
export { MAX_MANIFEST_BYTES, MAX_MANIFEST_DEPTH } from './files.mts';
export { ManifestError, validateDocument } from './schema-check.mts';
import type { CertificateEntry, ConfigPaths, ConfigWarning, GuestRef, HypervisorConfig, LxcConfig, LxcManifest, ManifestKind, ManifestTypes, PhoenixConfig, StacksManifest, VmManifest } from './types.mts';

export type * from './types.mts';

type Env = Record<string, string | undefined>;

// ---------------------------------------------------------------- paths

/**
 * Where each manifest is. Highest first: `flags` (a script's options), the
 * environment (HYPERVISOR_CONFIG_FILE, LXC_CONFIG_FILE, VM_CONFIG_FILE,
 * STACKS_CONFIG_FILE, CERTIFICATE_MANIFEST_FILE), the hypervisor config's
 * core_paths (LXC and VM files only; relative to that file), then
 * <PHOENIX_BASE_DIR>/etc/<name>. Relative flags and variables are taken from
 * the working directory.
 */
export function resolveConfigPaths(flags: Partial<ConfigPaths> = {}, env: Env = process.env): ConfigPaths {
  const etc = path.join(resolveOptions(env).baseDir, 'etc');
  const explicit = (kind: ManifestKind): string | undefined => {
    const value = nonEmpty(flags[kind]) ?? nonEmpty(env[MANIFEST_ENV[kind]]);
    return value === undefined ? undefined : path.resolve(value);
  };
  const fallback = (kind: ManifestKind): string => path.join(etc, MANIFEST_FILES[kind]);
  const hypervisor = explicit('hypervisor') ?? fallback('hypervisor');
  const fromCore = (kind: 'lxc' | 'vm'): string | undefined => corePath(hypervisor, kind);
  return {
    hypervisor,
    lxc: explicit('lxc') ?? fromCore('lxc') ?? fallback('lxc'),
    vm: explicit('vm') ?? fromCore('vm') ?? fallback('vm'),
    stacks: explicit('stacks') ?? fallback('stacks'),
    certificates: explicit('certificates') ?? fallback('certificates'),
  };
}

/** The variables a child script needs to resolve exactly these paths. */
export function configPathsEnv(paths: ConfigPaths): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kind of KINDS) env[MANIFEST_ENV[kind]] = paths[kind];
  return env;
}

/**
 * core_paths.lxc_config_file / vm_config_file of the hypervisor config, made
 * absolute against that file's directory. A missing hypervisor config is not
 * an error here: a script that never needs it should not fail because of it.
 */
function corePath(hypervisorFile: string, kind: 'lxc' | 'vm'): string | undefined {
  if (!fs.existsSync(hypervisorFile)) return undefined;
  const doc = readDocument(hypervisorFile, 'hypervisor');
  const key = kind === 'lxc' ? 'lxc_config_file' : 'vm_config_file';
  const core = isRecord(doc) ? doc.core_paths : undefined;
  if (core === undefined) return undefined;
  if (!isRecord(core)) throw issueError(hypervisorFile, '/core_paths', `expected object, got ${describeValue(core, false)}`);
  const value = core[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') {
    throw issueError(hypervisorFile, `/core_paths/${key}`, `expected a path, got ${describeValue(value, false)}`);
  }
  return path.resolve(path.dirname(hypervisorFile), value);
}

// ---------------------------------------------------------------- loading

interface Cached<T> {
  value?: T;
  error?: ConfigError;
}

const documents = new Map<string, Cached<unknown>>();
const manifests = new Map<string, Cached<unknown>>();
const configs = new Map<string, PhoenixConfig>();

/** The config for these paths (default: from the environment), one object per path set. */
export function loadConfig(paths: ConfigPaths = resolveConfigPaths()): PhoenixConfig {
  const key = KINDS.map((kind) => paths[kind]).join('\0');
  let config = configs.get(key);
  if (!config) {
    config = new LoadedConfig(paths);
    configs.set(key, config);
  }
  return config;
}

/** Forget every file read so far (tests; a long-running process after an edit). */
export function clearConfigCache(): void {
  documents.clear();
  manifests.clear();
  configs.clear();
}

function loadManifest<K extends ManifestKind>(kind: K, file: string): ManifestTypes[K] {
  const key = `${kind}\0${file}`;
  const hit = manifests.get(key);
  if (hit?.error) throw hit.error;
  if (hit) return hit.value as ManifestTypes[K];
  try {
    const value = validateDocument(kind, readDocument(file, kind), file);
    manifests.set(key, { value });
    return value;
  } catch (err) {
    if (err instanceof ConfigError) manifests.set(key, { error: err });
    throw err;
  }
}

function readDocument(file: string, kind: ManifestKind): unknown {
  const hit = documents.get(file);
  if (hit?.error) throw hit.error;
  if (hit) return hit.value;
  try {
    const value = parseFile(file, kind);
    documents.set(file, { value });
    return value;
  } catch (err) {
    if (err instanceof ConfigError) documents.set(file, { error: err });
    throw err;
  }
}

// ---------------------------------------------------------------- the config object

class LoadedConfig implements PhoenixConfig {
  readonly paths: Readonly<ConfigPaths>;

  constructor(paths: ConfigPaths) {
    this.paths = Object.freeze({ ...paths });
  }

  get hypervisor(): HypervisorConfig {
    return loadManifest('hypervisor', this.paths.hypervisor);
  }

  get lxc(): LxcManifest {
    return loadManifest('lxc', this.paths.lxc);
  }

  get vm(): VmManifest {
    return loadManifest('vm', this.paths.vm);
  }

  get stacks(): StacksManifest {
    return loadManifest('stacks', this.paths.stacks);
  }

  get certificates(): CertificateEntry[] {
    return loadManifest('certificates', this.paths.certificates);
  }

  lxcIds(): string[] {
    return Object.keys(this.lxc.lxc_configs).sort(byCodePoint);
  }

  vmIds(): string[] {
    return this.vm.vms.map((vm) => String(vm.vmid));
  }

  guest(id: string | number): GuestRef | undefined {
    const key = String(id);
    const containers = this.lxc.lxc_configs;
    if (Object.hasOwn(containers, key)) return { kind: 'lxc', id: key, config: containers[key] as LxcConfig };
    const vm = this.vm.vms.find((candidate) => String(candidate.vmid) === key);
    return vm ? { kind: 'vm', id: key, config: vm } : undefined;
  }

  validateReferences(): void {
    const references = referenceIssues(this);
    const paths = pathIssues(this, (file) => fs.existsSync(file));
    if (references.length > 0) throw new ManifestError([...references, ...paths], { hint: 'ids must name a guest defined in one of the two guest manifests' });
    if (paths.length > 0) throw new ManifestError(paths, { hint: 'docs/security.md lists where each kind of path may point' });
  }

  warnings(): ConfigWarning[] {
    return collectWarnings(this);
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
