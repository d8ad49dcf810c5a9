// Checking a parsed manifest against its schema, and saying what is wrong
// in an operator's words. Validators are ajv standalone code generated at
// build time (lib/config/schema-build.mts), one file per manifest, loaded on first
// use: no schema compilation at run time and no ajv import. Values at
// secret-looking keys never appear in a message.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PROJECT_ROOT } from '../core/project-root.mts';
import { ConfigError } from '../core/errors.mts';
import { alreadyValidated, rememberValidated, validationKey } from './validation-cache.mts';
import type { ConfigIssue, ManifestKind, ManifestTypes } from './types.mts';
import { MAX_ISSUE_LINES, PROJECT_ETC, SCHEMA_FILES } from './files.mts';
import { asRecord, decodeSegment, escapePointer, isRecord, parsePointer, valueAt } from './json-values.mts';

const validators = new Map<ManifestKind, Validator>();
const schemas = new Map<ManifestKind, unknown>();

interface SchemaError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, unknown>;
  propertyName?: string;
}

type Validator = ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

// Generated into lib/config-validators by `make build`; found from the installation, so a bundled script finds them too.
const requireValidator = createRequire(path.join(PROJECT_ROOT, 'lib', 'config', 'load.mjs'));

const validatorFile = (kind: ManifestKind): string => path.join(PROJECT_ROOT, 'lib', 'config-validators', `${kind}.cjs`);

export function validatorFor(kind: ManifestKind): Validator {
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

export function issueError(file: string, pointer: string, message: string): ManifestError {
  return new ManifestError([{ file, pointer, message }]);
}

export function describeSchemaErrors(kind: ManifestKind, errors: readonly SchemaError[], doc: unknown, file: string): ConfigIssue[] {
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

export const SECRET_NAME = /password|passwd|passphrase|secret|token|api_?key|private_?key|credential|(^|[_-])pass($|[_-])/i;

/** A value is secret when a key on its path names a secret, or its object is a {name: SECRET, value} pair. */
export function isSecret(doc: unknown, pointer: string): boolean {
  const segments = parsePointer(pointer);
  if (segments.some((segment) => SECRET_NAME.test(segment))) return true;
  const parent = asRecord(valueAt(doc, segments.slice(0, -1)));
  return typeof parent?.name === 'string' && SECRET_NAME.test(parent.name);
}

export function describeValue(value: unknown, secret: boolean): string {
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
