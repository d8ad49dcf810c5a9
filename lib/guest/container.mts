// The container primitives of the LXC features and the application scripts:
// read-only probes (they still run in a dry-run), guest scripts shipped in
// lib/features/lxc/guest/, files pushed with their mode. A feature is a plan
// run by feature-plan.mts; its steps look with the probes here and change
// with the rest (feature-container.mts builds the common steps). Work inside
// the container is a bash script sent on stdin (`pct exec <ctid> -- bash -s
// -- args…`): values travel as arguments, never spliced into script text,
// and nothing of the script shows in a process list.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { CommandError, PhoenixError } from '../core/errors.mts';
import type { CommandResult } from '../core/runner.mts';
import type { LxcConfig, LxcFeature } from '../config/types.mts';
import type { FeatureContext, FeatureResult } from './feature-steps.mts';
import { skipped as skippedOn } from './feature-plan.mts';
import { PROJECT_ROOT } from '../core/project-root.mts';

export type { FeatureContext, FeatureInstall, FeatureOutcome, FeatureResult } from './feature-steps.mts';
export { reportFeature } from './feature-plan.mts';

export function skipped(feature: string, ctid: string, reason: string): FeatureResult {
  return skippedOn(feature, 'lxc', ctid, reason);
}

// ---------------------------------------------------------------- names

/** The upstream file name of a feature script. */
export function scriptName(feature: string): string {
  return feature === 'sync_traefik_certs'
    ? 'phoenix_hypervisor_feature_sync_traefik_certs.sh'
    : `phoenix_hypervisor_feature_install_${feature}.sh`;
}

// ---------------------------------------------------------------- manifests

export function guestConfig(context: FeatureContext, ctid: string): LxcConfig | undefined {
  return context.config.lxc.lxc_configs[ctid];
}

/**
 * Whether the container or any container it was cloned from lists the
 * feature (the bash `is_feature_present_on_container`): a clone of a CUDA
 * template has the driver without listing nvidia itself.
 */
export function hasFeature(context: FeatureContext, ctid: string, feature: LxcFeature): boolean {
  const seen = new Set<string>();
  let id: string | undefined = ctid;
  while (id !== undefined && !seen.has(id)) {
    seen.add(id);
    const guest = guestConfig(context, id);
    if (!guest) return false;
    if (guest.features?.includes(feature)) return true;
    id = guest.clone_from_ctid;
  }
  return false;
}

// ---------------------------------------------------------------- probes (read-only)

/** Features act on a running container; say so plainly instead of failing on the first probe. */
export async function requireRunning(ctid: string): Promise<void> {
  const state = await pct.status(ctid);
  if (state === 'absent') throw new PhoenixError(`CT ${ctid} does not exist`, { hint: `create it first: phoenix create ${ctid}` });
  if (state !== 'running') throw new PhoenixError(`CT ${ctid} is not running; features are applied to a running container`, { hint: `phoenix start ${ctid}` });
}

/** A read-only command inside the container; its failure is an answer, not an error. */
export function probe(ctid: string, argv: readonly string[]): Promise<CommandResult> {
  return pct.exec(ctid, argv, { mutating: false, allowFailure: true, quiet: true });
}

/** A file's content inside the container, or undefined when it cannot be read. */
export async function readGuestFile(ctid: string, file: string): Promise<string | undefined> {
  const result = await probe(ctid, ['cat', file]);
  return result.code === 0 ? result.stdout : undefined;
}

/**
 * Which of these packages dpkg reports as installed ("install ok installed").
 * One call for the whole list; a package dpkg never heard of is simply absent.
 */
export async function installedPackages(ctid: string, packages: readonly string[]): Promise<Set<string>> {
  const installed = new Set<string>();
  if (packages.length === 0) return installed;
  const result = await probe(ctid, ['dpkg-query', '-W', '--showformat=${Package}\\t${Status}\\n', ...packages]);
  for (const line of result.stdout.split('\n')) {
    const [name, status] = line.split('\t');
    if (name && status?.trim() === 'install ok installed') installed.add(name.trim());
  }
  return installed;
}

export async function missingPackages(ctid: string, packages: readonly string[]): Promise<string[]> {
  const installed = await installedPackages(ctid, packages);
  return packages.filter((p) => !installed.has(p));
}

/** Which of these commands are not on the container's PATH (one `which` for all). */
export async function missingCommands(ctid: string, commands: readonly string[]): Promise<string[]> {
  const result = await probe(ctid, ['which', ...commands]);
  const found = new Set(result.stdout.split('\n').map((line) => path.posix.basename(line.trim())).filter(Boolean));
  return commands.filter((c) => !found.has(c));
}

