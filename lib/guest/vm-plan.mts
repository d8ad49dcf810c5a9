// What every VM feature shares. A VM feature runs on the host and acts on
// one VM through the QEMU guest agent (`qm guest exec`, polled until the
// command has really exited; the bash read a 30 s agent time-out as success).
//
// A feature is a plan: an ordered list of steps computed from the manifests
// (pure apart from reading host files), then applied here in three moves:
//
//   1. check   one read-only guest command runs every step's probe and
//              reports each file's sha256 and mode; it also runs in dry-run;
//   2. apply   only the steps whose probe failed (or that follow a step
//              that changed something, e.g. a restart after a new key),
//              one guest command per step, so a failure names its step;
//   3. verify  the check again, after a real change: a step that "worked"
//              but left the VM short of the state is an error, not a success.
//
// Shell text sent to the guest is built from constants of this code only;
// manifest values (a user name, an address) travel as positional arguments
// of `bash -s`, and file contents (keys included) travel on stdin to
// `install -m <mode> /dev/stdin <path>`, never in an argument or a log line:
// a positional argument is never parsed as shell, and stdin shows in no
// process list and no log.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as qm from '../pve/qm.mts';
import { CommandError, ConfigError, PhoenixError } from '../core/errors.mts';
import { debug, info, success, warn } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import type { PhoenixConfig } from '../config/load.mts';
import type { CertificateEntry, VmConfig } from '../config/types.mts';
import type { PhoenixOptions } from '../core/env.mts';

/** What a feature needs besides the VMID: the manifests (loaded once by the caller) and the run options. */
export interface FeatureContext {
  config: PhoenixConfig;
  options: PhoenixOptions;
  /** How often a guest command still running is polled (ms; default 2000). */
  pollMs?: number;
  /** How long one `qm guest exec` waits before handing back a pid (s; default 30, qm's own default). */
  agentWaitSeconds?: number;
}

export type FeatureOutcome = 'installed' | 'unchanged' | 'skipped';

export interface FeatureResult {
  feature: string;
  vmid: string;
  outcome: FeatureOutcome;
  /** One line per step applied (in a dry-run: planned). */
  changes: string[];
  /** Why nothing was done, for 'skipped'. */
  reason?: string;
  /** Optional steps that failed (each was logged as a warning). */
  warnings?: string[];
}

export type FeatureInstall = (vmid: string, context: FeatureContext) => Promise<FeatureResult>;

// ---------------------------------------------------------------- plans

interface StepBase {
  /** Stable id: shown in logs, in the guest command line and in the check's answer. */
  id: string;
  /** What the step achieves, as an operator reads it in a log or an error. */
  title: string;
}

