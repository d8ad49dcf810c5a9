// swarm-manager.sh's command line: `<action> [args]` with the bash's
// actions and usage messages. `--dry-run` and `--help` are taken wherever
// they stand; `--env` may come anywhere after the stack (the bash's `rm`
// read the environment from the third word only).

import { UsageError } from '../errors.mts';

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

export interface SwarmArgs {
  help: boolean;
  dryRun: boolean;
  action?: SwarmAction;
  vmid?: string;
  stack?: string;
  environment?: string;
  hostMode: boolean;
  /** Words the action does not take (the bash ignored them too). */
  ignored: string[];
}

export function parseSwarmArgs(argv: readonly string[]): SwarmArgs {
  const args: SwarmArgs = { help: false, dryRun: false, hostMode: false, ignored: [] };
  const words: string[] = [];
  for (const word of argv) {
    if (word === '--dry-run') args.dryRun = true;
    else if (word === '--help' || word === '-h') args.help = true;
    else words.push(word);
  }
  if (args.help) return args;
  const [action, ...rest] = words;
  if (action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`Invalid action '${action ?? ''}' for swarm-manager. Valid actions: ${ACTIONS.join(', ')}`, { hint: 'swarm-manager.sh --help' });
  }
  args.action = action as SwarmAction;
  switch (args.action) {
    case 'init':
    case 'status':
      args.ignored = rest;
      break;
    case 'join': {
      const [vmid, ...extra] = rest;
      if (vmid === undefined || vmid === '') throw new UsageError('Usage: phoenix swarm join <vmid>');
      if (!/^\d+$/.test(vmid)) throw new UsageError(`'${vmid}' is not a VM id`, { hint: 'Usage: phoenix swarm join <vmid>' });
      args.vmid = vmid;
      args.ignored = extra;
      break;
    }
    case 'deploy':
    case 'rm': {
      for (let i = 0; i < rest.length; i++) {
        const word = rest[i] as string;
        if (word === '--env') {
          args.environment = rest[i + 1] ?? '';
          i++;
        } else if (word.startsWith('--env=')) {
          args.environment = word.slice('--env='.length);
        } else if (word === '--host-mode' && args.action === 'deploy') {
          args.hostMode = true;
        } else if (args.stack === undefined && !word.startsWith('--')) {
          args.stack = word;
        } else {
          args.ignored.push(word);
        }
      }
      if (!args.stack || !args.environment) {
        throw new UsageError(`Usage: phoenix swarm ${args.action} <stack_name> --env <environment_name>`);
      }
      break;
    }
  }
  return args;
}
