// The five manifests by kind: their file names, the environment variables
// that point at them, their schemas, and where Phoenix ships its examples.

import path from 'node:path';
import { PROJECT_ROOT } from '../core/project-root.mts';
import type { ManifestKind } from './types.mts';

export const MANIFEST_FILES: Readonly<Record<ManifestKind, string>> = {
  hypervisor: 'phoenix_hypervisor_config.json',
  lxc: 'phoenix_lxc_configs.json',
  vm: 'phoenix_vm_configs.json',
  stacks: 'phoenix_stacks_config.json',
  certificates: 'certificate-manifest.json',
};

export const MANIFEST_ENV: Readonly<Record<ManifestKind, string>> = {
  hypervisor: 'HYPERVISOR_CONFIG_FILE',
  lxc: 'LXC_CONFIG_FILE',
  vm: 'VM_CONFIG_FILE',
  stacks: 'STACKS_CONFIG_FILE',
  certificates: 'CERTIFICATE_MANIFEST_FILE',
};

export const SCHEMA_FILES: Readonly<Record<ManifestKind, string>> = {
  hypervisor: 'phoenix_hypervisor_config.schema.json',
  lxc: 'phoenix_lxc_configs.schema.json',
  vm: 'phoenix_vm_configs.schema.json',
  stacks: 'phoenix_stacks_config.schema.json',
  certificates: 'certificate-manifest.schema.json',
};

export const KINDS: readonly ManifestKind[] = ['hypervisor', 'lxc', 'vm', 'stacks', 'certificates'];
/** Schemas and example manifests ship with the code, not with the operator's etc/. */
export const PROJECT_ETC = path.join(PROJECT_ROOT, 'etc');
/** More lines than this in one error stop helping; the rest is counted. */
export const MAX_ISSUE_LINES = 10;
/** Larger than any real manifest by far; a bigger file is a mistake (or an attack), not a config. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** Deeper than any real manifest (they nest about 8 levels); bounds every recursive walk after parsing. */
export const MAX_MANIFEST_DEPTH = 64;