/** A precondition: when its probe fails, the feature stops before changing anything. */
export interface RequireStep extends StepBase {
  kind: 'require';
  probe: string;
  message: string;
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

export type Step = RequireStep | CommandStep | FileStep;

export interface FeaturePlan {
  feature: string;
  vmid: string;
  /** Values the guest scripts read as shell variables, passed as positional arguments. */
  params?: ReadonlyArray<readonly [name: string, value: string]>;
  /** Shell functions shared by this feature's probes and actions (constants only). */
  helpers?: string;
  steps: readonly Step[];
}

// ---------------------------------------------------------------- names and the closing report

/** The upstream file name of each VM feature script. */
export function scriptName(feature: string): string {
  if (feature === 'template') return 'feature_template.sh';
  if (feature.startsWith('sync_')) return `feature_${feature}.sh`;
  return `feature_install_${feature}.sh`;
}

/** The closing log line of a feature. */
export function reportFeature(result: FeatureResult): void {
  const where = `VM ${result.vmid}`;
  if (result.outcome === 'skipped') info(`${result.feature}: nothing to do on ${where}: ${result.reason ?? 'not applicable'}`);
  else if (result.outcome === 'unchanged' && (result.warnings ?? []).length > 0) warn(`${result.feature}: nothing changed on ${where}; failed: ${result.warnings!.join('; ')}`);
  else if (result.outcome === 'unchanged') success(`${result.feature}: already in place on ${where} (unchanged)`);
  else if (isDryRun()) info(`${result.feature}: DRY-RUN: ${result.changes.length} change(s) planned on ${where}: ${result.changes.join('; ')}`);
  else success(`${result.feature}: done on ${where}: ${result.changes.join('; ')}`);
}

export function skipped(feature: string, vmid: string, reason: string): FeatureResult {
  return { feature, vmid, outcome: 'skipped', changes: [], reason };
}

// ---------------------------------------------------------------- manifests

/** The VM's manifest entry; a VMID the manifest does not know is a configuration error. */
export function vmConfig(context: FeatureContext, vmid: string): VmConfig {
  const vm = context.config.vm.vms.find((v) => String(v.vmid) === vmid);
  if (!vm) throw new ConfigError(context.config.paths.vm, '/vms', `no VM with vmid ${vmid}`);
  return vm;
}

export function vmPointer(context: FeatureContext, vmid: string): string {
  return `/vms/${context.config.vm.vms.findIndex((v) => String(v.vmid) === vmid)}`;
}

/** A host path named by a manifest, under PHOENIX_HOST_ROOT (the simulated host keeps its files there). */
export function onHost(context: FeatureContext, manifestPath: string): string {
  const root = context.options.hostRoot;
  return root === '/' ? manifestPath : path.join(root, manifestPath);
}

/**
 * The certificate-manifest entry of the VM's Docker daemon: a `vm` entry for
 * this guest whose common name starts with `docker-daemon.` (the name the
 * upstream plan gave it) or `docker.`. Undefined when there is none.
 */
export function dockerDaemonCertificate(context: FeatureContext, vmid: string): CertificateEntry | undefined {
  const isDockerName = (cn: string) => /^docker(-daemon)?(\.|$)/.test(cn);
  const matches = context.config.certificates.filter(
    (e) => e.guest_type === 'vm' && String(e.guest_id) === vmid && (e.cert_type ?? 'server') === 'server' && isDockerName(e.common_name),
  );
  if (matches.length > 1) {
    throw new ConfigError(context.config.paths.certificates, '', `VM ${vmid} has ${matches.length} Docker daemon certificates (${matches.map((e) => e.common_name).join(', ')}); keep one`);
  }
  if (matches.length === 0) {
    const unbound = context.config.certificates.find((e) => isDockerName(e.common_name) && e.guest_id === undefined);
    if (unbound) warn(`certificate ${unbound.common_name} looks like a Docker daemon certificate but names no guest; add "guest_id": ${vmid}, "guest_type": "vm" to use it for VM ${vmid}`);
  }
  return matches[0];
}

/** A host file's text; missing is an error that says who makes it. */
export function readHostFile(file: string, what: string, hint: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PhoenixError(`${what} is missing on the host: ${file}`, { hint });
    throw new PhoenixError(`cannot read ${what} (${file}): ${(err as Error).message}`, { hint });
  }
}

// ---------------------------------------------------------------- guest scripts

/** Time limit of the read-only check. */
export const CHECK_TIMEOUT_MS = 2 * 60_000;
/** Time limit of an ordinary step. */
export const STEP_TIMEOUT_MS = 10 * 60_000;
/** apt work (downloads included); the bash gave a whole feature 1800 s. */
export const APT_TIMEOUT_MS = 30 * 60_000;

const SAFE_WORD = /^[A-Za-z0-9_./:@+-]+$/;
const SAFE_NAME = /^[a-z_][a-z0-9_]*$/;

// Lines both the check and the actions start with. The guest agent starts
// commands with a bare environment: no HOME, a minimal PATH.
const ENVIRONMENT = `export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
: "\${HOME:=/root}"; export HOME

# True when dpkg reports every named package as "install ok installed".
phoenix_installed() {
  local p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='\${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || return 1
  done
}
`;

