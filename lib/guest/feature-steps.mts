// The shapes every feature shares, for containers and VMs alike: what a
// feature needs (its context), what it reports (its result) and the plan it
// is made of (steps with a check, an apply and a verify). The plan is run by
// feature-plan.mts on a target (feature-target.mts: a container through pct,
// a VM through its guest agent).

import type { PhoenixConfig } from '../config/load.mts';
import type { PhoenixOptions } from '../core/env.mts';

/** Which kind of guest a feature works on. */
export type GuestKind = 'lxc' | 'vm';

/** What a feature needs besides the guest's id: the manifests (loaded once by the caller), the run options, and what one kind needs. */
export interface FeatureContext {
  config: PhoenixConfig;
  options: PhoenixOptions;
  /** VMs: how often a guest command still running is polled (ms; default 2000). */
  pollMs?: number;
  /** VMs: how long one `qm guest exec` waits before handing back a pid (s; default 30, qm's own default). */
  agentWaitSeconds?: number;
  /**
   * Containers: the second argument lxc-manager passes every feature script
   * (the CT's `bootstrap_ca_url`, possibly empty). Only traefik reads it.
   */
  bootstrapCaUrl?: string;
}

export type FeatureOutcome = 'installed' | 'unchanged' | 'skipped';

export interface FeatureResult {
  feature: string;
  kind: GuestKind;
  /** The CTID or VMID. */
  guest: string;
  outcome: FeatureOutcome;
  /** One line per change made (in a dry-run: planned). */
  changes: string[];
  /** Why nothing was done, for 'skipped'. */
  reason?: string;
  /** Optional steps that failed (each was logged as a warning). */
  warnings?: string[];
}

export type FeatureInstall = (guest: string, context: FeatureContext) => Promise<FeatureResult>;

// ---------------------------------------------------------------- steps

interface StepBase {
  /** Stable id: shown in logs, in the guest command line and in the check's answer. */
  id: string;
  /** What the step achieves, as an operator reads it in a log or an error. */
  title: string;
}

/**
 * A precondition: when it does not hold, the feature stops before changing
 * anything. Checked by a shell `probe` in the check script, or by `check`,
 * a read-only look from the host.
 */
export interface RequireStep extends StepBase {
  kind: 'require';
  probe?: string;
  check?: () => Promise<boolean>;
  /** What failed; a function when it depends on what the check saw. */
  message: string | (() => string);
  hint?: string;
}

/**
 * Shell work in the guest. It runs when its probe (exit 0 = already so)
 * fails, or when a step named in `after` changed something in this run.
 * A step without a probe runs only after such a change (a restart).
 */
export interface CommandStep extends StepBase {
  kind: 'command';
  probe?: string;
  action: string;
  after?: readonly string[];
  timeoutMs?: number;
  /** A failure only warns and the verify pass ignores it (the bash's ufw handling). */
  optional?: boolean;
}

/** A file in the guest with exactly this content, owned by root, with this mode. */
export interface FileStep extends StepBase {
  kind: 'file';
  path: string;
  content: string;
  mode: 0o644 | 0o600;
}

/**
 * A step whose check and change are code on the host: a read-only look at
 * the guest (or the host) and the commands that change it, for what a shell
 * probe cannot say (a file compared with the host's copy, a systemd unit
 * loaded older than its file) or what acts from the host (a `pct push` of a
 * host file, a copy of the root CA to the host).
 */
export interface HostStep extends StepBase {
  kind: 'host';
  /** Read-only; true when already so. Runs in the check pass, in a dry-run too. Without it the step runs only after a step in `after` changed something. */
  check?: () => Promise<boolean>;
  /** Decided when the step is due, from what the check pass saw: false leaves it out (a restart of a service that is not running). */
  onlyIf?: () => Promise<boolean>;
  /** The change; returns one line per thing changed (in a dry-run: planned). */
  apply: () => Promise<readonly string[]>;
  after?: readonly string[];
}

export type Step = RequireStep | CommandStep | FileStep | HostStep;

export interface FeaturePlan {
  feature: string;
  kind: GuestKind;
  /** The CTID or VMID. */
  guest: string;
  /** Values the guest scripts read as shell variables, passed as positional arguments. */
  params?: ReadonlyArray<readonly [name: string, value: string]>;
  /** Shell functions shared by this feature's probes and actions (constants only). */
  helpers?: string;
  steps: readonly Step[];
  /**
   * Read-only confirmation after a real change (not in a dry-run), beyond
   * the check script run again: throws when the guest is still short of
   * what the feature promises (a binary that does not run).
   */
  verify?: () => Promise<void>;
}
