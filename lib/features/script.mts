// The body every `scripts/lxc_setup/*.mts` shares: read `<CTID>
// [bootstrap_ca_url]`, load the manifests, run the feature under the host
// lock and report. Each script names only itself and its feature module.

import { runMain, withHostLock } from '../main.mts';
import { loadConfig, resolveConfigPaths } from '../config.mts';
import { parseFeatureArgs, reportFeature, type FeatureContext, type FeatureResult } from './common.mts';

export function runLxcFeatureScript(script: string, feature: string, install: (ctid: string, context: FeatureContext) => Promise<FeatureResult>): Promise<number> {
  return runMain(script, async (ctx) => {
    const { ctid, bootstrapCaUrl } = parseFeatureArgs(ctx.argv, feature);
    const config = loadConfig(resolveConfigPaths());
    const result = await withHostLock(ctx, () => install(ctid, { config, options: ctx.options, bootstrapCaUrl }));
    reportFeature(result, ctx.options.dryRun);
  });
}
