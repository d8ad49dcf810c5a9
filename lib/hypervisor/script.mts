// What the hypervisor_setup scripts share: the same arguments as the bash
// (an optional hypervisor config path, which hypervisor-manager passes and
// most bash scripts ignored; here it is honoured), `--dry-run`, `--help`.

import { loadConfig, resolveConfigPaths } from '../config.mts';
import { UsageError } from '../errors.mts';
import { takeStandardFlags, type ScriptContext } from '../main.mts';
import type { FeatureContext } from '../features/common.mts';

/** The manifests and options for a setup script, or undefined when `--help` was printed. */
export function setupScriptContext(context: ScriptContext, usage: string): FeatureContext | undefined {
  const positional: string[] = [];
  if (!takeStandardFlags(context, usage, positional)) return undefined;
  if (positional.length > 1) throw new UsageError(`too many arguments: ${positional.join(' ')}`, { hint: usage.split('\n')[0] });
  const config = loadConfig(resolveConfigPaths(positional[0] === undefined ? {} : { hypervisor: positional[0] }));
  return { config, options: context.options };
}
