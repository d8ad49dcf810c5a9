#!/usr/bin/env node
// Port of bin/hypervisor_setup/hypervisor_feature_setup_auto_renewal.sh
// (setup step 16): renew the certificates every hour. Installs the systemd
// timer phoenix-cert-renewal.timer (and its service) where the bash wrote an
// /etc/cron.d job. What the units hold: lib/hypervisor/auto-renewal.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { isDryRun } from '../../lib/core/context.mts';
import { info, success } from '../../lib/core/log.mts';
import { setupFeatureContext, setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { setupAutoRenewal, TIMER_UNIT } from '../../lib/hypervisor/auto-renewal.mts';

const USAGE = `Usage: hypervisor_feature_setup_auto_renewal.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Installs and starts ${TIMER_UNIT}, which runs certificate-renewal-manager
every hour under the host lock, and removes the hourly cron job the bash
toolkit used instead.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_setup_auto_renewal.sh', USAGE), async (args, context) => {
  const setup = setupFeatureContext(args.positional.hypervisorConfig, context.options);
  info('Setting up automatic certificate renewal...');
  const result = await withHostLock(context, () => setupAutoRenewal(setup.config, setup.options));
  if (result.changes.length === 0) success(`automatic certificate renewal already in place (${TIMER_UNIT}); nothing changed`);
  else if (isDryRun()) info(`DRY-RUN: ${result.changes.length} change(s) planned: ${result.changes.join('; ')}`);
  else success(`automatic certificate renewal: ${result.changes.join('; ')}`);
  return 0;
});
