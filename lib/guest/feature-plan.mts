// One way to apply a feature to a guest, container or VM. A feature is a
// plan: an ordered list of steps computed from the manifests (and what the
// host holds, such as its copy of the root CA), applied here in three moves:
//
//   1. check   one read-only guest command runs every shell probe of the plan
//              and reports each file's sha256 and mode; the steps checked
//              from the host look (read-only) in step order; all of it also
//              runs in a dry-run;
//   2. apply   only the steps found missing (or that follow a step that
//              changed something, e.g. a restart after a new key), one
//              change at a time, so a failure names its step; in a dry-run
//              the same steps print what they would run;
//   3. verify  after a real change, the check script again and the plan's
//              own verification: a step that "worked" but left the guest
//              short of the state is an error, not a success.
//
// A second run on an unchanged guest issues the read-only checks and
// nothing else. The shapes are in feature-steps.mts, the shell text in
// feature-script.mts, the container and VM ends in feature-target.mts.

import { PhoenixError } from '../core/errors.mts';
import { debug, info, success, warn } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import type { CommandStep, FeatureContext, FeaturePlan, FeatureResult, FileStep, GuestKind, HostStep, RequireStep } from './feature-steps.mts';
import {
  CHECK_TIMEOUT_MS,
  STEP_TIMEOUT_MS,
  actionScript,
  assertPlanIsSafe,
  checkScript,
  fileInPlace,
  paramValues,
  parseState,
  shellChecked,
  shortfalls,
  type GuestState,
} from './feature-script.mts';
import { featureTarget, type FeatureTarget } from './feature-target.mts';

export type { CommandStep, FeatureContext, FeatureInstall, FeatureOutcome, FeaturePlan, FeatureResult, FileStep, GuestKind, HostStep, RequireStep, Step } from './feature-steps.mts';

// ---------------------------------------------------------------- results and the closing report

const WORDS: Readonly<Record<GuestKind, { guest: string; unchanged: string; done: string }>> = {
  lxc: { guest: 'CT', unchanged: 'already installed on', done: 'installed on' },
  vm: { guest: 'VM', unchanged: 'already in place on', done: 'done on' },
};

export function guestName(kind: GuestKind, id: string): string {
  return `${WORDS[kind].guest} ${id}`;
}

/** The closing log line of a feature. */
export function reportFeature(result: FeatureResult): void {
  const words = WORDS[result.kind];
  const where = guestName(result.kind, result.guest);
  const warnings = result.warnings ?? [];
  if (result.outcome === 'skipped') info(`${result.feature}: nothing to do on ${where}: ${result.reason ?? 'not applicable'}`);
  else if (result.outcome === 'unchanged' && warnings.length > 0) warn(`${result.feature}: nothing changed on ${where}; failed: ${warnings.join('; ')}`);
  else if (result.outcome === 'unchanged') success(`${result.feature}: ${words.unchanged} ${where} (unchanged)`);
  else if (isDryRun()) info(`${result.feature}: DRY-RUN: ${result.changes.length} change(s) planned on ${where}: ${result.changes.join('; ')}`);
  else success(`${result.feature}: ${words.done} ${where}: ${result.changes.join('; ')}`);
}

export function skipped(feature: string, kind: GuestKind, guest: string, reason: string): FeatureResult {
  return { feature, kind, guest, outcome: 'skipped', changes: [], reason };
}

// ---------------------------------------------------------------- check

const NOTHING: GuestState = { steps: new Map(), files: new Map() };

async function readState(plan: FeaturePlan, target: FeatureTarget): Promise<GuestState> {
  if (shellChecked(plan).length === 0) return NOTHING;
  const result = await target.check(plan.feature, checkScript(plan), ['check', ...paramValues(plan)], CHECK_TIMEOUT_MS);
  if (result.exitcode !== 0) {
    throw new PhoenixError(`${plan.feature}: the state check in ${target.where} failed (exit ${result.exitcode}): ${lastLines(result.stderr || result.stdout)}`);
  }
  return parseState(result.stdout);
}

/** The host-side checks, in step order (each may look at the guest, read-only); a precondition that fails ends them. */
async function readHostState(plan: FeaturePlan): Promise<Map<string, boolean>> {
  const seen = new Map<string, boolean>();
  for (const step of plan.steps) {
    if ((step.kind !== 'host' && step.kind !== 'require') || step.check === undefined) continue;
    const holds = await step.check();
    seen.set(step.id, holds);
    if (step.kind === 'require' && !holds) break;
  }
  return seen;
}

interface Observed {
  guest: GuestState;
  host: Map<string, boolean>;
}

function holds(step: RequireStep | CommandStep | HostStep, seen: Observed): boolean {
  if (step.kind === 'host' || (step.kind === 'require' && step.check !== undefined)) return seen.host.get(step.id) === true;
  return seen.guest.steps.get(step.id) === true;
}

function requireError(plan: FeaturePlan, where: string, step: RequireStep): PhoenixError {
  // A message that already names the guest is not prefixed with it again.
  const message = typeof step.message === 'string' ? step.message : step.message();
  const text = message.includes(where) ? `${plan.feature}: ${message}` : `${plan.feature}: ${where}: ${message}`;
  return new PhoenixError(text, step.hint === undefined ? {} : { hint: step.hint });
}

