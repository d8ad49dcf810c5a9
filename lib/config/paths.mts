// Paths from the manifests, checked before anything changes: each kind of
// path must stay in the place it belongs to. Host paths are joined under
// PHOENIX_HOST_ROOT and written as root, so a `..` segment or a relative
// path could reach any file of the host (or, under a test's host root, the
// directory next to it). Every path is refused when it holds a control
// character or a `..` segment, or is relative where an absolute path is
// meant; then each kind is confined (docs/security.md lists the rules):
//
// - certificate and key files (written as root): the data roots, i.e.
//   mount_point_base, the ZFS pools' mount points (/<pool>), the NFS exports,
//   the containers' bind-mount sources, and Phoenix's own /etc/phoenix;
// - bind-mount sources: anywhere but the host's system trees (Phoenix creates
//   and chowns them, and the guest may write into them) and not a directory
//   holding Phoenix's secrets or its root CA copy;
// - secret files (Portainer password and API key, CA provisioner password)
//   and the root CA copy: not in a system tree other than /etc/phoenix, and
//   never where a guest can read or replace them (bind-mount sources, data
//   roots, the stacks directory);
// - compose templates and stack file sources: relative to the stacks
//   manifest's directory, or absolute inside that directory, <base>/etc,
//   <base>/stacks or the stacks directory;
// - paths inside a guest (container_path, guest_cert_path, ...): absolute.

import path from 'node:path';
import type { ConfigIssue, PhoenixConfig } from './types.mts';
import type { LxcConfig } from './types.mts';
import { resolveOptions } from '../core/env.mts';

/** Where Phoenix keeps its own host files (secrets, the root CA copy). */
export const PHOENIX_HOST_DIR = '/etc/phoenix';
export const DEFAULT_SECRETS_DIR = '/etc/phoenix/secrets';
export const DEFAULT_MOUNT_POINT_BASE = '/mnt/pve';
/** Upstream's shared stacks directory (kept in step with lib/stacks/render.mts). */
const DEFAULT_STACKS_DIR = '/quickOS/portainer_stacks';
const DEFAULT_ROOT_CA_FILE = '/etc/phoenix/ca/root_ca.crt';
const DEFAULT_ADMIN_PASSWORD_FILE = '/etc/phoenix/secrets/portainer_admin_password';
const DEFAULT_PROVISIONER_PASSWORD_FILE = '/etc/phoenix/secrets/step_provisioner_password';

/** The host's own trees: never written by a manifest path, never handed to a guest. */
const SYSTEM_TREES = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/root', '/run', '/sbin', '/sys', '/usr', '/var/lib/lxc', '/var/lib/pve-cluster', '/var/lib/vz'];
/** Inside a system tree, but Phoenix's (or the bash toolkit's install directory). */
const SYSTEM_EXCEPTIONS = [PHOENIX_HOST_DIR, '/usr/local/phoenix_hypervisor'];
/** Directories that hold the system trees or everyone's data: as a whole, never a bind-mount source. */
const SHARED_TOPS = ['/', '/home', '/media', '/mnt', '/opt', '/srv', '/tmp', '/usr/local', '/var', '/var/lib', '/var/log'];

/** `child` is `parent` or below it (both normalised, absolute). */
export function isWithin(child: string, parent: string): boolean {
  if (parent === '/') return true;
  return child === parent || child.startsWith(`${parent}/`);
}

/**
 * What is wrong with a path's form, or undefined. `absolute`: true when it
 * must be absolute, false when it must be relative, undefined for either.
 */
export function pathFormProblem(value: string, absolute: boolean | undefined): string | undefined {
  if (value === '') return 'is empty; expected a path';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'contains a control character (a newline, a tab, ...); a path may not';
  if (value.split('/').includes('..')) return `${JSON.stringify(value)} contains a ".." segment; write the path without it`;
  if (absolute === true && !value.startsWith('/')) return `${JSON.stringify(value)} is relative; expected an absolute path`;
  if (absolute === false && value.startsWith('/')) return `${JSON.stringify(value)} is absolute; expected a path relative to the manifest's directory`;
  return undefined;
}

/** The host's system tree this path is in, unless it is one of Phoenix's own directories. */
export function systemTreeOf(normal: string): string | undefined {
  if (SYSTEM_EXCEPTIONS.some((dir) => isWithin(normal, dir))) return undefined;
  return SYSTEM_TREES.find((tree) => isWithin(normal, tree));
}

interface Root {
  dir: string;
  what: string;
}

export type PathSection = 'hypervisor' | 'lxc' | 'certificates' | 'stacks';

export interface PathCheckOptions {
  /** Report only the problems of these manifests (default all); stacks alone reads only the hypervisor config besides. */
  sections?: readonly PathSection[];
  env?: Record<string, string | undefined>;
}

