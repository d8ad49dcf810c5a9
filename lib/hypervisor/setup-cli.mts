// From hypervisor-manager's flags to a setup run: the manifests loaded once
// from --config, the context every step gets.

import { loadConfig, resolveConfigPaths } from '../config/load.mts';
import { UsageError } from '../core/errors.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { runHypervisorSetup } from './setup.mts';
import type { SetupContext } from './setup-step.mts';

export interface SetupFlags {
  config?: string | undefined;
  'wipe-disks'?: boolean | undefined;
  upgrade?: boolean | undefined;
}

export function setupContext(flags: SetupFlags, options: PhoenixOptions): SetupContext & { upgrade: boolean } {
  if (!flags.config) throw new UsageError('--config HYPERVISOR_CONFIG_FILE is required', { hint: 'phoenix setup passes it; by hand: hypervisor-manager.sh --config /path/to/phoenix_hypervisor_config.json' });
  const config = loadConfig(resolveConfigPaths({ hypervisor: flags.config }));
  return {
    config,
    options,
    wipeDisks: flags['wipe-disks'] === true,
    upgrade: flags.upgrade === true,
    interactive: process.stdin.isTTY === true,
  };
}

export function setupFromArgs(flags: SetupFlags, options: PhoenixOptions): Promise<number> {
  return runHypervisorSetup(setupContext(flags, options));
}
