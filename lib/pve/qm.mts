// Typed wrapper for `qm`, the Proxmox VM tool, including the guest agent.
// What qm shares with pct (status, config, set, start, stop, snapshots, …)
// is built once in guest-tool.mts and exported here under the same names;
// this module adds what only VMs have: create from options, disk import,
// cloud-init and the guest agent.
// Guest commands are polled to completion: `qm guest exec` gives up waiting
// after its timeout and then prints only a pid, which the bash toolkit read
// as success. Here a command that has not exited is never a success.
// These wrappers are the only way Phoenix calls qm (test/layers.test.mts
// fails on a `qm` command built anywhere else).

import { run, query, sleep, type CommandResult } from '../core/runner.mts';
import { toPveArgs, type OptionMap } from './args.mts';
import { CommandError, PhoenixError } from '../core/errors.mts';
import { toolFor, type CallOptions } from './guest-tool.mts';

const QM = 'qm';

export const {
  status,
  isRunning,
  exists,
  config,
  configIfExists,
  isTemplate,
  clone,
  set,
  start,
  stop,
  shutdown,
  reboot,
  destroy,
  unlock,
  template,
  resize,
  snapshot,
  listSnapshots,
  deleteSnapshot,
  snapshotState,
  rollback,
  ensureRunning,
  ensureStopped,
} = toolFor('vm');

export function create(vmid: string, options: OptionMap = {}, call: CallOptions = {}): Promise<CommandResult> {
  return run({ cmd: QM, args: ['create', vmid, ...toPveArgs(options)], ...call });
}

/** Write the VM's cloud-init settings into its cloud-init drive again. */
export function cloudinitUpdate(vmid: string): Promise<CommandResult> {
  return run({ cmd: QM, args: ['cloudinit', 'update', vmid] });
}

export function importDisk(vmid: string, image: string, storage: string): Promise<CommandResult> {
  return run({ cmd: QM, args: ['importdisk', vmid, image, storage] });
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
