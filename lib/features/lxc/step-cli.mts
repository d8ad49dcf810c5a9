// step_cli: Smallstep's `step` client from its apt repository. Installed
// means dpkg lists step-cli as installed (the bash tested for /usr/bin/step).

import { applyPlan, type FeaturePlan, type HostStep } from '../../guest/feature-plan.mts';
import { packageProbe, packagesStep } from '../../guest/feature-container.mts';
import { requireRunning, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'step_cli';

/**
 * Whichever of these Smallstep packages are missing, installed by one guest
 * script that adds the repository first when it is not configured yet
 * (shared with the step_ca feature).
 */
export function smallstepStep(ctid: string, packages: readonly string[], feature: string): HostStep {
  return packagesStep(ctid, {
    id: 'smallstep-packages',
    feature,
    title: `install ${packages.join(' ')} from the Smallstep repository`,
    probe: packageProbe(ctid, packages),
    script: 'smallstep.sh',
    label: (missing) => `installing ${missing.join(' ')} from the Smallstep repository`,
  });
}

export async function plan(ctid: string, _context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  return { feature: FEATURE, kind: 'lxc', guest: ctid, steps: [smallstepStep(ctid, ['step-cli'], FEATURE)] };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}