/** Every path problem of the loaded manifests (files that do not exist are skipped). */
export function pathIssues(config: PhoenixConfig, exists: (file: string) => boolean, options: PathCheckOptions = {}): ConfigIssue[] {
  const sections = new Set<PathSection>(options.sections ?? ['hypervisor', 'lxc', 'certificates', 'stacks']);
  const env = options.env ?? process.env;
  const found: ConfigIssue[] = [];
  const { hypervisor: hvFile, lxc: lxcFile, stacks: stacksFile, certificates: certFile } = config.paths;
  const hv = exists(hvFile) ? config.hypervisor : undefined;
  // The guests' mounts matter to every section but the stacks.
  const needGuests = sections.has('lxc') || sections.has('hypervisor') || sections.has('certificates');
  const containers: Record<string, LxcConfig> = needGuests && exists(lxcFile) ? config.lxc.lxc_configs : {};
  const issues = { push: (issue: ConfigIssue): number => found.push(issue) };

  /** Checks the form; the normalised path when it is usable for the confinement checks. */
  const form = (file: string, pointer: string, value: unknown, absolute: boolean | undefined): string | undefined => {
    if (typeof value !== 'string') return undefined; // the schema's business
    const problem = pathFormProblem(value, absolute);
    if (problem) {
      issues.push({ file, pointer, message: problem });
      return undefined;
    }
    return path.posix.normalize(value).replace(/(.)\/+$/, '$1');
  };

  // Bind-mount sources, and what the guests can see.
  const mounts: Array<Root & { pointer: string }> = [];
  for (const [id, ct] of Object.entries(containers)) {
    ct.mount_points?.forEach((mount, i) => {
      const pointer = `/lxc_configs/${escapePointer(id)}/mount_points/${i}`;
      const source = form(lxcFile, `${pointer}/host_path`, mount.host_path, true);
      form(lxcFile, `${pointer}/container_path`, mount.container_path, true);
      if (source === undefined) return;
      const system = systemTreeOf(source);
      if (system) issues.push({ file: lxcFile, pointer: `${pointer}/host_path`, message: `${source} is in the host's system tree ${system}; a container may not mount it` });
      else if (SHARED_TOPS.includes(source)) issues.push({ file: lxcFile, pointer: `${pointer}/host_path`, message: `${source} is a shared top-level directory; mount a directory of its own below it` });
      mounts.push({ dir: source, what: `CT ${id}'s bind mount (${pointer}/host_path)`, pointer: `${pointer}/host_path` });
    });
  }
  for (const [name, volume] of Object.entries(hv?.shared_volumes ?? {})) {
    const pointer = `/shared_volumes/${escapePointer(name)}/host_path`;
    const source = form(hvFile, pointer, volume.host_path, true);
    if (source === undefined) continue;
    const system = systemTreeOf(source);
    if (system) issues.push({ file: hvFile, pointer, message: `${source} is in the host's system tree ${system}; a container may not mount it` });
    else if (SHARED_TOPS.includes(source)) issues.push({ file: hvFile, pointer, message: `${source} is a shared top-level directory; share a directory of its own below it` });
    mounts.push({ dir: source, what: `shared volume ${name} (${pointer})`, pointer });
  }

  const mountBase = form(hvFile, '/mount_point_base', hv?.mount_point_base, true) ?? DEFAULT_MOUNT_POINT_BASE;
  const dataRoots: Root[] = [{ dir: mountBase, what: 'mount_point_base' }];
  hv?.zfs?.pools?.forEach((pool) => {
    if (typeof pool.name === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(pool.name)) dataRoots.push({ dir: `/${pool.name}`, what: `ZFS pool ${pool.name}` });
  });
  hv?.nfs?.exports?.forEach((exp, i) => {
    const dir = form(hvFile, `/nfs/exports/${i}/path`, exp.path, true);
    if (dir !== undefined) dataRoots.push({ dir, what: `NFS export ${dir}` });
  });
  const stacksDirRaw = hv?.core_paths?.stacks_dir;
  const stacksDir = (stacksDirRaw === undefined ? undefined : form(hvFile, '/core_paths/stacks_dir', stacksDirRaw, true)) ?? DEFAULT_STACKS_DIR;

  // Secret files and the root CA copy.
  const guestVisible: Root[] = [...mounts, ...dataRoots, { dir: stacksDir, what: 'the stacks directory' }];
  const privateFile = (pointer: string, value: unknown, fallback: string | undefined, kind: string): string | undefined => {
    if (value === undefined) return fallback;
    const file = form(hvFile, pointer, value, true);
    if (file === undefined) return undefined;
    const system = systemTreeOf(file);
    if (system) {
      issues.push({ file: hvFile, pointer, message: `${file} is in the host's system tree ${system}; keep ${kind} under ${PHOENIX_HOST_DIR}` });
      return undefined;
    }
    const seen = guestVisible.find((root) => isWithin(file, root.dir));
    if (seen) issues.push({ file: hvFile, pointer, message: `${file} is inside ${seen.what} (${seen.dir}), where a guest can read or replace it; keep ${kind} under ${PHOENIX_HOST_DIR}` });
    return file;
  };
  const privateFiles = [
    privateFile('/portainer_api/admin_password_file', hv?.portainer_api?.admin_password_file, DEFAULT_ADMIN_PASSWORD_FILE, 'secrets'),
    privateFile('/portainer_api/api_key_file', hv?.portainer_api?.api_key_file, undefined, 'secrets'),
    privateFile('/step_ca/provisioner_password_file', hv?.step_ca?.provisioner_password_file, DEFAULT_PROVISIONER_PASSWORD_FILE, 'secrets'),
    privateFile('/step_ca/root_ca_file', hv?.step_ca?.root_ca_file, DEFAULT_ROOT_CA_FILE, 'the root CA copy'),
    privateFile('/samba/password_file', hv?.samba?.password_file, undefined, 'secrets'),
  ];
  // A mount source holding one of them would hand it to the guest.
  for (const mount of mounts) {
    const file = privateFiles.find((f) => f !== undefined && isWithin(f, mount.dir));
    if (file) issues.push({ file: mount.pointer.startsWith('/shared_volumes') ? hvFile : lxcFile, pointer: mount.pointer, message: `${mount.dir} holds ${file}, which no guest may see; mount a directory of its own` });
  }

  // Certificates: written as root on the host, read by guests.
  if (sections.has('certificates') && exists(certFile)) {
    const certRoots: Root[] = [...dataRoots, ...mounts, { dir: PHOENIX_HOST_DIR, what: PHOENIX_HOST_DIR }];
    config.certificates.forEach((entry, i) => {
      for (const key of ['cert_path', 'key_path'] as const) {
        const file = form(certFile, `/${i}/${key}`, entry[key], true);
        if (file === undefined) continue;
        if (!certRoots.some((root) => isWithin(file, root.dir) && file !== root.dir)) {
          issues.push({
            file: certFile,
            pointer: `/${i}/${key}`,
            message: `${file} is outside the directories certificates go to (${uniqueDirs(certRoots).join(', ')})`,
          });
        }
      }
      for (const key of ['guest_cert_path', 'guest_key_path', 'guest_ca_path'] as const) form(certFile, `/${i}/${key}`, entry[key], true);
    });
  }

  // Stacks: templates and file sources stay in Phoenix's tree or the stacks directory.
  if (sections.has('stacks') && exists(stacksFile)) {
    const manifestDir = path.dirname(stacksFile);
    const baseDir = resolveOptions(env).baseDir;
    const stackRoots = uniqueDirs([
      { dir: manifestDir, what: '' },
      { dir: path.join(baseDir, 'etc'), what: '' },
      { dir: path.join(baseDir, 'stacks'), what: '' },
      { dir: stacksDir, what: '' },
    ]);
    const confined = (pointer: string, value: unknown, kind: string): void => {
      const normal = form(stacksFile, pointer, value, undefined);
      if (normal === undefined || !normal.startsWith('/')) return;
      if (!stackRoots.some((dir) => isWithin(normal, dir))) {
        issues.push({ file: stacksFile, pointer, message: `${normal} is outside the directories ${kind} may come from (${stackRoots.join(', ')}); use a path relative to ${manifestDir}` });
      }
    };
    for (const [name, stack] of Object.entries(config.stacks.docker_stacks)) {
      const base = `/docker_stacks/${escapePointer(name)}`;
      confined(`${base}/compose_file_path`, stack.compose_file_path, 'compose templates');
      for (const [envName, environment] of Object.entries(stack.environments ?? {})) {
        environment.files?.forEach((entry, i) => {
          const pointer = `${base}/environments/${escapePointer(envName)}/files/${i}`;
          confined(`${pointer}/source`, entry.source, 'stack files');
          form(stacksFile, `${pointer}/destination_in_container`, entry.destination_in_container, true);
        });
      }
    }
  }
  const kindOf = new Map<string, PathSection>([
    [hvFile, 'hypervisor'],
    [lxcFile, 'lxc'],
    [certFile, 'certificates'],
    [stacksFile, 'stacks'],
  ]);
  return found.filter((issue) => sections.has(kindOf.get(issue.file) as PathSection));
}

function uniqueDirs(roots: readonly Root[]): string[] {
  return [...new Set(roots.map((root) => root.dir))];
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
