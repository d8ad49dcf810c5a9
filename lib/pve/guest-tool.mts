// What `pct` (containers) and `qm` (VMs) have in common, written once: one
// factory builds the wrappers both tools answer the same way (status,
// config, set, start, stop, snapshots, …), so pct.mts and qm.mts hold only
// what is their own (pct exec/push/pull, the guest agent of qm). Read-only
// calls go through `query`, so dry-run still answers them; every other call
// is a change and goes through `run`. Where the tools differ, the difference
// is data (TRAITS), not a second copy of the code.
//
// Shared code names a guest by a `GuestRef` (kind and id) and gets its tool
// from `toolFor(kind)`, instead of keeping a ctid path and a vmid path.

import { run, query, type CommandResult, type CommandSpec } from '../core/runner.mts';
import { toPveArgs, parseConfigLines, parseSnapshotList, type OptionMap, type PveConfig } from './args.mts';
import type { GuestKind } from '../config/graph.mts';

export type { GuestKind } from '../config/graph.mts';

export type GuestStatus = 'running' | 'stopped' | 'absent';

/** How one call is run, where a caller needs more than the defaults. */
export type CallOptions = Pick<CommandSpec, 'allowFailure' | 'timeoutMs' | 'retry'>;

export type GuestToolName = 'pct' | 'qm';

/** One guest, container or VM, for code that works on either. */
export interface GuestRef {
  readonly kind: GuestKind;
  readonly id: string;
}

interface ToolTraits {
  program: GuestToolName;
  kind: GuestKind;
  /** How the tool says the guest does not exist (the rest of its refusals are real errors). */
  notFound: RegExp;
}

const TRAITS: Readonly<Record<GuestToolName, ToolTraits>> = {
  pct: { program: 'pct', kind: 'lxc', notFound: /does not exist|no such container|not found/i },
  qm: { program: 'qm', kind: 'vm', notFound: /does not exist|no such vm|not found/i },
};

/** The wrappers pct and qm share; `id` is the CTID or the VMID. */
export interface GuestTool {
  readonly program: GuestToolName;
  readonly kind: GuestKind;
  status(id: string): Promise<GuestStatus>;
  /** One `status`, for callers that only need to know whether the guest runs now: absent or unanswered counts as not running. */
  isRunning(id: string): Promise<boolean>;
  exists(id: string): Promise<boolean>;
  config(id: string): Promise<PveConfig>;
  /** The guest's config, or undefined when it does not exist; any other failure throws with the tool's own words. */
  configIfExists(id: string): Promise<PveConfig | undefined>;
  isTemplate(id: string): Promise<boolean>;
  clone(source: string, id: string, options?: OptionMap, call?: CallOptions): Promise<CommandResult>;
  /** One `set`: the options given, and the keys in `remove` deleted (`--delete a,b`) in the same call. */
  set(id: string, options: OptionMap, remove?: readonly string[]): Promise<CommandResult>;
  start(id: string, call?: CallOptions): Promise<CommandResult>;
  stop(id: string, call?: CallOptions): Promise<CommandResult>;
  /** Ask the guest to shut down; with `forceStop`, Proxmox stops it when it has not after `timeoutSeconds`. */
  shutdown(id: string, timeoutSeconds?: number, options?: { forceStop?: boolean }, call?: CallOptions): Promise<CommandResult>;
  reboot(id: string): Promise<CommandResult>;
  destroy(id: string, options?: { purge?: boolean; unreferencedDisks?: boolean }): Promise<CommandResult>;
  /** Lift a `lock:` mark a killed Proxmox task left on the guest. */
  unlock(id: string): Promise<CommandResult>;
  template(id: string): Promise<CommandResult>;
  resize(id: string, disk: string, size: string, call?: CallOptions): Promise<CommandResult>;
  snapshot(id: string, name: string, description?: string, call?: CallOptions): Promise<CommandResult>;
  /** Snapshot names; "current" (the live state) is not one. */
  listSnapshots(id: string): Promise<string[]>;
  deleteSnapshot(id: string, name: string, options?: { force?: boolean }): Promise<CommandResult>;
  /** A snapshot's `snapstate` (`prepare`, `delete`) while a snapshot task is unfinished; undefined once it is whole. */
  snapshotState(id: string, name: string): Promise<string | undefined>;
  rollback(id: string, name: string): Promise<CommandResult>;
  /** Start unless already running (callers decide what to do with templates, which cannot run). */
  ensureRunning(id: string): Promise<'started' | 'unchanged'>;
  /** Stop unless already stopped. */
  ensureStopped(id: string): Promise<'stopped' | 'unchanged'>;
}