const ACTION_PRELUDE = `set -Eeuo pipefail
export DEBIAN_FRONTEND=noninteractive
# The host sees only the exit status and stderr: name the command that failed.
trap 'rc=$?; printf "phoenix: failed (exit %s): %s\\n" "$rc" "$BASH_COMMAND" >&2; exit "$rc"' ERR

# Another package-manager run (cloud-init, unattended-upgrades, an operator)
# is waited for, up to this many seconds, and never killed: killing dpkg in
# the middle of a transaction is how package databases break.
phoenix_apt_wait=300
apt_get() {
  local waited=0
  while pgrep -x 'apt|apt-get|aptitude|dpkg|unattended-upgr' >/dev/null 2>&1; do
    if [ "$waited" -ge "$phoenix_apt_wait" ]; then
      echo "phoenix: the package manager is still busy after $waited s; nothing was killed" >&2
      return 75
    fi
    sleep 5
    waited=$((waited + 5))
  done
  apt-get -o DPkg::Lock::Timeout="$phoenix_apt_wait" -y -q "$@"
}
`;

function paramLines(plan: FeaturePlan): string {
  // $1 is the step label; values follow in the order of plan.params.
  return (plan.params ?? []).map(([name], i) => `${name}="$${i + 2}"`).join('\n');
}

function paramValues(plan: FeaturePlan): string[] {
  return (plan.params ?? []).map(([, value]) => value);
}

function functionName(id: string): string {
  return `phoenix_probe_${id.replace(/-/g, '_')}`;
}

/** Refuse a plan whose constants could break the generated shell: a bug here, not an operator error. */
export function assertPlanIsSafe(plan: FeaturePlan): void {
  const seen = new Set<string>();
  for (const [name] of plan.params ?? []) {
    if (!SAFE_NAME.test(name)) throw new PhoenixError(`internal: parameter name '${name}' of ${plan.feature}`);
  }
  for (const step of plan.steps) {
    if (!/^[a-z][a-z0-9-]*$/.test(step.id) || step.id === 'check') throw new PhoenixError(`internal: step id '${step.id}' of ${plan.feature}`);
    if (seen.has(step.id)) throw new PhoenixError(`internal: step id '${step.id}' twice in ${plan.feature}`);
    seen.add(step.id);
    if (step.kind === 'file' && (!SAFE_WORD.test(step.path) || !step.path.startsWith('/'))) throw new PhoenixError(`internal: file path '${step.path}' of ${plan.feature}`);
    if (step.kind === 'command') {
      for (const dep of step.after ?? []) if (!plan.steps.some((s) => s.id === dep)) throw new PhoenixError(`internal: ${step.id} follows unknown step ${dep}`);
      if (step.probe === undefined && (step.after ?? []).length === 0) throw new PhoenixError(`internal: step ${step.id} of ${plan.feature} can never run`);
    }
  }
}

/** The read-only script that reports the state of every step and file. */
export function checkScript(plan: FeaturePlan): string {
  const lines = [
    `# phoenix ${plan.feature}: check (read-only)`,
    'set -u',
    ENVIRONMENT,
    paramLines(plan),
    plan.helpers ?? '',
    'phoenix_step() { if "$2" </dev/null >/dev/null 2>&1; then echo "phoenix-state step $1 ok"; else echo "phoenix-state step $1 missing"; fi; }',
    'phoenix_file() {',
    '  if [ -f "$1" ]; then',
    '    echo "phoenix-state file $1 $(sha256sum < "$1" | cut -d" " -f1) $(stat -c %a:%U:%G "$1")"',
    '  else',
    '    echo "phoenix-state file $1 absent"',
    '  fi',
    '}',
  ];
  for (const step of plan.steps) {
    if (step.kind === 'file') {
      lines.push(`phoenix_file ${step.path}`);
    } else if (step.probe !== undefined) {
      lines.push(`${functionName(step.id)}() {`, step.probe.trimEnd(), '}', `phoenix_step ${step.id} ${functionName(step.id)}`);
    }
  }
  return `${lines.filter((l) => l !== '').join('\n')}\n`;
}

