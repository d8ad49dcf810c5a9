#!/usr/bin/env node
// hypervisor_feature_bootstrap_step_cli: the host's `step` client
// bootstrapped against Phoenix's CA. The bash was sourced by
// certificate-renewal-manager; the port is a script of its own, and the
// renewal manager calls lib/hypervisor/step-bootstrap.mts directly.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { setupFeatureContext, setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { bootstrapHostStep } from '../../lib/hypervisor/step-bootstrap.mts';

const USAGE = `Usage: hypervisor_feature_bootstrap_step_cli.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Runs 'step ca bootstrap' on the host against the CA at step_ca.ca_url, with
the fingerprint of the host copy of the root CA (step_ca.root_ca_file), unless
step's defaults.json ($STEPPATH, default ~/.step) already names that URL and
fingerprint. Fails when the host has no root CA copy yet.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_bootstrap_step_cli.sh', USAGE), async (args, context) => {
  const feature = setupFeatureContext(args.positional.hypervisorConfig, context.options);
  await withHostLock(context, () => bootstrapHostStep(feature));
  return 0;
});
