#!/usr/bin/env node
// feature_install_docker <VMID>: Docker Engine, the user in the docker group,
// mutual-TLS API on :2376 when the VM has a daemon certificate.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/vm-features/docker.mts. Exit 0 when done (or already so), 1 for a usage,
// configuration or precondition error, else the failing guest command's code.

import { runMain, withHostLock } from '../../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config.mts';
import { configureRunner } from '../../lib/runner.mts';
import { parseFeatureArgs, reportFeature } from '../../lib/vm-features/common.mts';
import { install } from '../../lib/vm-features/docker.mts';

await runMain('feature_install_docker.sh', async (ctx) => {
  const { vmid, dryRun } = parseFeatureArgs(ctx.argv, 'feature_install_docker.sh');
  if (dryRun) {
    ctx.options.dryRun = true;
    configureRunner({ dryRun: true });
  }
  const config = loadConfig(resolveConfigPaths());
  const result = await withHostLock(ctx, () => install(vmid, { config, options: ctx.options }));
  reportFeature(result, ctx.options.dryRun);
});
