#!/usr/bin/env node
// lxc-manager.sh <action> <ctid>: the LXC lifecycle. Declares the upstream
// arguments, loads and checks the manifests once, takes the host lock (or
// runs under the caller's) and hands the action to lib/lxc/lifecycle.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { defineArgs, type CommandSpec, type PositionalSpec } from '../../lib/core/args.mts';
import { isDryRun } from '../../lib/core/context.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { CommandError, PhoenixError } from '../../lib/core/errors.mts';
import { info } from '../../lib/core/log.mts';
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

const USAGE = `Usage: lxc-manager.sh <action> <ctid> [--dry-run] [--purge-data]
  create <ctid>        create the container (and its missing clone source), configure, start, run features
  converge <ctid>      the same on an existing container; a template takes option changes only
  start|stop|restart <ctid>
  delete <ctid>        stop and destroy; --purge-data also removes its host data directories
  sync <ctid>          the sync-time helpers of its features (Traefik certificates)
  status <ctid...>     state table on stdout
  create-templates     dump the containers named in .lxc_templates into the ISO storage
`;

const validCtid = (id: string) => (/^[0-9]+$/.test(id) && Number(id) > 0 ? undefined : `Invalid CTID '${id}': a positive number is expected.`);
const oneCtid: CommandSpec = {
  positionals: [{ name: 'ctid', missing: (action) => `'${action}' needs a ctid`, check: validCtid }],
  tooMany: (ids, action) => `'${action}' takes one ctid, got ${ids.join(' ')}`,
};
const someCtids: PositionalSpec = { name: 'ctids', variadic: true, missing: (action) => `'${action}' needs a ctid`, check: validCtid };

const ARGS = defineArgs({
  name: 'lxc-manager.sh',
  usage: USAGE,
  dryRun: true,
  flags: { 'purge-data': { type: 'boolean', only: ['delete'] } },
  commands: {
    'create-templates': { tooMany: () => 'create-templates takes no ctid' },
    create: oneCtid,
    converge: oneCtid,
    sync: oneCtid,
    start: oneCtid,
    stop: oneCtid,
    restart: oneCtid,
    delete: oneCtid,
    status: { positionals: [someCtids] },
  },
  invalidCommand: (action) => `Invalid action '${action ?? ''}' for lxc-manager.`,
});

await runMain(ARGS, async (args, context) => {
  const { options } = context;
  if (isDryRun()) info('--- DRY RUN MODE: nothing will be changed ---');
  const ids = args.operands;

  // Every manifest problem stops here, before the first command.
  const config = loadConfig(resolveConfigPaths());
  void config.hypervisor;
  config.validateReferences();
  for (const id of ids) {
    if (!config.lxc.lxc_configs[id]) throw new PhoenixError(`Configuration for CTID ${id} not found in ${config.paths.lxc}.`);
  }

  const session = newSession({ script: context.name, options, config, lockToken: undefined, siblings: false });
  const verb = args.command;
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
          await deleteContainer(session, id, { purgeData: args.flags['purge-data'] });
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
