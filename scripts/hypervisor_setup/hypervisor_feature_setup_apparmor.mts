#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_setup_apparmor.sh (setup step 14).
// What it does and how it differs from the bash: lib/hypervisor/apparmor.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_setup_apparmor.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Installs the AppArmor profiles of <PHOENIX_BASE_DIR>/etc/apparmor/ into
/etc/apparmor.d (each profile named after its file, - replaced by _),
after checking that each parses; loads only the ones that changed.
Skipped when that directory does not exist.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_setup_apparmor.sh', USAGE), async (args, context) => {
  const { setupApparmor } = await import('../../lib/hypervisor/apparmor.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Setting up the AppArmor profiles...');
  const result = await withHostLock(context, () => setupApparmor(setup));
  return reportStep('AppArmor profiles', result);
});
