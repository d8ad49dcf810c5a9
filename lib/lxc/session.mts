// What every lxc-manager action shares: the session (options, manifests,
// locks, what a dry run assumes; the parts every guest manager has are in
// lib/guest/manager.mts), a look at a container, the manifest entry, and the
// wrapping of a failed step into an operator's error.

import { ConfigError, PhoenixError } from '../core/errors.mts';
import { type LxcConfig, type PhoenixConfig } from '../config/types.mts';
import { type PveConfig } from '../pve/args.mts';
import { UnsafeValueError } from '../config/field-values.mts';
import { type GuestSession, type SessionInit, fatalStep, newGuestSession } from '../guest/manager.mts';
import { inspectGuest } from '../guest/lifecycle.mts';

export { CERTIFICATE_SCRIPT, childEnvironment, lockOptions, requireScript, runChild, scriptExists } from '../guest/manager.mts';

export const SNAPSHOT_PRE_CONFIGURED = 'pre-configured';
export const SNAPSHOT_FINAL_FORM = 'final-form';

export const FIREWALL_SCRIPT = 'hypervisor_setup/hypervisor_feature_setup_firewall.sh';
export const TRAEFIK_SYNC_SCRIPT = 'lxc_setup/phoenix_hypervisor_feature_sync_traefik_certs.sh';
export const featureScript = (feature: string) => `lxc_setup/phoenix_hypervisor_feature_install_${feature}.sh`;

/** Everything an action needs; one per process. */
export type LxcSession = GuestSession<GuestView>;

export function newSession(init: SessionInit): LxcSession {
  return newGuestSession<GuestView>(init);
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
  const live = await inspectGuest({ kind: 'lxc', id: ctid });
  return live === undefined ? ABSENT : { exists: true, ...live, virtual: false };
}

/** Why a CTID cannot be worked on: the manifest has no entry for it; undefined when it has one. */
export function notInManifest(config: PhoenixConfig, ctid: string): string | undefined {
  return config.lxc.lxc_configs[ctid] ? undefined : `Configuration for CTID ${ctid} not found in ${config.paths.lxc}.`;
}

export function manifestEntry(session: LxcSession, ctid: string): LxcConfig {
  const ct = session.config.lxc.lxc_configs[ctid];
  if (!ct) throw new PhoenixError(notInManifest(session.config, ctid) as string);
  return ct;
}

/** Lifecycle snapshots are on per container, or for all at the manifest's root. */
export function snapshotsEnabled(session: LxcSession, ct: LxcConfig): boolean {
  return (ct.enable_lifecycle_snapshots ?? session.config.lxc.enable_lifecycle_snapshots) === true;
}

/** Every pct failure of a step is fatal (exit 1), as log_fatal made it; the message keeps pct's reason. */
export function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  return fatalStep(what, fn);
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
