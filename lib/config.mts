// The five manifests: where they are, reading them once per process, and
// refusing bad input before anything changes on the host.
//
// - Paths: explicit flags, then the environment (which is how a parent's
//   choice reaches its child scripts), then the hypervisor config's
//   core_paths, then <baseDir>/etc. The bash re-exported fixed paths in every
//   child, so overrides never arrived; here `configPathsEnv` hands them down.
// - Reading: a file is read and parsed once per process, however many
//   PhoenixConfig objects name it, and validated only when a script first
//   touches that manifest. Validators are ajv standalone code generated at
//   build time (lib/schema-build.mts), one file per manifest, loaded on first
//   use: no schema compilation at run time and no ajv import.
// - Errors: every problem of a file in one ConfigError (ManifestError), one
//   line each, with the JSON pointer and what was expected. Values at
//   secret-looking keys never appear in a message.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PROJECT_ROOT } from './project-root.mts';
import { alreadyValidated, rememberValidated, validationKey } from './validation-cache.mts';
import { resolveOptions } from './env.mts';
import { ConfigError } from './errors.mts';
import { completeIdMaps } from './id-maps.mts';
import { pathIssues } from './config-paths.mts';
import type {
  CertificateEntry,
  HypervisorConfig,
  LxcConfig,
  LxcManifest,
  StacksManifest,
  VmConfig,
  VmManifest,
} from './config-types.mts';

export type * from './config-types.mts';

export interface ConfigPaths {
  hypervisor: string;
  lxc: string;
  vm: string;
  stacks: string;
  certificates: string;
}

export type ManifestKind = keyof ConfigPaths;

export interface ManifestTypes {
  hypervisor: HypervisorConfig;
  lxc: LxcManifest;
  vm: VmManifest;
  stacks: StacksManifest;
  certificates: CertificateEntry[];
}

export type GuestRef =
  | { kind: 'lxc'; id: string; config: LxcConfig }
  | { kind: 'vm'; id: string; config: VmConfig };

/** One problem in one file; `pointer` is a JSON pointer ("" for the whole file). */
export interface ConfigIssue {
  file: string;
  pointer: string;
  message: string;
}

export type ConfigWarning = ConfigIssue;

/**
 * The manifests of one path set. Each property reads and validates its file on
 * first access and throws ConfigError when it is missing or invalid. The
 * objects are shared by every caller in the process: treat them as read-only.
 */
export interface PhoenixConfig {
  readonly paths: Readonly<ConfigPaths>;
  readonly hypervisor: HypervisorConfig;
  readonly lxc: LxcManifest;
  readonly vm: VmManifest;
  readonly stacks: StacksManifest;
  readonly certificates: CertificateEntry[];
  /** CTIDs sorted as strings, like jq's `keys[]` in the bash. */
  lxcIds(): string[];
  /** VMIDs as strings, in file order. */
  vmIds(): string[];
  /** The guest with this id; a container wins over a VM, as in phoenix-cli. */
  guest(id: string | number): GuestRef | undefined;
  /** Cross-file checks (clone sources, dependencies, duplicate ids and addresses, ...). */
  validateReferences(): void;
  /** Accepted but unwise content: clear-text secrets, keys nothing reads. */
  warnings(): ConfigWarning[];
}

export const MANIFEST_FILES: Readonly<Record<ManifestKind, string>> = {
  hypervisor: 'phoenix_hypervisor_config.json',
  lxc: 'phoenix_lxc_configs.json',
  vm: 'phoenix_vm_configs.json',
  stacks: 'phoenix_stacks_config.json',
  certificates: 'certificate-manifest.json',
};

export const MANIFEST_ENV: Readonly<Record<ManifestKind, string>> = {
  hypervisor: 'HYPERVISOR_CONFIG_FILE',
  lxc: 'LXC_CONFIG_FILE',
  vm: 'VM_CONFIG_FILE',
  stacks: 'STACKS_CONFIG_FILE',
  certificates: 'CERTIFICATE_MANIFEST_FILE',
};

const SCHEMA_FILES: Readonly<Record<ManifestKind, string>> = {
  hypervisor: 'phoenix_hypervisor_config.schema.json',
  lxc: 'phoenix_lxc_configs.schema.json',
  vm: 'phoenix_vm_configs.schema.json',
  stacks: 'phoenix_stacks_config.schema.json',
  certificates: 'certificate-manifest.schema.json',
};

const KINDS: readonly ManifestKind[] = ['hypervisor', 'lxc', 'vm', 'stacks', 'certificates'];
/** Schemas and example manifests ship with the code, not with the operator's etc/. */
const PROJECT_ETC = path.join(PROJECT_ROOT, 'etc');
/** More lines than this in one error stop helping; the rest is counted. */
const MAX_ISSUE_LINES = 10;

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
const validators = new Map<ManifestKind, Validator>();
const schemas = new Map<ManifestKind, unknown>();

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

