// phoenix-cli's decisions, as pure functions: which verbs exist, how the
// arguments are read, and which manager calls a verb turns into. Nothing
// here runs a command; lib/cli/executor.mts applies the plan. That split is
// what lets the tests check every verb's plan without a host, and what
// `--dry-run` prints.

import { UsageError } from '../core/errors.mts';
import { defineArgs, parseArgs, type CommandSpec, type ParsedArgs } from '../core/args.mts';
import { resolveOrder, waves, bootOrder, assertKnown, type Graph, type GuestKind } from '../config/graph.mts';

export const VERBS = ['setup', 'create', 'converge', 'delete', 'start', 'stop', 'restart', 'status', 'sync', 'health-check', 'swarm', 'LetsGo'] as const;
export type Verb = (typeof VERBS)[number];

export const MANAGER: Record<GuestKind, string> = {
  lxc: 'managers/lxc-manager.sh',
  vm: 'managers/vm-manager.sh',
};

export function usage(): string {
  return `Usage: phoenix <verb> [targets...] [--dry-run] [--reset-portainer]

Verbs:
  LetsGo                    create every guest in dependency order, start them in
                            boot order, then run 'sync all' if a guest asks for it
  create <id...>            create guests, creating missing dependencies first
  converge <id...>          re-apply the manifest to guests and all their dependencies
  start <id...>             start guests (and stopped dependencies; never templates)
  stop <id...>              stop guests (only those named)
  restart <id...>           restart guests (only those named)
  status <id...>            show each guest's state
  delete <id...>            delete guests, in the order given
  sync all                  bring the whole environment to the manifests' state
  sync stack <name> to <vmid>
  swarm <action> [args...]  init | join | deploy | rm | status
  setup [--wipe-disks]      set up the hypervisor itself
  health-check <vmid...>    check VM foundations

Options:
  --dry-run                 print every change instead of making it
  --reset-portainer         (sync) remove and redeploy Portainer
  --help                    this text

Environment: PHOENIX_BASE_DIR, HYPERVISOR_CONFIG_FILE, LXC_CONFIG_FILE,
VM_CONFIG_FILE, PHOENIX_DEBUG, PHOENIX_LEGACY_DIR, PHOENIX_PARALLEL, MAIN_LOG_FILE.
See docs/ for the rest.
`;
}

const targets = { positionals: [{ name: 'targets', variadic: true, missing: (verb: string | undefined) => `Verb '${verb}' requires at least one target.` }] } as const;

/**
 * phoenix-cli's command line, as the bash read it: `--dry-run` and
 * `--reset-portainer` anywhere, then the verb and its targets. The words of
 * `swarm` and `setup` go on untouched to the manager that declares them.
 */
export const CLI_ARGS = defineArgs({
  name: 'phoenix-cli',
  usage: usage(),
  dryRun: true,
  flags: { 'reset-portainer': { type: 'boolean' } },
  commands: {
    setup: { forward: true },
    create: targets,
    converge: targets,
    delete: targets,
    start: targets,
    stop: targets,
    restart: targets,
    status: targets,
    sync: targets,
    'health-check': targets,
    swarm: { ...targets, forward: true },
    LetsGo: { tooMany: (words: readonly string[]) => `LetsGo takes no targets; it builds every guest in the manifests (got: ${words.join(' ')})` },
  } satisfies Record<Verb, CommandSpec>,
  invalidCommand: (verb) => (verb === undefined ? 'no verb given' : `Invalid verb '${verb}'.`),
  usageWhenEmpty: true,
});

export interface CliArgs {
  verb: Verb | undefined;
  targets: string[];
  dryRun: boolean;
  resetPortainer: boolean;
  help: boolean;
}

/** The declared command line as phoenix-cli works with it. */
export function cliArgs(args: ParsedArgs<typeof CLI_ARGS>): CliArgs {
  return { verb: args.command, targets: args.operands, dryRun: args.dryRun, resetPortainer: args.flags['reset-portainer'], help: false };
}

export function parseCliArgs(argv: readonly string[]): CliArgs {
  const parsed = parseArgs(CLI_ARGS, argv);
  if (parsed.help) return { verb: undefined, targets: [], dryRun: false, resetPortainer: false, help: true };
  return cliArgs(parsed);
}

export interface Step {
  /** Upstream name of the script to run, e.g. managers/lxc-manager.sh. */
  script: string;
  args: string[];
  guest?: string;
  /**
   * Steps with the same key never run at the same time. Proxmox locks a
   * container for the whole of a clone (`CT is locked (disk)`), so two
   * clones of one template must take turns.
   */
  serialKey?: string;
}

