#!/usr/bin/env node
// Port of bin/lxc_setup/phoenix_hypervisor_feature_install_traefik.sh, run on the host as
// `phoenix_hypervisor_feature_install_traefik.sh <CTID> [bootstrap_ca_url]` (lxc-manager passes both).
// What it does to the container: lib/features/traefik.mts.

import { runMain, withHostLock } from '../../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config.mts';
import { parseFeatureArgs, reportFeature } from '../../lib/features/common.mts';
import { install } from '../../lib/features/traefik.mts';

await runMain('phoenix_hypervisor_feature_install_traefik.sh', async (ctx) => {
  const { ctid, bootstrapCaUrl } = parseFeatureArgs(ctx.argv, 'traefik');
  const config = loadConfig(resolveConfigPaths());
  const result = await withHostLock(ctx, () => install(ctid, { config, options: ctx.options, bootstrapCaUrl }));
  reportFeature(result, ctx.options.dryRun);
});
