// What every vm-manager action shares: the session (the parts every guest
// manager has are in lib/guest/manager.mts; a VM session also remembers the
// warning about missing snippets storage), a look at a VM, its spec from the
// manifests, the guest time limits, and the wrapping of a failed step into
// an operator's error.

import { CommandError } from '../core/errors.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { type GuestSession, type SessionInit, childEnvironment, fatalStep, newGuestSession } from '../guest/manager.mts';
import { inspectGuest } from '../guest/lifecycle.mts';
import type { GuestTiming } from '../guest/vm-agent.mts';
import { vmSpec, type VmSpec } from './spec.mts';
import type { FeatureRunContext } from './features.mts';

export interface VmSession extends GuestSession<VmView> {
  /** The missing snippets storage is said once per run. */
  snippetWarned: boolean;
}

export function newVmSession(init: SessionInit): VmSession {
  return { ...newGuestSession<VmView>(init), snippetWarned: false };
}

export interface VmView {
  exists: boolean;
  config: Record<string, string>;
  running: boolean;
  template: boolean;
  /** Exists only in a dry-run's assumptions: nothing can be asked about it. */
  virtual: boolean;
}

export const ABSENT: VmView = { exists: false, config: {}, running: false, template: false, virtual: false };

/** One `qm config` (and a `qm status` unless it is a template): the VM as it is now. */
export async function inspectVm(session: VmSession, vmid: string): Promise<VmView> {
  const assumed = session.assumed.get(vmid);
  if (assumed) return assumed;
  const live = await inspectGuest({ kind: 'vm', id: vmid });
  return live === undefined ? ABSENT : { exists: true, config: live.config.values, running: live.running, template: live.template, virtual: false };
}

export function specFor(session: VmSession, vmid: string): VmSpec {
  return vmSpec({ vmManifest: session.config.vm, vmFile: session.config.paths.vm, hypervisor: session.config.hypervisor }, vmid);
}

export function timing(options: PhoenixOptions): GuestTiming {
  return {
    timeoutMs: options.guestTimeoutSeconds * 1000,
    pollMs: Math.max(10, options.pollIntervalMs),
    agentTimeoutMs: options.agentTimeoutSeconds * 1000,
  };
}

/** What the feature runner needs of a session, for one VM. */
export function featureRunContext(session: VmSession, spec: VmSpec, timing: FeatureRunContext['timing'], guestReachable: boolean): FeatureRunContext {
  const { options } = session;
  return {
    spec,
    config: session.config,
    options,
    env: childEnvironment(session),
    legacyDir: options.legacyDir,
    useLegacy: options.useLegacy,
    hostRoot: options.hostRoot,
    timing,
    guestReachable,
  };
}

/**
 * A step that fails, or runs past its time limit, ends the run with exit 1
 * (the bash's log_fatal), keeping the reason and the hint.
 */
export function guestStep<T>(what: string, fn: () => Promise<T>): Promise<T> {
  return fatalStep(what, fn, (err) => err instanceof CommandError || err.exitCode !== 1);
}
