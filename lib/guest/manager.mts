// What lxc-manager and vm-manager share: the session every action of one run
// works with (options, manifests, the host lock's token, what a dry run
// assumes), the helpers around it (guest and host-step locks, child scripts,
// a failed step as an operator's error), and the run itself: load and check
// the manifests, make the session, answer `status` without the lock, do the
// rest under the host lock. lib/lxc/manager.mts and lib/vm/manager.mts say
// what differs.

import { CommandError, PhoenixError } from '../core/errors.mts';
import { type PhoenixOptions, childEnv } from '../core/env.mts';
import { type ConfigPaths, type PhoenixConfig, configPathsEnv, loadConfig, resolveConfigPaths } from '../config/load.mts';
import { type ScriptContext, withHostLock } from '../core/main.mts';
import { debug, info, warn } from '../core/log.mts';
import { guestLockPath, hostStepsLockPath, withLock } from './locks.mts';
import { isDryRun } from '../core/context.mts';
import { resolveScript, runScript } from '../core/bridge.mts';

/** certificate-renewal-manager, which both managers run before they create a guest. */
export const CERTIFICATE_SCRIPT = 'managers/certificate-renewal-manager.sh';

/** How long siblings under one parent run wait for each other's guest or host steps. */
export const SIBLING_WAIT_S = 3600;

/** What every action of one manager run shares; `View` is how the manager sees one guest. */
export interface GuestSession<View> {
  /** The upstream script name (log prefix, lock owner). */
  script: string;
  options: PhoenixOptions;
  config: PhoenixConfig;
  /** Token of the host lock held by this run or its parent, handed to child scripts. */
  lockToken: string | undefined;
  /**
   * True when this process runs under a parent's host lock, so sibling
   * processes may be working on other guests right now: then clones of one
   * source and the host-wide steps take turns.
   */
  siblings: boolean;
  /** What a dry-run assumes about guests it only pretended to change. */
  assumed: Map<string, View>;
  /** The certificate run happens once per run. */
  certificatesDone: boolean;
}

/** What a session is made from. */
export type SessionInit = Pick<GuestSession<unknown>, 'script' | 'options' | 'config' | 'lockToken' | 'siblings'>;

/** The parts of a session the helpers below read. */
type SessionBase = Pick<GuestSession<unknown>, 'script' | 'options' | 'config' | 'lockToken' | 'siblings'>;

export function newGuestSession<View>(init: SessionInit): GuestSession<View> {
  return { ...init, assumed: new Map(), certificatesDone: false };
}

export function lockOptions(session: SessionBase, waitSeconds = session.options.lockWaitSeconds) {
  return { waitSeconds, script: session.script, enabled: !isDryRun() };
}

/** Work on one guest while no other process does: its own lock file next to the host lock. */
export function withGuestLock<T>(session: SessionBase, id: string, fn: () => Promise<T>, waitSeconds = session.options.lockWaitSeconds): Promise<T> {
  return withLock(guestLockPath(session.options.lockFile, id), lockOptions(session, waitSeconds), fn);
}

/**
 * A host-wide step (firewall, certificate run). Siblings under the same
 * parent lock would otherwise run it at the same time, so they take turns.
 */
export async function hostStep<T>(session: SessionBase, what: string, fn: () => Promise<T>): Promise<T> {
  if (!session.siblings) return fn();
  debug(`waiting for the host-wide ${what} step`);
  return withLock(hostStepsLockPath(session.options.lockFile), lockOptions(session, SIBLING_WAIT_S), fn);
}

/** The environment of a child script: the options, the manifests' paths, the host lock's token. */
export function childEnvironment(session: SessionBase): Record<string, string> {
  return childEnv(session.options, { ...configPathsEnv(session.config.paths), ...(session.lockToken ? { PHOENIX_LOCK_TOKEN: session.lockToken } : {}) });
}

export async function runChild(session: SessionBase, name: string, args: readonly string[]): Promise<number> {
  const result = await runScript(name, args, {
    legacyDir: session.options.legacyDir,
    useLegacy: session.options.useLegacy,
    env: childEnvironment(session),
  });
  return result.code;
}

