#!/usr/bin/env node
// Port of bin/lxc_setup/phoenix_hypervisor_feature_install_python_api_service.sh, run on the host as
// `phoenix_hypervisor_feature_install_python_api_service.sh <CTID> [bootstrap_ca_url]` (lxc-manager passes both).
// What it does to the container: lib/features/python_api_service.mts.

import { runMain, withHostLock } from '../../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config.mts';
import { parseFeatureArgs, reportFeature } from '../../lib/features/common.mts';
import { install } from '../../lib/features/python_api_service.mts';

await runMain('phoenix_hypervisor_feature_install_python_api_service.sh', async (ctx) => {
  const { ctid, bootstrapCaUrl } = parseFeatureArgs(ctx.argv, 'python_api_service');
  const config = loadConfig(resolveConfigPaths());
  const result = await withHostLock(ctx, () => install(ctid, { config, options: ctx.options, bootstrapCaUrl }));
  reportFeature(result, ctx.options.dryRun);
});
