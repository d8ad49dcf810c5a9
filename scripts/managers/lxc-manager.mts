#!/usr/bin/env node
// lxc-manager.sh <action> <ctid>: the LXC lifecycle. Parses the upstream
// arguments, loads and checks the manifests once, takes the host lock (or
// runs under the caller's) and hands the action to lib/lxc/lifecycle.mts.

import { runMain, withHostLock } from '../../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config.mts';
import { configureRunner } from '../../lib/runner.mts';
import { CommandError, PhoenixError, UsageError } from '../../lib/errors.mts';
import { info } from '../../lib/log.mts';
import {
  createContainer,
  createTemplates,
  deleteContainer,
  newSession,
  restartContainer,
  startContainer,
  statusTable,
  stopContainer,
  syncContainer,
} from '../../lib/lxc/lifecycle.mts';

const ACTIONS = ['create-templates', 'create', 'converge', 'sync', 'start', 'stop', 'restart', 'delete', 'status'] as const;
type Action = (typeof ACTIONS)[number];

const USAGE = `Usage: lxc-manager.sh <action> <ctid> [--dry-run] [--purge-data]
  create <ctid>        create the container (and its missing clone source), configure, start, run features
  converge <ctid>      the same on an existing container; a template takes option changes only
  start|stop|restart <ctid>
  delete <ctid>        stop and destroy; --purge-data also removes its host data directories
  sync <ctid>          the sync-time helpers of its features (Traefik certificates)
  status <ctid...>     state table on stdout
  create-templates     dump the containers named in .lxc_templates into the ISO storage
`;

await runMain('lxc-manager.sh', async (context) => {
  const flags = new Set(context.argv.filter((a) => a.startsWith('--')));
  const words = context.argv.filter((a) => !a.startsWith('--'));
  if (flags.has('--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  for (const flag of flags) if (flag !== '--dry-run' && flag !== '--purge-data') throw new UsageError(`unknown option '${flag}'`, { hint: USAGE.split('\n')[0] });
  const [action, ...ids] = words;
  if (!action || !(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`Invalid action '${action ?? ''}' for lxc-manager.`, { hint: USAGE.split('\n')[0] });
  }
  if (flags.has('--purge-data') && action !== 'delete') throw new UsageError('--purge-data only goes with delete');
  if (action === 'create-templates') {
    if (ids.length > 0) throw new UsageError('create-templates takes no ctid');
  } else if (ids.length === 0) {
    throw new UsageError(`'${action}' needs a ctid`, { hint: USAGE.split('\n')[0] });
  } else if (ids.length > 1 && action !== 'status') {
    throw new UsageError(`'${action}' takes one ctid, got ${ids.join(' ')}`);
  }
  for (const id of ids) if (!/^[0-9]+$/.test(id) || Number(id) <= 0) throw new UsageError(`Invalid CTID '${id}': a positive number is expected.`);

  const { options } = context;
  if (flags.has('--dry-run') && !options.dryRun) {
    options.dryRun = true;
    configureRunner({ dryRun: true });
  }
  if (options.dryRun) info('--- DRY RUN MODE: nothing will be changed ---');

  // Every manifest problem stops here, before the first command.
  const config = loadConfig(resolveConfigPaths());
  void config.hypervisor;
  config.validateReferences();
  for (const id of ids) {
    if (!config.lxc.lxc_configs[id]) throw new PhoenixError(`Configuration for CTID ${id} not found in ${config.paths.lxc}.`);
  }

  const session = newSession({ script: context.name, options, config, lockToken: undefined, siblings: false });
  const verb = action as Action;
  const id = ids[0] as string;

  if (verb === 'status') {
    process.stdout.write(await statusTable(session, ids));
    return 0;
  }

  try {
    await withHostLock(context, async (lock) => {
      session.lockToken = lock?.token;
      session.siblings = lock !== undefined && !lock.owned;
      switch (verb) {
        case 'create-templates':
          await createTemplates(session);
          break;
        case 'create':
        case 'converge':
          await createContainer(session, id, verb);
          break;
        case 'start':
          await startContainer(session, id);
          break;
        case 'stop':
          await stopContainer(session, id);
          break;
        case 'restart':
          await restartContainer(session, id);
          break;
        case 'delete':
          await deleteContainer(session, id, { purgeData: flags.has('--purge-data') });
          break;
        case 'sync':
          await syncContainer(session, id);
          break;
      }
    });
  } catch (err) {
    // The bash ended every failed step with log_fatal: exit 1, whatever pct returned.
    if (err instanceof CommandError) throw new PhoenixError(err.message, { cause: err });
    throw err;
  }
  return 0;
});