// ---------------------------------------------------------------- apply

async function needed(step: FileStep | CommandStep | HostStep, seen: Observed, applied: ReadonlySet<string>): Promise<boolean> {
  const triggered = step.kind !== 'file' && (step.after ?? []).some((id) => applied.has(id));
  if (step.kind === 'file') return !fileInPlace(step, seen.guest);
  if (step.kind === 'host') {
    const due = (step.check !== undefined && !holds(step, seen)) || triggered;
    return due && (step.onlyIf === undefined || (await step.onlyIf()));
  }
  return (step.probe !== undefined && !holds(step, seen)) || triggered;
}

/** The change lines of the step; undefined when an optional step failed (already warned about). */
async function applyStep(plan: FeaturePlan, target: FeatureTarget, step: FileStep | CommandStep | HostStep): Promise<readonly string[] | undefined> {
  info(`${plan.feature}: ${target.where}: ${step.title}`);
  if (step.kind === 'host') return step.apply();
  const result =
    step.kind === 'file'
      ? await target.place(step, STEP_TIMEOUT_MS)
      : await target.run(actionScript(plan, step), [step.id, ...paramValues(plan)], step.timeoutMs ?? STEP_TIMEOUT_MS);
  if (result.exitcode === 0) return [step.title];
  const detail = lastLines(result.stderr || result.stdout);
  const message = `${plan.feature}: step '${step.id}' (${step.title}) failed in ${target.where} with exit code ${result.exitcode}${detail ? `: ${detail}` : ''}`;
  if (step.kind === 'command' && step.optional) {
    warn(message);
    return undefined;
  }
  // The guest's own status is passed through, as bash's set -e passed it.
  throw new PhoenixError(message, { exitCode: result.exitcode > 0 && result.exitcode < 256 ? result.exitcode : 1 });
}

/** Bring the guest to the plan's state: check, apply what is missing, verify. */
export async function applyPlan(plan: FeaturePlan, context: FeatureContext): Promise<FeatureResult> {
  assertPlanIsSafe(plan);
  const target = featureTarget(plan.kind, plan.guest, context);
  const seen: Observed = { guest: await readState(plan, target), host: await readHostState(plan) };

  const unmet = plan.steps.filter((s): s is RequireStep => s.kind === 'require' && !holds(s, seen));
  // The simulated host's guests answer no shell probe, so such a precondition cannot be seen there.
  const unseen = context.options.skipGuestVerify ? unmet.filter((s) => s.probe !== undefined) : [];
  const first = unmet.find((s) => !unseen.includes(s));
  if (first) throw requireError(plan, target.where, first);
  if (unseen.length > 0) warn(`${plan.feature}: ${target.where}: not checked (PHOENIX_SKIP_GUEST_VERIFY): ${unseen.map((s) => s.title).join(', ')}`);

  const applied = new Set<string>();
  const changes: string[] = [];
  const warnings: string[] = [];
  for (const step of plan.steps) {
    if (step.kind === 'require' || !(await needed(step, seen, applied))) continue;
    const lines = await applyStep(plan, target, step);
    if (lines === undefined) {
      warnings.push(step.title);
      continue;
    }
    applied.add(step.id);
    changes.push(...lines);
  }
  const extra = warnings.length > 0 ? { warnings } : {};
  const result = (outcome: 'installed' | 'unchanged'): FeatureResult => ({ feature: plan.feature, kind: plan.kind, guest: plan.guest, outcome, changes, ...extra });
  if (applied.size === 0) return result('unchanged');
  if (!isDryRun()) await verify(plan, target, context);
  return result(changes.length > 0 ? 'installed' : 'unchanged');
}

async function verify(plan: FeaturePlan, target: FeatureTarget, context: FeatureContext): Promise<void> {
  if (shellChecked(plan).length > 0) {
    if (context.options.skipGuestVerify) {
      warn(`${plan.feature}: ${target.where}: not verified (PHOENIX_SKIP_GUEST_VERIFY: the simulated host's guests run nothing)`);
    } else {
      const missing = shortfalls(plan, await readState(plan, target));
      if (missing.length > 0) {
        throw new PhoenixError(`${plan.feature}: ${target.where} still lacks ${missing.map((s) => `'${s.id}'`).join(', ')} after the changes`, {
          hint: `run the feature again with PHOENIX_DEBUG=true, or look in the ${target.kind === 'vm' ? 'VM' : 'container'} (journalctl, /var/log/apt/term.log)`,
        });
      }
    }
  }
  // The plan's own verification uses plain commands the simulated host answers, so it always runs.
  if (plan.verify) await plan.verify();
  debug(`${plan.feature}: ${target.where} verified: ${plan.steps.length} step(s) in place`);
}

function lastLines(text: string, n = 5): string {
  const lines = text.trim().split('\n').filter(Boolean);
  return lines.slice(-n).join('\n');
}

/** A value read from a guest at most once per plan, however many steps ask for it. */
export function once<T>(read: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= read());
}

