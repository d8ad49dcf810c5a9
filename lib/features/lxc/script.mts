// The body every `scripts/lxc_setup/*.mts` shares: the command line
// `<CTID> [bootstrap_ca_url]` (as lxc-manager calls every feature script)
// declared once, the manifests loaded, the feature run under the host lock,
// the outcome reported. Each script names only itself and its feature module.

import { runMain, withHostLock } from '../../core/main.mts';
import { defineArgs, parseArgs } from '../../core/args.mts';
import { loadConfig, resolveConfigPaths } from '../../config/load.mts';
import { warn } from '../../core/log.mts';
import { reportFeature, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

/**
 * How each bash feature script reacted to a missing CTID: `exit 2` after a
 * usage line, or a FATAL line (exit 1). Kept, so callers see the same codes.
 * The four scripts that demanded exactly one argument (and so always failed
 * under lxc-manager, which passes two) accept the second like the rest.
 */
const USAGE_EXIT_CODE: Readonly<Record<string, 1 | 2>> = {
  base_setup: 2,
  nvidia: 2,
  vllm: 2,
  docker: 2,
  ollama: 2,
  python_api_service: 2,
  portainer: 2,
  step_cli: 1,
  trusted_ca: 1,
  step_ca: 1,
  traefik: 1,
  sync_traefik_certs: 1,
};

/** The command line of the feature script `script` (its upstream file name) for `feature`. */
export function lxcFeatureArgs(script: string, feature: string) {
  const usageLine = `usage: ${script} <CTID> [bootstrap_ca_url]`;
  return defineArgs({
    name: script,
    usage: `Usage: ${script} <CTID> [bootstrap_ca_url] [--dry-run]

Applies the ${feature} feature to the running container <CTID>, as its entry
in the LXC manifest asks; a second run on an unchanged container changes
nothing. lxc-manager passes the container's bootstrap_ca_url as the second
argument (possibly empty).

  --dry-run   print what would change, change nothing
`,
    dryRun: true,
    usageExitCode: USAGE_EXIT_CODE[feature] ?? 1,
    positionals: [
      { name: 'ctid', missing: `missing CTID; ${usageLine}`, check: (ctid) => (/^[1-9]\d{2,8}$/.test(ctid) ? undefined : `'${ctid}' is not a container id; ${usageLine}`) },
      { name: 'bootstrapCaUrl', optional: true },
    ],
    extra: 'ignore',
  });
}

export interface LxcFeatureArgs {
  ctid: string;
  bootstrapCaUrl?: string;
}

/** A feature script's arguments (undefined for --help). */
export function parseLxcFeatureArgs(argv: readonly string[], script: string, feature: string): LxcFeatureArgs | undefined {
  const parsed = parseArgs(lxcFeatureArgs(script, feature), argv);
  if (parsed.help) return undefined;
  const { ctid, bootstrapCaUrl } = parsed.positional;
  return bootstrapCaUrl === undefined ? { ctid } : { ctid, bootstrapCaUrl };
}

export function runLxcFeatureScript(script: string, feature: string, install: (ctid: string, context: FeatureContext) => Promise<FeatureResult>): Promise<number> {
  return runMain(lxcFeatureArgs(script, feature), async (args, ctx) => {
    const { ctid, bootstrapCaUrl } = args.positional;
    if (args.ignored.length > 0) warn(`ignoring extra arguments: ${args.ignored.join(' ')}`);
    const config = loadConfig(resolveConfigPaths());
    const context: FeatureContext = bootstrapCaUrl === undefined ? { config, options: ctx.options } : { config, options: ctx.options, bootstrapCaUrl };
    const result = await withHostLock(ctx, () => install(ctid, context));
    reportFeature(result);
  });
}