/** Larger than any real manifest by far; a bigger file is a mistake (or an attack), not a config. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** Deeper than any real manifest (they nest about 8 levels); bounds every recursive walk after parsing. */
export const MAX_MANIFEST_DEPTH = 64;

/**
 * The bytes of a manifest, refusing what is not a regular file before it is
 * opened: a FIFO would block the read forever, a device or /proc file has no
 * end. The open itself is non-blocking, so a file swapped for a FIFO in
 * between cannot hang the run either.
 */
function readManifestBytes(file: string, kind: ManifestKind): Buffer {
  const hint = `set ${MANIFEST_ENV[kind]} or PHOENIX_BASE_DIR; an example is ${path.join(PROJECT_ETC, MANIFEST_FILES[kind])}`;
  const failure = (err: unknown): ConfigError => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return new ConfigError(file, '', 'file not found', hint);
    if (code === 'ENOTDIR') return new ConfigError(file, '', 'file not found (a directory on its path is a file)', hint);
    if (code === 'EISDIR') return new ConfigError(file, '', 'is a directory, not a JSON file', hint);
    if (code === 'ELOOP') return new ConfigError(file, '', 'symbolic link loop; the path never reaches a file');
    if (code === 'EACCES' || code === 'EPERM') return new ConfigError(file, '', 'permission denied');
    return new ConfigError(file, '', `cannot read: ${code ?? String(err)}`);
  };
  const refuseType = (stat: fs.Stats): void => {
    if (stat.isFile()) {
      if (stat.size > MAX_MANIFEST_BYTES) throw new ConfigError(file, '', `is ${stat.size} bytes; a manifest may have at most ${MAX_MANIFEST_BYTES} (16 MiB)`);
      return;
    }
    if (stat.isDirectory()) throw new ConfigError(file, '', 'is a directory, not a JSON file', hint);
    const what = stat.isFIFO() ? 'a named pipe (FIFO)' : stat.isSocket() ? 'a socket' : stat.isCharacterDevice() || stat.isBlockDevice() ? 'a device' : 'not a regular file';
    throw new ConfigError(file, '', `is ${what}; a manifest must be a regular file`);
  };
  try {
    refuseType(fs.statSync(file));
    // O_NONBLOCK: should the file have become a FIFO since the check, the
    // read ends at once (EOF or EAGAIN) instead of waiting for a writer.
    // Node takes numeric open flags here too; its typings only list the string forms.
    const bytes = fs.readFileSync(file, { flag: (fs.constants.O_RDONLY | fs.constants.O_NONBLOCK) as unknown as string });
    if (bytes.length > MAX_MANIFEST_BYTES) throw new ConfigError(file, '', `is larger than ${MAX_MANIFEST_BYTES} bytes (16 MiB), the most a manifest may have`);
    return bytes;
  } catch (err) {
    throw err instanceof ConfigError ? err : failure(err);
  }
}

function parseFile(file: string, kind: ManifestKind): unknown {
  const bytes = readManifestBytes(file, kind);
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    // jq refuses it too, so a bash toolkit never ran with such a file.
    throw issueError(file, '', 'starts with a UTF-8 byte order mark (BOM); save the file without it');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const offset = invalidUtf8Offset(bytes);
    const before = bytes.subarray(0, offset).toString('utf8');
    const { line, column } = lineColumn(before, before.length);
    throw new ManifestError([{ file, pointer: '', message: `not valid UTF-8 at line ${line}, column ${column} (byte ${offset})` }], { line, column });
  }
  if (text.trim() === '') throw issueError(file, '', 'file is empty; expected a JSON document');
  // The scanner runs first: it bounds the nesting depth before anything
  // recursive (JSON.parse, the schema validators) sees the document, and it
  // reports positions and pointers where JSON.parse would quote the text,
  // which may be a secret.
  const scan = scanJson(text);
  if (scan.error) {
    const { line, column } = lineColumn(text, scan.error.offset);
    if (scan.error.tooDeep) {
      throw new ManifestError([{ file, pointer: scan.error.pointer, message: `${scan.error.message} (line ${line}, column ${column}); no manifest needs that` }], { line, column });
    }
    // A syntax error belongs to no value, so the pointer is only a hint of where it is.
    const inside = scan.error.pointer === '' ? '' : ` (in ${scan.error.pointer})`;
    throw new ManifestError([{ file, pointer: '', message: `invalid JSON at line ${line}, column ${column}: ${scan.error.message}${inside}` }], {
      line,
      column,
    });
  }
  // jq and JSON.parse both keep the last of two equal keys, so a copied CT
  // block whose id was not changed silently replaces the original.
  if (scan.duplicates.length > 0) {
    throw new ManifestError(
      scan.duplicates.map((d) => ({
        file,
        pointer: d.pointer,
        message: `duplicate key ${JSON.stringify(d.key)} at line ${lineColumn(text, d.offset).line} (first at line ${lineColumn(text, d.firstOffset).line}; only the last would count)`,
      })),
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw issueError(file, '', 'not valid JSON');
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function invalidUtf8Offset(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    const width = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (width === 0) return i;
    try {
      decoder.decode(bytes.subarray(i, i + width));
    } catch {
      return i;
    }
    i += width;
  }
  return i;
}

// ---------------------------------------------------------------- validation

interface SchemaError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, unknown>;
  propertyName?: string;
}

