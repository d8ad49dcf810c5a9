#!/usr/bin/env node
// Port of bin/phoenix_hypervisor_lxc_102.sh, the Traefik mesh's application
// script. lxc-manager runs it on the host as `phoenix_hypervisor_lxc_102.sh
// <CTID>`; it works on the container through pct (the bash ran inside it).
// What it does to the container: lib/gateway/traefik-app.mts.

import { runMain, withHostLock } from '../lib/core/main.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config/load.mts';
import { DEFAULT_CA_TIMEOUT_SECONDS, deployTraefik } from '../lib/gateway/traefik-app.mts';
import { appScriptArgsWithCaTimeout } from '../lib/gateway/guest.mts';
import { isDryRun } from '../lib/core/context.mts';
import { info, success } from '../lib/core/log.mts';

const USAGE = `Usage: phoenix_hypervisor_lxc_102.sh <CTID> [--dry-run] [--ca-timeout <seconds>]

Sets up the Traefik mesh container: waits for the CA (at most --ca-timeout
seconds, default ${DEFAULT_CA_TIMEOUT_SECONDS}), bootstraps step with the root CA fingerprint
computed on the host, installs the static and dynamic configuration generated
from the manifests and the ACME store, and restarts Traefik only when its
static configuration changed. A second run on an unchanged container changes
nothing.

  --dry-run              print what would change, change nothing
  --ca-timeout <secs>    how long to wait for the CA (default ${DEFAULT_CA_TIMEOUT_SECONDS})
`;

await runMain(appScriptArgsWithCaTimeout('phoenix_hypervisor_lxc_102.sh', USAGE), async (args, context) => {
  const { ctid } = args.positional;
  const caTimeout = args.flags['ca-timeout'];
  const config = loadConfig(resolveConfigPaths());
  info(`Configuring Traefik in CT ${ctid}...`);
  const options = { caTimeoutSeconds: caTimeout === undefined ? DEFAULT_CA_TIMEOUT_SECONDS : Number(caTimeout), pollIntervalMs: context.options.pollIntervalMs };
  const result = await deployTraefik(ctid, { config, options: context.options }, options, (fn) => withHostLock(context, fn));
  if (result.changes.length === 0) success(`Traefik in CT ${ctid} unchanged: nothing to do`);
  else if (isDryRun()) info(`DRY-RUN: ${result.changes.length} change(s) planned in CT ${ctid}: ${result.changes.join('; ')}`);
  else success(`Traefik in CT ${ctid} configured: ${result.changes.join('; ')}`);
  return 0;
});
