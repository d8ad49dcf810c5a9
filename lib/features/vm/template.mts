// feature_template: the pattern every VM feature follows, as a minimal
// feature that really works. Copy this file to start a new feature.
//
//   1. `plan(vmid, context)` turns the manifests into steps. It changes
//      nothing and is unit-testable. Step kinds (see common.mts):
//        file     exact content + mode, owned by root; pushed on stdin
//        command  shell `probe` (exit 0 = already so) and `action`;
//                 `after: [ids]` also runs it when those steps changed
//        require  a precondition; the feature stops before any change
//      Shell text is made of constants only. A manifest value becomes a
//      shell variable through `params` (passed as an argument of bash -s).
//   2. `install(vmid, context)` hands the plan to `applyPlan`: one read-only
//      check of every probe and file in the VM, then only the missing steps,
//      then the check again. An unchanged VM gets the check and nothing else.
//
// This one keeps /etc/phoenix/feature_template (the VM's id and name) and
// writes one line to the VM's journal whenever that file changes. The bash
// scaffold touched a marker file, so it could never notice a file that
// changed or lost its content; a probe of the real state can.

import { applyPlan, vmConfig, type FeatureContext, type FeaturePlan, type FeatureResult } from '../../guest/vm-plan.mts';

export const FEATURE = 'template';
export const TEMPLATE_FILE = '/etc/phoenix/feature_template';

export function plan(vmid: string, context: FeatureContext): FeaturePlan {
  const vm = vmConfig(context, vmid);
  return {
    feature: FEATURE,
    kind: 'vm',
    guest: vmid,
    params: [['vm_name', vm.name]],
    steps: [
      {
        kind: 'file',
        id: 'template-file',
        title: `write ${TEMPLATE_FILE}`,
        path: TEMPLATE_FILE,
        content: `# Written by Phoenix (feature_template)\nvmid=${vmid}\nname=${vm.name}\n`,
        mode: 0o644,
      },
      {
        kind: 'command',
        id: 'template-journal',
        title: 'note the change in the journal of the VM',
        action: 'logger -t phoenix "feature_template applied to $vm_name"',
        after: ['template-file'],
      },
    ],
  };
}

export async function install(vmid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(plan(vmid, context), context);
}
