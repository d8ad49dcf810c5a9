#!/usr/bin/env node
// swarm-manager.sh <action> [args]: Docker Swarm on the VMs of
// phoenix_vm_configs.json (init, join, deploy, rm, status). Its command line
// is declared in lib/swarm/args.mts; this loads the manifests once, takes
// the host lock for the actions that change the Swarm (a dry-run takes
// none) and hands the action to lib/swarm/.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { isDryRun } from '../../lib/core/context.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { info, warn } from '../../lib/core/log.mts';
import { SWARM_ARGS, swarmArgs } from '../../lib/swarm/args.mts';
import { guestTiming } from '../../lib/swarm/docker.mts';
import { initSwarm, joinSwarm, swarmStatus, type SwarmContext } from '../../lib/swarm/cluster.mts';
import { deployStack, removeStack } from '../../lib/swarm/stacks.mts';

await runMain(SWARM_ARGS, async (parsed, context) => {
  const args = swarmArgs(parsed);
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
});
