// python_api_service: Python 3 with pip and venv. Installed means dpkg lists
// the three packages as installed; after an install python3 and pip3 must
// be on PATH.

import { PhoenixError } from '../../core/errors.mts';
import { applyPlan, type FeaturePlan } from '../../guest/feature-plan.mts';
import { packageProbe, packagesStep } from '../../guest/feature-container.mts';
import { missingCommands, requireRunning, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'python_api_service';

export const PYTHON_PACKAGES = ['python3', 'python3-pip', 'python3-venv'] as const;

export async function plan(ctid: string, _context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [packagesStep(ctid, { id: 'python-packages', feature: FEATURE, title: `install ${PYTHON_PACKAGES.join(' ')}`, probe: packageProbe(ctid, PYTHON_PACKAGES), script: 'apt_install.sh' })],
    verify: async () => {
      const absent = await missingCommands(ctid, ['python3', 'pip3']);
      if (absent.length > 0) throw new PhoenixError(`${FEATURE}: ${absent.join(' and ')} still missing in CT ${ctid} after the install`);
    },
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}
