// step_cli: Smallstep's `step` client from its apt repository. Installed
// means dpkg lists step-cli as installed (the bash tested for /usr/bin/step).

import { changeLog, missingPackages, requireRunning, runGuestScript, type Changes, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'step_cli';

/**
 * Install whichever of these Smallstep packages are missing; the guest
 * script adds the repository first when it is not configured yet.
 */
export async function ensureSmallstepPackages(ctid: string, packages: readonly string[], feature: string, changes: Changes): Promise<void> {
  const missing = await missingPackages(ctid, packages);
  if (missing.length === 0) return;
  await runGuestScript(ctid, 'smallstep.sh', missing, { feature, label: `installing ${missing.join(' ')} from the Smallstep repository` });
  changes.add(`installed ${missing.join(' ')}`);
}

export async function install(ctid: string, _context: FeatureContext): Promise<FeatureResult> {
  const changes = changeLog(FEATURE, ctid);
  await requireRunning(ctid);
  await ensureSmallstepPackages(ctid, ['step-cli'], FEATURE, changes);
  return changes.result();
}
