// sync_docker_certs: copy the Docker daemon's TLS files from the host paths
// the certificate manifest names into the VM (/etc/docker/tls, key 0600),
// and restart a running docker only when one of them changed.
//
// The bash ran `certificate-renewal-manager.sh --force` instead: every
// certificate of the manifest re-issued and every post-renewal command run,
// whatever the VM. Issuing stays the renewal manager's job; this pushes what
// it issued. A VM without a Docker daemon certificate has nothing to sync.

import { dockerTls, restartStep, tlsFileSteps } from './docker.mts';
import { applyPlan, skipped, vmConfig, type FeatureContext, type FeaturePlan, type FeatureResult } from '../../guest/vm-plan.mts';

export const FEATURE = 'sync_docker_certs';

/** The plan, or undefined when the manifest has no Docker daemon certificate for the VM. */
export async function plan(vmid: string, context: FeatureContext): Promise<FeaturePlan | undefined> {
  vmConfig(context, vmid);
  const tls = await dockerTls(vmid, context);
  if (!tls) return undefined;
  const files = tlsFileSteps(tls);
  return { feature: FEATURE, kind: 'vm', guest: vmid, steps: [...files, restartStep(files.map((f) => f.id), true)] };
}

export async function install(vmid: string, context: FeatureContext): Promise<FeatureResult> {
  const p = await plan(vmid, context);
  if (!p) return skipped(FEATURE, vmid, 'certificate-manifest.json has no Docker daemon certificate for this VM');
  return applyPlan(p, context);
}
