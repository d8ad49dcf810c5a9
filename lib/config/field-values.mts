// The last check before a manifest value is written into a line-based file
// (a guest's .conf, a dnsmasq or nginx file) or into a Proxmox property
// string (`net0`, `mp0`, `startup`, `features`). The schemas refuse these
// values when a manifest is loaded; this catches whatever reaches a renderer
// another way (a caller that builds a manifest entry itself, a schema that
// was loosened), so a value can never add a line or a property of its own.

import { PhoenixError } from '../core/errors.mts';

/** Line breaks and other control characters: each could start a new line or confuse a parser. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** A manifest value that does not fit the field it is written into; `field` is its key in the manifest entry. */
export class UnsafeValueError extends PhoenixError {
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

const show = (value: unknown) => JSON.stringify(value);

/** A value written on one line of a file. */
export function oneLine(field: string, value: string): string {
  if (CONTROL.test(value)) throw new UnsafeValueError(field, `${show(value)} holds a line break or another control character`);
  return value;
}

/** A value inside a `key=value,key=value` property string: a ',' or '=' would add a property of its own. */
export function propertyValue(field: string, value: string): string {
  oneLine(field, value);
  if (/[,=]/.test(value)) throw new UnsafeValueError(field, `${show(value)} holds ',' or '=', which separate Proxmox properties`);
  return value;
}

/** An integer Proxmox will take, in plain decimal (1e300 prints as "1e+300", which no Proxmox tool accepts). */
export function integerIn(field: string, value: unknown, min: number, max: number): string {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UnsafeValueError(field, `expected an integer from ${min} to ${max}, got ${show(value)}`);
  }
  return String(value);
}

/** A value of a fixed grammar. */
export function matching(field: string, value: string, grammar: RegExp, what: string): string {
  if (!grammar.test(value)) throw new UnsafeValueError(field, `expected ${what}, got ${show(value)}`);
  return value;
}

/** Absolute paths as the manifests' schemas allow them in Proxmox mount entries. */
export const MOUNT_PATH = /^\/[A-Za-z0-9._@%+~/-]*$/;
/** Host names: letters, digits, '-' and '.'. */
export const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$/;