/** The script of one command step, with strict mode and the apt helper in front. */
export function actionScript(plan: FeaturePlan, step: CommandStep): string {
  return `${[`# phoenix ${plan.feature}: ${step.id}`, ACTION_PRELUDE, ENVIRONMENT, paramLines(plan), plan.helpers ?? '', step.action.trimEnd()].filter((l) => l !== '').join('\n')}\n`;
}

// ---------------------------------------------------------------- the guest's answer

export interface FileState {
  sha256: string;
  /** `mode:user:group` as `stat -c %a:%U:%G` prints it. */
  meta: string;
}

export interface GuestState {
  steps: Map<string, boolean>;
  files: Map<string, FileState | 'absent'>;
}

export function parseState(stdout: string): GuestState {
  const state: GuestState = { steps: new Map(), files: new Map() };
  for (const line of stdout.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== 'phoenix-state') continue;
    if (words[1] === 'step' && words[2]) state.steps.set(words[2], words[3] === 'ok');
    else if (words[1] === 'file' && words[2]) {
      state.files.set(words[2], words[3] === 'absent' || words[3] === undefined ? 'absent' : { sha256: words[3], meta: words[4] ?? '' });
    }
  }
  return state;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function fileMeta(step: FileStep): string {
  return `${step.mode.toString(8)}:root:root`;
}

/** Whether the guest already holds the file exactly (content, mode, owner). */
export function fileInPlace(step: FileStep, state: GuestState): boolean {
  const found = state.files.get(step.path);
  return found !== undefined && found !== 'absent' && found.sha256 === sha256(step.content) && found.meta === fileMeta(step);
}

/** Steps that are not in place according to `state` (requires included, optional ones left out). */
export function shortfalls(plan: FeaturePlan, state: GuestState): Step[] {
  return plan.steps.filter((step) => {
    if (step.kind === 'file') return !fileInPlace(step, state);
    if (step.kind === 'command' && (step.optional || step.probe === undefined)) return false;
    return state.steps.get(step.id) !== true;
  });
}

// ---------------------------------------------------------------- applying a plan

function execOptions(context: FeatureContext): { pollMs?: number; agentWaitSeconds?: number } {
  return {
    ...(context.pollMs === undefined ? {} : { pollMs: context.pollMs }),
    ...(context.agentWaitSeconds === undefined ? {} : { agentWaitSeconds: context.agentWaitSeconds }),
  };
}

async function readState(plan: FeaturePlan, context: FeatureContext): Promise<GuestState> {
  let result: qm.GuestExecResult;
  try {
    result = await qm.guestExec(plan.vmid, ['bash', '-s', '--', 'check', ...paramValues(plan)], {
      mutating: false,
      input: checkScript(plan),
      timeoutMs: CHECK_TIMEOUT_MS,
      allowFailure: true,
      ...execOptions(context),
    });
  } catch (err) {
    if (err instanceof CommandError) {
      throw new PhoenixError(`${plan.feature}: cannot reach VM ${plan.vmid} through the guest agent: ${err.message}`, {
        exitCode: err.exitCode,
        cause: err,
        hint: `the VM must be running with qemu-guest-agent up (vm-manager starts it and waits for the agent)`,
      });
    }
    throw err;
  }
  if (result.exitcode !== 0) {
    throw new PhoenixError(`${plan.feature}: the state check in VM ${plan.vmid} failed (exit ${result.exitcode}): ${lastLines(result.stderr || result.stdout)}`);
  }
  return parseState(result.stdout);
}

function needed(step: FileStep | CommandStep, state: GuestState, applied: ReadonlySet<string>): boolean {
  if (step.kind === 'file') return !fileInPlace(step, state);
  if (step.probe !== undefined && state.steps.get(step.id) !== true) return true;
  return (step.after ?? []).some((id) => applied.has(id));
}

