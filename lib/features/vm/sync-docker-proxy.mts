// sync_docker_proxy: what the bash script meant:
// the VM's Docker daemon serves its TCP endpoint with mutual TLS, using the
// files feature_sync_docker_certs put in /etc/docker/tls. It runs on the
// host like every port and acts on the VM; the bash ran its VM-side body on
// the host, where it failed, or would have rewritten the host's own Docker.
//
// daemon.json and the systemd drop-in are brought to the manifests' state
// (shared with the docker feature) and docker restarts only when one of them
// changed. When the VM lists docker_proxy, root's `phoenix` context is
// refreshed too: it holds copies of the TLS files, stale after a renewal.
// Without a Docker daemon certificate the daemon keeps to its local socket.

import { info } from '../../core/log.mts';
import { contextHelpers, contextSteps, endpointFor } from './docker-proxy.mts';
import { TLS_CA, TLS_CERT, TLS_KEY, DOCKER_TLS_DIR, daemonConfigSteps, dockerInstalledRequirement, restartStep } from './docker.mts';
import { applyPlan, dockerDaemonCertificate, vmConfig, type FeatureContext, type FeaturePlan, type FeatureResult, type Step } from '../../guest/vm-plan.mts';

export const FEATURE = 'sync_docker_proxy';

export function plan(vmid: string, context: FeatureContext): FeaturePlan {
  const vm = vmConfig(context, vmid);
  const entry = dockerDaemonCertificate(context, vmid);
  if (!entry) info(`${FEATURE}: certificate-manifest.json has no Docker daemon certificate for VM ${vmid}; its TCP endpoint stays closed`);
  const tls = entry !== undefined;
  const config = daemonConfigSteps(vm, tls);
  const tlsFiles: Step = {
    kind: 'require',
    id: 'tls-files-present',
    title: "Docker's TLS files are in place",
    probe: `[ -s ${TLS_CA} ] && [ -s ${TLS_CERT} ] && [ -s ${TLS_KEY} ]`,
    message: `Docker's TLS files are not in ${DOCKER_TLS_DIR}; enabling the TLS endpoint now would stop dockerd`,
    hint: 'run feature_sync_docker_certs.sh first (vm-manager sync runs it before this)',
  };
  const refreshContext = tls && (vm.features ?? []).includes('docker_proxy');
  const steps: Step[] = [
    dockerInstalledRequirement(),
    ...(tls ? [tlsFiles] : []),
    ...config,
    restartStep(config.map((s) => s.id), false),
    ...(refreshContext ? contextSteps().filter((s) => s.kind !== 'require') : []),
  ];
  return {
    feature: FEATURE,
    kind: 'vm',
    guest: vmid,
    ...(entry && refreshContext ? { params: [['docker_host', endpointFor(entry)]] as const, helpers: contextHelpers() } : {}),
    steps,
  };
}

export async function install(vmid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(plan(vmid, context), context);
}