export interface Phase {
  name: string;
  /** Steps in a wave may run in parallel; waves run one after another. */
  waves: Step[][];
  /** Guests passed over, with the reason (shown to the operator). */
  skipped: Array<{ guest: string; reason: string }>;
  /** A follow-up the run can do without: dropped with a warning when its script is missing. */
  optional?: boolean;
}

function managerStep(graph: Graph, verb: string, id: string): Step {
  const node = graph.get(id);
  if (!node) throw new UsageError(`unknown guest id: ${id}`);
  const step: Step = { script: MANAGER[node.kind], args: [verb, id], guest: id };
  // The clone source is the first edge; only LXC clones lock their source
  // (a VM clone of a stopped template takes a shared lock).
  const source = node.edges[0];
  if ((verb === 'create' || verb === 'converge') && node.kind === 'lxc' && source !== undefined && graph.get(source)?.kind === 'lxc' && graph.get(source)?.isTemplate) {
    step.serialKey = `clone-source:${source}`;
  }
  return step;
}

/**
 * The manager calls for a guest verb.
 * - create: every missing guest of the dependency chain, then each target
 *   (targets always get the full create; managers make it idempotent).
 * - converge: create on the whole chain.
 * - start: the targets and their stopped dependencies, never templates.
 * - stop / restart: only the targets (stop in reverse dependency order).
 * - delete: only the targets, in the order given.
 */
export function planGuestVerb(verb: 'create' | 'converge' | 'start' | 'stop' | 'restart' | 'delete', targets: readonly string[], graph: Graph, existing: ReadonlySet<string> = new Set(), running: ReadonlySet<string> = new Set()): Phase {
  assertKnown(graph, targets);
  const targetSet = new Set(targets);
  const skipped: Phase['skipped'] = [];

  if (verb === 'delete') {
    return { name: 'delete', waves: targets.map((id) => [managerStep(graph, 'delete', id)]), skipped };
  }

  const chain = resolveOrder(graph, targets);
  let ids: string[];
  switch (verb) {
    case 'create':
      ids = chain.filter((id) => {
        if (targetSet.has(id) || !existing.has(id)) return true;
        skipped.push({ guest: id, reason: 'dependency already exists' });
        return false;
      });
      break;
    case 'converge':
      ids = chain;
      break;
    case 'start':
      ids = chain.filter((id) => {
        const node = graph.get(id);
        if (node?.isTemplate) {
          if (targetSet.has(id)) skipped.push({ guest: id, reason: 'templates cannot be started' });
          return false;
        }
        if (targetSet.has(id)) return true;
        if (running.has(id)) return false;
        if (!existing.has(id)) {
          skipped.push({ guest: id, reason: 'dependency does not exist (create it first)' });
          return false;
        }
        return true;
      });
      break;
    case 'stop':
    case 'restart':
      ids = chain.filter((id) => {
        if (!targetSet.has(id)) return false;
        if (graph.get(id)?.isTemplate) {
          skipped.push({ guest: id, reason: `templates cannot be ${verb === 'stop' ? 'stopped' : 'restarted'}` });
          return false;
        }
        return true;
      });
      if (verb === 'stop') ids.reverse();
      break;
  }

  const grouped = verb === 'create' || verb === 'converge' || verb === 'start' ? waves(graph, ids) : ids.map((id) => [id]);
  return { name: verb, waves: grouped.map((wave) => wave.map((id) => managerStep(graph, verb, id))), skipped };
}

/**
 * LetsGo: create every guest in dependency waves, start the non-templates
 * in boot order, then one `sync all` if any guest asks for it (the bash ran
 * it after each such guest's start, and crashed before the first). The sync
 * is part of the plan: its script must be there before anything starts.
 */
export function planLetsGo(graph: Graph, allIds: readonly string[], syncRequested: boolean): Phase[] {
  const creation = resolveOrder(graph, allIds);
  const phases: Phase[] = [
    { name: 'create', waves: waves(graph, creation).map((wave) => wave.map((id) => managerStep(graph, 'create', id))), skipped: [] },
    { name: 'start', waves: bootOrder(graph, allIds).map((id) => [managerStep(graph, 'start', id)]), skipped: [] },
  ];
  if (syncRequested) phases.push({ name: 'sync', waves: [[{ script: 'managers/portainer-manager.sh', args: ['sync', 'all'] }]], skipped: [] });
  return phases;
}
