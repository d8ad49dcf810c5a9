// The one command runner. Every external command Phoenix starts goes through
// `run`: pct, qm, pvesm, zfs, systemctl, nginx, step, child scripts. That is
// what makes dry-run trustworthy (a mutating command is printed, never run),
// lets tests and audits read the exact plan, keeps secrets out of logs, and
// puts time limits and Proxmox lock retries in one place.
//
// Commands are argument vectors spawned without a shell: nothing is quoted,
// nothing from a manifest is ever parsed as shell, and each command costs one
// process. A script meant for a shell inside a guest travels on stdin.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { CommandError } from './errors.mts';
import { debug, info, logSettings } from './log.mts';
import { redact, addSecret, StreamRedactor } from './redact.mts';
import { resolveOptions } from './env.mts';

export interface CommandSpec {
  cmd: string;
  args?: readonly string[];
  /**
   * Whether the command changes anything. Read-only commands (status,
   * config, list) still run in dry-run, so the plan is computed from the
   * real state. Defaults to true: a command nobody classified is treated
   * as a change.
   */
  mutating?: boolean;
  /** Bytes for the child's stdin. Never logged or recorded, only its size. */
  input?: string | Buffer;
  /** Time limit in ms; defaults to PHOENIX_COMMAND_TIMEOUT. 0 = none. */
  timeoutMs?: number;
  /** Retries for transient failures (Proxmox lock time-outs by default for pct/qm). */
  retry?: RetryPolicy | false;
  /** Extra values to mask wherever this command is shown. */
  secrets?: readonly string[];
  /** Return the failed result instead of throwing. */
  allowFailure?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  /**
   * 'inherit' passes the child's stdout/stderr through (child scripts):
   * line by line, masked, to this process's stdout/stderr.
   */
  stdio?: 'pipe' | 'inherit';
  /** Log the command at DEBUG instead of INFO (probes such as `test -f`). */
  quiet?: boolean;
}

export interface RetryPolicy {
  attempts: number;
  delayMs: number;
  /** Which failures are worth another attempt. */
  when: (result: CommandResult) => boolean;
}

export interface CommandResult {
  command: string;
  code: number;
  stdout: string;
  stderr: string;
  /** True when dry-run skipped the command. */
  skipped: boolean;
  durationMs: number;
}

export interface RecordedCommand {
  cmd: string;
  args: string[];
  mutating: boolean;
  skipped: boolean;
  code: number | null;
  ms: number;
  stdinBytes?: number;
}

