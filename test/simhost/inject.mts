// Fault and latency injection, read from <state>/inject.json on every call
// so a test can change it between calls without restarting anything.
//
// {
//   "latency":  { "pct": 50, "qm": 20, "*": 5 },          per-tool ms ("*": any tool)
//   "failures": [ { "tool": "pct", "argv": ["start", "101"], "times": 2,
//                   "exit": 255, "stderr": "...", "stdout": "",
//                   "preset": "lock-timeout", "delay_ms": 0 } ],
//   "exec":     [ { "tool": "pct", "guest": "101", "command": ["systemctl", "is-active"],
//                   "contains": "step-ca", "stdin_contains": "apt-get",
//                   "exit": 3, "stdout": "inactive\n", "stderr": "",
//                   "duration_ms": 0, "times": 1 } ],
//   "slow":     [ { "tool": "pct", "argv": ["snapshot", "103"], "latency_ms": 600000, "times": 1 } ],
//               a latency for matching calls only; the call then runs as usual
//   "agent_delay_ms": 0,            or { "1001": 20000 }: guest agent comes up late
//   "time_scale": 1,                simulated durations are multiplied by this
//   "lock_timeout_ms": 10000        how long a call waits for a busy guest lock
// }
//
// `argv` and `command` are prefixes; `times` counts the calls that still
// fail (absent: every call; 0: spent). Counts are decremented under the
// state lock, so parallel callers consume them exactly once each.

import { atomicWrite, paths, readJson, withStateLock } from './state.mts';

export interface FailureRule {
  tool: string;
  argv?: string[];
  times?: number;
  exit?: number;
  stderr?: string;
  stdout?: string;
  /** 'lock-timeout': Proxmox's busy-config-lock answer for the guest in argv. */
  preset?: 'lock-timeout';
  /** Extra wait before failing (the real lock time-out takes 10 s). */
  delay_ms?: number;
}

export interface ExecRule {
  tool?: 'pct' | 'qm';
  guest?: string | number;
  command?: string[];
  contains?: string;
  stdin_contains?: string;
  exit?: number;
  stdout?: string;
  stderr?: string;
  duration_ms?: number;
  times?: number;
}

export interface SlowRule {
  tool: string;
  argv?: string[];
  latency_ms: number;
  times?: number;
}

export interface Injection {
  latency?: Record<string, number>;
  slow?: SlowRule[];
  failures?: FailureRule[];
  exec?: ExecRule[];
  agent_delay_ms?: number | Record<string, number>;
  time_scale?: number;
  lock_timeout_ms?: number;
}

export function loadInjection(root: string): Injection {
  try {
    return readJson<Injection>(paths(root).injectFile, {});
  } catch (error) {
    process.stderr.write(`simhost: ignoring unreadable ${paths(root).injectFile}: ${(error as Error).message}\n`);
    return {};
  }
}

export function saveInjection(root: string, injection: Injection): void {
  atomicWrite(paths(root).injectFile, `${JSON.stringify(injection, null, 2)}\n`);
}

export function latencyFor(injection: Injection, tool: string, env: NodeJS.ProcessEnv = process.env): number {
  const own = injection.latency?.[tool] ?? injection.latency?.['*'];
  if (own !== undefined) return Math.max(0, own);
  const global = Number(env.PHOENIX_SIM_LATENCY_MS ?? 0);
  return Number.isFinite(global) && global > 0 ? global : 0;
}

export function timeScale(injection: Injection): number {
  const scale = injection.time_scale;
  return typeof scale === 'number' && scale >= 0 ? scale : 1;
}

export function lockTimeoutMs(injection: Injection): number {
  return typeof injection.lock_timeout_ms === 'number' ? injection.lock_timeout_ms : 10_000;
}

export function agentDelayMs(injection: Injection, vmid: string): number {
  const delay = injection.agent_delay_ms;
  if (typeof delay === 'number') return delay;
  return delay?.[vmid] ?? 0;
}

