// How every Phoenix script starts and ends. A script hands `runMain` the
// declaration of its command line (lib/core/args.mts) and its body; runMain sets
// up logging from the environment, reads the arguments (printing the usage
// for --help, refusing what the declaration refuses), runs the body in the
// run context (lib/core/context.mts: dry-run from --dry-run or PHOENIX_DRY_RUN),
// and turns the outcome into the exit status the bash original's callers
// expect. This is the only place that decides an exit code, so no module
// calls process.exit.

import { resolveOptions, type PhoenixOptions } from './env.mts';
import { configureLog, error, guardProcessOutput, info } from './log.mts';
import { isDryRun, withRunContext } from './context.mts';
import { exitCodeFor, PhoenixError, UsageError } from './errors.mts';
import { acquireHostLock, type HeldLock } from './lock.mts';
import { parseArgs, type ArgSpec, type ParsedArgs } from './args.mts';

export interface ScriptContext {
  /** The upstream name the script logs under, e.g. `lxc-manager.sh`. */
  name: string;
  options: PhoenixOptions;
}

export function scriptContext(name: string, env = process.env): ScriptContext {
  const options = resolveOptions(env);
  // From here on nothing the script prints can show a registered secret.
  guardProcessOutput();
  configureLog({ script: name, file: options.logFile, debug: options.debug });
  return { name, options };
}

export type ScriptBody<S extends ArgSpec> = (args: ParsedArgs<S>, context: ScriptContext) => Promise<number | void>;

/**
 * Run a script: `spec` declares its command line, `body` does the work
 * with the arguments read. The form with a bare name reads no arguments at
 * all; it is for test drivers, never for a script under scripts/.
 */
export function runMain<const S extends ArgSpec>(spec: S, body: ScriptBody<S>): Promise<number>;
export function runMain(name: string, body: (context: ScriptContext) => Promise<number | void>): Promise<number>;
export function runMain(specOrName: ArgSpec | string, body: ScriptBody<ArgSpec> | ((context: ScriptContext) => Promise<number | void>)): Promise<number> {
  const spec = typeof specOrName === 'string' ? undefined : specOrName;
  const context = scriptContext(spec?.name ?? (specOrName as string));
  const finish = (code: number) => {
    process.exitCode = code;
    return code;
  };
  const start = async (): Promise<number | void> => {
    if (!spec) return (body as (context: ScriptContext) => Promise<number | void>)(context);
    const argv = process.argv.slice(2);
    let parsed;
    try {
      parsed = parseArgs(spec, argv);
    } catch (err) {
      // A bare `phoenix`: the operator most likely wants the usage, as the bash printed it.
      if (err instanceof UsageError && spec.usageWhenEmpty && argv.every((word) => word.startsWith('-'))) process.stderr.write(spec.usage);
      throw err;
    }
    if (parsed.help) {
      process.stdout.write(spec.usage);
      return 0;
    }
    const args = parsed;
    return withRunContext({ dryRun: args.dryRun || isDryRun() }, () => (body as ScriptBody<ArgSpec>)(args, context));
  };
  return start().then(
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
  if (isDryRun()) return fn(undefined);
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