type Validator = ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

// Generated into lib/config-validators by `make build`; found from the installation, so a bundled script finds them too.
const requireValidator = createRequire(path.join(PROJECT_ROOT, 'lib', 'config.mjs'));

const validatorFile = (kind: ManifestKind): string => path.join(PROJECT_ROOT, 'lib', 'config-validators', `${kind}.cjs`);

function validatorFor(kind: ManifestKind): Validator {
  let validate = validators.get(kind);
  if (!validate) {
    validate = (requireValidator(validatorFile(kind)) as { validate: Validator }).validate;
    validators.set(kind, validate);
  }
  return validate;
}

/** Check a parsed manifest against its schema; `file` only labels the errors. */
export function validateDocument<K extends ManifestKind>(kind: K, doc: unknown, file: string): ManifestTypes[K] {
  // The same document passed this validator before (validation-cache.mts): its schema check is not repeated.
  const key = validationKey(kind, validatorFile(kind), doc);
  if (alreadyValidated(key)) return doc as ManifestTypes[K];
  const validate = validatorFor(kind);
  if (validate(doc)) {
    rememberValidated(key);
    return doc as ManifestTypes[K];
  }
  const issues = describeSchemaErrors(kind, validate.errors ?? [], doc, file);
  throw new ManifestError(issues, { hint: `the schema is ${path.join(PROJECT_ETC, 'schemas', SCHEMA_FILES[kind])}` });
}

/** Every problem of one or more files, the first in the headline. */
export class ManifestError extends ConfigError {
  readonly issues: readonly ConfigIssue[];
  /** Position of a JSON syntax error. */
  readonly line?: number;
  readonly column?: number;

  constructor(issues: readonly ConfigIssue[], options: { hint?: string; line?: number; column?: number } = {}) {
    const first = issues[0] ?? { file: '', pointer: '', message: 'invalid configuration' };
    super(first.file, first.pointer, composeMessage(first, issues.slice(1)), options.hint);
    this.issues = issues.length > 0 ? issues : [first];
    if (options.line !== undefined) this.line = options.line;
    if (options.column !== undefined) this.column = options.column;
  }
}

function composeMessage(first: ConfigIssue, rest: readonly ConfigIssue[]): string {
  const lines = [first.message];
  for (const issue of rest.slice(0, MAX_ISSUE_LINES - 1)) {
    const where = [issue.file === first.file ? '' : issue.file, issue.pointer ? `at ${issue.pointer}` : ''].filter(Boolean).join(' ');
    lines.push(where ? `  ${where}: ${issue.message}` : `  ${issue.message}`);
  }
  const hidden = rest.length - (MAX_ISSUE_LINES - 1);
  if (hidden > 0) lines.push(`  ... and ${hidden} more problem${hidden === 1 ? '' : 's'}`);
  return lines.join('\n');
}

function issueError(file: string, pointer: string, message: string): ManifestError {
  return new ManifestError([{ file, pointer, message }]);
}

