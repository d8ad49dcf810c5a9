// How every Phoenix script starts and ends. A script hands its body to
// `runMain` with its upstream name; runMain sets up logging and the runner
// from the environment, and turns the outcome into the exit status the
// bash original's callers expect. This is the only place that decides an
// exit code, so no module calls process.exit.

import { resolveOptions, type PhoenixOptions } from './env.mts';
import { configureLog, error, guardProcessOutput, info } from './log.mts';
import { configureRunner } from './runner.mts';
import { exitCodeFor, PhoenixError, UsageError } from './errors.mts';
import { acquireHostLock, type HeldLock } from './lock.mts';

export interface ScriptContext {
  /** The upstream name the script logs under, e.g. `lxc-manager.sh`. */
  name: string;
  options: PhoenixOptions;
  argv: string[];
}

export function scriptContext(name: string, argv = process.argv.slice(2), env = process.env): ScriptContext {
  const options = resolveOptions(env);
  // From here on nothing the script prints can show a registered secret.
  guardProcessOutput();
  configureLog({ script: name, file: options.logFile, debug: options.debug });
  configureRunner({ dryRun: options.dryRun, recordFile: options.recordFile, timeoutMs: options.commandTimeoutMs });
  return { name, options, argv };
}

export type ScriptBody = (context: ScriptContext) => Promise<number | void>;

export function runMain(name: string, body: ScriptBody): Promise<number> {
  const context = scriptContext(name);
  const finish = (code: number) => {
    process.exitCode = code;
    return code;
  };
  return body(context).then(
    (code) => finish(code ?? 0),
    (err: unknown) => {
      reportError(err);
      return finish(exitCodeFor(err));
    },
  );
}

export function reportError(err: unknown): void {
  // Every line goes through the log writer, which masks secrets; stacks and causes only with PHOENIX_DEBUG.
  if (err instanceof PhoenixError) {
    error(err.message);
    if (err.hint) info(`hint: ${err.hint}`);
    if (process.env.PHOENIX_DEBUG === 'true' && err.cause !== undefined) {
      error(`caused by: ${err.cause instanceof Error ? (err.cause.stack ?? err.cause.message) : String(err.cause)}`);
    }
  } else if (err instanceof Error) {
    error(`${err.message}${process.env.PHOENIX_DEBUG === 'true' && err.stack ? `\n${err.stack}` : ''}`);
  } else {
    error(String(err));
  }
}

/**
 * Run `fn` under the host-wide lock. Dry-runs change nothing, so they do not
 * take it; child scripts inherit the parent's hold through PHOENIX_LOCK_TOKEN.
 */
export async function withHostLock<T>(context: ScriptContext, fn: (lock: HeldLock | undefined) => Promise<T>): Promise<T> {
  if (context.options.dryRun) return fn(undefined);
  const lock = await acquireHostLock(context.options.lockFile, {
    waitSeconds: context.options.lockWaitSeconds,
    script: context.name,
    inheritedToken: process.env.PHOENIX_LOCK_TOKEN,
  });
  try {
    return await fn(lock);
  } finally {
    lock.release();
  }
}

/**
 * The standard flags: `--dry-run` switches the runner to dry-run,
 * `--help`/`-h` prints the usage. Other words go to `positional` when the
 * script takes some, and are an error otherwise. Returns false when the
 * usage was printed and the script should end there.
 */
export function takeStandardFlags(context: ScriptContext, usage: string, positional?: string[]): boolean {
  for (const arg of context.argv) {
    if (arg === '--dry-run') {
      context.options.dryRun = true;
      configureRunner({ dryRun: true });
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(usage);
      return false;
    } else if (positional && !arg.startsWith('-')) {
      positional.push(arg);
    } else {
      throw new UsageError(`unknown ${positional ? 'option' : 'argument'} '${arg}'`, { hint: usage.split('\n')[0] });
    }
  }
  return true;
}
