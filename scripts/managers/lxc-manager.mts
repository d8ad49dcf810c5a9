#!/usr/bin/env node
// lxc-manager.sh <action> <ctid>: the LXC lifecycle. Declares the upstream
// arguments and hands them to lib/lxc/manager.mts, which loads and checks
// the manifests once, takes the host lock (or runs under the caller's) and
// does the action.

import { runMain } from '../../lib/core/main.mts';
import { defineArgs, type CommandSpec, type PositionalSpec } from '../../lib/core/args.mts';

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

// The container stack is loaded once the arguments are known to be good, so
// `--help` and a usage error read none of it.
await runMain(ARGS, async (args, context) => (await import('../../lib/lxc/manager.mts')).runLxcManager(args, context));
