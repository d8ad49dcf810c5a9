// The body every `scripts/vm_features/*.mts` shares: read `<VMID>
// [--dry-run]`, load the manifests, run the feature under the host lock and
// report. Each script names only itself and its feature module.

import { runMain, withHostLock } from '../main.mts';
import { loadConfig, resolveConfigPaths } from '../config.mts';
import { configureRunner } from '../runner.mts';
import { parseFeatureArgs, reportFeature, type FeatureContext, type FeatureResult } from './common.mts';

export function runVmFeatureScript(script: string, install: (vmid: string, context: FeatureContext) => Promise<FeatureResult>): Promise<number> {
  return runMain(script, async (ctx) => {
    const { vmid, dryRun } = parseFeatureArgs(ctx.argv, script);
    if (dryRun) {
      ctx.options.dryRun = true;
      configureRunner({ dryRun: true });
    }
    const config = loadConfig(resolveConfigPaths());
    const result = await withHostLock(ctx, () => install(vmid, { config, options: ctx.options }));
    reportFeature(result, ctx.options.dryRun);
  });
}
