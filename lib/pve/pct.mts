// Typed wrapper for `pct`, the Proxmox container tool. Read-only calls are
// marked so dry-run still answers them; every other call is a change.
// Wrappers are thin on purpose: they run exactly one pct command each, and
// idempotent helpers (ensureRunning, ensureStopped) say so in their name.
// They are the only way Phoenix calls pct (test/layers.test.mts fails on a
// `pct` command built anywhere else), so every pct call is classified here.

import { run, query, type CommandResult, type CommandSpec } from '../core/runner.mts';
import { toPveArgs, parseConfigLines, parseSnapshotList, type OptionMap, type PveConfig } from './args.mts';

export type GuestStatus = 'running' | 'stopped' | 'absent';

/** How one call is run, where a caller needs more than the defaults. */
export type CallOptions = Pick<CommandSpec, 'allowFailure' | 'timeoutMs' | 'retry'>;

const PCT = 'pct';
const NOT_FOUND = /does not exist|no such container|not found/i;

export async function status(ctid: string): Promise<GuestStatus> {
  let result = await query({ cmd: PCT, args: ['status', ctid], allowFailure: true, quiet: true });
  if (result.code !== 0) {
    if (NOT_FOUND.test(result.stderr)) return 'absent';
    // Anything else: ask once more and let a second failure throw with the tool's own message.
    result = await query({ cmd: PCT, args: ['status', ctid] });
  }
  return /status:\s*running/.test(result.stdout) ? 'running' : 'stopped';
}

/**
 * One `pct status`, for callers that only need to know whether the
 * container runs now: a container that is absent or that pct cannot answer
 * for counts as not running.
 */
export async function isRunning(ctid: string): Promise<boolean> {
  const result = await query({ cmd: PCT, args: ['status', ctid], allowFailure: true, quiet: true });
  return result.code === 0 && /status: running/.test(result.stdout);
}

export async function exists(ctid: string): Promise<boolean> {
  return (await status(ctid)) !== 'absent';
}

export async function config(ctid: string): Promise<PveConfig> {
  const result = await query({ cmd: PCT, args: ['config', ctid], quiet: true });
  return parseConfigLines(result.stdout);
}

/** The container's config, or undefined when it does not exist; any other failure throws with pct's own words. */
export async function configIfExists(ctid: string): Promise<PveConfig | undefined> {
  let result = await query({ cmd: PCT, args: ['config', ctid], allowFailure: true, quiet: true });
  if (result.code !== 0) {
    if (NOT_FOUND.test(result.stderr)) return undefined;
    result = await query({ cmd: PCT, args: ['config', ctid] });
  }
  return parseConfigLines(result.stdout);
}

export async function isTemplate(ctid: string): Promise<boolean> {
  return (await config(ctid)).values.template === '1';
}

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

export function clone(source: string, ctid: string, options: OptionMap = {}): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['clone', source, ctid, ...toPveArgs(options)] });
}

/** One `pct set`: the options given, and the keys in `remove` deleted (`--delete a,b`) in the same call. */
export function set(ctid: string, options: OptionMap, remove: readonly string[] = []): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['set', ctid, ...toPveArgs(options), ...(remove.length > 0 ? ['--delete', remove.join(',')] : [])] });
}

export function start(ctid: string, call: CallOptions = {}): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['start', ctid], ...call });
}

export function stop(ctid: string): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['stop', ctid] });
}

export function shutdown(ctid: string, timeoutSeconds?: number): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['shutdown', ctid, ...toPveArgs({ timeout: timeoutSeconds })] });
}

export function reboot(ctid: string): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['reboot', ctid] });
}

export function destroy(ctid: string, options: { purge?: boolean; unreferencedDisks?: boolean } = {}): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['destroy', ctid, ...toPveArgs({ purge: options.purge, 'destroy-unreferenced-disks': options.unreferencedDisks })] });
}

/** Lift a `lock:` mark a killed Proxmox task left on the guest. */
export function unlock(ctid: string): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['unlock', ctid] });
}

export function template(ctid: string): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['template', ctid] });
}

export function resize(ctid: string, disk: string, size: string, call: CallOptions = {}): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['resize', ctid, disk, size], ...call });
}

export function snapshot(ctid: string, name: string, description?: string, call: CallOptions = {}): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['snapshot', ctid, name, ...toPveArgs({ description })], ...call });
}

export async function listSnapshots(ctid: string): Promise<string[]> {
  const result = await query({ cmd: PCT, args: ['listsnapshot', ctid], quiet: true });
  // Lines look like "`-> name   2025-01-01 10:00:00   description"; "current" is the live state.
  return parseSnapshotList(result.stdout);
}

export function deleteSnapshot(ctid: string, name: string, options: { force?: boolean } = {}): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['delsnapshot', ctid, name, ...toPveArgs({ force: options.force })] });
}

/** A snapshot's `snapstate` (`prepare`, `delete`) while a snapshot task is unfinished; undefined once it is whole. */
export async function snapshotState(ctid: string, name: string): Promise<string | undefined> {
  const result = await query({ cmd: PCT, args: ['config', ctid, '--snapshot', name], quiet: true });
  return parseConfigLines(result.stdout).values.snapstate;
}

export function rollback(ctid: string, name: string): Promise<CommandResult> {
  return run({ cmd: PCT, args: ['rollback', ctid, name] });
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

/** Start unless already running (callers decide what to do with templates, which cannot run). */
export async function ensureRunning(ctid: string): Promise<'started' | 'unchanged'> {
  if ((await status(ctid)) === 'running') return 'unchanged';
  await start(ctid);
  return 'started';
}

/** Stop unless already stopped. */
export async function ensureStopped(ctid: string): Promise<'stopped' | 'unchanged'> {
  if ((await status(ctid)) !== 'running') return 'unchanged';
  await stop(ctid);
  return 'stopped';
}
