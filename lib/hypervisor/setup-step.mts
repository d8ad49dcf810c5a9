// What every step of `phoenix setup` shares: the context a step gets, the
// report it gives back, and the one way a step says "the host must reboot
// before the next step can work".
//
// A step is a function of the manifests and the host's current state. It
// changes only what differs from the manifests and reports each change as
// one line ("created /etc/exports.d/…", "pool quickOS created on …"); an
// empty list means the host already matched, which is what a second
// `phoenix setup` must print for every step. In dry-run the same lines are
// what would change, and nothing does (lib/core/context.mts).
//
// A reboot is never triggered by Phoenix. A step whose change only takes
// effect after one (a kernel driver) leaves a marker in /run, which is a
// tmpfs on every Debian host and so is empty again after the reboot, and
// returns `reboot.stop`; hypervisor-manager then ends the run with
// REBOOT_REQUIRED_EXIT. The next run after the reboot finds no marker, sees
// the change in effect, and goes on.

import fs from 'node:fs';
import path from 'node:path';
import { PhoenixError } from '../core/errors.mts';
import { isDryRun } from '../core/context.mts';
import { writeFileAtomic, type WriteOutcome } from '../core/fs.mts';
import type { FeatureContext } from '../guest/feature-steps.mts';
import { onHost } from '../guest/hostdirs.mts';
import type { PhoenixOptions } from '../core/env.mts';

export interface SetupContext extends FeatureContext {
  /** `--wipe-disks`: signatures may be wiped from the disks a new pool names. */
  wipeDisks: boolean;
  /** A terminal is attached to stdin: a prompt is allowed when nothing was configured. */
  interactive: boolean;
}

export interface StepResult {
  /** One line per change made (planned, in dry-run). Empty: the host already matched. */
  changes: string[];
  /** Why the step had nothing to do at all (no GPU, not asked for in the manifest). */
  skipped?: string;
  /** The change takes effect after a reboot; with `stop`, setup cannot go on before one. */
  reboot?: { reason: string; stop: boolean };
}

export type SetupStep = (context: SetupContext) => Promise<StepResult>;

/**
 * Exit status of a run that stopped for a reboot. Distinct from every other
 * status a Phoenix script gives: 1 (failed), 75 (the host lock is busy),
 * 124/130 (timed out / interrupted), 126/127, and the status of a failed
 * tool passed through.
 */
export const REBOOT_REQUIRED_EXIT = 10;

/** The run stopped because the host must reboot first. */
export class RebootRequiredError extends PhoenixError {
  constructor(reason: string) {
    super(`the host must reboot before setup can go on: ${reason}`, {
      exitCode: REBOOT_REQUIRED_EXIT,
      hint: 'reboot the host, then run `phoenix setup` again: it continues after the steps already done',
    });
  }
}

/** A change line for a file write, or nothing when the file already matched. */
export function fileChange(changes: string[], outcome: WriteOutcome, hostPath: string, what?: string): void {
  if (outcome === 'unchanged') return;
  const verb = outcome === 'created' ? 'created' : 'updated';
  changes.push(`${verb} ${hostPath}${what === undefined ? '' : ` (${what})`}`);
}

// ---------------------------------------------------------------- the reboot marker

const MARKER = '/run/phoenix/reboot-required';

function markerFile(options: PhoenixOptions): string {
  return onHost(options.hostRoot, MARKER);
}

/** Record that the host must reboot for `reason` (appended; kept until the reboot empties /run). */
export function markRebootRequired(options: PhoenixOptions, reason: string): void {
  if (isDryRun()) return;
  const file = markerFile(options);
  const current = pendingReboot(options);
  if (current.includes(reason)) return;
  writeFileAtomic(file, [...current, reason].map((line) => `${line}\n`).join(''), { mode: 0o644 });
}

/** The reasons recorded since the last boot (none after a reboot). */
export function pendingReboot(options: PhoenixOptions): string[] {
  try {
    return fs.readFileSync(markerFile(options), 'utf8').split('\n').filter((line) => line.trim() !== '');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** The marker's path on this host (for messages and the simulated reboot). */
export function rebootMarkerPath(options: PhoenixOptions): string {
  return path.resolve(markerFile(options));
}
