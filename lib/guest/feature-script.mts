// The shell text of a feature plan (feature-steps.mts): the read-only check
// script that reports every probe and file in one guest command, the script
// of one command step, and the parsing of the check's answer.
//
// Shell text sent to a guest is built from constants of this code only;
// manifest values (a user name, an address) travel as positional arguments
// of `bash -s`, and file contents (keys included) travel on stdin, never in
// an argument or a log line: a positional argument is never parsed as shell,
// and stdin shows in no process list and no log.

import { createHash } from 'node:crypto';
import { PhoenixError } from '../core/errors.mts';
import type { CommandStep, FeaturePlan, FileStep, Step } from './feature-steps.mts';

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

export function paramValues(plan: FeaturePlan): string[] {
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
    if (step.kind === 'require' && (step.probe === undefined) === (step.check === undefined)) {
      throw new PhoenixError(`internal: precondition ${step.id} of ${plan.feature} needs a probe or a check, not both`);
    }
    if (step.kind === 'command' || step.kind === 'host') {
      for (const dep of step.after ?? []) if (!plan.steps.some((s) => s.id === dep)) throw new PhoenixError(`internal: ${step.id} follows unknown step ${dep}`);
      const looks = step.kind === 'command' ? step.probe !== undefined : step.check !== undefined;
      if (!looks && (step.after ?? []).length === 0) throw new PhoenixError(`internal: step ${step.id} of ${plan.feature} can never run`);
    }
  }
}

/** The steps the check script looks at: files and shell probes. A plan without any needs no check script. */
export function shellChecked(plan: FeaturePlan): Step[] {
  return plan.steps.filter((s) => s.kind === 'file' || ((s.kind === 'command' || s.kind === 'require') && s.probe !== undefined));
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
  for (const step of shellChecked(plan)) {
    if (step.kind === 'file') {
      lines.push(`phoenix_file ${step.path}`);
    } else if ((step.kind === 'command' || step.kind === 'require') && step.probe !== undefined) {
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

/** Steps of the check script that are not in place according to `state` (requires included, optional ones left out). */
export function shortfalls(plan: FeaturePlan, state: GuestState): Step[] {
  return shellChecked(plan).filter((step) => {
    if (step.kind === 'file') return !fileInPlace(step, state);
    if (step.kind === 'command' && step.optional) return false;
    return state.steps.get(step.id) !== true;
  });
}

