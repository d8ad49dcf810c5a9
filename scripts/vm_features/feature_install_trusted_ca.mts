#!/usr/bin/env node
// feature_install_trusted_ca <VMID>: the Phoenix root CA in the VM's trust
// store.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/vm-features/trusted-ca.mts. Exit 0 when done (or already so), 1 for a
// usage, configuration or precondition error, else the failing guest command's
// code.

import { runMain, withHostLock } from '../../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config.mts';
import { configureRunner } from '../../lib/runner.mts';
import { parseFeatureArgs, reportFeature } from '../../lib/vm-features/common.mts';
import { install } from '../../lib/vm-features/trusted-ca.mts';

await runMain('feature_install_trusted_ca.sh', async (ctx) => {
  const { vmid, dryRun } = parseFeatureArgs(ctx.argv, 'feature_install_trusted_ca.sh');
  if (dryRun) {
    ctx.options.dryRun = true;
    configureRunner({ dryRun: true });
  }
  const config = loadConfig(resolveConfigPaths());
  const result = await withHostLock(ctx, () => install(vmid, { config, options: ctx.options }));
  reportFeature(result, ctx.options.dryRun);
});
