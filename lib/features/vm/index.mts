// The VM features by name, for vm-manager: it applies a VM's `features` in
// manifest order, in-process, with `install(vmid, context)`. The sync
// helpers and the template are scripts of the same folder but no feature a
// manifest can list.

import type { VmFeature } from '../../config/types.mts';
import type { FeatureInstall } from '../../guest/vm-plan.mts';
import { install as baseSetup } from './base-setup.mts';
import { install as docker } from './docker.mts';
import { install as dockerProxy } from './docker-proxy.mts';
import { install as stepCli } from './step-cli.mts';
import { install as trustedCa } from './trusted-ca.mts';
import { install as syncDockerCerts } from './sync-docker-certs.mts';
import { install as syncDockerProxy } from './sync-docker-proxy.mts';

export const VM_FEATURES: Readonly<Record<VmFeature, FeatureInstall>> = {
  base_setup: baseSetup,
  trusted_ca: trustedCa,
  step_cli: stepCli,
  docker,
  docker_proxy: dockerProxy,
};

/** What `vm-manager sync` runs on a VM, in this order (the bash did it for 1001 only). */
export const VM_SYNC_STEPS: readonly (readonly [name: string, install: FeatureInstall])[] = [
  ['sync_docker_certs', syncDockerCerts],
  ['sync_docker_proxy', syncDockerProxy],
];

export type { FeatureContext, FeatureResult, FeatureInstall } from '../../guest/vm-plan.mts';
export { scriptName, reportFeature } from '../../guest/vm-plan.mts';
