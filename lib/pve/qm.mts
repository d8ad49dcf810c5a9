// Typed wrapper for `qm`, the Proxmox VM tool, including the guest agent.
// Guest commands are polled to completion: `qm guest exec` gives up waiting
// after its timeout and then prints only a pid, which the bash toolkit read
// as success. Here a command that has not exited is never a success.
// These wrappers are the only way Phoenix calls qm (test/layers.test.mts
// fails on a `qm` command built anywhere else).

import { run, query, sleep, type CommandResult } from '../core/runner.mts';
import { toPveArgs, parseConfigLines, parseSnapshotList, type OptionMap, type PveConfig } from './args.mts';
import { CommandError, PhoenixError } from '../core/errors.mts';
import type { CallOptions, GuestStatus } from './pct.mts';

const QM = 'qm';
const NOT_FOUND = /does not exist|no such vm|not found/i;

export async function status(vmid: string): Promise<GuestStatus> {
  let result = await query({ cmd: QM, args: ['status', vmid], allowFailure: true, quiet: true });
  if (result.code !== 0) {
    if (NOT_FOUND.test(result.stderr)) return 'absent';
    // Anything else: ask once more and let a second failure throw with the tool's own message.
    result = await query({ cmd: QM, args: ['status', vmid] });
  }
  return /status:\s*running/.test(result.stdout) ? 'running' : 'stopped';
}

export async function exists(vmid: string): Promise<boolean> {
  return (await status(vmid)) !== 'absent';
}

export async function config(vmid: string): Promise<PveConfig> {
  const result = await query({ cmd: QM, args: ['config', vmid], quiet: true });
  return parseConfigLines(result.stdout);
}

/** The VM's config, or undefined when it does not exist; any other failure throws with qm's own words. */
export async function configIfExists(vmid: string): Promise<PveConfig | undefined> {
  let result = await query({ cmd: QM, args: ['config', vmid], allowFailure: true, quiet: true });
  if (result.code !== 0) {
    if (NOT_FOUND.test(result.stderr)) return undefined;
    result = await query({ cmd: QM, args: ['config', vmid] });
  }
  return parseConfigLines(result.stdout);
}

export async function isTemplate(vmid: string): Promise<boolean> {
  return (await config(vmid)).values.template === '1';
}

export function create(vmid: string, options: OptionMap = {}, call: CallOptions = {}): Promise<CommandResult> {
  return run({ cmd: QM, args: ['create', vmid, ...toPveArgs(options)], ...call });
}

export function clone(source: string, vmid: string, options: OptionMap = {}, call: CallOptions = {}): Promise<CommandResult> {
  return run({ cmd: QM, args: ['clone', source, vmid, ...toPveArgs(options)], ...call });
}

export function set(vmid: string, options: OptionMap): Promise<CommandResult> {
  return run({ cmd: QM, args: ['set', vmid, ...toPveArgs(options)] });
}

export function start(vmid: string): Promise<CommandResult> {
  return run({ cmd: QM, args: ['start', vmid] });
}

export function stop(vmid: string, call: CallOptions = {}): Promise<CommandResult> {
  return run({ cmd: QM, args: ['stop', vmid], ...call });
}

/** Ask the guest to shut down; with `forceStop`, Proxmox stops it when it has not after `timeoutSeconds`. */
export function shutdown(vmid: string, timeoutSeconds?: number, options: { forceStop?: boolean } = {}, call: CallOptions = {}): Promise<CommandResult> {
  return run({ cmd: QM, args: ['shutdown', vmid, ...toPveArgs({ timeout: timeoutSeconds, forceStop: options.forceStop })], ...call });
}

/** Write the VM's cloud-init settings into its cloud-init drive again. */
export function cloudinitUpdate(vmid: string): Promise<CommandResult> {
  return run({ cmd: QM, args: ['cloudinit', 'update', vmid] });
}

export function destroy(vmid: string, options: { purge?: boolean; unreferencedDisks?: boolean } = {}): Promise<CommandResult> {
  return run({ cmd: QM, args: ['destroy', vmid, ...toPveArgs({ purge: options.purge, 'destroy-unreferenced-disks': options.unreferencedDisks })] });
}

/** Lift a `lock:` mark a killed Proxmox task left on the guest. */
export function unlock(vmid: string): Promise<CommandResult> {
  return run({ cmd: QM, args: ['unlock', vmid] });
}

export function template(vmid: string): Promise<CommandResult> {
  return run({ cmd: QM, args: ['template', vmid] });
}

export function resize(vmid: string, disk: string, size: string): Promise<CommandResult> {
  return run({ cmd: QM, args: ['resize', vmid, disk, size] });
}

export function importDisk(vmid: string, image: string, storage: string): Promise<CommandResult> {
  return run({ cmd: QM, args: ['importdisk', vmid, image, storage] });
}

export function snapshot(vmid: string, name: string, description?: string): Promise<CommandResult> {
  return run({ cmd: QM, args: ['snapshot', vmid, name, ...toPveArgs({ description })] });
}

export async function listSnapshots(vmid: string): Promise<string[]> {
  const result = await query({ cmd: QM, args: ['listsnapshot', vmid], quiet: true });
  return parseSnapshotList(result.stdout);
}