export function scriptExists(session: SessionBase, name: string): boolean {
  try {
    resolveScript(name, { legacyDir: session.options.legacyDir, useLegacy: session.options.useLegacy });
    return true;
  } catch {
    return false;
  }
}

/** Whether certificate-renewal-manager can run here; a missing one is a warning, not an error. */
export function certificateManagerFound(session: SessionBase): boolean {
  if (scriptExists(session, CERTIFICATE_SCRIPT)) return true;
  warn(`${CERTIFICATE_SCRIPT} has neither a port nor a legacy copy here; skipping the certificate run (certificates are issued once it is installed)`);
  return false;
}

/** Fail before any change when a script the sequence will need is nowhere to be found. */
export function requireScript(session: SessionBase, name: string, what: string): void {
  try {
    resolveScript(name, { legacyDir: session.options.legacyDir, useLegacy: session.options.useLegacy });
  } catch (err) {
    const reason = err instanceof PhoenixError ? err.message : String(err);
    throw new PhoenixError(`${what} not found: ${reason}`, err instanceof PhoenixError && err.hint ? { hint: err.hint } : {});
  }
}

/**
 * A step whose failure ends the run with exit 1 (the bash's log_fatal), its
 * message led by what failed, the reason and the hint kept. By default a
 * failed command is such a failure; `fatal` widens that.
 */
export async function fatalStep<T>(what: string, fn: () => Promise<T>, fatal: (err: PhoenixError) => boolean = (err) => err instanceof CommandError): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PhoenixError && fatal(err)) {
      throw new PhoenixError(`${what}: ${err.message}`, { cause: err, ...(err.hint === undefined ? {} : { hint: err.hint }) });
    }
    throw err;
  }
}

// ---------------------------------------------------------------- the run

/** One manager run, as lib/lxc/manager.mts or lib/vm/manager.mts describes it. */
export interface ManagerRun<Session extends SessionBase, Verb extends string> {
  verb: Verb;
  /** The guest ids of the command line (several for `status`). */
  ids: readonly string[];
  /** Manifests the command line names (vm-manager's --config). */
  paths?: Partial<ConfigPaths>;
  /** Why an id cannot be worked on (its manifest lacks it), checked before anything runs; undefined when it can. */
  unknown(config: PhoenixConfig, id: string, verb: Verb): string | undefined;
  newSession(init: SessionInit): Session;
  /** The state table `status` prints on stdout; it takes no lock. */
  status(session: Session, ids: readonly string[]): Promise<string>;
  /** Every other verb, on the first id, under the host lock. */
  verbs: Readonly<Record<Exclude<Verb, 'status'>, (session: Session, id: string) => Promise<unknown>>>;
  /** lxc-manager: any failed command ends the run with exit 1, whatever the tool returned, as the bash's log_fatal did. */
  failedCommandIsFatal: boolean;
}

export async function runGuestManager<Session extends SessionBase, Verb extends string>(context: ScriptContext, job: ManagerRun<Session, Verb>): Promise<number> {
  if (isDryRun()) info('--- DRY RUN MODE: nothing will be changed ---');

  // Every manifest problem stops here, before the first command.
  const config = loadConfig(resolveConfigPaths(job.paths ?? {}));
  void config.hypervisor;
  config.validateReferences();
  for (const id of job.ids) {
    const unknown = job.unknown(config, id, job.verb);
    if (unknown !== undefined) throw new PhoenixError(unknown);
  }

  const session = job.newSession({ script: context.name, options: context.options, config, lockToken: undefined, siblings: false });
  if (job.verb === 'status') {
    process.stdout.write(await job.status(session, job.ids));
    return 0;
  }
  const act = job.verbs[job.verb as Exclude<Verb, 'status'>];
  try {
    await withHostLock(context, async (lock) => {
      session.lockToken = lock?.token;
      session.siblings = lock !== undefined && !lock.owned;
      await act(session, job.ids[0] as string);
    });
  } catch (err) {
    if (job.failedCommandIsFatal && err instanceof CommandError) throw new PhoenixError(err.message, { cause: err });
    throw err;
  }
  return 0;
}
