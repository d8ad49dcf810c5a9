// step_cli: Smallstep's `step` command from Smallstep's apt repository.
//
// In place means: the prerequisites and step-cli are installed (dpkg says
// so and `step` is on PATH), the repository list is exactly Phoenix's and its
// key is where the list's signed-by points. The key now lives under
// /etc/apt/keyrings and vouches for this repository only; the bash put it in
// trusted.gpg.d, where apt trusts it for every source, and that copy is
// removed. Nothing is killed while another apt run holds the lock: killing
// dpkg mid-transaction breaks the package database.

import { APT_TIMEOUT_MS, applyPlan, vmConfig, type FeatureContext, type FeaturePlan, type FeatureResult } from '../../guest/vm-plan.mts';

export const FEATURE = 'step_cli';

/** Smallstep's published signing key and repository (the bash's URLs). */
export const SMALLSTEP_KEY_URL = 'https://packages.smallstep.com/keys/apt/repo-signing-key.gpg';
export const SMALLSTEP_REPO = 'https://packages.smallstep.com/stable/debian debs main';
export const SMALLSTEP_KEYRING = '/etc/apt/keyrings/smallstep.asc';
/** Where the bash left the key, trusted for every repository. */
export const LEGACY_KEYRING = '/etc/apt/trusted.gpg.d/smallstep.asc';
export const SMALLSTEP_LIST = '/etc/apt/sources.list.d/smallstep.list';
export const PREREQUISITES = ['curl', 'gpg', 'ca-certificates'] as const;

export function plan(vmid: string, context: FeatureContext): FeaturePlan {
  vmConfig(context, vmid);
  return {
    feature: FEATURE,
    kind: 'vm',
    guest: vmid,
    steps: [
      {
        kind: 'command',
        id: 'prerequisites',
        title: `install ${PREREQUISITES.join(' ')}`,
        probe: `phoenix_installed ${PREREQUISITES.join(' ')}`,
        action: `apt_get update\napt_get install --no-install-recommends ${PREREQUISITES.join(' ')}`,
        timeoutMs: APT_TIMEOUT_MS,
      },
      {
        kind: 'command',
        id: 'smallstep-key',
        title: `install Smallstep's signing key as ${SMALLSTEP_KEYRING}`,
        probe: `[ -s ${SMALLSTEP_KEYRING} ] && [ ! -e ${LEGACY_KEYRING} ]`,
        action: `install -d -m 0755 /etc/apt/keyrings
curl -fsSL ${SMALLSTEP_KEY_URL} -o ${SMALLSTEP_KEYRING}.new
chmod 0644 ${SMALLSTEP_KEYRING}.new
mv -f ${SMALLSTEP_KEYRING}.new ${SMALLSTEP_KEYRING}
rm -f ${LEGACY_KEYRING}`,
      },
      {
        kind: 'file',
        id: 'smallstep-list',
        title: `write ${SMALLSTEP_LIST}`,
        path: SMALLSTEP_LIST,
        content: `deb [signed-by=${SMALLSTEP_KEYRING}] ${SMALLSTEP_REPO}\n`,
        mode: 0o644,
      },
      {
        kind: 'command',
        id: 'step-cli',
        title: 'install step-cli',
        probe: 'phoenix_installed step-cli && command -v step >/dev/null',
        action: 'apt_get update\napt_get install --no-install-recommends step-cli',
        timeoutMs: APT_TIMEOUT_MS,
      },
    ],
  };
}

export async function install(vmid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(plan(vmid, context), context);
}
