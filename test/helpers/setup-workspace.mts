// A working directory for running setup scripts on a simulated host: the
// example manifests copied into <work>/etc (the base dir of the run), the
// environment the scripts get (the host's tools first on PATH, the host
// root, a log and a lock of their own, no manifest paths or dry-run
// inherited from the test's own environment), and the example hypervisor
// manifest to derive variants from.

import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import type { SimHost } from '../simhost/index.mts';
import { tmpDir } from './tmp.mts';

const MANIFESTS = ['phoenix_hypervisor_config.json', 'phoenix_lxc_configs.json', 'phoenix_vm_configs.json', 'phoenix_stacks_config.json', 'certificate-manifest.json'];
const INHERITED = ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_RECORD'];

export interface SetupWorkspace {
  work: string;
  etc: string;
  hostfs: string;
  logFile: string;
  env: Record<string, string>;
  /** The example hypervisor manifest, parsed (a fresh copy each call). */
  baseConfig(): any;
  /** A host path inside the simulated host's tree. */
  onHost(hostPath: string): string;
}

export function setupWorkspace(host: SimHost, prefix: string): SetupWorkspace {
  const work = tmpDir(prefix);
  const hostfs = path.join(host.stateDir, 'hostfs');
  const etc = path.join(work, 'etc');
  const logFile = path.join(work, 'phoenix.log');
  fs.mkdirSync(etc, { recursive: true });
  for (const file of MANIFESTS) fs.copyFileSync(path.join(PROJECT_ROOT, 'etc', file), path.join(etc, file));
  fs.chmodSync(path.join(etc, 'certificate-manifest.json'), 0o600);
  const env: Record<string, string> = { ...host.env, PHOENIX_BASE_DIR: work, PHOENIX_HOST_ROOT: hostfs, MAIN_LOG_FILE: logFile, PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock') };
  for (const key of INHERITED) delete env[key];
  const example = fs.readFileSync(path.join(etc, 'phoenix_hypervisor_config.json'), 'utf8');
  return {
    work,
    etc,
    hostfs,
    logFile,
    env,
    baseConfig: () => JSON.parse(example),
    onHost: (hostPath) => path.join(hostfs, hostPath),
  };
}
