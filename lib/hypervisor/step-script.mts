// What a script running one `phoenix setup` step on its own does around
// it: the step's context from the script's arguments, and its result told
// the same way by every such script (the changes, why it was skipped, a
// reboot the host needs, and the exit status that says "reboot first").

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { usageError, type ArgSpec } from '../core/args.mts';
import { isDryRun } from '../core/context.mts';
import { info, success, warn } from '../core/log.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { setupFeatureContext } from './script.mts';
import { RebootRequiredError, type SetupContext, type StepResult } from './setup-step.mts';

/** What a script may set beyond the manifests; `upgrade` is read by the initial setup step only. */
export type SetupOverrides = Partial<Pick<SetupContext, 'wipeDisks' | 'interactive'>> & { upgrade?: boolean };

/** The step's context: never wipes disks, prompts only with a terminal on stdin (unless overridden). */
export function scriptSetupContext(hypervisorConfig: string | undefined, options: PhoenixOptions, overrides: SetupOverrides = {}): SetupContext {
  return { ...setupFeatureContext(hypervisorConfig, options), wipeDisks: false, interactive: process.stdin.isTTY === true, ...overrides };
}

/**
 * Log the result: why the step was skipped, `<unchanged>; nothing changed`
 * (by default `<what>: already in place`), or its changes (planned, in
 * dry-run). A reboot that must come first ends the script with
 * REBOOT_REQUIRED_EXIT (not in dry-run). Returns the exit status.
 */
export function reportStep(what: string, result: StepResult, unchanged = `${what}: already in place`): number {
  if (result.skipped !== undefined) success(`${what}: skipped, ${result.skipped}`);
  else if (result.changes.length === 0) success(`${unchanged}; nothing changed`);
  else if (isDryRun()) info(`DRY-RUN: ${result.changes.length} change(s) planned (${what}): ${result.changes.join('; ')}`);
  else success(`${what}: ${result.changes.join('; ')}`);
  if (result.reboot === undefined) return 0;
  if (isDryRun()) {
    info(`DRY-RUN: the host would then need a reboot: ${result.reboot.reason}`);
    return 0;
  }
  if (result.reboot.stop) throw new RebootRequiredError(result.reboot.reason);
  warn(`reboot the host for this to take effect: ${result.reboot.reason} (Phoenix never reboots it)`);
  return 0;
}

// ---------------------------------------------------------------- the ZFS script's command line

export const ZFS_MODES = ['safe', 'interactive', 'force-destructive'] as const;

/** The refusal of a --mode value, in the bash's words. */
export function checkZfsMode(mode: string): string | undefined {
  return (ZFS_MODES as readonly string[]).includes(mode) ? undefined : `Invalid execution mode: ${mode}. Allowed modes are 'safe', 'interactive', 'force-destructive'.`;
}

/**
 * The context of hypervisor_feature_setup_zfs.sh: `--config -` reads the
 * manifest from stdin (as the bash did) into a private file the same loader
 * reads, removed when the script exits; `--mode force-destructive` is
 * --wipe-disks; `--mode interactive` prompts only with a terminal on stdin
 * (never after the manifest came from stdin), otherwise it runs as safe.
 */
export function zfsScriptContext(spec: Pick<ArgSpec, 'usage' | 'usageExitCode'>, flags: { config?: string; mode?: string }, options: PhoenixOptions): SetupContext {
  let file = flags.config;
  const fromStdin = file === '-';
  if (fromStdin) {
    if (process.stdin.isTTY) throw usageError(spec, '--config - reads the manifest from stdin, and stdin is a terminal');
    const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-zfs-'));
    process.once('exit', () => fs.rmSync(tempDir, { recursive: true, force: true }));
    file = path.join(tempDir, 'phoenix_hypervisor_config.json');
    fs.writeFileSync(file, fs.readFileSync(0), { mode: 0o600 });
  }
  const mode = flags.mode ?? 'safe';
  const interactive = mode === 'interactive' && process.stdin.isTTY === true && !fromStdin;
  if (mode === 'interactive' && !interactive) warn('--mode interactive without a terminal on stdin: running as safe (no disk is wiped)');
  return scriptSetupContext(file, options, { wipeDisks: mode === 'force-destructive', interactive });
}
