// Parameter schema pieces pct and qm declare alike (pve-container and
// qemu-server take them from the same pve-common formats).

import { vmidSpec, type CommandSpec, type OptSpec } from '../args.mts';

export const bool: OptSpec = { type: 'boolean' };
export const str: OptSpec = { type: 'string' };

/** pve-storage-id. */
export const storageId: OptSpec = { type: 'string', format: (v) => (/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? undefined : `storage ID '${v}' contains illegal characters`) };

/** The size of `pct resize` / `qm disk resize`: absolute, or `+` to grow by. */
export const resizeSize: OptSpec = { type: 'string', format: (v) => (/^\+?\d+(\.\d+)?[KMGT]?$/.test(v) ? undefined : 'value does not match the regex pattern') };

/** One command of a tool: `vmid` and `newid` are guest ids, the rest comes from `params`, then `extra`. */
export function commandSpec(tool: 'pct' | 'qm', name: string, args: string[], params: Record<string, OptSpec>, extra?: (n: string) => OptSpec | undefined): CommandSpec {
  return { name: `${tool} ${name}`, args, param: (n) => (n === 'vmid' || n === 'newid' ? vmidSpec : params[n] ?? extra?.(n)) };
}
