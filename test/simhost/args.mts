// Command-line parsing with the semantics of the Proxmox CLI handler
// (PVE::JSONSchema::get_options over Getopt::Long), so the simulated tools
// accept and refuse the same argument lists as the real ones:
//   - options take one or two dashes, `--opt value` or `--opt=value`;
//   - options and positional arguments may be mixed; `--` ends options;
//   - a boolean's value is optional and only taken when the next word does
//     not look like an option (so `pct status --verbose 101` fails, as on PVE);
//   - an unknown option is a Getopt warning plus "400 unable to parse option";
//   - values are then checked against the parameter schema, and every
//     failure is reported as "400 Parameter verification failed." with one
//     `name: reason` line per parameter and the command's short usage.

import { ToolExit } from './state.mts';

export interface OptSpec {
  type: 'string' | 'integer' | 'number' | 'boolean';
  min?: number;
  max?: number;
  enum?: readonly string[];
  maxLength?: number;
  /** Checks the value's format; returns the reason it is invalid. */
  format?: (value: string) => string | undefined;
}

export interface CommandSpec {
  /** "pct set": used in usage and messages. */
  name: string;
  /** Positional parameter names, in order; 'extra-args' (last) takes the rest. */
  args: readonly string[];
  /** Positional parameters that may be left out (only trailing ones). */
  optionalArgs?: readonly string[];
  /** Schema of options and positional parameters. */
  param: (name: string) => OptSpec | undefined;
}

export interface Parsed {
  args: Record<string, string>;
  extra: string[];
  opts: Record<string, string>;
  /** Options in the order given (for error order and repeated-key semantics). */
  order: string[];
}

export function usage(spec: CommandSpec): string {
  const args = spec.args.map((a) => (a === 'extra-args' || spec.optionalArgs?.includes(a) ? `[<${a}>]` : `<${a}>`));
  return `${[spec.name, ...args].join(' ')} [OPTIONS]`;
}

function paramException(spec: CommandSpec, message: string, errors: Array<[string, string]> = [], prefix = ''): never {
  let text = prefix;
  text += `400 ${message}\n`;
  for (const [name, reason] of errors) text += `${name}: ${reason}\n`;
  text += `${usage(spec)}\n`;
  throw new ToolExit(255, text);
}

export function parseCommand(spec: CommandSpec, argv: readonly string[]): Parsed {
  const opts: Record<string, string> = {};
  const order: string[] = [];
  const positional: string[] = [];
  let getoptWarnings = '';
  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      i++;
      break;
    }
    const m = /^--?([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(word);
    if (!m) {
      positional.push(word);
      continue;
    }
    const name = m[1]!;
    const schema = spec.param(name);
    if (!schema || spec.args.includes(name)) {
      getoptWarnings += `Unknown option: ${name.toLowerCase()}\n`;
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      const next = argv[i + 1];
      if (schema.type === 'boolean') {
        if (next !== undefined && !/^--?[A-Za-z]/.test(next) && next !== '--') {
          value = next;
          i++;
        } else {
          value = '';
        }
      } else if (next === undefined) {
        getoptWarnings += `Option ${name} requires an argument\n`;
        continue;
      } else {
        value = next;
        i++;
      }
    }
    if (!(name in opts)) order.push(name);
    opts[name] = value;
  }
  positional.push(...argv.slice(i));
  if (getoptWarnings) paramException(spec, 'unable to parse option', [], getoptWarnings);

  const args: Record<string, string> = {};
  let extra: string[] = [];
  const rest = [...positional];
  for (const name of spec.args) {
    if (name === 'extra-args') {
      extra = rest.splice(0);
      break;
    }
    const value = rest.shift();
    if (value === undefined) {
      if (spec.optionalArgs?.includes(name)) continue;
      paramException(spec, 'not enough arguments');
    }
    args[name] = value;
  }
  if (rest.length > 0) paramException(spec, 'too many arguments');

  const errors: Array<[string, string]> = [];
  for (const name of spec.args) {
    if (name === 'extra-args' || args[name] === undefined) continue;
    const reason = checkValue(spec.param(name), args[name]!);
    if (reason) errors.push([name, reason]);
  }
  for (const name of order) {
    const schema = spec.param(name)!;
    // Getopt hands an option given without a value to a boolean as '', which means true.
    if (schema.type === 'boolean') opts[name] = normalizeBoolean(opts[name]!);
    const reason = checkValue(schema, opts[name]!);
    if (reason) errors.push([name, reason]);
  }
  if (errors.length > 0) paramException(spec, 'Parameter verification failed.', errors);
  return { args, extra, opts, order };
}