function describeSchemaErrors(kind: ManifestKind, errors: readonly SchemaError[], doc: unknown, file: string): ConfigIssue[] {
  const schema = loadSchema(kind);
  // A failed anyOf reports each branch first; its own description says it better.
  const folded = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    if (error.keyword === 'if') continue; // the then/else errors carry the meaning
    if (error.propertyName !== undefined && error.keyword !== 'propertyNames') continue; // folded into propertyNames
    if (folded.some((prefix) => error.schemaPath.startsWith(prefix))) continue;
    const issue = describeError(error, schema, doc, file);
    const key = `${issue.pointer}\0${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues.length > 0 ? issues : [{ file, pointer: '', message: 'does not match its schema' }];
}

function describeError(error: SchemaError, schema: unknown, doc: unknown, file: string): ConfigIssue {
  const p = error.params;
  let pointer = error.instancePath;
  const value = valueAt(doc, pointer);
  const secret = isSecret(doc, pointer);
  const got = (): string => describeValue(value, secret);
  const lookup = schemaLookup(schema, error);
  const parentNode = (): Record<string, unknown> | undefined => lookup(parentPath(error.schemaPath));
  let message: string;
  switch (error.keyword) {
    case 'type': {
      const types = Array.isArray(p.type) ? p.type : String(p.type).split(',');
      message = `expected ${types.join(' or ')}, got ${got()}`;
      break;
    }
    case 'required':
      message = `missing required key ${JSON.stringify(p.missingProperty)}`;
      break;
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      pointer = `${pointer}/${escapePointer(key)}`;
      const allowed = Object.keys(asRecord(parentNode()?.properties) ?? {});
      message = `unknown key ${JSON.stringify(key)}${allowed.length > 0 && allowed.length <= 16 ? ` (allowed: ${allowed.join(', ')})` : ''}`;
      break;
    }
    case 'propertyNames': {
      const key = String(p.propertyName);
      pointer = `${pointer}/${escapePointer(key)}`;
      message = `invalid key ${JSON.stringify(key)}: expected ${describeNode(lookup(error.schemaPath)) ?? 'a different name'}`;
      break;
    }
    case 'enum': {
      const allowed = Array.isArray(p.allowedValues) ? p.allowedValues : [];
      message = `expected one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}, got ${got()}`;
      break;
    }
    case 'const':
      message = `expected ${JSON.stringify(p.allowedValue)}, got ${got()}`;
      break;
    case 'pattern':
      message = `expected ${describeNode(parentNode()) ?? `a string matching ${String(p.pattern)}`}, got ${got()}`;
      break;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      message = `expected a number ${String(p.comparison)} ${String(p.limit)}, got ${got()}`;
      break;
    case 'minItems':
      message = `expected at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}, got ${Array.isArray(value) ? value.length : 0}`;
      break;
    case 'maxItems':
      message = `expected at most ${String(p.limit)} items, got ${Array.isArray(value) ? value.length : 0}`;
      break;
    case 'uniqueItems':
      message = `items ${String(p.j)} and ${String(p.i)} are the same; each entry may appear once`;
      break;
    case 'dependencies':
      message = `${JSON.stringify(p.property)} needs ${JSON.stringify(p.missingProperty)} as well`;
      break;
    case 'anyOf':
    case 'oneOf':
      message = `expected ${describeNode(parentNode()) ?? 'one of the allowed forms'}`;
      break;
    default:
      message = `fails the schema's "${error.keyword}" rule`;
  }
  return { file, pointer, message };
}

function loadSchema(kind: ManifestKind): unknown {
  if (!schemas.has(kind)) {
    // Only read on the error path, for descriptions; a missing schema file
    // just makes the messages plainer.
    let schema: unknown;
    try {
      schema = JSON.parse(fs.readFileSync(path.join(PROJECT_ETC, 'schemas', SCHEMA_FILES[kind]), 'utf8'));
    } catch {
      schema = undefined;
    }
    schemas.set(kind, schema);
  }
  return schemas.get(kind);
}

/**
 * A resolver for schema paths of one error. ajv writes a path relative to the
 * schema its generated function was compiled from: the whole document for
 * inlined definitions ("#/definitions/ipv4/pattern"), but the referenced
 * definition itself when a $ref became a function of its own
 * ("#/properties/ip/pattern" inside lxcNetwork). So try the schema nodes that
 * govern the error's instance location, deepest first, then the document.
 */
function schemaLookup(schema: unknown, error: SchemaError): (schemaPath: string) => Record<string, unknown> | undefined {
  const segments = parsePointer(error.instancePath);
  const bases: unknown[] = [];
  for (let n = segments.length; n >= 0; n--) {
    const node = governingNode(schema, segments.slice(0, n));
    if (node !== undefined && !bases.includes(node)) bases.push(node);
  }
  if (!bases.includes(schema)) bases.push(schema);
  const base = bases.find((candidate) => resolveSchemaPath(schema, candidate, error.schemaPath) !== undefined);
  return (schemaPath) => (base === undefined ? undefined : asRecord(resolveSchemaPath(schema, base, schemaPath)));
}

/** The schema object that describes the value at these instance path segments. */
function governingNode(schema: unknown, segments: readonly string[]): Record<string, unknown> | undefined {
  let node = deref(schema, asRecord(schema));
  for (const segment of segments) {
    if (!node) return undefined;
    const properties = asRecord(node.properties);
    let next: unknown;
    if (properties && Object.hasOwn(properties, segment)) next = properties[segment];
    else if (isRecord(node.additionalProperties)) next = node.additionalProperties;
    else if (isRecord(node.items)) next = node.items;
    else return undefined;
    node = deref(schema, asRecord(next));
  }
  return node;
}

