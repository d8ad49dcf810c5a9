#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_fix_apparmor_tunables.sh (setup step 15).
// What it does and how it differs from the bash: lib/hypervisor/apparmor.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { info } from '../../lib/core/log.mts';
import { setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { reportStep, scriptSetupContext } from '../../lib/hypervisor/step-script.mts';

const USAGE = `Usage: hypervisor_feature_fix_apparmor_tunables.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Keeps /etc/apparmor.d/tunables/home as the distribution ships it (puts its
include <tunables/home.d> back if an earlier run removed it), writes the
manifest's apparmor.home_dirs to tunables/home.d/phoenix, and checks that
the tunables parse.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_fix_apparmor_tunables.sh', USAGE), async (args, context) => {
  const { fixApparmorTunables } = await import('../../lib/hypervisor/apparmor.mts');
  const setup = scriptSetupContext(args.positional.hypervisorConfig, context.options);
  info('Checking the AppArmor home tunables...');
  const result = await withHostLock(context, () => fixApparmorTunables(setup));
  return reportStep('AppArmor home tunables', result);
});
