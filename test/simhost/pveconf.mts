// Guest configuration files in Proxmox's own format, so the scripts that
// edit /etc/pve/lxc/<id>.conf by hand (sed, echo >>) and the simulated
// pct/qm see one and the same file.
//
// Layout, as pve-container and qemu-server write it: the description as
// '#' lines on top, then `key: value` lines sorted by key, then (containers)
// the raw `lxc.*` lines in their original order; then an optional
// [pve:pending] section and one [snapshot] section per snapshot, sorted by
// name, each laid out the same way. Lines appended after a snapshot header
// belong to that snapshot, which is exactly the trap the bash lxc-manager
// fell into (it appended raw lines at the end of the file), so the parser
// keeps them there.

import fs from 'node:fs';
import path from 'node:path';

import { atomicWrite, die, paths, type GuestKind } from './state.mts';

export interface Section {
  description: string;
  props: Record<string, string>;
  /** Raw LXC keys (lxc.*), kept in file order. */
  raw: Array<[string, string]>;
}

export interface GuestConfig {
  main: Section;
  pending: Section | undefined;
  snapshots: Record<string, Section>;
}

export function emptySection(): Section {
  return { description: '', props: {}, raw: [] };
}

/** Parse a config file; unparsable lines are reported on stderr and dropped, as PVE does. */
export function parseConfig(text: string, kind: GuestKind, vmid: string, warn: (line: string) => void = () => {}): GuestConfig {
  const config: GuestConfig = { main: emptySection(), pending: undefined, snapshots: {} };
  let section = config.main;
  let inPending = false;
  for (const line of text.split('\n')) {
    if (/^\s*$/.test(line)) continue;
    if (/^\[pve:pending\]\s*$/i.test(line)) {
      section = config.pending = emptySection();
      inPending = true;
      continue;
    }
    const header = /^\[([a-z][a-z0-9_-]+)\]\s*$/i.exec(line);
    if (header) {
      section = config.snapshots[header[1]!] = emptySection();
      inPending = false;
      continue;
    }
    const comment = /^#(.*)$/.exec(line);
    if (comment) {
      section.description += `${decodeText(comment[1]!)}\n`;
      continue;
    }
    const lxcKey = kind === 'lxc' ? /^(lxc\.[a-z0-9_.-]+)(?::|\s*=)\s*(.*?)\s*$/.exec(line) : null;
    if (lxcKey) {
      section.raw.push([lxcKey[1]!, lxcKey[2]!]);
      continue;
    }
    const descr = /^description:\s*(.*\S)\s*$/.exec(line);
    if (descr) {
      section.description += decodeText(descr[1]!);
      continue;
    }
    const del = /^delete:\s*(.*\S)\s*$/.exec(line);
    if (del && !inPending) {
      warn(`vm ${vmid} - property 'delete' is only allowed in [pve:pending]`);
      continue;
    }
    const kv = /^([a-z][a-z_-]*\d*):\s*(.+?)\s*$/.exec(line);
    if (kv) {
      section.props[kv[1]!] = kv[2]!;
      continue;
    }
    warn(`vm ${vmid} - unable to parse config: ${line}`);
  }
  for (const s of [config.main, config.pending, ...Object.values(config.snapshots)]) {
    if (s) s.description = s.description.replace(/\n$/, '');
  }
  return config;
}

function sectionText(section: Section): string {
  let out = '';
  for (const line of section.description === '' ? [] : section.description.split('\n')) out += `#${encodeText(line)}\n`;
  for (const key of Object.keys(section.props).sort()) {
    const value = section.props[key]!;
    if (/[\n\r]/.test(value)) die(`detected invalid newline inside property '${key}'`);
    out += `${key}: ${value}\n`;
  }
  for (const [key, value] of section.raw) out += `${key}: ${value}\n`;
  return out;
}

export function serializeConfig(config: GuestConfig): string {
  let out = sectionText(config.main);
  if (config.pending && (Object.keys(config.pending.props).length > 0 || config.pending.raw.length > 0)) {
    out += `\n[pve:pending]\n${sectionText(config.pending)}`;
  }
  for (const name of Object.keys(config.snapshots).sort()) {
    out += `\n[${name}]\n${sectionText(config.snapshots[name]!)}`;
  }
  return out;
}

// PVE escapes the description's non-printables as %XX (and % itself).
function encodeText(text: string): string {
  return text.replace(/[%\x00-\x1f\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function decodeText(text: string): string {
  return text.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

// ---------------------------------------------------------------------------
// Files on disk

export function configPath(root: string, kind: GuestKind, vmid: string): string {
  const p = paths(root);
  return path.join(kind === 'lxc' ? p.lxcDir : p.qemuDir, `${vmid}.conf`);
}

/** The path PVE names in its messages: relative to /etc/pve, with the node. */
export function cfsPath(node: string, kind: GuestKind, vmid: string): string {
  return `nodes/${node}/${kind === 'lxc' ? 'lxc' : 'qemu-server'}/${vmid}.conf`;
}

export function guestKindOf(root: string, vmid: string): GuestKind | undefined {
  if (fs.existsSync(configPath(root, 'lxc', vmid))) return 'lxc';
  if (fs.existsSync(configPath(root, 'qemu', vmid))) return 'qemu';
  return undefined;
}

export function readConfigFile(root: string, kind: GuestKind, vmid: string, warn?: (line: string) => void): GuestConfig | undefined {
  let text: string;
  try {
    text = fs.readFileSync(configPath(root, kind, vmid), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return parseConfig(text, kind, vmid, warn);
}

export function writeConfigFile(root: string, kind: GuestKind, vmid: string, config: GuestConfig): void {
  atomicWrite(configPath(root, kind, vmid), serializeConfig(config), 0o640);
}

export function listGuestIds(root: string, kind: GuestKind): string[] {
  const p = paths(root);
  let names: string[];
  try {
    names = fs.readdirSync(kind === 'lxc' ? p.lxcDir : p.qemuDir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^(\d+)\.conf$/.exec(n)?.[1])
    .filter((id): id is string => id !== undefined)
    .sort((a, b) => Number(a) - Number(b));
}

// ---------------------------------------------------------------------------
// Property strings: "name=eth0,bridge=vmbr0,ip=dhcp" and "local-lvm:vm-101-disk-0,size=8G"

export function parsePropertyString(value: string, defaultKey?: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const part of value.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq === -1) {
      if (!defaultKey) throw new Error('value without key, but schema does not define a default key');
      if (result[defaultKey] !== undefined) throw new Error(`duplicate key in comma-separated list property: ${defaultKey}`);
      result[defaultKey] = part;
      continue;
    }
    const key = part.slice(0, eq);
    if (result[key] !== undefined) throw new Error(`duplicate key in comma-separated list property: ${key}`);
    result[key] = part.slice(eq + 1);
  }
  return result;
}

/** Serialize with the default key first, the rest in the given order. */
export function printPropertyString(props: Record<string, string>, defaultKey?: string): string {
  const parts: string[] = [];
  if (defaultKey && props[defaultKey] !== undefined) parts.push(props[defaultKey]!);
  for (const [k, v] of Object.entries(props)) if (k !== defaultKey) parts.push(`${k}=${v}`);
  return parts.join(',');
}
