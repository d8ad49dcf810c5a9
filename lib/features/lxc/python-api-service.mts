// python_api_service: Python 3 with pip and venv. Installed means dpkg lists
// the three packages as installed.

import { PhoenixError } from '../../core/errors.mts';
import { isDryRun } from '../../core/context.mts';
import { changeLog, missingCommands, missingPackages, requireRunning, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'python_api_service';

export const PYTHON_PACKAGES = ['python3', 'python3-pip', 'python3-venv'] as const;

export async function install(ctid: string, _context: FeatureContext): Promise<FeatureResult> {
  const changes = changeLog(FEATURE, ctid);
  await requireRunning(ctid);
  const missing = await missingPackages(ctid, PYTHON_PACKAGES);
  if (missing.length === 0) return changes.result();
  await runGuestScript(ctid, 'apt_install.sh', missing, { feature: FEATURE, label: `installing ${missing.join(' ')}` });
  changes.add(`installed ${missing.join(' ')}`);
  if (!isDryRun()) {
    const absent = await missingCommands(ctid, ['python3', 'pip3']);
    if (absent.length > 0) throw new PhoenixError(`${FEATURE}: ${absent.join(' and ')} still missing in CT ${ctid} after the install`);
  }
  return changes.result();
}