function normalizeBoolean(value: string): string {
  if (value === '') return '1';
  if (/^(1|on|yes|true)$/i.test(value)) return '1';
  if (/^(0|off|no|false)$/i.test(value)) return '0';
  return value;
}

export function checkValue(schema: OptSpec | undefined, value: string): string | undefined {
  if (!schema) return undefined;
  switch (schema.type) {
    case 'boolean':
      if (value !== '0' && value !== '1') return `type check ('boolean') failed - got '${value}'`;
      return undefined;
    case 'integer':
      if (!/^[+-]?\d+$/.test(value)) return `type check ('integer') failed - got '${value}'`;
      break;
    case 'number':
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value)) return `type check ('number') failed - got '${value}'`;
      break;
    case 'string':
      if (schema.enum && !schema.enum.includes(value)) return `value '${value}' does not have a value in the enumeration '${schema.enum.join(', ')}'`;
      if (schema.maxLength !== undefined && value.length > schema.maxLength) return `value may only be ${schema.maxLength} characters long`;
      break;
  }
  if (schema.type === 'integer' || schema.type === 'number') {
    const n = Number(value);
    if (schema.max !== undefined && n > schema.max) return `value must have a maximum value of ${schema.max}`;
    if (schema.min !== undefined && n < schema.min) return `value must have a minimum value of ${schema.min}`;
  }
  if (schema.format) {
    const reason = schema.format(value);
    if (reason) return `invalid format - ${reason}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Formats shared by pct and qm

export const vmidSpec: OptSpec = {
  type: 'integer',
  min: 100,
  max: 999_999_999,
  format: (v) => (/^[1-9][0-9]{2,8}$/.test(v) ? undefined : 'value does not look like a valid VM ID'),
};

export const configIdFormat = (v: string): string | undefined => (/^[a-z][a-z0-9_-]+$/i.test(v) ? undefined : `invalid configuration ID '${v}'`);

export const snapnameSpec: OptSpec = { type: 'string', maxLength: 40, format: configIdFormat };

export const dnsNameFormat = (v: string): string | undefined =>
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(v) ? undefined : `value does not look like a valid DNS name`;

export const startupFormat = (v: string): string | undefined => {
  if (v === '') return 'unable to parse startup options';
  for (const part of v.split(',')) {
    if (/^\s*$/.test(part)) continue;
    if (!/^((order=)?\d+|up=\d+|down=\d+)$/.test(part)) return 'unable to parse startup options';
  }
  return undefined;
};

const ipv4 = String.raw`(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)`;
export const ipv4Re = new RegExp(`^${ipv4}$`);
export const ipv4CidrRe = new RegExp(`^${ipv4}/(?:3[0-2]|[12]?\\d)$`);
export const macRe = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

/** Validate a property string against known keys; returns the reason it is invalid. */
export function propertyStringFormat(
  keys: Record<string, (v: string) => string | undefined>,
  options: { defaultKey?: string; required?: readonly string[] } = {},
): (value: string) => string | undefined {
  return (value) => {
    const seen: Record<string, string> = {};
    for (const part of value.split(',')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      let key: string;
      let v: string;
      if (eq === -1) {
        if (!options.defaultKey) return 'value without key, but schema does not define a default key';
        key = options.defaultKey;
        v = part;
      } else {
        key = part.slice(0, eq);
        v = part.slice(eq + 1);
      }
      if (seen[key] !== undefined) return `duplicate key in comma-separated list property: ${key}`;
      const check = keys[key];
      if (!check) return `invalid key in comma-separated list property: ${key}`;
      seen[key] = v;
      const reason = check(v);
      if (reason) return `format error\n${key}: ${reason}`;
    }
    for (const key of options.required ?? []) {
      if (seen[key] === undefined) return `format error\n${key}: property is missing and it is not optional`;
    }
    return undefined;
  };
}

export const anyValue = (): undefined => undefined;
export const boolValue = (v: string): string | undefined => (/^(0|1|on|off|yes|no|true|false)$/i.test(v) ? undefined : `type check ('boolean') failed - got '${v}'`);
export const intValue = (v: string): string | undefined => (/^\d+$/.test(v) ? undefined : `type check ('integer') failed - got '${v}'`);

/** Sizes as PVE's disk-size format: number with optional K/M/G/T. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/.exec(text);
  if (!m) return undefined;
  const unit = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2] ?? ''] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

/** 8589934592 → "8G", the way PVE prints a disk's size= after allocation or resize. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes % factor === 0 && bytes >= factor) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}
