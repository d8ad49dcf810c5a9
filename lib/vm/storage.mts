// Where a VM's inputs live on the host's Proxmox storages: the cloud image
// a template is built from, and the snippets storage its cloud-init files
// go to. Storages the manifests name (hypervisor `proxmox_storage_ids`) are
// searched first, then any other active storage with the right content.

import path from 'node:path';
import { query } from '../core/runner.mts';
import { PhoenixError } from '../core/errors.mts';
import type { HypervisorConfig } from '../config/types.mts';

interface ActiveStorage {
  name: string;
  type: string;
}

/** `pvesm status --content <type>`: active storages that hold that content. */
export async function storagesWithContent(content: string): Promise<ActiveStorage[]> {
  const result = await query({ cmd: 'pvesm', args: ['status', '--content', content], quiet: true });
  return result.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 3 && cols[2] === 'active')
    .map((cols) => ({ name: cols[0] as string, type: cols[1] as string }));
}

/** Storage ids the hypervisor manifest names, in file order. */
export function manifestStorages(hypervisor: HypervisorConfig | undefined): string[] {
  return Object.values(hypervisor?.proxmox_storage_ids ?? {});
}

function preferNamed(storages: readonly ActiveStorage[], named: readonly string[]): ActiveStorage[] {
  const rank = (s: ActiveStorage) => {
    const i = named.indexOf(s.name);
    return i === -1 ? named.length : i;
  };
  return [...storages].sort((a, b) => rank(a) - rank(b));
}

/** The volume id of the cloud image, e.g. `fastData-shared-iso:iso/noble-server-cloudimg-amd64.img`. */
export async function findCloudImage(image: string, hypervisor: HypervisorConfig | undefined): Promise<string> {
  const candidates = preferNamed(await storagesWithContent('iso'), manifestStorages(hypervisor));
  for (const storage of candidates) {
    const listed = await query({ cmd: 'pvesm', args: ['list', storage.name, '--content', 'iso'], quiet: true });
    const volid = `${storage.name}:iso/${image}`;
    if (listed.stdout.split('\n').some((line) => line.trim().split(/\s+/)[0] === volid)) return volid;
  }
  const release = hypervisor?.vm_defaults?.ubuntu_release;
  const first = candidates[0]?.name ?? '<storage>';
  throw new PhoenixError(`cloud image ${image} is in none of the ISO storages (${candidates.map((s) => s.name).join(', ') || 'none active'})`, {
    hint: `download it once, with its checksum checked, e.g. pvesh create /nodes/$(hostname)/storage/${first}/download-url --content iso --filename ${image} --url https://cloud-images.ubuntu.com/${release ?? '<release>'}/current/${image} --checksum <sha256 from SHA256SUMS> --checksum-algorithm sha256`,
  });
}

export interface SnippetStore {
  storage: string;
  /** Directory of the storage's snippets on the host (as Proxmox reports it). */
  dir: string;
}

/** The storage for cloud-init snippets, or undefined when no storage holds snippets. */
export async function findSnippetStore(hypervisor: HypervisorConfig | undefined, probeName: string): Promise<SnippetStore | undefined> {
  const candidates = preferNamed(await storagesWithContent('snippets'), manifestStorages(hypervisor));
  const chosen = candidates[0];
  if (!chosen) return undefined;
  const result = await query({ cmd: 'pvesm', args: ['path', `${chosen.name}:snippets/${probeName}`], quiet: true });
  return { storage: chosen.name, dir: path.dirname(result.stdout.trim()) };
}