export interface ServiceState {
  active: boolean;
  enabled: boolean;
  /**
   * systemd still runs an older copy of the unit file than the one on disk:
   * a run that wrote the file was stopped before its `daemon-reload`.
   */
  needsReload: boolean;
}

/** Whether a systemd unit is running, enabled and loaded as on disk, in one `systemctl show`. */
export async function serviceState(ctid: string, unit: string): Promise<ServiceState> {
  const result = await probe(ctid, ['systemctl', 'show', '--property=ActiveState,UnitFileState,NeedDaemonReload', unit]);
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(result.stdout)?.[1]?.trim();
  return { active: value('ActiveState') === 'active', enabled: value('UnitFileState') === 'enabled', needsReload: value('NeedDaemonReload') === 'yes' };
}

// ---------------------------------------------------------------- changes

/** The shell snippets pushed into containers, shipped beside this module. */
const GUEST_DIR = path.join(PROJECT_ROOT, 'lib', 'features', 'lxc', 'guest');
const guestFiles = new Map<string, string>();

/**
 * A file of lib/features/lxc/guest/, with `@NAME@` placeholders filled from
 * `vars`. Only constants of this code go in: manifest values reach guest
 * scripts as arguments, never as text.
 */
export function guestFile(name: string, vars: Readonly<Record<string, string>> = {}): string {
  let text = guestFiles.get(name);
  if (text === undefined) {
    text = fs.readFileSync(path.join(GUEST_DIR, name), 'utf8');
    guestFiles.set(name, text);
  }
  const filled = text.replace(/@([A-Z][A-Z0-9_]*)@/g, (whole, key: string) => vars[key] ?? whole);
  const left = /@([A-Z][A-Z0-9_]*)@/.exec(filled);
  if (left) throw new PhoenixError(`internal: guest file ${name} needs a value for ${left[0]}`);
  return filled;
}

/** A guest script as sent: the shared prelude (strict mode, apt helpers), then the body. */
export function guestScript(name: string, vars: Readonly<Record<string, string>> = {}): string {
  return `${guestFile('prelude.sh')}\n${guestFile(name, vars)}`;
}

/** Time limit of ordinary apt work in a container (downloads included). */
export const APT_STEP_TIMEOUT_MS = 30 * 60_000;

export interface StepOptions {
  feature: string;
  /** What the step does, as the operator should read it in an error. */
  label: string;
  timeoutMs?: number;
}

/**
 * Run one guest script (`guest/<name>`, after the prelude) with arguments.
 * A failure names the feature, the step and the failing command (the
 * prelude's ERR trap prints the command inside the container).
 */
export async function runGuestScript(ctid: string, name: string, args: readonly string[], step: StepOptions, vars: Readonly<Record<string, string>> = {}): Promise<CommandResult> {
  return asStep(ctid, step, () =>
    pct.execScript(ctid, guestScript(name, vars), args, { timeoutMs: step.timeoutMs ?? APT_STEP_TIMEOUT_MS }),
  );
}

/** Run one command (an argument vector) inside the container as a named step. */
export async function runGuestCommand(ctid: string, argv: readonly string[], step: StepOptions): Promise<CommandResult> {
  return asStep(ctid, step, () => pct.exec(ctid, argv, step.timeoutMs === undefined ? {} : { timeoutMs: step.timeoutMs }));
}

async function asStep<T>(ctid: string, step: StepOptions, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CommandError) {
      throw new PhoenixError(`${step.feature}: ${step.label} failed in CT ${ctid}: ${err.message}`, { exitCode: err.exitCode, cause: err });
    }
    throw err;
  }
}

export interface PushOptions extends StepOptions {
  /** Octal mode of the file in the container, e.g. '0644' or '0600'. */
  perms: string;
  /** Create the target directory first (pct push does not). */
  mkdir?: boolean;
}

/** Copy a host file into the container with a mode (no separate chmod, no glob). */
export async function pushHostFile(ctid: string, hostPath: string, guestPath: string, options: PushOptions): Promise<void> {
  await asStep(ctid, options, () =>
    options.mkdir ? pct.pushFile(ctid, hostPath, guestPath, { perms: options.perms }) : pct.push(ctid, hostPath, guestPath, { perms: options.perms }),
  );
}

/**
 * Put generated content at a path in the container: written to a private
 * host temp directory (0700, file 0600), pushed with its final mode, removed.
 */
export async function pushContent(ctid: string, guestPath: string, content: string, options: PushOptions): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-feature-'));
  try {
    const file = path.join(dir, path.posix.basename(guestPath));
    fs.writeFileSync(file, content, { mode: 0o600 });
    await pushHostFile(ctid, file, guestPath, options);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
