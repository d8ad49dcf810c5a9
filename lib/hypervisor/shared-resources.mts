// Setup step 13 (hypervisor_feature_provision_shared_resources): the volumes
// of shared_zfs_volumes and two directories the bash created.
//
// - shared_zfs_volumes keeps the bash's shape, an object keyed by volume
//   name ({ "<name>": { "pool": <storage id>, "size_gb": N } }); each is
//   `pvesm alloc <pool> 99999 vm-99999-disk-<name> <N>G --format raw` when
//   `pvesm list <pool>` does not list it (exactly; the bash grepped a
//   substring, so "data" matched "data2").
// - <base>/persistent-storage/ssl and <mount_point_base>/quickOS/
//   shared-prod-data/logs/nginx are created when missing (0755); existing
//   ones keep their mode.
// - <base>/persistent-storage/ssl/ca_password.txt: an empty file, mode 0600,
//   only when missing. Nothing reads it (CT 103 keeps its password
//   elsewhere); it is kept so a tree that expects it finds it.

import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../core/errors.mts';
import { isDryRun } from '../core/context.mts';
import { writeFileAtomic } from '../core/fs.mts';
import { run } from '../core/runner.mts';
import { onHost } from '../guest/hostdirs.mts';
import { pvesmList } from '../pve/storage.mts';
import type { ConfigIssue, HypervisorConfig } from '../config/types.mts';
import type { SetupContext, StepResult } from './setup-step.mts';

/** The placeholder owner of volumes no guest owns (the bash's). */
export const SHARED_VMID = '99999';

export function sharedVolumeName(name: string): string {
  return `vm-${SHARED_VMID}-disk-${name}`;
}

/** The directories the bash created, as host paths. */
export function sharedDirectories(config: HypervisorConfig, baseDir: string): string[] {
  const mounts = config.mount_point_base ?? '/mnt/pve';
  return [path.posix.join(baseDir, 'persistent-storage/ssl'), path.posix.join(mounts, 'quickOS/shared-prod-data/logs/nginx')];
}

export function caPasswordFile(baseDir: string): string {
  return path.posix.join(baseDir, 'persistent-storage/ssl/ca_password.txt');
}

/** shared_zfs_volumes checked without the host. */
export function validateSharedResources(config: HypervisorConfig, file: string): ConfigIssue[] {
  const volumes = config.shared_zfs_volumes as unknown;
  if (volumes === undefined) return [];
  const issues: ConfigIssue[] = [];
  if (volumes === null || typeof volumes !== 'object' || Array.isArray(volumes)) {
    return [{ file, pointer: '/shared_zfs_volumes', message: 'shared_zfs_volumes is an object keyed by volume name: { "<name>": { "pool": "<storage>", "size_gb": N } }' }];
  }
  for (const [name, spec] of Object.entries(volumes as Record<string, unknown>)) {
    const at = `/shared_zfs_volumes/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) issues.push({ file, pointer: at, message: `'${name}' cannot be part of a volume name (letters, digits, '_', '.', '-')` });
    const v = (spec ?? {}) as { pool?: unknown; size_gb?: unknown };
    if (typeof v.pool !== 'string' || v.pool === '') issues.push({ file, pointer: `${at}/pool`, message: 'a shared volume needs the Proxmox storage it is allocated on (pool)' });
    if (typeof v.size_gb !== 'number' || !Number.isInteger(v.size_gb) || v.size_gb < 1) issues.push({ file, pointer: `${at}/size_gb`, message: 'size_gb must be a whole number of GiB, at least 1' });
  }
  return issues;
}

function ensureMissingDir(hostPath: string, hostRoot: string, changes: string[]): void {
  const dir = onHost(hostRoot, hostPath);
  if (fs.existsSync(dir)) return;
  if (!isDryRun()) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    fs.chmodSync(dir, 0o755);
  }
  changes.push(`created ${hostPath}`);
}

export async function provisionSharedResources(context: SetupContext): Promise<StepResult> {
  const config = context.config.hypervisor;
  const file = context.config.paths.hypervisor;
  const issues = validateSharedResources(config, file);
  if (issues.length > 0) {
    const [first, ...rest] = issues;
    throw new ConfigError(file, first!.pointer, `${first!.message}${rest.map((r) => `\n  ${r.pointer}: ${r.message}`).join('')}`, 'nothing was changed');
  }
  const changes: string[] = [];
  const listed = new Map<string, string[]>();
  for (const [name, spec] of Object.entries(config.shared_zfs_volumes ?? {})) {
    const volume = sharedVolumeName(name);
    if (!listed.has(spec.pool)) listed.set(spec.pool, await pvesmList(spec.pool));
    if (listed.get(spec.pool)!.includes(`${spec.pool}:${volume}`)) continue;
    await run({ cmd: 'pvesm', args: ['alloc', spec.pool, SHARED_VMID, volume, `${spec.size_gb}G`, '--format', 'raw'] });
    changes.push(`allocated ${spec.pool}:${volume} (${spec.size_gb} GiB)`);
  }
  const { baseDir, hostRoot } = context.options;
  for (const dir of sharedDirectories(config, baseDir)) ensureMissingDir(dir, hostRoot, changes);
  const password = caPasswordFile(baseDir);
  if (!fs.existsSync(onHost(hostRoot, password))) {
    writeFileAtomic(onHost(hostRoot, password), '', { mode: 0o600, dirMode: 0o755 });
    changes.push(`created ${password} (empty, 0600)`);
  }
  return { changes };
}
