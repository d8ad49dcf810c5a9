// phoenix-cli's run, after its arguments are parsed: the manifests
// validated once, the verb planned into phases of manager calls
// (orchestrator.mts), every script the plan names resolved before the first
// runs, then the phases executed under the host lock (executor.mts), each
// manager as the port where one exists and the bash original otherwise.
// `status` is answered here from the guests' states, without the lock.

import { withHostLock, reportError, type ScriptContext } from '../core/main.mts';
import { planGuestVerb, planLetsGo, type CliArgs, type Phase, type Step } from './orchestrator.mts';
import { executePhases } from './executor.mts';
import { resolveConfigPaths, configPathsEnv, loadConfig, type PhoenixConfig } from '../config/load.mts';
import { guestGraph, allGuestIds } from '../config/guests.mts';
import { runScript, resolveScript } from '../core/bridge.mts';
import { childEnv } from '../core/env.mts';
import { isDryRun } from '../core/context.mts';
import { recordedCommands } from '../core/runner.mts';
import { info, warn } from '../core/log.mts';
import { UsageError, PhoenixError, exitCodeFor } from '../core/errors.mts';
import { guestStates, formatStatusTable } from '../pve/guest-status.mts';
import { assertKnown, resolveOrder, type Graph } from '../config/graph.mts';

/** phoenix-cli's run: the verb planned into phases of manager calls, executed under the host lock. */
export async function runPhoenixCli(args: CliArgs, context: ScriptContext): Promise<number> {
  const { options } = context;
  if (isDryRun()) info('--- DRY RUN MODE ENABLED ---');
  if (args.resetPortainer) {
    options.resetPortainer = true;
    info('--- PORTAINER RESET FLAG DETECTED ---');
  }
  if (options.simulatedHost) info(`running against the simulated Proxmox host in ${options.simulatedHost} (no real Proxmox here)`);

  const paths = resolveConfigPaths();
  const config = loadConfig(paths);
  // Everything the verb needs is validated before anything changes.
  void config.hypervisor;
  const verb = args.verb as NonNullable<typeof args.verb>;
  const needsGuests = verb !== 'setup';
  if (needsGuests) config.validateReferences();
  const graph = needsGuests ? guestGraph(config) : undefined;

  const runStep = async (step: Step): Promise<number> => {
    const env = childEnv(options, { ...configPathsEnv(paths), PHOENIX_LOCK_TOKEN: lockToken });
    try {
      const result = await runScript(step.script, step.args, { legacyDir: options.legacyDir, useLegacy: options.useLegacy, env });
      return result.code;
    } catch (err) {
      reportError(err);
      return exitCodeFor(err);
    }
  };
  let lockToken: string | undefined;

  if (verb === 'status') return printStatus(graph as Graph, config, args.targets);

  return withHostLock(context, async (lock) => {
    lockToken = lock?.token;
    const phases = availablePhases(await planFor(verb, args.targets, graph, config, args.resetPortainer), context);
    const result = await executePhases(phases, {
      runStep,
      concurrency: options.parallel,
      exclusive: (step) => isLegacy(step, context),
    });
    if (isDryRun()) {
      const planned = recordedCommands().filter((c) => c.skipped).length;
      info(`dry run finished: nothing was changed${planned ? `; ${planned} command${planned === 1 ? '' : 's'} would have run` : ''}`);
    }
    if (verb === 'LetsGo' && !result.failed) info("'LetsGo' command complete.");
    return result.failed ? result.failed.code : 0;
  });
}

