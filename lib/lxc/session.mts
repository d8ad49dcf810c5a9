// What every lxc-manager action shares: the session (options, manifests,
// locks, what a dry run assumes), a look at a container, running child
// scripts, and the wrapping of a failed step into an operator's error.

import * as pct from '../pve/pct.mts';
import { CommandError, ConfigError, PhoenixError } from '../core/errors.mts';
import { type LxcConfig } from '../config/types.mts';
import { type PhoenixConfig, configPathsEnv } from '../config/load.mts';
import { type PhoenixOptions, childEnv } from '../core/env.mts';
import { type PveConfig } from '../pve/args.mts';
import { UnsafeValueError } from '../config/field-values.mts';
import { isDryRun } from '../core/context.mts';
import { resolveScript, runScript } from '../core/bridge.mts';

export const SNAPSHOT_PRE_CONFIGURED = 'pre-configured';
export const SNAPSHOT_FINAL_FORM = 'final-form';

export const FIREWALL_SCRIPT = 'hypervisor_setup/hypervisor_feature_setup_firewall.sh';
export const CERTIFICATE_SCRIPT = 'managers/certificate-renewal-manager.sh';
export const TRAEFIK_SYNC_SCRIPT = 'lxc_setup/phoenix_hypervisor_feature_sync_traefik_certs.sh';
export const featureScript = (feature: string) => `lxc_setup/phoenix_hypervisor_feature_install_${feature}.sh`;

/** Everything an action needs; one per process. */
export interface LxcSession {
  /** The upstream script name (log prefix, lock owner). */
  script: string;
  options: PhoenixOptions;
  config: PhoenixConfig;
  /** Token of the host lock held by this run or its parent, handed to child scripts. */
  lockToken: string | undefined;
  /**
   * True when this process runs under a parent's host lock, so sibling
   * processes may be working on other guests right now: then clones of one
   * source and the host-wide steps take turns.
   */
  siblings: boolean;
  /** What a dry-run assumes about guests it only pretended to change. */
  assumed: Map<string, GuestView>;
  certificatesDone: boolean;
}

export function newSession(init: Omit<LxcSession, 'assumed' | 'certificatesDone'>): LxcSession {
  return { ...init, assumed: new Map(), certificatesDone: false };
}

export interface GuestView {
  exists: boolean;
  config: PveConfig | undefined;
  running: boolean;
  template: boolean;
  /** Exists only in a dry-run's assumptions: nothing can be asked about it. */
  virtual: boolean;
}

export const ABSENT: GuestView = { exists: false, config: undefined, running: false, template: false, virtual: false };

// ---------------------------------------------------------------- looking

/** One `pct config` (and a `pct status` unless it is a template): the container as it is now. */
export async function inspect(session: LxcSession, ctid: string): Promise<GuestView> {
  const assumed = session.assumed.get(ctid);
  if (assumed) return assumed;
  const config = await pct.configIfExists(ctid);
  if (config === undefined) return ABSENT;
  const template = config.values.template === '1';
  const running = template ? false : (await pct.status(ctid)) === 'running';
  return { exists: true, config, running, template, virtual: false };
}

export function manifestEntry(session: LxcSession, ctid: string): LxcConfig {
  const ct = session.config.lxc.lxc_configs[ctid];
  if (!ct) throw new PhoenixError(`Configuration for CTID ${ctid} not found in ${session.config.paths.lxc}.`);
  return ct;
}

export function childEnvironment(session: LxcSession): Record<string, string> {
  return childEnv(session.options, { ...configPathsEnv(session.config.paths), ...(session.lockToken ? { PHOENIX_LOCK_TOKEN: session.lockToken } : {}) });
}

export async function runChild(session: LxcSession, name: string, args: readonly string[]): Promise<number> {
  const result = await runScript(name, args, {
    legacyDir: session.options.legacyDir,
    useLegacy: session.options.useLegacy,
    env: childEnvironment(session),
  });
  return result.code;
}

export function scriptExists(session: LxcSession, name: string): boolean {
  try {
    resolveScript(name, { legacyDir: session.options.legacyDir, useLegacy: session.options.useLegacy });
    return true;
  } catch {
    return false;
  }
}

/** Fail before any change when a script the sequence will need is nowhere to be found. */
export function requireScript(session: LxcSession, name: string, what: string): void {
  try {
    resolveScript(name, { legacyDir: session.options.legacyDir, useLegacy: session.options.useLegacy });
  } catch (err) {
    const reason = err instanceof PhoenixError ? err.message : String(err);
    throw new PhoenixError(`${what} not found: ${reason}`, err instanceof PhoenixError && err.hint ? { hint: err.hint } : {});
  }
}

/** Lifecycle snapshots are on per container, or for all at the manifest's root. */
export function snapshotsEnabled(session: LxcSession, ct: LxcConfig): boolean {
  return (ct.enable_lifecycle_snapshots ?? session.config.lxc.enable_lifecycle_snapshots) === true;
}

export function lockOptions(session: LxcSession, waitSeconds = session.options.lockWaitSeconds) {
  return { waitSeconds, script: session.script, enabled: !isDryRun() };
}

/** Every pct failure of a step is fatal (exit 1), as log_fatal made it; the message keeps pct's reason. */
export async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CommandError) throw new PhoenixError(`${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** A manifest value a plan cannot write is the manifest's error: named by file and JSON pointer. */
export function manifestValues<T>(session: LxcSession, ctid: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UnsafeValueError) throw new ConfigError(session.config.paths.lxc, `/lxc_configs/${ctid}/${err.field}`, err.message.slice(err.field.length + 2));
    throw err;
  }
}