function resolveSchemaPath(schema: unknown, base: unknown, schemaPath: string): unknown {
  if (!schemaPath.startsWith('#')) return undefined;
  let node: unknown = base;
  // ajv percent-encodes schema path segments ("$schema" is "%24schema").
  for (const segment of parsePointer(schemaPath.slice(1)).map(decodeSegment)) {
    let holder = asRecord(node);
    if (holder && !Object.hasOwn(holder, segment)) holder = deref(schema, holder);
    if (Array.isArray(node)) node = node[Number(segment)];
    else if (holder && Object.hasOwn(holder, segment)) node = holder[segment];
    else return undefined;
  }
  return isRecord(node) ? deref(schema, node) : node;
}

function deref(schema: unknown, node: Record<string, unknown> | undefined, depth = 0): Record<string, unknown> | undefined {
  const ref = node?.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/') || depth > 8) return node;
  return deref(schema, asRecord(resolveSchemaPath(schema, schema, ref)), depth + 1);
}

function describeNode(node: Record<string, unknown> | undefined): string | undefined {
  return typeof node?.description === 'string' ? node.description : undefined;
}

function parentPath(schemaPath: string): string {
  return schemaPath.slice(0, schemaPath.lastIndexOf('/'));
}

// ---------------------------------------------------------------- secrets

const SECRET_NAME = /password|passwd|passphrase|secret|token|api_?key|private_?key|credential|(^|[_-])pass($|[_-])/i;

/** A value is secret when a key on its path names a secret, or its object is a {name: SECRET, value} pair. */
function isSecret(doc: unknown, pointer: string): boolean {
  const segments = parsePointer(pointer);
  if (segments.some((segment) => SECRET_NAME.test(segment))) return true;
  const parent = asRecord(valueAt(doc, segments.slice(0, -1)));
  return typeof parent?.name === 'string' && SECRET_NAME.test(parent.name);
}

function describeValue(value: unknown, secret: boolean): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  const type = typeof value;
  if (type === 'object') return 'object';
  if (secret) return `${type} (value hidden)`;
  if (type === 'string') {
    const text = value as string;
    return `string ${JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text)}`;
  }
  return `${type} ${String(value)}`;
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

