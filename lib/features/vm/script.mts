// The body every `scripts/vm_features/*.mts` shares: the command line
// `<VMID> [--dry-run]` declared once, the manifests loaded, the feature run
// under the host lock, the outcome reported. Each script names only itself
// and its feature module.

import { runMain, withHostLock } from '../../core/main.mts';
import { defineArgs, parseArgs } from '../../core/args.mts';
import { loadConfig, resolveConfigPaths } from '../../config/load.mts';
import { warn } from '../../core/log.mts';
import { reportFeature, type FeatureContext, type FeatureResult } from '../../guest/vm-plan.mts';

/** The command line of the VM feature script `script` (its upstream file name). Usage errors exit 1, as the bash. */
export function vmFeatureArgs(script: string) {
  const usageLine = `usage: ${script} <VMID>`;
  return defineArgs({
    name: script,
    usage: `Usage: ${script} <VMID> [--dry-run]

Applies the feature to the VM <VMID> through its guest agent, as its entry in
the VM manifest asks; what is in place already is left alone.

  --dry-run   print what would change, change nothing
`,
    dryRun: true,
    positionals: [{ name: 'vmid', missing: `missing VMID; ${usageLine}`, check: (vmid) => (/^[1-9]\d{2,8}$/.test(vmid) ? undefined : `'${vmid}' is not a VM id; ${usageLine}`) }],
    // The bash ignored further words; they are ignored with a warning.
    extra: 'ignore',
  });
}

/** A VM feature script's arguments (undefined for --help). */
export function parseVmFeatureArgs(argv: readonly string[], script: string): { vmid: string; dryRun: boolean } | undefined {
  const parsed = parseArgs(vmFeatureArgs(script), argv);
  return parsed.help ? undefined : { vmid: parsed.positional.vmid, dryRun: parsed.dryRun };
}

export function runVmFeatureScript(script: string, install: (vmid: string, context: FeatureContext) => Promise<FeatureResult>): Promise<number> {
  return runMain(vmFeatureArgs(script), async (args, ctx) => {
    if (args.ignored.length > 0) warn(`ignoring extra arguments: ${args.ignored.join(' ')}`);
    const config = loadConfig(resolveConfigPaths());
    const result = await withHostLock(ctx, () => install(args.positional.vmid, { config, options: ctx.options }));
    reportFeature(result);
  });
}
