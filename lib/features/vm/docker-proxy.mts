// docker_proxy: root's Docker CLI in the VM talks to the daemon through its
// mutual-TLS endpoint, as Docker context `phoenix` (created or updated, then
// made the default), which is what portainer-manager relies on.
//
// In place means: the context points at the endpoint, holds the same TLS
// files as /etc/docker/tls (docker copies them into its context store, so a
// renewed certificate leaves a stale copy behind until this runs again) and
// is the current context. The endpoint is addressed by the first IP address
// (else the common name) of the daemon certificate: with `tlsverify` the CLI
// checks that name, and the bash's 127.0.0.1 is in no certificate.
//
// Like the bash, root presents the daemon's own certificate as its client
// identity; step-ca's default leaf template gives it the clientAuth usage
// too. The certificate manifest has no separate client entry for a VM.

import { ConfigError } from '../../core/errors.mts';
import { TLS_CA, TLS_CERT, TLS_KEY, DOCKER_TLS_DIR, DOCKER_TLS_PORT, dockerInstalledRequirement } from './docker.mts';
import { applyPlan, dockerDaemonCertificate, vmConfig, type FeatureContext, type FeaturePlan, type FeatureResult, type Step } from '../../guest/vm-plan.mts';
import type { CertificateEntry } from '../../config/types.mts';

export const FEATURE = 'docker_proxy';
export const CONTEXT_NAME = 'phoenix';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** `tcp://<address>:2376`, the address being one the daemon certificate is valid for. */
export function endpointFor(entry: CertificateEntry): string {
  const ip = (entry.sans ?? []).find((san) => IPV4.test(san) || san.includes(':'));
  const address = ip === undefined ? entry.common_name : ip.includes(':') ? `[${ip}]` : ip;
  return `tcp://${address}:${DOCKER_TLS_PORT}`;
}

const HELPERS = `# Where docker keeps a context's TLS files: its store names them by the
# sha256 of the context name.
context_tls_dir() {
  echo "$HOME/.docker/contexts/tls/$(printf %s ${CONTEXT_NAME} | sha256sum | cut -d" " -f1)/docker"
}`;

/** The context steps, also run by feature_sync_docker_proxy after a certificate renewal. */
export function contextSteps(): Step[] {
  const settings = `host=$docker_host,ca=${TLS_CA},cert=${TLS_CERT},key=${TLS_KEY}`;
  return [
    {
      kind: 'require',
      id: 'tls-files',
      title: `Docker's TLS files are in place`,
      probe: `[ -s ${TLS_CA} ] && [ -s ${TLS_CERT} ] && [ -s ${TLS_KEY} ]`,
      message: `Docker's TLS files are not in ${DOCKER_TLS_DIR}`,
      hint: 'apply the docker feature, or run feature_sync_docker_certs.sh',
    },
    {
      kind: 'command',
      id: 'docker-context',
      title: `point Docker context ${CONTEXT_NAME} at the TLS endpoint`,
      probe: `[ "$(docker context inspect ${CONTEXT_NAME} --format '{{.Endpoints.docker.Host}}' 2>/dev/null)" = "$docker_host" ] &&
  dir=$(context_tls_dir) &&
  cmp -s "$dir/ca.pem" ${TLS_CA} && cmp -s "$dir/cert.pem" ${TLS_CERT} && cmp -s "$dir/key.pem" ${TLS_KEY}`,
      action: `if docker context inspect ${CONTEXT_NAME} >/dev/null 2>&1; then
  docker context update ${CONTEXT_NAME} --docker "${settings}"
else
  docker context create ${CONTEXT_NAME} --docker "${settings}"
fi`,
    },
    {
      kind: 'command',
      id: 'docker-context-default',
      title: `make ${CONTEXT_NAME} root's default Docker context`,
      probe: `[ "$(docker context show 2>/dev/null)" = ${CONTEXT_NAME} ]`,
      action: `docker context use ${CONTEXT_NAME}`,
    },
  ];
}

export function contextHelpers(): string {
  return HELPERS;
}

export function plan(vmid: string, context: FeatureContext): FeaturePlan {
  vmConfig(context, vmid);
  const entry = dockerDaemonCertificate(context, vmid);
  if (!entry) {
    throw new ConfigError(context.config.paths.certificates, '', `the docker_proxy feature of VM ${vmid} needs a Docker daemon certificate for it`, `add an entry with "common_name": "docker-daemon.<domain>", "guest_id": ${vmid}, "guest_type": "vm"`);
  }
  return {
    feature: FEATURE,
    kind: 'vm',
    guest: vmid,
    params: [['docker_host', endpointFor(entry)]],
    helpers: HELPERS,
    steps: [dockerInstalledRequirement(), ...contextSteps()],
  };
}

export async function install(vmid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(plan(vmid, context), context);
}
