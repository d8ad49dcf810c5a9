#!/usr/bin/env node
// Port of bin/phoenix_hypervisor_lxc_102.sh, the Traefik mesh's application
// script. lxc-manager runs it on the host as `phoenix_hypervisor_lxc_102.sh
// <CTID>`; it works on the container through pct (the bash ran inside it).
// What it does to the container: lib/gateway/traefik-app.mts.

import { runMain, withHostLock } from '../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config.mts';
import { DEFAULT_CA_TIMEOUT_SECONDS, deployTraefik } from '../lib/gateway/traefik-app.mts';
import { parseAppArgs } from '../lib/gateway/guest.mts';
import { info, success } from '../lib/log.mts';

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

await runMain('phoenix_hypervisor_lxc_102.sh', async (context) => {
  const args = parseAppArgs(context, USAGE, { caTimeout: true });
  if (!args) return 0;
  const config = loadConfig(resolveConfigPaths());
  info(`Configuring Traefik in CT ${args.ctid}...`);
  const options = { caTimeoutSeconds: args.caTimeoutSeconds ?? DEFAULT_CA_TIMEOUT_SECONDS, pollIntervalMs: context.options.pollIntervalMs };
  const result = await deployTraefik(args.ctid, { config, options: context.options }, options, (fn) => withHostLock(context, fn));
  if (result.changes.length === 0) success(`Traefik in CT ${args.ctid} unchanged: nothing to do`);
  else if (context.options.dryRun) info(`DRY-RUN: ${result.changes.length} change(s) planned in CT ${args.ctid}: ${result.changes.join('; ')}`);
  else success(`Traefik in CT ${args.ctid} configured: ${result.changes.join('; ')}`);
  return 0;
});
