// What the hypervisor_setup scripts share: the same arguments as the bash
// (an optional hypervisor config path, which hypervisor-manager passes and
// most bash scripts ignored; here it is honoured), `--dry-run`, `--help`.

import { loadConfig, resolveConfigPaths } from '../config.mts';
import { UsageError } from '../errors.mts';
import { configureRunner } from '../runner.mts';
import type { ScriptContext } from '../main.mts';
import type { FeatureContext } from '../features/common.mts';

/** The manifests and options for a setup script, or undefined when `--help` was printed. */
export function setupScriptContext(context: ScriptContext, usage: string): FeatureContext | undefined {
  const positional: string[] = [];
  for (const arg of context.argv) {
    if (arg === '--dry-run') {
      context.options.dryRun = true;
      configureRunner({ dryRun: true });
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(usage);
      return undefined;
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`, { hint: usage.split('\n')[0] });
    else positional.push(arg);
  }
  if (positional.length > 1) throw new UsageError(`too many arguments: ${positional.join(' ')}`, { hint: usage.split('\n')[0] });
  const config = loadConfig(resolveConfigPaths(positional[0] === undefined ? {} : { hypervisor: positional[0] }));
  return { config, options: context.options };
}