function isPrefix(prefix: readonly string[] | undefined, argv: readonly string[]): boolean {
  if (!prefix) return true;
  return prefix.length <= argv.length && prefix.every((word, i) => String(word) === argv[i]);
}

/** The real lock file a guest's config lock lives in, as PVE names it. */
export function guestLockPath(tool: string, vmid: string): string {
  return tool === 'qm' ? `/var/lock/qemu-server/lock-${vmid}.conf` : `/run/lock/lxc/pve-config-${vmid}.lock`;
}

export function lockTimeoutMessage(tool: string, vmid: string): string {
  return `trying to acquire lock...\ncan't lock file '${guestLockPath(tool, vmid)}' - got timeout\n`;
}

/** Resolve a rule's preset into concrete output. */
export function failureOutput(rule: FailureRule, tool: string, argv: readonly string[]): { exit: number; stderr: string; stdout: string } {
  if (rule.preset === 'lock-timeout') {
    const vmid = argv.find((a) => /^[1-9]\d{2,8}$/.test(a)) ?? '0';
    return { exit: rule.exit ?? 255, stderr: rule.stderr ?? lockTimeoutMessage(tool, vmid), stdout: rule.stdout ?? '' };
  }
  let stderr = rule.stderr ?? `simhost: injected failure for ${tool} ${argv.join(' ')}`;
  if (stderr !== '' && !stderr.endsWith('\n')) stderr += '\n';
  return { exit: rule.exit ?? 255, stderr, stdout: rule.stdout ?? '' };
}

interface CountedRule {
  times?: number;
}

/**
 * Find the first live rule of one kind that matches this call and spend one
 * of its `times`, under the state lock so parallel callers consume each
 * exactly once. The cheap unlocked read keeps the common case (no rule for
 * this call) free of lock traffic.
 */
function takeRule<R extends CountedRule>(root: string, injection: Injection, rules: (inj: Injection) => R[] | undefined, matches: (rule: R) => boolean): R | undefined {
  const candidate = (inj: Injection) => (rules(inj) ?? []).findIndex((rule) => matches(rule) && (rule.times === undefined || rule.times > 0));
  if (candidate(injection) === -1) return undefined;
  return withStateLock(root, () => {
    const fresh = loadInjection(root);
    const index = candidate(fresh);
    if (index === -1) return undefined;
    const rule = rules(fresh)![index]!;
    if (rule.times !== undefined) {
      rule.times -= 1;
      saveInjection(root, fresh);
    }
    return { ...rule };
  });
}

/** The failure rule for this call, if a test set one. */
export function takeFailure(root: string, injection: Injection, tool: string, argv: readonly string[]): FailureRule | undefined {
  return takeRule(root, injection, (inj) => inj.failures, (rule) => rule.tool === tool && isPrefix(rule.argv, argv));
}

/** The latency of a `slow` rule matching this call; undefined when none matches. */
export function takeSlow(root: string, injection: Injection, tool: string, argv: readonly string[]): number | undefined {
  return takeRule(root, injection, (inj) => inj.slow, (rule) => rule.tool === tool && isPrefix(rule.argv, argv))?.latency_ms;
}

export interface ExecCall {
  tool: 'pct' | 'qm';
  guest: string;
  command: readonly string[];
  stdin?: string;
}

function execMatches(rule: ExecRule, call: ExecCall): boolean {
  if (rule.times !== undefined && rule.times <= 0) return false;
  if (rule.tool !== undefined && rule.tool !== call.tool) return false;
  if (rule.guest !== undefined && String(rule.guest) !== call.guest) return false;
  if (!isPrefix(rule.command, call.command)) return false;
  if (rule.contains !== undefined && !call.command.join(' ').includes(rule.contains)) return false;
  if (rule.stdin_contains !== undefined && !(call.stdin ?? '').includes(rule.stdin_contains)) return false;
  return true;
}

/** The scripted answer for a command run inside a guest, if a test set one. */
export function takeExecRule(root: string, injection: Injection, call: ExecCall): ExecRule | undefined {
  return takeRule(root, injection, (inj) => inj.exec, (rule) => execMatches(rule, call));
}
