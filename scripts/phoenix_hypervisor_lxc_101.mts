#!/usr/bin/env node
// Port of bin/phoenix_hypervisor_lxc_101.sh, the Nginx gateway's application
// script. lxc-manager runs it on the host as `phoenix_hypervisor_lxc_101.sh
// <CTID>`; it works on the container through pct (the bash ran inside it).
// What it does to the container: lib/gateway/nginx-app.mts.

import { runMain, withHostLock } from '../lib/core/main.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config/load.mts';
import { deployGateway } from '../lib/gateway/nginx-app.mts';
import { appScriptArgs } from '../lib/gateway/guest.mts';
import { isDryRun } from '../lib/core/context.mts';
import { info, success } from '../lib/core/log.mts';

const USAGE = `Usage: phoenix_hypervisor_lxc_101.sh <CTID> [--dry-run]

Sets up the Nginx gateway container: nginx with its stream module, trust in
the Phoenix root CA, the generated configuration from <base>/etc/nginx
(generated first when missing), checked with 'nginx -t' in the container
before nginx is reloaded. A second run on an unchanged container changes
nothing.

  --dry-run   print what would change, change nothing
`;

await runMain(appScriptArgs('phoenix_hypervisor_lxc_101.sh', USAGE), async (args, context) => {
  const { ctid } = args.positional;
  const config = loadConfig(resolveConfigPaths());
  info(`Configuring the Nginx gateway in CT ${ctid}...`);
  const result = await withHostLock(context, () => deployGateway(ctid, { config, options: context.options }));
  if (result.changes.length === 0) success(`Nginx gateway in CT ${ctid} unchanged: nothing to do`);
  else if (isDryRun()) info(`DRY-RUN: ${result.changes.length} change(s) planned in CT ${ctid}: ${result.changes.join('; ')}`);
  else success(`Nginx gateway in CT ${ctid} configured: ${result.changes.join('; ')}`);
  return 0;
});