/** Build the shared wrappers of one tool. */
export function guestTool(name: GuestToolName): GuestTool {
  const traits = TRAITS[name];
  const change = (args: readonly string[], call: CallOptions = {}): Promise<CommandResult> => run({ cmd: traits.program, args, ...call });

  /** A read-only call that may name an absent guest: undefined then; any other failure is asked once more, to throw with the tool's own message. */
  const askUnlessAbsent = async (args: readonly string[]): Promise<string | undefined> => {
    let result = await query({ cmd: traits.program, args, allowFailure: true, quiet: true });
    if (result.code !== 0) {
      if (traits.notFound.test(result.stderr)) return undefined;
      result = await query({ cmd: traits.program, args });
    }
    return result.stdout;
  };
  const read = async (args: readonly string[]): Promise<string> => (await query({ cmd: traits.program, args, quiet: true })).stdout;

  const tool: GuestTool = {
    program: traits.program,
    kind: traits.kind,
    async status(id) {
      const answer = await askUnlessAbsent(['status', id]);
      if (answer === undefined) return 'absent';
      return /status:\s*running/.test(answer) ? 'running' : 'stopped';
    },
    async isRunning(id) {
      const result = await query({ cmd: traits.program, args: ['status', id], allowFailure: true, quiet: true });
      return result.code === 0 && /status: running/.test(result.stdout);
    },
    async exists(id) {
      return (await tool.status(id)) !== 'absent';
    },
    async config(id) {
      return parseConfigLines(await read(['config', id]));
    },
    async configIfExists(id) {
      const answer = await askUnlessAbsent(['config', id]);
      return answer === undefined ? undefined : parseConfigLines(answer);
    },
    async isTemplate(id) {
      return (await tool.config(id)).values.template === '1';
    },
    clone: (source, id, options = {}, call = {}) => change(['clone', source, id, ...toPveArgs(options)], call),
    set: (id, options, remove = []) => change(['set', id, ...toPveArgs(options), ...(remove.length > 0 ? ['--delete', remove.join(',')] : [])]),
    start: (id, call = {}) => change(['start', id], call),
    stop: (id, call = {}) => change(['stop', id], call),
    shutdown: (id, timeoutSeconds, options = {}, call = {}) => change(['shutdown', id, ...toPveArgs({ timeout: timeoutSeconds, forceStop: options.forceStop })], call),
    reboot: (id) => change(['reboot', id]),
    destroy: (id, options = {}) => change(['destroy', id, ...toPveArgs({ purge: options.purge, 'destroy-unreferenced-disks': options.unreferencedDisks })]),
    unlock: (id) => change(['unlock', id]),
    template: (id) => change(['template', id]),
    resize: (id, disk, size, call = {}) => change(['resize', id, disk, size], call),
    snapshot: (id, name, description, call = {}) => change(['snapshot', id, name, ...toPveArgs({ description })], call),
    // Lines look like "`-> name   2025-01-01 10:00:00   description"; "current" is the live state.
    listSnapshots: async (id) => parseSnapshotList(await read(['listsnapshot', id])),
    deleteSnapshot: (id, name, options = {}) => change(['delsnapshot', id, name, ...toPveArgs({ force: options.force })]),
    snapshotState: async (id, name) => parseConfigLines(await read(['config', id, '--snapshot', name])).values.snapstate,
    rollback: (id, name) => change(['rollback', id, name]),
    async ensureRunning(id) {
      if ((await tool.status(id)) === 'running') return 'unchanged';
      await tool.start(id);
      return 'started';
    },
    async ensureStopped(id) {
      if ((await tool.status(id)) !== 'running') return 'unchanged';
      await tool.stop(id);
      return 'stopped';
    },
  };
  return tool;
}

const TOOLS: Readonly<Record<GuestKind, GuestTool>> = { lxc: guestTool('pct'), vm: guestTool('qm') };

/** The tool of a kind of guest: pct for containers, qm for VMs. */
export function toolFor(kind: GuestKind): GuestTool {
  return TOOLS[kind];
}