function referenceIssues(config: PhoenixConfig): ConfigIssue[] {
  const { lxc: lxcFile, vm: vmFile } = config.paths;
  const containers = config.lxc.lxc_configs;
  const vms = config.vm.vms;
  const issues: ConfigIssue[] = [];
  const isContainer = (id: string): boolean => Object.hasOwn(containers, id);
  const vmIndex = new Map<string, number>();

  vms.forEach((vm, i) => {
    const id = String(vm.vmid);
    const pointer = `/vms/${i}/vmid`;
    const earlier = vmIndex.get(id);
    if (earlier !== undefined) issues.push({ file: vmFile, pointer, message: `vmid ${id} is already used by /vms/${earlier}` });
    else vmIndex.set(id, i);
    if (isContainer(id)) {
      issues.push({ file: vmFile, pointer, message: `${id} is also a container (${path.basename(lxcFile)} /lxc_configs/${id}); containers and VMs share one id space` });
    }
  });
  const isGuest = (id: string): boolean => isContainer(id) || vmIndex.has(id);
  const checkDependencies = (file: string, base: string, self: string, dependencies: readonly string[] | undefined): void => {
    dependencies?.forEach((dep, j) => {
      const pointer = `${base}/dependencies/${j}`;
      if (dep === self) issues.push({ file, pointer, message: `guest ${self} depends on itself` });
      else if (!isGuest(dep)) issues.push({ file, pointer, message: `dependency ${dep} names no container or VM` });
    });
  };

  for (const id of config.lxcIds()) {
    const ct = containers[id] as LxcConfig;
    const base = `/lxc_configs/${escapePointer(id)}`;
    const source = ct.clone_from_ctid;
    if (source !== undefined) {
      const pointer = `${base}/clone_from_ctid`;
      if (source === id) issues.push({ file: lxcFile, pointer, message: `container ${id} cannot be cloned from itself` });
      else if (vmIndex.has(source)) issues.push({ file: lxcFile, pointer, message: `clone source ${source} is a VM; a container clones a container` });
      else if (!isContainer(source)) issues.push({ file: lxcFile, pointer, message: `clone source ${source} is not defined in lxc_configs` });
    }
    checkDependencies(lxcFile, base, id, ct.dependencies);
    for (const problem of completeIdMaps(ct.id_maps).problems) issues.push({ file: lxcFile, pointer: `${base}/id_maps/${problem.entry}`, message: problem.message });
  }
  vms.forEach((vm, i) => {
    const id = String(vm.vmid);
    const base = `/vms/${i}`;
    if (vm.clone_from_vmid !== undefined) {
      const source = String(vm.clone_from_vmid);
      const pointer = `${base}/clone_from_vmid`;
      if (source === id) issues.push({ file: vmFile, pointer, message: `VM ${id} cannot be cloned from itself` });
      else if (isContainer(source)) issues.push({ file: vmFile, pointer, message: `clone source ${source} is a container; a VM clones a VM` });
      else if (!vmIndex.has(source)) issues.push({ file: vmFile, pointer, message: `clone source ${source} is not defined in vms` });
    }
    checkDependencies(vmFile, base, id, vm.dependencies);
  });

  issues.push(...addressIssues(config));
  issues.push(...cycleIssues(config));

  const { certificates: certFile, stacks: stacksFile, hypervisor: hvFile } = config.paths;
  const certificates = fs.existsSync(certFile) ? config.certificates : undefined;
  certificates?.forEach((entry, i) => {
    if (entry.guest_id === undefined) return;
    const id = String(entry.guest_id);
    const pointer = `/${i}/guest_id`;
    const wanted = entry.guest_type === 'vm' ? vmIndex.has(id) : isContainer(id);
    if (wanted) return;
    const actual = isContainer(id) ? 'a container' : vmIndex.has(id) ? 'a VM' : undefined;
    const message = actual
      ? `guest ${id} is ${actual}, but guest_type is "${entry.guest_type ?? ''}"`
      : `guest ${id} names no ${entry.guest_type === 'vm' ? 'VM' : 'container'}`;
    issues.push({ file: certFile, pointer, message });
  });
  if (fs.existsSync(stacksFile)) {
    const stacks = config.stacks.docker_stacks;
    vms.forEach((vm, i) =>
      vm.docker_stacks?.forEach((name, j) => {
        if (!Object.hasOwn(stacks, name)) {
          issues.push({ file: vmFile, pointer: `/vms/${i}/docker_stacks/${j}`, message: `stack ${JSON.stringify(name)} is not defined in ${path.basename(stacksFile)}` });
        }
      }),
    );
  }
  const clientCert = fs.existsSync(hvFile) ? config.hypervisor.gateway?.client_certificate : undefined;
  if (clientCert !== undefined && certificates && !certificates.some((entry) => entry.common_name === clientCert)) {
    issues.push({ file: hvFile, pointer: '/gateway/client_certificate', message: `no certificate with common_name ${JSON.stringify(clientCert)} in ${path.basename(certFile)}` });
  }
  return issues;
}

/**
 * A clone source or dependency chain that comes back to where it started: no
 * order can create those guests. Reported once per cycle, at the edge that
 * closes it, with the guests in order.
 */
function cycleIssues(config: PhoenixConfig): ConfigIssue[] {
  const edges = new Map<string, Array<{ to: string; file: string; pointer: string }>>();
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id] as LxcConfig;
    const base = `/lxc_configs/${escapePointer(id)}`;
    const list: Array<{ to: string; file: string; pointer: string }> = [];
    if (ct.clone_from_ctid !== undefined) list.push({ to: ct.clone_from_ctid, file: config.paths.lxc, pointer: `${base}/clone_from_ctid` });
    ct.dependencies?.forEach((dep, j) => list.push({ to: dep, file: config.paths.lxc, pointer: `${base}/dependencies/${j}` }));
    edges.set(id, list);
  }
  config.vm.vms.forEach((vm, i) => {
    const list: Array<{ to: string; file: string; pointer: string }> = [];
    if (vm.clone_from_vmid !== undefined) list.push({ to: String(vm.clone_from_vmid), file: config.paths.vm, pointer: `/vms/${i}/clone_from_vmid` });
    vm.dependencies?.forEach((dep, j) => list.push({ to: dep, file: config.paths.vm, pointer: `/vms/${i}/dependencies/${j}` }));
    edges.set(String(vm.vmid), list);
  });
  const issues: ConfigIssue[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  // Iterative, so a long chain of guests cannot exhaust the call stack.
  for (const start of edges.keys()) {
    if (state.has(start)) continue;
    const frames: Array<{ id: string; next: number }> = [{ id: start, next: 0 }];
    state.set(start, 'open');
    stack.push(start);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1] as { id: string; next: number };
      const edge = edges.get(frame.id)?.[frame.next++];
      if (!edge) {
        state.set(frame.id, 'done');
        stack.pop();
        frames.pop();
        continue;
      }
      const seen = edge.to === frame.id ? 'self' : state.get(edge.to);
      if (seen === 'self') continue; // reported as "depends on itself" above
      if (seen === 'open') {
        const cycle = [...stack.slice(stack.indexOf(edge.to)), edge.to];
        issues.push({ file: edge.file, pointer: edge.pointer, message: `dependency cycle: ${cycle.join(' -> ')}; no order can create these guests` });
      } else if (seen === undefined && edges.has(edge.to)) {
        state.set(edge.to, 'open');
        stack.push(edge.to);
        frames.push({ id: edge.to, next: 0 });
      }
    }
  }
  return issues;
}

