// Typed wrapper for `pct`, the Proxmox container tool. What pct shares with
// qm (status, config, set, start, stop, snapshots, …) is built once in
// guest-tool.mts and exported here under the same names; this module adds
// what only containers have: list, create, exec and file transfer.
// Read-only calls are marked so dry-run still answers them; every other call
// is a change. Wrappers are thin on purpose: they run exactly one pct
// command each, and idempotent helpers (ensureRunning, ensureStopped) say so
// in their name. They are the only way Phoenix calls pct (test/layers.test.mts
// fails on a `pct` command built anywhere else), so every pct call is
// classified here or in guest-tool.mts.

import { run, query, type CommandResult } from '../core/runner.mts';
import { toPveArgs, type OptionMap } from './args.mts';
import { toolFor, type CallOptions } from './guest-tool.mts';

export type { CallOptions, GuestStatus } from './guest-tool.mts';

const PCT = 'pct';

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
} = toolFor('lxc');

export interface ListedContainer {
  vmid: string;
  status: string;
  name: string;
}

export async function list(): Promise<ListedContainer[]> {
  const result = await query({ cmd: PCT, args: ['list'], quiet: true });
  return result.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 2 && /^\d+$/.test(cols[0] ?? ''))
    .map((cols) => ({ vmid: cols[0] as string, status: cols[1] as string, name: cols[cols.length - 1] as string }));
}

export function create(ctid: string, ostemplate: string, options: OptionMap = {}, call: CallOptions = {}): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['create', ctid, ostemplate, ...toPveArgs(options)], ...call });
}

export interface ExecOptions {
  /** Whether the command changes the guest (default true); probes pass false. */
  mutating?: boolean;
  input?: string | Buffer;
  allowFailure?: boolean;
  timeoutMs?: number;
  quiet?: boolean;
  secrets?: readonly string[];
  /** 'inherit' passes the command's output through, line by line and masked (a legacy script run inside). */
  stdio?: 'pipe' | 'inherit';
}

export function exec(ctid: string, argv: readonly string[], options: ExecOptions = {}): Promise<CommandResult> {
  return run({
    cmd: PCT,
    args: ['exec', ctid, '--', ...argv],
    mutating: options.mutating ?? true,
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.allowFailure === undefined ? {} : { allowFailure: options.allowFailure }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.quiet === undefined ? {} : { quiet: options.quiet }),
    ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
    ...(options.stdio === undefined ? {} : { stdio: options.stdio }),
  });
}

/**
 * Run a bash script inside the container. The script goes on stdin, so
 * nothing in it is quoted twice and none of it shows in a process list.
 */
export function execScript(ctid: string, script: string, args: readonly string[] = [], options: Omit<ExecOptions, 'input'> = {}): Promise<CommandResult> {
  return exec(ctid, ['bash', '-s', '--', ...args], { ...options, input: script });
}

/** True when `test <flag> <path>` succeeds inside the container. */
export async function test(ctid: string, flag: '-f' | '-d' | '-e' | '-x' | '-s', path: string): Promise<boolean> {
  const result = await exec(ctid, ['test', flag, path], { mutating: false, allowFailure: true, quiet: true });
  return result.code === 0;
}

export interface PushOptions {
  perms?: string;
  user?: string;
  group?: string;
}

export function push(ctid: string, hostPath: string, guestPath: string, options: PushOptions = {}): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['push', ctid, hostPath, guestPath, ...toPveArgs({ ...options })] });
}

/** Push into a directory that may not exist yet (pct push does not create it). */
export async function pushFile(ctid: string, hostPath: string, guestPath: string, options: PushOptions = {}): Promise<CommandResult> {
  const dir = guestPath.slice(0, guestPath.lastIndexOf('/')) || '/';
  await exec(ctid, ['mkdir', '-p', dir], { quiet: true });
  return push(ctid, hostPath, guestPath, options);
}

/** Copies a file out of the container; it changes the host, so it is a mutation. */
export function pull(ctid: string, guestPath: string, hostPath: string, options: PushOptions = {}): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['pull', ctid, guestPath, hostPath, ...toPveArgs({ ...options })] });
}
