#!/usr/bin/env node
// feature_install_docker_proxy <VMID>: root's Docker context 'phoenix' over
// the daemon's mutual-TLS endpoint.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/vm-features/docker-proxy.mts. Exit 0 when done (or already so), 1 for a
// usage, configuration or precondition error, else the failing guest command's
// code.

import { runMain, withHostLock } from '../../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config.mts';
import { configureRunner } from '../../lib/runner.mts';
import { parseFeatureArgs, reportFeature } from '../../lib/vm-features/common.mts';
import { install } from '../../lib/vm-features/docker-proxy.mts';

await runMain('feature_install_docker_proxy.sh', async (ctx) => {
  const { vmid, dryRun } = parseFeatureArgs(ctx.argv, 'feature_install_docker_proxy.sh');
  if (dryRun) {
    ctx.options.dryRun = true;
    configureRunner({ dryRun: true });
  }
  const config = loadConfig(resolveConfigPaths());
  const result = await withHostLock(ctx, () => install(vmid, { config, options: ctx.options }));
  reportFeature(result, ctx.options.dryRun);
});
