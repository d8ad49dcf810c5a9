#!/usr/bin/env node
// hypervisor_feature_install_trusted_ca: the Phoenix root CA in the host's
// trust store. Run by portainer-manager (sync). What it does:
// lib/hypervisor/trusted-ca.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { setupFeatureContext, setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { installHostTrustedCa } from '../../lib/hypervisor/trusted-ca.mts';

const USAGE = `Usage: hypervisor_feature_install_trusted_ca.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Installs the Phoenix root CA (the host copy at step_ca.root_ca_file, copied
from the CA container first when missing) as
/usr/local/share/ca-certificates/phoenix_root_ca.crt and runs
update-ca-certificates when it changed.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_install_trusted_ca.sh', USAGE), async (args, context) => {
  const feature = setupFeatureContext(args.positional.hypervisorConfig, context.options);
  await withHostLock(context, () => installHostTrustedCa(feature));
  return 0;
});