export function deleteSnapshot(vmid: string, name: string, options: { force?: boolean } = {}): Promise<CommandResult> {
  return run({ cmd: QM, args: ['delsnapshot', vmid, name, ...toPveArgs({ force: options.force })] });
}

/** A snapshot's `snapstate` (`prepare`, `delete`) while a snapshot task is unfinished; undefined once it is whole. */
export async function snapshotState(vmid: string, name: string): Promise<string | undefined> {
  const result = await query({ cmd: QM, args: ['config', vmid, '--snapshot', name], quiet: true });
  return parseConfigLines(result.stdout).values.snapstate;
}

export async function agentPing(vmid: string): Promise<boolean> {
  const result = await query({ cmd: QM, args: ['agent', vmid, 'ping'], allowFailure: true, quiet: true, retry: false });
  return result.code === 0;
}

/** Wait until the guest agent answers, polling every `intervalMs`, at most `timeoutMs`. */
export async function waitForAgent(vmid: string, timeoutMs = 300_000, intervalMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await agentPing(vmid)) return;
    if (Date.now() >= deadline) throw new PhoenixError(`the guest agent of VM ${vmid} did not answer within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(intervalMs);
  }
}

export interface GuestExecResult {
  exitcode: number;
  stdout: string;
  stderr: string;
}

export interface GuestExecOptions {
  mutating?: boolean;
  /** Whole time the command may take, polled past qm's own wait. */
  timeoutMs?: number;
  /** How long each `qm guest exec` waits before handing back a pid. */
  agentWaitSeconds?: number;
  pollMs?: number;
  input?: string;
  allowFailure?: boolean;
  secrets?: readonly string[];
}

interface AgentStatus {
  exited?: number | boolean;
  exitcode?: number;
  'out-data'?: string;
  'err-data'?: string;
  pid?: number;
}

/**
 * Run a command in the VM through the guest agent and wait for its real
 * exit status. Stdin (a script, a file) is handed to qm's --pass-stdin,
 * never put into an argument.
 */
export async function guestExec(vmid: string, argv: readonly string[], options: GuestExecOptions = {}): Promise<GuestExecResult> {
  const totalMs = options.timeoutMs ?? 600_000;
  const wait = options.agentWaitSeconds ?? 30;
  const pollMs = options.pollMs ?? 2_000;
  const args = ['guest', 'exec', vmid, '--timeout', String(wait)];
  if (options.input !== undefined) args.push('--pass-stdin', '1');
  args.push('--', ...argv);
  const first = await run({
    cmd: QM,
    args,
    mutating: options.mutating ?? true,
    timeoutMs: (wait + 30) * 1000,
    // qm's own status may mirror the guest command's; the JSON decides.
    allowFailure: true,
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
  });
  if (first.skipped) return { exitcode: 0, stdout: '', stderr: '' };
  if (first.code !== 0 && !first.stdout.trim().startsWith('{')) {
    throw new CommandError({ command: first.command, status: first.code, stdout: first.stdout, stderr: first.stderr });
  }

  let statusNow = parseAgentJson(first.stdout, vmid);
  const deadline = Date.now() + totalMs;
  while (!isExited(statusNow)) {
    if (statusNow.pid === undefined) throw new PhoenixError(`qm guest exec on VM ${vmid} returned neither an exit status nor a pid`);
    if (Date.now() >= deadline) {
      throw new PhoenixError(`command in VM ${vmid} still running after ${Math.round(totalMs / 1000)} s (pid ${statusNow.pid}): ${argv.join(' ')}`, { exitCode: 124 });
    }
    await sleep(pollMs);
    const pid = statusNow.pid;
    const polled = await query({ cmd: QM, args: ['guest', 'exec-status', vmid, String(pid)], quiet: true });
    statusNow = { ...parseAgentJson(polled.stdout, vmid), pid };
  }
  const result = { exitcode: statusNow.exitcode ?? -1, stdout: statusNow['out-data'] ?? '', stderr: statusNow['err-data'] ?? '' };
  if (result.exitcode !== 0 && !options.allowFailure) {
    throw new CommandError({ command: `qm guest exec ${vmid} -- ${argv.join(' ')}`, status: result.exitcode < 0 ? 1 : result.exitcode, stdout: result.stdout, stderr: result.stderr });
  }
  return result;
}

function isExited(s: AgentStatus): boolean {
  return s.exited === 1 || s.exited === true;
}

function parseAgentJson(text: string, vmid: string): AgentStatus {
  try {
    return JSON.parse(text) as AgentStatus;
  } catch {
    throw new PhoenixError(`unexpected answer from the guest agent of VM ${vmid}: ${text.trim().slice(0, 200)}`);
  }
}

export async function ensureRunning(vmid: string): Promise<'started' | 'unchanged'> {
  if ((await status(vmid)) === 'running') return 'unchanged';
  await start(vmid);
  return 'started';
}

export async function ensureStopped(vmid: string): Promise<'stopped' | 'unchanged'> {
  if ((await status(vmid)) !== 'running') return 'unchanged';
  await stop(vmid);
  return 'stopped';
}