/** Two guests with one static address or one MAC break each other at the first ARP. */
function addressIssues(config: PhoenixConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const owners = new Map<string, { owner: string; file: string; pointer: string }>();
  const note = (kind: 'address' | 'MAC address', raw: string | undefined, owner: string, file: string, pointer: string): void => {
    if (raw === undefined || raw === 'dhcp' || raw === 'manual') return;
    const value = kind === 'address' ? (raw.split('/')[0] ?? raw) : raw.toUpperCase();
    const key = `${kind}\0${value}`;
    const earlier = owners.get(key);
    if (!earlier) owners.set(key, { owner, file, pointer });
    else if (earlier.owner !== owner) {
      issues.push({ file, pointer, message: `${kind} ${value} is also used by ${earlier.owner} (${path.basename(earlier.file)} ${earlier.pointer})` });
    }
  };
  const lxcFile = config.paths.lxc;
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id] as LxcConfig;
    const base = `/lxc_configs/${escapePointer(id)}`;
    const owner = `CT ${id}`;
    note('address', ct.network_config.ip, owner, lxcFile, `${base}/network_config/ip`);
    note('address', ct.secondary_network_config?.ip, owner, lxcFile, `${base}/secondary_network_config/ip`);
    note('MAC address', ct.mac_address, owner, lxcFile, `${base}/mac_address`);
    note('MAC address', ct.network_config.hwaddr, owner, lxcFile, `${base}/network_config/hwaddr`);
    note('MAC address', ct.secondary_network_config?.hwaddr, owner, lxcFile, `${base}/secondary_network_config/hwaddr`);
  }
  config.vm.vms.forEach((vm, i) => note('address', vm.network_config?.ip, `VM ${vm.vmid}`, config.paths.vm, `/vms/${i}/network_config/ip`));
  return issues;
}

function collectWarnings(config: PhoenixConfig): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const { hypervisor: hvFile, stacks: stacksFile } = config.paths;
  const api = fs.existsSync(hvFile) ? config.hypervisor.portainer_api : undefined;
  if (api?.admin_password !== undefined) {
    warnings.push({
      file: hvFile,
      pointer: '/portainer_api/admin_password',
      message:
        api.admin_password_file !== undefined
          ? 'clear-text password next to admin_password_file; the file wins, delete the inline value'
          : 'Portainer admin password in clear text; put it in a root-only file (mode 0600) named by admin_password_file',
    });
  }
  if (typeof api?.api_key === 'string' && api.api_key !== '') {
    warnings.push({ file: hvFile, pointer: '/portainer_api/api_key', message: 'API key in clear text; name a root-only file in api_key_file instead' });
  }
  if (fs.existsSync(stacksFile)) {
    for (const [stack, body] of Object.entries(config.stacks.docker_stacks)) {
      for (const [envName, environment] of Object.entries(body.environments)) {
        environment.variables?.forEach((variable, i) => {
          if (SECRET_NAME.test(variable.name) && variable.value !== '') {
            warnings.push({
              file: stacksFile,
              pointer: `/docker_stacks/${escapePointer(stack)}/environments/${escapePointer(envName)}/variables/${i}/value`,
              message: `${variable.name} is stored in clear text in the manifest`,
            });
          }
        });
      }
    }
  }
  return warnings;
}

// ---------------------------------------------------------------- JSON syntax scanner

interface DuplicateKey {
  pointer: string;
  key: string;
  offset: number;
  firstOffset: number;
}

interface JsonScan {
  error?: { offset: number; message: string; pointer: string; tooDeep: boolean };
  duplicates: DuplicateKey[];
}

