// swarm-manager.sh's command line, declared: `<action> [args]` with the
// bash's actions and usage messages. `--dry-run`, `--help` and `--env` may
// stand anywhere (the bash's `rm` read the environment from the third word
// only). Words an action does not take were ignored by the bash; they still
// are, with a warning.

import { defineArgs, usageError, type ParsedArgs } from '../core/args.mts';

export const ACTIONS = ['init', 'join', 'deploy', 'rm', 'status'] as const;
export type SwarmAction = (typeof ACTIONS)[number];

export const USAGE = `Usage: swarm-manager.sh <action> [args] [--dry-run]

Actions:
  init                                  initialise the Swarm on the manager VM (swarm_role "manager")
  join <vmid>                           join a VM to the Swarm with its swarm_role, then label it (node_labels)
  deploy <stack> --env <environment>    render stacks/<stack> with etc/phoenix_stacks_config.json and deploy
                                        it as <environment>_<stack> (skipped when nothing changed)
  rm <stack> --env <environment>        remove the stack <environment>_<stack>
  status                                the Swarm's nodes and stacks (docker node ls, docker stack ls)

Options:
  --dry-run   print what would change, change nothing
  --help      this text

init and join change nothing when the Swarm already is as the manifests say.
`;

const stackUsage = (action: string | undefined) => `Usage: phoenix swarm ${action} <stack_name> --env <environment_name>`;
const stack = { positionals: [{ name: 'stack', missing: stackUsage }], extra: 'ignore' } as const;

export const SWARM_ARGS = defineArgs({
  name: 'swarm-manager.sh',
  usage: USAGE,
  dryRun: true,
  flags: {
    env: { type: 'string', only: ['deploy', 'rm'], needs: 'an environment name' },
    'host-mode': { type: 'boolean', only: ['deploy'] },
  },
  commands: {
    init: { extra: 'ignore' },
    status: { extra: 'ignore' },
    join: {
      positionals: [{ name: 'vmid', missing: 'Usage: phoenix swarm join <vmid>', check: (vmid) => (/^\d+$/.test(vmid) ? undefined : `'${vmid}' is not a VM id`) }],
      extra: 'ignore',
    },
    deploy: stack,
    rm: stack,
  },
  invalidCommand: (action) => `Invalid action '${action ?? ''}' for swarm-manager. Valid actions: ${ACTIONS.join(', ')}`,
});

export interface SwarmArgs {
  action: SwarmAction;
  vmid?: string;
  stack?: string;
  environment?: string;
  hostMode: boolean;
  /** Words the action does not take (the bash ignored them too). */
  ignored: string[];
}

/** The declared command line as swarm-manager works with it; deploy and rm need --env. */
export function swarmArgs(args: ParsedArgs<typeof SWARM_ARGS>): SwarmArgs {
  const out: SwarmArgs = { action: args.command, hostMode: args.flags['host-mode'], ignored: args.ignored };
  if (args.positional.vmid !== undefined) out.vmid = args.positional.vmid;
  if (args.positional.stack !== undefined) out.stack = args.positional.stack;
  if (args.flags.env !== undefined) out.environment = args.flags.env;
  if ((out.action === 'deploy' || out.action === 'rm') && out.environment === undefined) throw usageError(SWARM_ARGS, stackUsage(out.action));
  return out;
}

