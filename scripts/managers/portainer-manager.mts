#!/usr/bin/env node
// portainer-manager: `sync all` brings the whole environment to the state of
// the manifests, stage by stage (lib/sync/manager.mts, lib/sync/stages.mts); `sync stack <name> to
// <vmid>` deploys one application stack (in the bash this branch was dead
// code: its argument parser never reached it, and the `sync_stack` function
// it named did not exist). Normally reached as `phoenix sync ...`.

import path from 'node:path';
import { runMain } from '../../lib/core/main.mts';
import { defineArgs } from '../../lib/core/args.mts';

const USAGE = `Usage: portainer-manager.sh [--config FILE] [--reset-portainer] [--dry-run] sync <target>

Targets:
  all                        every stage, in order: stack files, trusted CA, DNS,
                             firewall, swarm, certificates, Portainer, Traefik,
                             Nginx, application stacks
  stack <name> to <vmid>     deploy one application stack (from the stacks
                             manifest) to the swarm VM <vmid> belongs to

Options:
  --config FILE        the hypervisor config (HYPERVISOR_CONFIG_FILE)
  --reset-portainer    remove the Portainer stack and its data volume first
                       (also PHOENIX_RESET_PORTAINER=true)
  --dry-run            print the whole plan, change nothing
  --help               this text

Environment: PHOENIX_PORTAINER_URL (Portainer's address; default
https://<network.portainer_server_ip>:<portainer_server_port>),
PHOENIX_PORTAINER_CA (CA file to verify it; default the Phoenix root CA).
The admin password is read from portainer_api.admin_password_file, which is
created (mode 600) with a random password when missing.
`;

const ARGS = defineArgs({
  name: 'portainer-manager.sh',
  usage: USAGE,
  dryRun: true,
  flags: { config: { type: 'string', needs: 'a file' }, 'reset-portainer': { type: 'boolean' } },
  commands: { sync: { positionals: [{ name: 'target', variadic: true, optional: true }] } },
  invalidCommand: (action) => (action === undefined ? 'no action given' : `Invalid action '${action}' for portainer-manager. Valid actions: sync`),
});

await runMain(ARGS, async (args, context) => {
  if (args.flags.config !== undefined) process.env.HYPERVISOR_CONFIG_FILE = path.resolve(args.flags.config);
  if (args.flags['reset-portainer']) context.options.resetPortainer = true;
  // The sync stages load once the arguments are known to be good.
  return (await import('../../lib/sync/manager.mts')).runPortainerManager(args.operands, context);
});
