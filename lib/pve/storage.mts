// Typed wrappers for the storage tools: pvesm (Proxmox storage), pveam
// (appliance/OS templates), zfs and zpool.

import { run, query, type CommandResult } from '../core/runner.mts';

export interface StorageStatus {
  name: string;
  type: string;
  status: string;
}

export async function pvesmStatus(): Promise<StorageStatus[]> {
  const result = await query({ cmd: 'pvesm', args: ['status'], quiet: true });
  return result.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 3)
    .map((cols) => ({ name: cols[0] as string, type: cols[1] as string, status: cols[2] as string }));
}

export async function storageExists(name: string): Promise<boolean> {
  return (await pvesmStatus()).some((s) => s.name === name);
}

/** Volume ids in a storage, e.g. `local:vztmpl/ubuntu-….tar.zst`. */
export async function pvesmList(storage: string, content?: string): Promise<string[]> {
  const args = ['list', storage];
  if (content) args.push('--content', content);
  const result = await query({ cmd: 'pvesm', args, quiet: true });
  return result.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((volid) => volid.includes(':'));
}

export async function pvesmPath(volid: string): Promise<string> {
  return (await query({ cmd: 'pvesm', args: ['path', volid], quiet: true })).stdout.trim();
}

export async function pveamList(storage: string): Promise<string[]> {
  const result = await query({ cmd: 'pveam', args: ['list', storage], quiet: true });
  return result.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((volid) => volid.includes(':'));
}

export function pveamDownload(storage: string, template: string): Promise<CommandResult> {
  return run({ cmd: 'pveam', args: ['download', storage, template], timeoutMs: 30 * 60_000 });
}

export async function zpoolNames(): Promise<string[]> {
  const result = await query({ cmd: 'zpool', args: ['list', '-H', '-o', 'name'], quiet: true });
  return lines(result.stdout);
}

export async function zfsDatasets(): Promise<string[]> {
  const result = await query({ cmd: 'zfs', args: ['list', '-H', '-o', 'name'], quiet: true });
  return lines(result.stdout);
}

/** Exact name match; the bash grep treated the name as a regular expression. */
export async function zfsDatasetExists(name: string): Promise<boolean> {
  return (await zfsDatasets()).includes(name);
}

export function zfsCreate(name: string, properties: Record<string, string> = {}): Promise<CommandResult> {
  const args = ['create'];
  for (const [key, value] of Object.entries(properties)) args.push('-o', `${key}=${value}`);
  args.push(name);
  return run({ cmd: 'zfs', args });
}

export function zfsSet(name: string, properties: Record<string, string>): Promise<CommandResult> {
  return run({ cmd: 'zfs', args: ['set', ...Object.entries(properties).map(([k, v]) => `${k}=${v}`), name] });
}

export async function zfsGet(name: string, property: string): Promise<string> {
  const result = await query({ cmd: 'zfs', args: ['get', '-H', '-o', 'value', property, name], quiet: true });
  return result.stdout.trim();
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter(Boolean);
}