async function planFor(verb: string, targets: string[], graph: Graph | undefined, config: PhoenixConfig, resetPortainer: boolean): Promise<Phase[]> {
  const single = (name: string, step: Step): Phase[] => [{ name, waves: [[step]], skipped: [] }];
  switch (verb) {
    case 'setup':
      return single('setup', { script: 'managers/hypervisor-manager.sh', args: ['--config', config.paths.hypervisor, ...targets] });
    case 'sync':
      // The flag travels both ways: as the argument portainer-manager parses
      // and as PHOENIX_RESET_PORTAINER (the bash phoenix-cli stripped the
      // flag, so `phoenix sync all --reset-portainer` never reset anything).
      return single('sync', { script: 'managers/portainer-manager.sh', args: ['sync', ...targets, ...(resetPortainer ? ['--reset-portainer'] : [])] });
    case 'swarm':
      return single('swarm', { script: 'managers/swarm-manager.sh', args: targets });
    case 'health-check':
      return [{ name: 'health-check', waves: targets.map((id) => [{ script: 'health_checks/check_vm_foundation.sh', args: [id], guest: id }]), skipped: [] }];
    case 'LetsGo': {
      const g = graph as Graph;
      const ids = allGuestIds(config);
      const wantsSync = ids.some((id) => config.guest(id)?.config.trigger_sync_on_completion === true);
      return planLetsGo(g, ids, wantsSync);
    }
    case 'create':
    case 'converge':
    case 'start':
    case 'stop':
    case 'restart':
    case 'delete': {
      const g = graph as Graph;
      // Unknown ids and cycles fail here, before the first query to the host.
      const chain = verb === 'delete' ? (assertKnown(g, targets), targets) : resolveOrder(g, targets);
      const states = verb === 'create' || verb === 'start' ? await guestStates(g, chain) : new Map();
      const existing = new Set([...states].filter(([, s]) => s !== 'absent').map(([id]) => id));
      const running = new Set([...states].filter(([, s]) => s === 'running').map(([id]) => id));
      return [planGuestVerb(verb, targets, g, existing, running)];
    }
    default:
      throw new UsageError(`Invalid verb '${verb}'.`);
  }
}

/**
 * Every script the plan needs must exist (as a port or in the legacy tree)
 * before the first one runs, so a missing one is reported with nothing
 * changed. An optional phase whose script is missing is dropped instead.
 */
function availablePhases(phases: readonly Phase[], context: ScriptContext): Phase[] {
  const problemOf = (name: string): string | undefined => {
    try {
      resolveScript(name, context.options);
      return undefined;
    } catch (err) {
      if (!(err instanceof PhoenixError)) throw err;
      return err.message;
    }
  };
  const kept: Phase[] = [];
  const problems = new Set<string>();
  for (const phase of phases) {
    const missing = [...new Set(phase.waves.flat().map((s) => s.script))].map(problemOf).filter((p): p is string => p !== undefined);
    if (missing.length === 0) kept.push(phase);
    else if (phase.optional) warn(`skipping ${phase.name}: ${missing.join('; ')}`);
    else missing.forEach((p) => problems.add(p));
  }
  if (problems.size > 0) {
    throw new PhoenixError(`cannot run this plan, nothing was changed: ${[...problems].join('; ')}`, {
      exitCode: 127,
      hint: context.options.legacyDir
        ? `looked for bash copies in ${context.options.legacyDir}/bin`
        : 'set PHOENIX_LEGACY_DIR to the bash toolkit root (the directory holding bin/) to run the bash originals',
    });
  }
  return kept;
}

function isLegacy(step: Step, context: ScriptContext): boolean {
  try {
    return resolveScript(step.script, context.options).kind === 'legacy';
  } catch {
    return false;
  }
}

async function printStatus(graph: Graph, config: PhoenixConfig, targets: string[]): Promise<number> {
  const unknown = targets.filter((id) => !graph.has(id));
  if (unknown.length) throw new UsageError(`unknown guest id${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
  const states = await guestStates(graph, targets);
  process.stdout.write(formatStatusTable(graph, config, targets, states));
  const absent = targets.filter((id) => states.get(id) === 'absent');
  if (absent.length) warn(`not created yet: ${absent.join(', ')}`);
  return 0;
}

