// systemd's units on the host, kept in host-services.json
// { units: { "<name>.<type>": UnitState }, loaded: { unit: sha256 } }:
// the services a fresh Proxmox VE node runs (built in), the units a
// simulated package brings, and unit files under
// <host root>/{etc,lib,usr/lib}/systemd/system, loaded on first use.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { atomicWrite, readJson } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';

export interface UnitState {
  active: 'active' | 'inactive' | 'failed';
  enabled: 'enabled' | 'disabled' | 'static';
  /** Shipped by the node or a package (no unit file in the host tree). */
  vendor?: boolean;
  starts: number;
  reloads?: number;
  since?: string;
}

export interface ServiceState {
  units: Record<string, UnitState>;
  /** Unit files systemd has loaded, with the sha256 it loaded. */
  loaded: Record<string, string>;
}

/** What a fresh Proxmox VE 8 node runs. */
const NODE_UNITS = [
  'pve-cluster.service',
  'pvedaemon.service',
  'pveproxy.service',
  'pvestatd.service',
  'pvescheduler.service',
  'pve-firewall.service',
  'networking.service',
  'ssh.service',
  'cron.service',
  'chrony.service',
  'rpcbind.service',
  'apparmor.service',
];

/** Units with an ExecReload=. */
export const RELOADABLE = new Set(['dnsmasq.service', 'ssh.service', 'pveproxy.service', 'pvedaemon.service', 'networking.service', 'chrony.service', 'smbd.service', 'nmbd.service', 'nfs-server.service', 'pve-firewall.service', 'apparmor.service']);

const UNIT_DIRS = ['/etc/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];
const UNIT_TYPES = ['service', 'timer', 'socket', 'target', 'path', 'mount'];

function servicesFile(root: string): string {
  return path.join(root, 'host-services.json');
}

export function loadServices(root: string): ServiceState {
  const state = readJson<ServiceState | null>(servicesFile(root), null);
  if (state) return { units: state.units ?? {}, loaded: state.loaded ?? {} };
  const units: Record<string, UnitState> = {};
  for (const unit of NODE_UNITS) units[unit] = { active: 'active', enabled: 'enabled', vendor: true, starts: 1 };
  return { units, loaded: {} };
}

export function saveServices(root: string, state: ServiceState): void {
  atomicWrite(servicesFile(root), `${JSON.stringify(state, null, 2)}\n`);
}

/** `foo` → `foo.service`, as systemctl completes a name without a type. */
export function unitName(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot > 0 && UNIT_TYPES.includes(name.slice(dot + 1))) return name;
  return `${name}.service`;
}

export function unitFile(hostRoot: string, unit: string): { hostPath: string; file: string } | undefined {
  for (const dir of UNIT_DIRS) {
    const hostPath = `${dir}/${unit}`;
    const file = onHostRoot(hostRoot, hostPath);
    if (fs.existsSync(file)) return { hostPath, file };
  }
  return undefined;
}

export function sha256(text: string | Buffer): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

export interface ResolvedUnit {
  name: string;
  state: UnitState;
  /** The unit file in the host tree, for file units. */
  file?: { hostPath: string; file: string };
  /** The file changed on disk since systemd loaded it (NeedDaemonReload). */
  stale?: boolean;
}

/**
 * Find a unit. A unit file systemd has not seen yet is loaded on first use
 * (as systemd does); one that changed since it was loaded works with a
 * warning until `daemon-reload`.
 */
export function resolveUnit(ctx: HostToolContext, services: ServiceState, name: string): ResolvedUnit | undefined {
  const unit = unitName(name);
  const file = unitFile(ctx.hostRoot, unit);
  const known = services.units[unit];
  if (file) {
    const hash = sha256(fs.readFileSync(file.file));
    if (services.loaded[unit] === undefined) services.loaded[unit] = hash;
    const stale = services.loaded[unit] !== hash;
    const state = known ?? { active: 'inactive', enabled: hasInstallSection(file.file) ? 'disabled' : 'static', starts: 0 };
    services.units[unit] = state;
    return { name: unit, state, file, stale };
  }
  if (known?.vendor) return { name: unit, state: known };
  return undefined;
}

function hasInstallSection(file: string): boolean {
  return /^\s*\[Install\]\s*$/m.test(fs.readFileSync(file, 'utf8'));
}

export function wantedBy(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const install = text.split(/^\s*\[Install\]\s*$/m)[1]?.split(/^\s*\[/m)[0] ?? '';
  return [...install.matchAll(/^\s*(?:WantedBy|RequiredBy)\s*=\s*(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
}
