// Typed errors and the single place where they become exit codes.
//
// Every script ends through `exitCodeFor`, so a port exits with the status
// a caller of the bash original saw: 1 for a fatal error (log_fatal), the
// failed command's own status where bash's `set -e` would have passed it
// through, 0 for success.
//
// An error's text is masked when the error is made (message, hint, the
// failed command and its output, the message of its cause): errors travel
// into summaries, state files and other processes' output, and each of
// those must not have to remember to mask them.

import { redact } from './redact.mts';

export class PhoenixError extends Error {
  readonly exitCode: number;
  /** Optional hint for the operator: what to do about it. */
  readonly hint?: string;

  constructor(message: string, options: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(redact(message), options.cause === undefined ? undefined : { cause: maskCause(options.cause) });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? 1;
    if (options.hint !== undefined) this.hint = redact(options.hint);
  }
}

/** Wrong arguments on the command line. Exit 1, like the bash usage errors. */
export class UsageError extends PhoenixError {}

/** A manifest that is missing, not JSON, or does not match its schema. */
export class ConfigError extends PhoenixError {
  readonly file: string;
  /** JSON pointer of the offending value ("" for the whole document). */
  readonly pointer: string;

  constructor(file: string, pointer: string, message: string, hint?: string) {
    super(`${file}${pointer ? ` at ${pointer}` : ''}: ${message}`, hint === undefined ? {} : { hint });
    this.file = file;
    this.pointer = pointer;
  }
}

/** The dependency graph has a cycle; `cycle` lists it, first node repeated last. */
export class CycleError extends PhoenixError {
  readonly cycle: string[];
  constructor(cycle: string[]) {
    super(`dependency cycle: ${cycle.join(' -> ')}`);
    this.cycle = cycle;
  }
}

/** An external command failed. Carries its exit status, so callers can pass it through. */
export class CommandError extends PhoenixError {
  readonly command: string;
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;

  constructor(init: {
    command: string;
    status: number | null;
    stdout: string;
    stderr: string;
    timedOut?: boolean;
    signal?: string | null;
  }) {
    const timedOut = init.timedOut ?? false;
    const why = timedOut
      ? 'timed out'
      : init.status === null
        ? `was killed by ${init.signal ?? 'a signal'}`
        : `failed with exit code ${init.status}`;
    // Masked before it is cut to its last lines, so a key's BEGIN line is still there to be found.
    const detail = redact(init.stderr).trim() || redact(init.stdout).trim();
    super(`'${redact(init.command)}' ${why}${detail ? `: ${lastLines(detail, 5)}` : ''}`, {
      // 124 is what timeout(1) reports; a signal death maps to 128+n like bash.
      exitCode: timedOut ? 124 : init.status === null ? 128 + 15 : clampStatus(init.status),
    });
    this.command = redact(init.command);
    this.status = init.status;
    this.stdout = redact(init.stdout);
    this.stderr = redact(init.stderr);
    this.timedOut = timedOut;
  }
}

/** Another Phoenix run holds the host-wide lock. */
export class LockBusyError extends PhoenixError {
  constructor(lockPath: string, holder: string) {
    super(`another Phoenix run holds ${lockPath}${holder ? ` (${holder})` : ''}`, {
      // EX_TEMPFAIL: try again later. Bash had no lock, so no caller expects another code.
      exitCode: 75,
      hint: 'wait for it to finish, or pass --lock-wait SECONDS',
    });
  }
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof PhoenixError) return error.exitCode;
  return 1;
}

/** A foreign cause (a Node error quoting what it read) is masked in place; a PhoenixError already is. */
function maskCause(cause: unknown): unknown {
  if (cause instanceof Error && !(cause instanceof PhoenixError)) {
    try {
      cause.message = redact(cause.message);
      if (cause.stack) cause.stack = redact(cause.stack);
    } catch {
      // A frozen error keeps its text; it is still masked wherever it is printed.
    }
  }
  return cause;
}

function clampStatus(status: number): number {
  if (status <= 0) return 1;
  return status > 255 ? 255 : status;
}

function lastLines(text: string, n: number): string {
  const lines = text.split('\n');
  return lines.length <= n ? text : lines.slice(-n).join('\n');
}