/** Proxmox answers a busy per-guest config lock with these lines. */
export const PROXMOX_LOCK_TIMEOUT = /can't lock file '[^']*' - got timeout/;

const LOCK_RETRY_TOOLS = new Set(['pct', 'qm', 'pvesh', 'pvesm', 'vzdump']);
const PROXMOX_TOOLS = new Set(['pct', 'qm', 'pvesh', 'pvesm', 'pveam', 'pve-firewall', 'vzdump', 'pveversion']);

export function proxmoxLockRetry(env: Record<string, string | undefined> = process.env): RetryPolicy {
  const attempts = Number(env.PHOENIX_PVE_LOCK_RETRIES ?? 3);
  const delayMs = Number(env.PHOENIX_PVE_LOCK_DELAY_MS ?? 2000);
  return {
    attempts: Number.isFinite(attempts) && attempts >= 1 ? attempts : 3,
    delayMs: Number.isFinite(delayMs) && delayMs >= 0 ? delayMs : 2000,
    when: (r) => PROXMOX_LOCK_TIMEOUT.test(r.stderr) || PROXMOX_LOCK_TIMEOUT.test(r.stdout),
  };
}

interface RunnerState {
  dryRun: boolean;
  recordFile: string | undefined;
  timeoutMs: number;
  spawned: number;
  recorded: RecordedCommand[];
}

const state: RunnerState = (() => {
  const options = resolveOptions();
  return {
    dryRun: options.dryRun,
    recordFile: options.recordFile,
    timeoutMs: options.commandTimeoutMs,
    spawned: 0,
    recorded: [],
  };
})();

export function configureRunner(update: Partial<Pick<RunnerState, 'dryRun' | 'recordFile' | 'timeoutMs'>>): void {
  Object.assign(state, update);
}

export function isDryRun(): boolean {
  return state.dryRun;
}

/**
 * Commands run or planned by this process, in order (the recorded plan).
 * Masked again on every read: a secret registered after a command ran is
 * hidden in its record too.
 */
export function recordedCommands(): readonly RecordedCommand[] {
  return state.recorded.map((entry) => ({ ...entry, cmd: redact(entry.cmd), args: entry.args.map((a) => redact(a)) }));
}

/** How many processes this process has spawned (for `make bench`). */
export function spawnCount(): number {
  return state.spawned;
}

/** Render an argument vector the way a shell user would type it. */
export function formatCommand(cmd: string, args: readonly string[] = []): string {
  return [cmd, ...args].map(shellWord).join(' ');
}

function shellWord(word: string): string {
  if (word !== '' && /^[\w@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export async function run(spec: CommandSpec): Promise<CommandResult> {
  const args = spec.args ?? [];
  const mutating = spec.mutating ?? true;
  for (const secret of spec.secrets ?? []) addSecret(secret);
  const shown = redact(formatCommand(spec.cmd, args));

  if (mutating && state.dryRun) {
    info(`DRY-RUN: would run: ${shown}${spec.input === undefined ? '' : ` (with ${byteLength(spec.input)} bytes on stdin)`}`);
    record(spec, args, { skipped: true, code: null, ms: 0 });
    return { command: shown, code: 0, stdout: '', stderr: '', skipped: true, durationMs: 0 };
  }

  const retry = spec.retry === false ? undefined : (spec.retry ?? (LOCK_RETRY_TOOLS.has(spec.cmd) ? proxmoxLockRetry() : undefined));
  const attempts = retry?.attempts ?? 1;
  let result: CommandResult | undefined;
  let timedOut = false;
  let signal: string | null = null;

  for (let attempt = 1; attempt <= attempts; attempt++) {
    (spec.quiet ? debug : info)(`Executing: ${shown}${attempt > 1 ? ` (attempt ${attempt}/${attempts})` : ''}`);
    const outcome = await spawnOnce(spec, args);
    result = outcome.result;
    timedOut = outcome.timedOut;
    signal = outcome.signal;
    record(spec, args, { skipped: false, code: result.code, ms: result.durationMs });
    if (result.code === 0 || !retry || attempt === attempts || !retry.when(result)) break;
    info(`'${shown}' hit a transient failure (${firstLine(result.stderr || result.stdout)}); retrying in ${retry.delayMs} ms`);
    await sleep(retry.delayMs);
  }

  const final = result as CommandResult;
  if (final.code !== 0) {
    debug(`'${shown}' exited ${final.code}${final.stderr ? `; stderr: ${final.stderr.trim()}` : ''}`);
    if (!spec.allowFailure) {
      throw new CommandError({
        command: shown,
        status: timedOut || signal ? null : final.code,
        stdout: redact(final.stdout),
        stderr: redact(final.stderr),
        timedOut,
        signal,
      });
    }
  }
  return final;
}

/** Run a read-only command (never skipped by dry-run). */
export function query(spec: Omit<CommandSpec, 'mutating'>): Promise<CommandResult> {
  return run({ ...spec, mutating: false });
}

interface SpawnOutcome {
  result: CommandResult;
  timedOut: boolean;
  signal: string | null;
}

function spawnOnce(spec: CommandSpec, args: readonly string[]): Promise<SpawnOutcome> {
  const started = Date.now();
  const timeoutMs = spec.timeoutMs ?? state.timeoutMs;
  const inherit = spec.stdio === 'inherit';
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const finish = (code: number, signal: string | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (spawnError) stderr += `${stderr && !stderr.endsWith('\n') ? '\n' : ''}${spawnError.message}`;
      resolve({
        result: {
          command: redact(formatCommand(spec.cmd, args)),
          code,
          stdout,
          stderr,
          skipped: false,
          durationMs: Date.now() - started,
        },
        timedOut,
        signal,
      });
    };

    state.spawned++;
    // Output is always piped: passed-through output is masked on its way (passThrough).
    const child = spawn(spec.cmd, [...args], {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: [spec.input === undefined ? (inherit ? 'inherit' : 'ignore') : 'pipe', 'pipe', 'pipe'],
    });
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGTERM');
            // A child that ignores SIGTERM gets SIGKILL; the runner never hangs.
            setTimeout(() => child.kill('SIGKILL'), 2000).unref();
          }, timeoutMs)
        : undefined;

    if (inherit) {
      passThrough(child.stdout, process.stdout);
      passThrough(child.stderr, process.stderr);
    } else {
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Say it the way a shell would; "spawn pct ENOENT" helps nobody.
      if (err.code === 'ENOENT') finish(127, null, new Error(`${spec.cmd}: command not found${PROXMOX_TOOLS.has(spec.cmd) ? ' (not a Proxmox VE host? `make sync` runs Phoenix on the simulated host)' : ''}`));
      else finish(126, null, err);
    });
    child.on('close', (code, signal) => finish(code ?? (timedOut ? 124 : 128 + 15), signal));
    if (spec.input !== undefined && child.stdin) {
      // A child that exits without reading all of stdin is not an error here.
      child.stdin.on('error', () => {});
      child.stdin.end(spec.input);
    }
  });
}

/** How long an unfinished line (a prompt, a progress bar) waits before it is shown anyway. */
const PARTIAL_LINE_MS = 150;

/**
 * A child's output shown as it comes, a whole line at a time and masked, so
 * a secret the child echoes (a tool repeating its password file, a script
 * printing a token) is hidden like any line Phoenix logs itself.
 */
function passThrough(source: NodeJS.ReadableStream | null, target: NodeJS.WritableStream): void {
  if (!source) return;
  const redactor = new StreamRedactor();
  let timer: NodeJS.Timeout | undefined;
  const emit = (text: string) => {
    if (text !== '') target.write(text);
  };
  source.setEncoding('utf8');
  source.on('data', (chunk: string) => {
    if (timer) clearTimeout(timer);
    emit(redactor.push(chunk));
    timer = setTimeout(() => emit(redactor.partial()), PARTIAL_LINE_MS);
    timer.unref();
  });
  source.on('end', () => {
    if (timer) clearTimeout(timer);
    emit(redactor.end());
  });
}

function record(spec: CommandSpec, args: readonly string[], outcome: { skipped: boolean; code: number | null; ms: number }): void {
  const entry: RecordedCommand = {
    cmd: redact(spec.cmd),
    args: args.map((a) => redact(a)),
    mutating: spec.mutating ?? true,
    skipped: outcome.skipped,
    code: outcome.code,
    ms: outcome.ms,
  };
  if (spec.input !== undefined) entry.stdinBytes = byteLength(spec.input);
  state.recorded.push(entry);
  if (state.recordFile) {
    try {
      fs.appendFileSync(state.recordFile, `${JSON.stringify({ script: logSettings().script, ...entry })}\n`);
    } catch {
      // Recording is an audit aid; a full disk must not turn into a failed run.
    }
  }
}

function byteLength(input: string | Buffer): number {
  return typeof input === 'string' ? Buffer.byteLength(input) : input.length;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
