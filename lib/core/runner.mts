// The one command runner. Every external command Phoenix starts goes through
// `run`: pct, qm, pvesm, zfs, systemctl, nginx, step, child scripts. That is
// what makes dry-run trustworthy (a changing command is printed, never run),
// lets tests and audits read the exact plan, keeps secrets out of logs, and
// puts time limits and Proxmox lock retries in one place.
//
// Commands are started by zx's `$`, and this is the only module that holds
// it (a test fails if another one imports zx). Callers pass argument vectors;
// the vector goes into `$` as one interpolated array, so zx quotes every word
// for bash and nothing from a manifest is ever parsed as shell. Bash execs a
// single command in place, so each command is still one process. A script
// meant for a shell inside a guest travels on stdin.
//
// zx is loaded on the first command through its CommonJS build: a process
// that only prints its help or refuses its arguments never pays for it.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import { CommandError, PhoenixError } from './errors.mts';
import { debug, info, logSettings } from './log.mts';
import { redact, addSecret, StreamRedactor } from './redact.mts';
import { runContext, type RecordedCommand } from './context.mts';

export type { RecordedCommand } from './context.mts';

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

/**
 * Commands run or planned by this process, in order (the recorded plan).
 * Masked again on every read: a secret registered after a command ran is
 * hidden in its record too.
 */
export function recordedCommands(): readonly RecordedCommand[] {
  return runContext().recorder.commands.map((entry) => ({ ...entry, cmd: redact(entry.cmd), args: entry.args.map((a) => redact(a)) }));
}

/** How many processes this process has spawned (for `make bench`). */
export function spawnCount(): number {
  return runContext().recorder.spawned;
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

  if (mutating && runContext().dryRun) {
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

type Zx = typeof import('zx/core');
let zx: Zx | undefined;

/**
 * zx's core, loaded once and set up for Phoenix: no echo of commands or
 * output (the runner logs, masked), no throwing on a non-zero exit (the
 * runner decides), no `set -euo pipefail` prefix (one command needs none,
 * and without it bash execs the command in place).
 */
function loadZx(): Zx {
  if (zx) return zx;
  const loaded = createRequire(import.meta.url)('zx/core') as Zx;
  const shell = String(loaded.$.shell);
  // zx quotes with bash's $'…' form: any other shell would read the words differently.
  if (!/(^|\/)bash$/.test(shell)) throw new PhoenixError(`zx runs commands through '${shell}', but Phoenix quotes every word for bash`, { hint: 'install bash (every Proxmox VE node has it)' });
  loaded.$.verbose = false;
  loaded.$.quiet = true;
  loaded.$.nothrow = true;
  loaded.$.prefix = '';
  loaded.$.postfix = '';
  zx = loaded;
  return loaded;
}

const KILL_GRACE_MS = 2000;

function spawnOnce(spec: CommandSpec, args: readonly string[]): Promise<SpawnOutcome> {
  const started = Date.now();
  const context = runContext();
  const timeoutMs = spec.timeoutMs ?? context.timeoutMs;
  const inherit = spec.stdio === 'inherit';
  const { $ } = loadZx();
  // Without input the child gets no stdin at all: zx would otherwise hand it an open pipe nobody writes.
  const stdin = spec.input !== undefined ? 'pipe' : inherit ? 'inherit' : 'ignore';
  context.recorder.spawned++;
  const child = $({
    stdio: [stdin, 'pipe', 'pipe'],
    ...(spec.input !== undefined ? { input: spec.input } : {}),
    env: spec.env ?? process.env,
    ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
  })`${[spec.cmd, ...args]}`;

  let timedOut = false;
  const timers: NodeJS.Timeout[] = [];
  if (timeoutMs > 0) {
    timers.push(
      setTimeout(() => {
        timedOut = true;
        signalTree(child.pid, 'SIGTERM');
        // A child that ignores SIGTERM gets SIGKILL; the runner never hangs.
        timers.push(setTimeout(() => signalTree(child.pid, 'SIGKILL'), KILL_GRACE_MS));
      }, timeoutMs),
    );
  }
  if (inherit) {
    // Shown as it comes, masked: the child's own stdout and stderr stay apart.
    passThrough(child.stdout, process.stdout);
    passThrough(child.stderr, process.stderr);
  }

  return child.then((output) => {
    for (const timer of timers) clearTimeout(timer);
    const signal = output.signal ?? null;
    let code = output.exitCode ?? (timedOut ? 124 : 128 + 15);
    let stderr = inherit ? '' : output.stderr;
    if (code === 127 && /command not found/.test(output.stderr) && !spec.cmd.includes('/')) {
      // Said the way a shell user expects, with the likely reason on a machine that is no Proxmox node.
      stderr = `${spec.cmd}: command not found${PROXMOX_TOOLS.has(spec.cmd) ? ' (not a Proxmox VE host? `make sync` runs Phoenix on the simulated host)' : ''}`;
    }
    if (timedOut) code = 124;
    return {
      result: { command: redact(formatCommand(spec.cmd, args)), code, stdout: inherit ? '' : output.stdout, stderr, skipped: false, durationMs: Date.now() - started },
      timedOut,
      signal,
    };
  });
}

/**
 * Send `signal` to a process and every process below it. The tree is read
 * from /proc (no `ps` to spawn); the children are signalled before the
 * parent so none is re-parented out of reach.
 */
export function signalTree(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  const children = new Map<number, number[]>();
  try {
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        // The parent pid is the 2nd field after the command name, which may itself hold spaces and parentheses.
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        const list = children.get(ppid) ?? [];
        list.push(Number(entry));
        children.set(ppid, list);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    // no /proc: only the process itself
  }
  const order: number[] = [];
  const visit = (p: number): void => {
    for (const c of children.get(p) ?? []) visit(c);
    order.push(p);
  };
  visit(pid);
  for (const p of order) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
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
  const context = runContext();
  context.recorder.commands.push(entry);
  if (context.recordFile) {
    try {
      fs.appendFileSync(context.recordFile, `${JSON.stringify({ script: logSettings().script, ...entry })}\n`);
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
