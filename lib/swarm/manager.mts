// swarm-manager's actions (init, join, deploy, rm, status) over the Swarm
// modules: cluster.mts for the nodes, stacks.mts for the stacks.

import { withHostLock, type ScriptContext } from '../core/main.mts';
import { isDryRun } from '../core/context.mts';
import { loadConfig, resolveConfigPaths } from '../config/load.mts';
import { info, warn } from '../core/log.mts';
import type { SwarmArgs } from './args.mts';
import { guestTiming } from './docker.mts';
import { initSwarm, joinSwarm, swarmStatus, type SwarmContext } from './cluster.mts';
import { deployStack, removeStack } from './stacks.mts';

/**
 * One swarm-manager action: the manifests it reads validated first, `status`
 * answered without the lock, the others under the host lock.
 */
export async function runSwarmManager(args: SwarmArgs, context: ScriptContext): Promise<number> {
  const { options } = context;
  if (isDryRun()) info('--- DRY RUN MODE: nothing will be changed ---');
  if (args.ignored.length > 0) warn(`ignoring extra arguments: ${args.ignored.join(' ')}`);
  if (args.hostMode) warn('--host-mode has no effect (it never had one); the stack is deployed as its compose file says');

  // Every manifest problem stops here, before the first command.
  const config = loadConfig(resolveConfigPaths());
  void config.vm;
  if (args.action === 'deploy' || args.action === 'rm') void config.stacks;
  const swarm: SwarmContext = { config, timing: guestTiming(options) };
  const stackOptions = { baseDir: options.baseDir, hostRoot: options.hostRoot };

  if (args.action === 'status') {
    process.stdout.write(await swarmStatus(swarm));
    return 0;
  }
  await withHostLock(context, async () => {
    switch (args.action) {
      case 'init':
        await initSwarm(swarm);
        break;
      case 'join':
        await joinSwarm(swarm, args.vmid as string);
        break;
      case 'deploy':
        await deployStack(swarm, args.stack as string, args.environment as string, stackOptions);
        break;
      case 'rm':
        await removeStack(swarm, args.stack as string, args.environment as string, stackOptions);
        break;
    }
  });
  return 0;
}
