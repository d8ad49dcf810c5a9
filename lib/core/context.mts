// The run context: what every command and file write of one run needs to
// know about that run, namely whether it is a dry run, where its commands
// are recorded, how long a command may take, and which guest is being
// worked on. It lives in an AsyncLocalStorage store, so work done for
// several guests at once in one process each sees its own context through
// every `await`, and nothing is copied into option objects.
//
// A script sets it once, from its flags and the environment, by running its
// body inside `withRunContext`; code below reads it with `runContext()` or
// `isDryRun()`. Outside any scope the context comes from the environment
// (PHOENIX_DRY_RUN, PHOENIX_RECORD, PHOENIX_COMMAND_TIMEOUT).

import { AsyncLocalStorage } from 'node:async_hooks';

/** One command as the record keeps it (arguments masked, stdin by size only). */
export interface RecordedCommand {
  cmd: string;
  args: string[];
  mutating: boolean;
  skipped: boolean;
  code: number | null;
  ms: number;
  stdinBytes?: number;
}

/** What a process has run or planned; shared by every context derived in that process. */
export interface Recorder {
  readonly commands: RecordedCommand[];
  spawned: number;
}

export interface RunContext {
  /** Changing commands and file writes are printed, not done; reads still run. */
  readonly dryRun: boolean;
  /** JSON-lines file every command is appended to (PHOENIX_RECORD). */
  readonly recordFile: string | undefined;
  /** Default time limit of a command in ms; 0 means none. */
  readonly timeoutMs: number;
  /** The guest this work is for, when there is one (shown in log lines). */
  readonly guest?: string;
  readonly recorder: Recorder;
}

const store = new AsyncLocalStorage<RunContext>();
let fromEnvironment: RunContext | undefined;

/** The context a process starts with, from its environment (a parent Phoenix script passes its own on). */
export function contextFromEnvironment(env: NodeJS.ProcessEnv = process.env): Omit<RunContext, 'recorder'> {
  const dry = (env.PHOENIX_DRY_RUN ?? '').trim().toLowerCase();
  const record = env.PHOENIX_RECORD?.trim() ? env.PHOENIX_RECORD : undefined;
  const limit = Number(env.PHOENIX_COMMAND_TIMEOUT ?? '');
  const seconds = env.PHOENIX_COMMAND_TIMEOUT?.trim() && Number.isFinite(limit) && limit >= 0 ? limit : 600;
  return { dryRun: ['true', '1', 'yes'].includes(dry), recordFile: record, timeoutMs: seconds * 1000 };
}

/** The same settings as environment variables, for a child script (the inverse of contextFromEnvironment). */
export function contextEnvironment(context: RunContext = runContext()): Record<string, string> {
  return {
    PHOENIX_DRY_RUN: String(context.dryRun),
    PHOENIX_COMMAND_TIMEOUT: String(context.timeoutMs / 1000),
    ...(context.recordFile !== undefined ? { PHOENIX_RECORD: context.recordFile } : {}),
  };
}

function environmentContext(): RunContext {
  fromEnvironment ??= { ...contextFromEnvironment(), recorder: { commands: [], spawned: 0 } };
  return fromEnvironment;
}

/** The context of the work in progress. */
export function runContext(): RunContext {
  return store.getStore() ?? environmentContext();
}

export function isDryRun(): boolean {
  return runContext().dryRun;
}

export type ContextUpdate = Partial<Pick<RunContext, 'dryRun' | 'recordFile' | 'timeoutMs' | 'guest'>>;

/**
 * Run `fn` (and everything it awaits) in the current context changed by
 * `update`. The recorder stays the process's own. Fields left undefined in
 * `update` keep their current value.
 */
export function withRunContext<T>(update: ContextUpdate, fn: () => T): T {
  const current = runContext();
  const defined = Object.fromEntries(Object.entries(update).filter(([, v]) => v !== undefined)) as ContextUpdate;
  return store.run({ ...current, ...defined, recorder: current.recorder }, fn);
}

/**
 * Change the context of the whole process, outside any `withRunContext`
 * scope. Only for code that has no body to wrap: the REPL-like test files
 * that call lib functions directly. Scripts use `withRunContext`.
 */
export function setProcessContext(update: ContextUpdate): void {
  const current = environmentContext();
  const defined = Object.fromEntries(Object.entries(update).filter(([, v]) => v !== undefined)) as ContextUpdate;
  fromEnvironment = { ...current, ...defined, recorder: current.recorder };
}