class JsonSyntaxError {
  readonly offset: number;
  readonly message: string;
  readonly pointer: string;
  readonly tooDeep: boolean;
  constructor(offset: number, message: string, pointer: string, tooDeep = false) {
    this.offset = offset;
    this.message = message;
    this.pointer = pointer;
    this.tooDeep = tooDeep;
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STRING_RUN = /[^"\\\u0000-\u001f]*/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * A strict JSON reader that keeps positions: where a syntax error is, and
 * which keys repeat (JSON.parse reports neither usefully). Nesting deeper
 * than MAX_MANIFEST_DEPTH is an error, so the recursion here (and in every
 * later walk of the document) stays small.
 */
function scanJson(text: string): JsonScan {
  const duplicates: DuplicateKey[] = [];
  const length = text.length;
  let pos = 0;
  let depth = 0;
  // The pointer of the value being read, for the error message.
  let where = '';
  const fail = (message: string, at: number = pos): never => {
    throw new JsonSyntaxError(at, message, where);
  };
  const unexpected = (what: string): never => {
    if (pos >= length) return fail(`unexpected end of file, expected ${what}`);
    const c = text[pos] as string;
    if (c === '/') return fail('comments are not allowed in JSON');
    if (c === "'") return fail('strings must use double quotes');
    return fail(`expected ${what}, found ${JSON.stringify(c)}`);
  };
  const space = (): void => {
    while (pos < length) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
  };
  // Only keys are decoded; values are just stepped over.
  const string = (decode: boolean): string => {
    const start = pos;
    pos++;
    let out = '';
    for (;;) {
      STRING_RUN.lastIndex = pos;
      STRING_RUN.test(text);
      if (decode) out += text.slice(pos, STRING_RUN.lastIndex);
      pos = STRING_RUN.lastIndex;
      if (pos >= length) return fail('unterminated string', start);
      const c = text[pos] as string;
      if (c === '"') {
        pos++;
        return out;
      }
      if (c === '\\') {
        const e = text[pos + 1] ?? '';
        if (e === 'u') {
          const hex = text.slice(pos + 2, pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape in a string');
          out += String.fromCharCode(parseInt(hex, 16));
          pos += 6;
        } else if (Object.hasOwn(ESCAPES, e)) {
          out += ESCAPES[e];
          pos += 2;
        } else {
          fail(`invalid escape \\${e} in a string`);
        }
        continue;
      }
      if (c === '\n') return fail('line break inside a string (missing closing quote?)', start);
      return fail('control character inside a string');
    }
  };
  const value = (pointer: string): void => {
    where = pointer;
    space();
    const c = text[pos];
    if (c === '{' || c === '[') {
      if (++depth > MAX_MANIFEST_DEPTH) throw new JsonSyntaxError(pos, `nested more than ${MAX_MANIFEST_DEPTH} levels deep`, pointer, true);
      if (c === '{') object(pointer);
      else array(pointer);
      depth--;
      where = pointer;
      return;
    }
    if (c === '"') {
      string(false);
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return;
      }
    }
    NUMBER.lastIndex = pos;
    if (NUMBER.test(text)) {
      pos = NUMBER.lastIndex;
      return;
    }
    unexpected('a value');
  };
  const object = (pointer: string): void => {
    pos++;
    const seen = new Map<string, number>();
    space();
    if (text[pos] === '}') {
      pos++;
      return;
    }
    for (;;) {
      space();
      if (text[pos] === '}') fail('trailing comma before "}"');
      if (text[pos] !== '"') unexpected('a key in double quotes');
      const at = pos;
      const key = string(true);
      space();
      if (text[pos] !== ':') unexpected(`":" after key ${JSON.stringify(key)}`);
      pos++;
      const child = `${pointer}/${escapePointer(key)}`;
      const first = seen.get(key);
      if (first === undefined) seen.set(key, at);
      else duplicates.push({ pointer: child, key, offset: at, firstOffset: first });
      value(child);
      where = pointer;
      space();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === '}') {
        pos++;
        return;
      }
      unexpected('"," or "}" after a value');
    }
  };
  const array = (pointer: string): void => {
    pos++;
    space();
    if (text[pos] === ']') {
      pos++;
      return;
    }
    for (let index = 0; ; index++) {
      space();
      if (text[pos] === ']') fail('trailing comma before "]"');
      value(`${pointer}/${index}`);
      where = pointer;
      space();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === ']') {
        pos++;
        return;
      }
      unexpected('"," or "]" after a value');
    }
  };
  try {
    value('');
    space();
    if (pos < length) fail('unexpected text after the end of the JSON document');
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { error: { offset: err.offset, message: err.message, pointer: err.pointer, tooDeep: err.tooDeep }, duplicates };
    throw err;
  }
  return { duplicates };
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

// ---------------------------------------------------------------- small helpers

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return isRecord(value) ? value : undefined;
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function parsePointer(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return pointer === '/' ? [''] : [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function valueAt(doc: unknown, pointer: string | readonly string[]): unknown {
  let node = doc;
  for (const segment of typeof pointer === 'string' ? parsePointer(pointer) : pointer) {
    if (Array.isArray(node)) node = node[Number(segment)];
    else if (isRecord(node) && Object.hasOwn(node, segment)) node = node[segment];
    else return undefined;
  }
  return node;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
