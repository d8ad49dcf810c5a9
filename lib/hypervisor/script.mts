// What the hypervisor_setup scripts share: the same command line as the
// bash (an optional hypervisor config path, which hypervisor-manager passes
// and most bash scripts ignored; here it is honoured), `--dry-run`, `--help`,
// and the manifests loaded from it.

import { loadConfig, resolveConfigPaths } from '../config/load.mts';
import { defineArgs, usageError, type ArgSpec, type FlagSpec } from '../core/args.mts';
import type { PhoenixOptions } from '../core/env.mts';
import type { FeatureContext } from '../guest/container.mts';

/** The declaration of a setup script: `name [HYPERVISOR_CONFIG_FILE] [--dry-run]`, plus its own flags. */
export function setupScriptArgs<const F extends Readonly<Record<string, FlagSpec>> = Record<never, never>>(name: string, usage: string, flags?: F) {
  return defineArgs({
    name,
    usage,
    dryRun: true,
    flags: (flags ?? {}) as F,
    positionals: [{ name: 'hypervisorConfig', optional: true }],
  });
}

/** The manifests and options for a setup script, from the config path it was given (if any). */
export function setupFeatureContext(hypervisorConfig: string | undefined, options: PhoenixOptions): FeatureContext {
  const config = loadConfig(resolveConfigPaths(hypervisorConfig === undefined ? {} : { hypervisor: hypervisorConfig }));
  return { config, options };
}

/** The values of flags a script cannot run without; a missing or empty one is a usage error (`--<flag> is required`). */
export function requireFlags<const K extends string>(spec: Pick<ArgSpec, 'usage' | 'usageExitCode'>, flags: { readonly [N in K]?: string }, names: readonly K[]): Record<K, string> {
  for (const name of names) if (flags[name] === undefined || flags[name] === '') throw usageError(spec, `--${name} is required`);
  return flags as Record<K, string>;
}