/** True when the step worked; false when an optional step failed (already warned about). */
async function applyStep(plan: FeaturePlan, step: FileStep | CommandStep, context: FeatureContext): Promise<boolean> {
  info(`${plan.feature}: VM ${plan.vmid}: ${step.title}`);
  const result =
    step.kind === 'file'
      ? await qm.guestExec(plan.vmid, ['install', '-D', '-m', `0${step.mode.toString(8)}`, '-o', 'root', '-g', 'root', '/dev/stdin', step.path], {
          input: step.content,
          timeoutMs: STEP_TIMEOUT_MS,
          allowFailure: true,
          ...execOptions(context),
        })
      : await qm.guestExec(plan.vmid, ['bash', '-s', '--', step.id, ...paramValues(plan)], {
          input: actionScript(plan, step),
          timeoutMs: step.timeoutMs ?? STEP_TIMEOUT_MS,
          allowFailure: true,
          ...execOptions(context),
        });
  if (result.exitcode === 0) return true;
  const detail = lastLines(result.stderr || result.stdout);
  const message = `${plan.feature}: step '${step.id}' (${step.title}) failed in VM ${plan.vmid} with exit code ${result.exitcode}${detail ? `: ${detail}` : ''}`;
  if (step.kind === 'command' && step.optional) {
    warn(message);
    return false;
  }
  // The guest's own status is passed through, as bash's set -e passed it.
  throw new PhoenixError(message, { exitCode: result.exitcode > 0 && result.exitcode < 256 ? result.exitcode : 1 });
}

/**
 * Bring the VM to the plan's state: check, apply what is missing, verify.
 * A second run on an unchanged VM issues the read-only check and nothing else.
 */
export async function applyPlan(plan: FeaturePlan, context: FeatureContext): Promise<FeatureResult> {
  assertPlanIsSafe(plan);
  const state = await readState(plan, context);

  const unmet = plan.steps.filter((s): s is RequireStep => s.kind === 'require' && state.steps.get(s.id) !== true);
  const first = unmet[0];
  if (first && context.options.skipGuestVerify) {
    // The simulated host's guests answer no probe, so a precondition cannot be seen there.
    warn(`${plan.feature}: VM ${plan.vmid}: not checked (PHOENIX_SKIP_GUEST_VERIFY): ${unmet.map((s) => s.title).join(', ')}`);
  } else if (first) throw new PhoenixError(`${plan.feature}: VM ${plan.vmid}: ${first.message}`, first.hint === undefined ? {} : { hint: first.hint });

  const applied = new Set<string>();
  const changes: string[] = [];
  const warnings: string[] = [];
  for (const step of plan.steps) {
    if (step.kind === 'require' || !needed(step, state, applied)) continue;
    if (await applyStep(plan, step, context)) {
      applied.add(step.id);
      changes.push(step.title);
    } else {
      warnings.push(step.title);
    }
  }
  const extra = warnings.length > 0 ? { warnings } : {};
  if (changes.length === 0) return { feature: plan.feature, vmid: plan.vmid, outcome: 'unchanged', changes, ...extra };

  if (context.options.skipGuestVerify) {
    warn(`${plan.feature}: VM ${plan.vmid}: not verified (PHOENIX_SKIP_GUEST_VERIFY: the simulated host's guests run nothing)`);
  } else if (!isDryRun()) {
    const missing = shortfalls(plan, await readState(plan, context));
    if (missing.length > 0) {
      throw new PhoenixError(`${plan.feature}: VM ${plan.vmid} still lacks ${missing.map((s) => `'${s.id}'`).join(', ')} after the changes`, {
        hint: `run the feature again with PHOENIX_DEBUG=true, or look in the VM (journalctl, /var/log/apt/term.log)`,
      });
    }
    debug(`${plan.feature}: VM ${plan.vmid} verified: ${plan.steps.length} step(s) in place`);
  }
  return { feature: plan.feature, vmid: plan.vmid, outcome: 'installed', changes, ...extra };
}

function lastLines(text: string, n = 5): string {
  const lines = text.trim().split('\n').filter(Boolean);
  return lines.slice(-n).join('\n');
}
