// The lifecycle verbs of a guest, container or VM, written once: start,
// stop, restart, delete and the status table. Each verb works under the
// guest's own lock, looks first and changes only what differs: a template
// is never started or stopped, a running guest is not started again.
//
// What really differs between containers and VMs comes in as a
// `LifecycleKind`: how the manager looks at a guest, how it starts and stops
// one (a container is started with retries and stopped at once; a VM is
// asked to shut down and stopped after a time-out), what it removes with one
// and the words operators read, which stay those each manager always used.

import { PhoenixError } from '../core/errors.mts';
import { info, success, warn } from '../core/log.mts';
import { guestGraph } from '../config/guests.mts';
import type { PhoenixConfig } from '../config/load.mts';
import { formatStatusTable } from '../pve/guest-status.mts';
import { toolFor, type GuestKind, type GuestRef } from '../pve/guest-tool.mts';
import type { PveConfig } from '../pve/args.mts';
import { withGuestLock, type GuestSession } from './manager.mts';

/** A guest as Proxmox has it now. */
export interface LiveGuest {
  config: PveConfig;
  running: boolean;
  template: boolean;
}

/** One `config` (and a `status` unless it is a template); undefined when the guest does not exist. */
export async function inspectGuest(ref: GuestRef): Promise<LiveGuest | undefined> {
  const tool = toolFor(ref.kind);
  const config = await tool.configIfExists(ref.id);
  if (config === undefined) return undefined;
  const template = config.values.template === '1';
  const running = template ? false : (await tool.status(ref.id)) === 'running';
  return { config, running, template };
}

/** What the verbs need to know of a guest. */
export interface GuestState {
  exists: boolean;
  running: boolean;
  template: boolean;
}

export type LifecycleVerb = 'start' | 'stop' | 'restart';

/** One line for the operator: its level and its words. */
export type Note = readonly ['info' | 'warn', string];

export interface LifecycleKind<Session extends GuestSession<unknown>> {
  /** How every line names the guest: "Container 103", "VM 1002". */
  subject(id: string): string;
  /** The line before a start: "Starting container 103...". */
  starting(id: string): string;
  /** Checked before the lock is taken: the manifest must know the guest. */
  requireEntry(session: Session, id: string): void;
  /** The guest as it is now, or as a dry run assumes it. */
  inspect(session: Session, id: string): Promise<GuestState>;
  /** Why a guest that does not exist cannot be started (or stopped, where `stopAbsent` is undefined). */
  missing(id: string): string;
  /** What stop says of a guest that does not exist; undefined: it is the error `missing`. */
  stopAbsent?: (id: string) => Note;
  /** What each verb says of a template, which it leaves alone. */
  templateNote: Readonly<Record<LifecycleVerb, (id: string) => Note>>;
  /** Whether restart says `starting` before it starts the guest again, as start does. */
  announceRestart: boolean;
  /** Start a stopped guest. */
  start(session: Session, id: string): Promise<void>;
  /** Stop a running guest, for `stop` or before `restart` starts it again. */
  stop(session: Session, id: string, verb: 'stop' | 'restart'): Promise<void>;
}

function say([level, text]: Note): void {
  if (level === 'warn') warn(text);
  else info(text);
}

/**
 * Look at the guest a verb works on: undefined, after saying so, when there
 * is nothing to do (a template, which no verb touches, or an absent guest
 * that the kind lets `stop` pass over); an error when it does not exist.
 */
async function existing<S extends GuestSession<unknown>>(session: S, kind: LifecycleKind<S>, id: string, verb: LifecycleVerb): Promise<GuestState | undefined> {
  const state = await kind.inspect(session, id);
  if (!state.exists) {
    if (verb === 'stop' && kind.stopAbsent) {
      say(kind.stopAbsent(id));
      return undefined;
    }
    throw new PhoenixError(kind.missing(id));
  }
  if (state.template) {
    say(kind.templateNote[verb](id));
    return undefined;
  }
  return state;
}

/** A verb on an existing guest that is not a template, under the guest's lock. */
async function onGuest<S extends GuestSession<unknown>>(session: S, kind: LifecycleKind<S>, id: string, verb: LifecycleVerb, act: (state: GuestState) => Promise<void>): Promise<void> {
  kind.requireEntry(session, id);
  await withGuestLock(session, id, async () => {
    const state = await existing(session, kind, id, verb);
    if (state) await act(state);
  });
}

export function startGuest<S extends GuestSession<unknown>>(session: S, kind: LifecycleKind<S>, id: string): Promise<void> {
  return onGuest(session, kind, id, 'start', async (state) => {
    if (state.running) return info(`${kind.subject(id)} is already running.`);
    info(kind.starting(id));
    await kind.start(session, id);
    success(`${kind.subject(id)} started.`);
  });
}

export function stopGuest<S extends GuestSession<unknown>>(session: S, kind: LifecycleKind<S>, id: string): Promise<void> {
  return onGuest(session, kind, id, 'stop', async (state) => {
    if (!state.running) return info(`${kind.subject(id)} is already stopped.`);
    await kind.stop(session, id, 'stop');
    success(`${kind.subject(id)} stopped.`);
  });
}

export function restartGuest<S extends GuestSession<unknown>>(session: S, kind: LifecycleKind<S>, id: string): Promise<void> {
  return onGuest(session, kind, id, 'restart', async (state) => {
    if (state.running) await kind.stop(session, id, 'restart');
    if (kind.announceRestart) info(kind.starting(id));
    await kind.start(session, id);
    success(`${kind.subject(id)} restarted.`);
  });
}

/** What deleting a guest takes besides the lock and the look, each step adding what it changed to `changes`. */
export interface Removal<Session> {
  /** Said when the guest does not exist. */
  absent(id: string): string;
  /** Whether what a guest leaves on the host is cleaned up even when the guest itself is gone already. */
  cleanUpAbsent: boolean;
  stop(session: Session, id: string, changes: string[]): Promise<void>;
  destroy(session: Session, id: string, changes: string[]): Promise<void>;
  /** What the guest leaves on the host: its record, its files. */
  cleanUp(session: Session, id: string, changes: string[]): Promise<void>;
  /** The last line, from what changed. */
  done(id: string, changes: readonly string[]): string;
}

/** Stop (when running) and destroy the guest, then clean up after it. Returns what changed. */
export async function deleteGuest<S extends GuestSession<unknown>>(session: S, kind: LifecycleKind<S>, id: string, removal: Removal<S>): Promise<string[]> {
  kind.requireEntry(session, id);
  return withGuestLock(session, id, async () => {
    const changes: string[] = [];
    const state = await kind.inspect(session, id);
    if (!state.exists) {
      info(removal.absent(id));
      if (!removal.cleanUpAbsent) return changes;
    } else {
      if (state.running) await removal.stop(session, id, changes);
      await removal.destroy(session, id, changes);
    }
    await removal.cleanUp(session, id, changes);
    success(removal.done(id, changes));
    return changes;
  });
}

/** `status`: the table `phoenix status` prints, one `status` call per guest. */
export async function guestStatusTable(config: PhoenixConfig, kind: GuestKind, ids: readonly string[]): Promise<string> {
  const tool = toolFor(kind);
  const states = new Map(await Promise.all(ids.map(async (id) => [id, await tool.status(id)] as const)));
  return formatStatusTable(guestGraph(config), config, ids, states);
}
