#!/usr/bin/env node
// swarm-manager.sh <action> [args]: Docker Swarm on the VMs of
// phoenix_vm_configs.json (init, join, deploy, rm, status). Its command line
// is declared in lib/swarm/args.mts; what each action does is
// lib/swarm/manager.mts.

import { runMain } from '../../lib/core/main.mts';
import { SWARM_ARGS, swarmArgs } from '../../lib/swarm/args.mts';

// The domain modules load once the arguments are known to be good, so
// `--help` and a usage error read none of them.
await runMain(SWARM_ARGS, async (parsed, context) => (await import('../../lib/swarm/manager.mts')).runSwarmManager(swarmArgs(parsed), context));
