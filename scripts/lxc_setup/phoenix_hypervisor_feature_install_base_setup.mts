#!/usr/bin/env node
// Port of bin/lxc_setup/phoenix_hypervisor_feature_install_base_setup.sh, run on the host as
// `phoenix_hypervisor_feature_install_base_setup.sh <CTID> [bootstrap_ca_url]` (lxc-manager passes both).
// What it does to the container: lib/features/base_setup.mts.

import { runMain, withHostLock } from '../../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config.mts';
import { parseFeatureArgs, reportFeature } from '../../lib/features/common.mts';
import { install } from '../../lib/features/base_setup.mts';

await runMain('phoenix_hypervisor_feature_install_base_setup.sh', async (ctx) => {
  const { ctid, bootstrapCaUrl } = parseFeatureArgs(ctx.argv, 'base_setup');
  const config = loadConfig(resolveConfigPaths());
  const result = await withHostLock(ctx, () => install(ctid, { config, options: ctx.options, bootstrapCaUrl }));
  reportFeature(result, ctx.options.dryRun);
});
