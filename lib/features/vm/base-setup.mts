// base_setup: IPv6 off inside the VM, and ufw (Ubuntu's host firewall) off,
// because Phoenix filters VM traffic with the Proxmox firewall instead.
//
// In place means: the sysctl file holds exactly the three settings and the
// kernel already runs with them (the bash wrote the file and then ran a bare
// `sysctl -p`, which reads /etc/sysctl.conf only, so nothing took effect
// before a reboot); ufw, where installed, is disabled, stopped and not
// enabled at boot. A failure to stop ufw only warns, as in the bash.

import { applyPlan, vmConfig, type FeatureContext, type FeaturePlan, type FeatureResult } from '../../guest/vm-plan.mts';

export const FEATURE = 'base_setup';

export const SYSCTL_FILE = '/etc/sysctl.d/99-disable-ipv6.conf';
export const SYSCTL_CONTENT = `# Written by Phoenix (feature_install_base_setup): no IPv6 inside Phoenix VMs.
net.ipv6.conf.all.disable_ipv6 = 1
net.ipv6.conf.default.disable_ipv6 = 1
net.ipv6.conf.lo.disable_ipv6 = 1
`;

export function plan(vmid: string, context: FeatureContext): FeaturePlan {
  vmConfig(context, vmid);
  return {
    feature: FEATURE,
    kind: 'vm',
    guest: vmid,
    steps: [
      { kind: 'file', id: 'ipv6-sysctl-file', title: `write ${SYSCTL_FILE}`, path: SYSCTL_FILE, content: SYSCTL_CONTENT, mode: 0o644 },
      {
        kind: 'command',
        id: 'ipv6-disabled',
        title: 'apply the IPv6 settings to the running kernel',
        // A kernel without IPv6 has nothing to disable.
        probe: `[ ! -d /proc/sys/net/ipv6 ] || {
  [ "$(sysctl -n net.ipv6.conf.all.disable_ipv6)" = 1 ] &&
  [ "$(sysctl -n net.ipv6.conf.default.disable_ipv6)" = 1 ] &&
  [ "$(sysctl -n net.ipv6.conf.lo.disable_ipv6)" = 1 ]
}`,
        action: `sysctl -p ${SYSCTL_FILE}`,
        after: ['ipv6-sysctl-file'],
      },
      {
        kind: 'command',
        id: 'ufw-disabled',
        title: 'disable ufw',
        probe: `! command -v ufw >/dev/null || {
  grep -qs '^ENABLED=no' /etc/ufw/ufw.conf &&
  ! systemctl is-enabled --quiet ufw.service &&
  ! systemctl is-active --quiet ufw.service
}`,
        action: 'ufw disable\nsystemctl disable --now ufw.service',
        optional: true,
      },
    ],
  };
}

export async function install(vmid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(plan(vmid, context), context);
}
