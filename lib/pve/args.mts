// Proxmox CLI tools take options as `--name value`. Manifests give them as
// objects; this is the one translation, so booleans and numbers are spelled
// the way pct and qm expect everywhere.

export type OptionValue = string | number | boolean | undefined | null;
export type OptionMap = Record<string, OptionValue>;

export function toPveArgs(options: OptionMap = {}): string[] {
  const args: string[] = [];
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
    args.push(`--${name}`, typeof value === 'boolean' ? (value ? '1' : '0') : String(value));
  }
  return args;
}

export interface PveConfig {
  /** Every `key: value` line in order; raw lxc.* keys may repeat. */
  entries: Array<[string, string]>;
  /** Last value per key. */
  values: Record<string, string>;
}

/** Parse `key: value` lines (pct config, qm config), live section only. */
export function parseConfigLines(text: string): PveConfig {
  const entries: Array<[string, string]> = [];
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('[')) break; // snapshot sections follow the live config
    const match = /^([^:#\s][^:]*):\s?(.*)$/.exec(line);
    if (!match) continue;
    const key = match[1] as string;
    const value = match[2] as string;
    entries.push([key, value]);
    values[key] = value;
  }
  return { entries, values };
}

/** Snapshot names from `pct listsnapshot` / `qm listsnapshot` ("`-> name  date  description"); "current" is the live state. */
export function parseSnapshotList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => /^[\s`|-]*->\s*(\S+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && name !== 'current');
}
