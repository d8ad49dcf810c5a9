// trusted_ca: the Phoenix root CA in the VM's system trust store.
//
// The certificate is the host's copy of the root CA (pulled from the CA
// container when the host has none yet; the only piece of the PKI that
// leaves it); the bash copied it out of CT 103's world-readable
// directory and staged it in the VM's /tmp first. In place means: the VM
// holds exactly this certificate and the system bundle contains it. Docker,
// when it runs, is restarted after the bundle changed, so registries signed
// by the CA are trusted; the bash restarted it on every run, and warned on
// every first provisioning because docker was not installed yet.

import { ensureRootCaOnHost } from '../../guest/root-ca.mts';
import { applyPlan, vmConfig, type FeatureContext, type FeaturePlan, type FeatureResult } from '../../guest/vm-plan.mts';

export const FEATURE = 'trusted_ca';

/** The bash's file name, kept so VMs it provisioned converge. */
export const GUEST_CA_FILE = '/usr/local/share/ca-certificates/phoenix_root_ca.crt';
export const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export async function plan(vmid: string, context: FeatureContext): Promise<FeaturePlan> {
  vmConfig(context, vmid);
  const root = await ensureRootCaOnHost(context);
  return {
    feature: FEATURE,
    kind: 'vm',
    guest: vmid,
    steps: [
      { kind: 'file', id: 'root-ca', title: `install the root CA (sha256 ${root.fingerprint}) as ${GUEST_CA_FILE}`, path: GUEST_CA_FILE, content: root.pem, mode: 0o644 },
      {
        kind: 'command',
        id: 'trust-store',
        title: 'update the system trust store',
        // The certificate's base64 body, line breaks removed, must occur in the bundle.
        probe: `body=$(grep -v -- ----- ${GUEST_CA_FILE} | tr -d '\\r\\n') && [ -n "$body" ] &&
  tr -d '\\r\\n' < ${SYSTEM_BUNDLE} | grep -qF -- "$body"`,
        action: 'update-ca-certificates',
        after: ['root-ca'],
      },
      {
        kind: 'command',
        id: 'docker-restart',
        title: 'restart docker, if it runs, to load the new trust store',
        action: 'if systemctl is-active --quiet docker.service; then systemctl restart docker.service; fi',
        after: ['trust-store'],
      },
    ],
  };
}

export async function install(vmid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(vmid, context), context);
}
